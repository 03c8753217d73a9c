#!/usr/bin/env python
"""Export a zoo bundle's network (``network_def`` + ``models/model.pt``) to ``models/model.ts``.

GAN generators are compiled with ``torch.jit.script``; MONAI's ``DiffusionModelUNet`` cannot be scripted, so it
is traced through ``medigan_zoo.diffusion.ClassUNetExport`` (``(x, timesteps, class_labels) -> eps``). The
script checks that the TorchScript module gives the state-dict network's output for a fixed input.

    python scripts/export_torchscript.py bundles/chest_xray_ddpm
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def load_network(bundle: Path) -> torch.nn.Module:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser["bundle_root"] = str(bundle)
    parser["device"] = "$torch.device('cpu')"
    network = parser.get_parsed_content("network_def")
    network.load_state_dict(torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True))
    return network.eval()


def example_inputs(bundle: Path, network: torch.nn.Module) -> tuple:
    """A fixed input for the check: (latent[, labels]) for generators, (x, t, labels) for diffusion UNets."""
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    zoo = meta.get("medigan_zoo", {})
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1])
    if type(network).__name__ == "DiffusionModelUNet":
        shape = (2, int(zoo.get("num_channels", 1))) + tuple(zoo["spatial_shape"])
        return torch.randn(shape, generator=gen), torch.tensor([10, 600]), labels
    latent = torch.randn(2, int(network.latent_size), generator=gen)
    return (latent, labels) if zoo.get("condition") else (latent,)


def export(bundle: Path) -> Path:
    from medigan_zoo.diffusion import ClassUNetExport, trace_unet

    network = load_network(bundle)
    inputs = example_inputs(bundle, network)
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())["medigan_zoo"]
    if type(network).__name__ == "DiffusionModelUNet":
        module = trace_unet(network, meta["spatial_shape"], int(meta.get("num_channels", 1)))
        reference = ClassUNetExport(network)
    else:
        module = torch.jit.script(network)
        reference = network
    out = bundle / "models" / "model.ts"
    torch.jit.save(module, str(out))
    loaded = torch.jit.load(str(out))
    with torch.no_grad():
        diff = (loaded(*inputs) - reference(*inputs)).abs().max().item()
    if diff > 1e-5:
        raise SystemExit(f"TorchScript output differs from the state-dict network by {diff}")
    print(f"wrote {out} (max |ts - state dict| = {diff:.2e})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    for bundle in ap.parse_args().bundles:
        export(bundle)


if __name__ == "__main__":
    main()
