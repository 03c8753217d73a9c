"""TorchScript export of a zoo bundle (``models/model.pt`` -> ``models/model.ts``) and the parity check.

GAN generators go through MONAI's ``monai.bundle.ckpt_export`` (``torch.jit.script``, with the bundle's
``metadata.json`` and ``inference.json`` stored in the TorchScript archive, as in the MONAI Model Zoo). MONAI's
``DiffusionModelUNet`` does not script and ``ckpt_export`` traces with a single input only, so the UNet is traced
through :class:`medigan_zoo.samplers.diffusion.ClassUNetExport` and saved with MONAI's ``save_net_with_metadata`` (same
archive layout). Either way the exported module runs without MONAI::

    g = torch.jit.load("bundles/chest_xray_cdcgan/models/model.ts")
    x = g(torch.randn(8, 64), torch.ones(8, dtype=torch.long))

and :func:`torchscript_difference` checks that it gives the state-dict network's output for a fixed input.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import nn

PathLike = Union[str, Path]
#: largest accepted |TorchScript - state dict| on the check input (float32 outputs in [-1, 1] or noise scale)
TOLERANCE = 1e-5


def _is_unet(network: nn.Module) -> bool:
    return type(network).__name__ == "DiffusionModelUNet"


def _zoo_block(bundle: Path) -> Dict[str, Any]:
    return json.loads((bundle / "configs" / "metadata.json").read_text()).get("medigan_zoo") or {}


def load_network(bundle: PathLike, trusted: Any = None) -> nn.Module:
    """The bundle's network on CPU with its weights loaded (the runtime's one loader), in eval mode (trusted bundles
    only: medigan_zoo.catalog.trust)."""
    from medigan_zoo.runtime.bundle import open_bundle

    return open_bundle(bundle, device="cpu", trusted=trusted).network


def _ckpt_path(bundle: Path, trusted: Any = None) -> Path:
    from medigan_zoo.runtime.bundle import open_bundle

    return open_bundle(bundle, device="cpu", trusted=trusted).ckpt_path


def example_inputs(bundle: PathLike, network: nn.Module) -> Tuple[torch.Tensor, ...]:
    """A fixed check input: ``(latent[, labels])`` for GAN generators, ``(x, timesteps, labels)`` for UNets."""
    zoo = _zoo_block(Path(bundle))
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1])
    if _is_unet(network):
        shape = (2, int(zoo.get("num_channels", 1))) + tuple(int(s) for s in zoo["spatial_shape"])
        return torch.randn(shape, generator=gen), torch.tensor([10, 600]), labels
    required = [spec for spec in zoo.get("inputs") or [] if isinstance(spec, dict) and spec.get("optional") is not True]
    if required:  # image-to-image models: one image per required input, in its value range
        images = []
        for spec in required:
            low, high = (float(v) for v in spec.get("value_range") or (0.0, 1.0))
            shape = (2, int(spec.get("num_channels") or 1), *(int(s) for s in spec["spatial_shape"]))
            images.append(torch.rand(shape, generator=gen) * (high - low) + low)
        return tuple(images)
    # latent_size is a plain int attribute of the GAN generators (latent_input_size where the latent is longer,
    # e.g. split between two generators); nn.Module's typed __getattr__ only knows parameters, buffers and submodules
    size = getattr(network, "latent_input_size", None) or getattr(network, "latent_size")
    latent = torch.randn(2, int(size), generator=gen)
    return (latent, labels) if zoo.get("condition") else (latent,)


def _reference(network: nn.Module) -> nn.Module:
    """The module whose call signature the TorchScript export has."""
    from medigan_zoo.samplers.diffusion import ClassUNetExport

    return ClassUNetExport(network) if _is_unet(network) else network


def torchscript_difference(bundle: PathLike, ts_path: Optional[PathLike] = None, trusted: Any = None) -> float:
    """max |TorchScript(x) - state-dict network(x)| on :func:`example_inputs` (the TorchScript file is loaded
    with plain ``torch.jit.load``, as a user without MONAI would)."""
    bundle = Path(bundle)
    network = load_network(bundle, trusted)
    inputs = example_inputs(bundle, network)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.* deprecation notes
        scripted = torch.jit.load(str(ts_path or bundle / "models" / "model.ts"), map_location="cpu").eval()
    with torch.no_grad():
        got, want = scripted(*inputs), _reference(network)(*inputs)
    pairs = zip(got, want) if isinstance(want, (tuple, list)) else [(got, want)]  # several outputs: each one
    return max(float((a - b).abs().max()) for a, b in pairs)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_difference: float


def export_torchscript(bundle: PathLike, filepath: Optional[PathLike] = None, trusted: Any = None) -> ExportResult:
    """Write ``models/model.ts`` (or ``filepath``) from ``network_def`` + ``models/model.pt`` and check it.

    Raises:
        ValueError: the export's output differs from the state-dict network's by more than :data:`TOLERANCE`.
    """
    from monai.bundle import ckpt_export

    from medigan_zoo.runtime.imports import bundle_on_sys_path

    bundle = Path(bundle).resolve()
    out = Path(filepath) if filepath else bundle / "models" / "model.ts"
    configs = bundle / "configs"
    network = load_network(bundle, trusted)  # checks trust before any config is read
    with bundle_on_sys_path(bundle), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation and tracer notes
        if _is_unet(network):
            from monai.bundle import ConfigParser
            from monai.data import save_net_with_metadata

            from medigan_zoo.samplers.diffusion import trace_unet

            zoo = _zoo_block(bundle)
            module = trace_unet(network, zoo["spatial_shape"], int(zoo.get("num_channels", 1)))
            meta = ConfigParser.load_config_file(str(configs / "metadata.json"))
            inference = json.dumps(ConfigParser.load_config_file(str(configs / "inference.json"))).encode()
            save_net_with_metadata(module, str(out), include_config_vals=False, append_timestamp=False,
                                   meta_values=meta, more_extra_files={"inference.json": inference})
        else:
            ckpt_export(net_id="network_def", filepath=str(out), ckpt_file=str(_ckpt_path(bundle, trusted)),
                        meta_file=str(configs / "metadata.json"), config_file=str(configs / "inference.json"),
                        bundle_root=str(bundle), device="$torch.device('cpu')")
    diff = torchscript_difference(bundle, out, trusted)
    if diff > TOLERANCE:
        raise ValueError(f"{out}: TorchScript output differs from the state-dict network by {diff:.3g} "
                         f"(> {TOLERANCE}); the export is not faithful.")
    return ExportResult(out, diff)
