"""Tiny bundles with image inputs and several outputs (docs/bundle_contract.md section 5), weights made here:

* ``make_translation_bundle``: a 32x32 "T1 -> T2" translator: one 3x3 convolution whose weights are the identity,
  so output == input (in [0, 1]); its sampler is medigan_zoo.samplers.image_inputs.TranslationSampler.
* ``make_pair_bundle``: noise -> (image, mask) 16x16: a linear layer with two heads (image in [0, 1], binary mask).

Both declare ``inputs``/``outputs`` in their zoo block and an ``inferring`` that ``python -m monai.bundle run``
runs with MONAI transforms (LoadImaged, SaveImaged).
"""
from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path

import torch
from zoo_fixtures import ZOO_BLOCK, metadata

PAIR_MODULE = textwrap.dedent('''
    import torch
    from torch import nn

    from medigan_zoo.samplers.noise import seeded_noise


    class TwoHeadNet(nn.Module):
        def __init__(self, latent: int = 8, size: int = 16):
            super().__init__()
            self.size = size
            self.linear = nn.Linear(latent, 2 * size * size)

        def forward(self, z):
            out = self.linear(z).view(-1, 2, self.size, self.size)
            return torch.sigmoid(out[:, :1]), out[:, 1:]


    class PairSampler(nn.Module):
        def __init__(self, network, latent: int = 8):
            super().__init__()
            self.network, self.latent = network, latent

        def forward(self, seeds, inputs=None, **conditions):
            z = seeded_noise(seeds, (self.latent,), "normal").to(next(self.network.parameters()).device)
            image, logits = self.network(z)
            return {"image": image, "mask": (logits > 0).float()}
''')

LOGGING = ("[loggers]\nkeys=root\n[handlers]\nkeys=console\n[formatters]\nkeys=plain\n"
           "[logger_root]\nlevel=WARNING\nhandlers=console\n"
           "[handler_console]\nclass=StreamHandler\nlevel=WARNING\nformatter=plain\nargs=(sys.stdout,)\n"
           "[formatter_plain]\nformat=%(message)s\n")


def _common(bundle: Path, zoo: dict, name: str, spatial: list, config: dict) -> Path:
    for sub in ("configs", "models", "docs"):
        (bundle / sub).mkdir(parents=True, exist_ok=True)
    pred = {"type": "image", "num_channels": 1, "spatial_shape": spatial, "dtype": "float32", "value_range": [0, 1]}
    meta = metadata(name=name, zoo=zoo, network_data_format={"inputs": {}, "outputs": {"pred": pred}})
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta, indent=2))
    (bundle / "configs" / "inference.json").write_text(json.dumps(config, indent=2))
    (bundle / "configs" / "logging.conf").write_text(LOGGING)
    (bundle / "LICENSE").write_text("CC-BY-4.0 (test weights)\n")
    (bundle / "docs" / "README.md").write_text(f"# {name}\nTest bundle.\n")
    return bundle


def _evaluator(prepare: str, post: list) -> dict:
    return {
        "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": "@batch_size",
                       "shuffle": False, "num_workers": 0},
        "postprocessing": {"_target_": "Compose", "transforms": post},
        "evaluator": {"_target_": "SupervisedEvaluator", "device": "@device", "val_data_loader": "@dataloader",
                      "network": "@sampler", "prepare_batch": prepare, "postprocessing": "@postprocessing"},
        "inferring": ["$@evaluator.run()"],
    }


def _save(key: str, mask: bool) -> dict:
    save = {"_target_": "SaveImaged", "keys": key, "output_dir": "@output_dir", "output_ext": "@output_ext",
            "output_postfix": key, "separate_folder": False, "print_log": False, "output_dtype": "$np.uint8"}
    if not mask:
        save["scale"] = 255
    return save


def make_translation_bundle(root: Path, name: str = "toy_brain_t1_to_t2") -> Path:
    """32x32 identity translator, input ``t1`` (MR, [0, 1], normalization none) -> output ``image``."""
    bundle = root / name
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    with torch.no_grad():
        net.weight.zero_()
        net.weight[0, 0, 1, 1] = 1.0
        net.bias.zero_()
    (bundle / "models").mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), bundle / "models" / "model.pt")
    zoo = copy.deepcopy(ZOO_BLOCK)
    zoo.update(alias=911, modality=["MR"], anatomy=["brain"], generates=["T2-weighted MRI"], condition={},
               spatial_shape=[32, 32],
               architecture="pix2pix", function=["image to image translation"],
               inputs=[{"name": "t1", "kind": "image", "modality": "MR", "spatial_shape": [32, 32], "num_channels": 1,
                        "value_range": [0, 1], "normalization": "none", "description": "T1 slice"}],
               outputs=[{"name": "image", "kind": "image", "num_channels": 1, "value_range": [0, 1]}])
    config = {
        "imports": ["$import torch", "$import numpy as np",
                    "$from medigan_zoo.samplers.image_inputs import input_records",
                    "$from medigan_zoo.samplers.image_inputs import prepare_input_batch"],
        "bundle_root": ".", "device": "$torch.device('cpu')", "num_samples": 4, "batch_size": 2, "seed": 0,
        "input_dir": "$@bundle_root + '/docs/example_inputs'",
        "output_dir": "$@bundle_root + '/outputs'", "output_ext": ".png",
        "network_def": {"_target_": "torch.nn.Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3,
                        "padding": 1},
        "network": "$@network_def.to(@device)",
        "ckpt_path": "$@bundle_root + '/models/model.pt'",
        "sampler": {"_target_": "medigan_zoo.samplers.image_inputs.TranslationSampler", "network": "@network",
                    "input_name": "t1", "output_range": [0, 1]},
        "load_weights": "$@network.load_state_dict(torch.load(@ckpt_path, weights_only=True))",
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "LoadImaged", "keys": "t1", "ensure_channel_first": True, "image_only": True},
            {"_target_": "ScaleIntensityRanged", "keys": "t1", "a_min": 0, "a_max": 255, "b_min": 0, "b_max": 1},
            {"_target_": "medigan_zoo.samplers.image_inputs.DisplayOrderd", "keys": "t1"}]},
        "dataset": {"_target_": "Dataset",
                    "data": "$input_records(@input_dir, ['t1'], @seed)",
                    "transform": "@preprocessing"},
        **_evaluator("$prepare_input_batch",
                     [{"_target_": "medigan_zoo.samplers.image_inputs.SplitOutputsd", "names": ["image"],
                       "meta_from": "t1"},
                      _save("image", mask=False)]),
    }
    config["inferring"] = ["$@load_weights", "$@evaluator.run()"]
    return _common(bundle, zoo, "Toy T1 to T2 translator", [32, 32], config)


def make_pair_bundle(root: Path, name: str = "toy_brain_tumor_pairs") -> Path:
    """16x16 noise -> (image in [0, 1], mask with labels 0 background / 1 tumor)."""
    bundle = root / name
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "pair_sampler.py").write_text(PAIR_MODULE)
    torch.manual_seed(3)
    state = {"linear.weight": torch.randn(2 * 16 * 16, 8), "linear.bias": torch.zeros(2 * 16 * 16)}
    (bundle / "models").mkdir(parents=True, exist_ok=True)
    torch.save(state, bundle / "models" / "model.pt")
    zoo = copy.deepcopy(ZOO_BLOCK)
    zoo.update(alias=912, modality=["MR"], anatomy=["brain"], generates=["MRI slice", "tumor mask"], condition={},
               spatial_shape=[16, 16], architecture="two-head GAN", function=["noise to image and mask"],
               outputs=[{"name": "image", "kind": "image", "num_channels": 1, "value_range": [0, 1]},
                        {"name": "mask", "kind": "mask", "labels": {"0": "background", "1": "tumor"}}])
    config = {
        "imports": ["$import torch", "$import numpy as np", "$from medigan_zoo.sampling import seed_records",
                    "$from medigan_zoo.sampling import prepare_seed_batch"],
        "bundle_root": ".", "device": "$torch.device('cpu')", "num_samples": 3, "batch_size": 2, "seed": 0,
        "output_dir": "$@bundle_root + '/outputs'", "output_ext": ".png",
        "network_def": {"_target_": "pair_sampler.TwoHeadNet"},
        "network": "$@network_def.to(@device)",
        "ckpt_path": "$@bundle_root + '/models/model.pt'",
        "sampler": {"_target_": "pair_sampler.PairSampler", "network": "@network"},
        "load_weights": "$@network.load_state_dict(torch.load(@ckpt_path, weights_only=True))",
        "dataset": {"_target_": "Dataset", "data": "$seed_records(@seed, @num_samples)"},
        **_evaluator("$prepare_seed_batch",
                     [{"_target_": "medigan_zoo.samplers.image_inputs.SplitOutputsd", "names": ["image", "mask"]},
                      _save("image", mask=False), _save("mask", mask=True)]),
    }
    config["inferring"] = ["$@load_weights", "$@evaluator.run()"]
    return _common(bundle, zoo, "Toy brain tumor image+mask", [16, 16], config)
