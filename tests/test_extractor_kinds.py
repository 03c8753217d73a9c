"""The feature-extractor kinds registry: every registered kind, built from a tiny real example, is recognised from
its spec string, loads with its default normalization (user overrides on top) and returns (N, F) features.

A new kind must add its example to EXAMPLES (the parametrised test fails for a kind without one). torchvision is
skipped when it does not import (it does not beside the pinned CPU torch 2.13.0 on the development machine).
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import pytest
import torch
from conftest import BUNDLES

from medigan_zoo.core.errors import BundleLoadError, ZooError
from medigan_zoo.evaluation.extractor_kinds import (
    DEFAULT_EXTRACTOR,
    load_feature_extractor,
    registered_extractor_kinds,
    resolve_extractor,
)
from medigan_zoo.evaluation.features import Normalization

#: what an example gives: spec string, weights, expected default normalization, feature dimension
Example = Tuple[str, Optional[Path], Normalization, int]


def tiny_extractor_bundle(root: Path, name: str = "tiny_extractor", nested: bool = True) -> Path:
    """A feature-extractor bundle: a 1 -> 4 channel conv, its own input_* normalization, weights saved as a training
    checkpoint ({"state_dict": {"module.weight": ...}}), which only the runtime's weights loader unwraps."""
    bundle = root / name
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    shipped = json.loads((Path(__file__).resolve().parents[1] / "bundles" / "medmnist_feature_extractor" / "configs"
                          / "metadata.json").read_text())
    meta = {"version": "0.0.1", "name": "tiny extractor", "medigan_zoo": shipped["medigan_zoo"]}
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    config = {"imports": ["$import torch"], "bundle_root": ".", "device": "$torch.device('cpu')",
              "input_size": 16, "input_channels": "gray", "input_intensity": "[-1,1]", "resize_mode": "area",
              "network_def": {"_target_": "torch.nn.Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3,
                              "padding": 1},
              "ckpt_path": "$@bundle_root + '/models/model.pt'"}
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    state = torch.nn.Conv2d(1, 4, 3, padding=1).state_dict()
    if nested:
        state = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": torch.tensor(3)}
    torch.save(state, bundle / "models" / "model.pt")
    return bundle


def bundle_example(tmp: Path) -> Example:
    bundle = tiny_extractor_bundle(tmp)
    return str(bundle), None, Normalization(size=16, channels="gray", intensity="[-1,1]", resize_mode="area"), 4


def torchscript_example(tmp: Path) -> Example:
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)

        def forward(self, x):
            return torch.relu(self.conv(x))

    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(Tiny()), str(tmp / "tiny.ts"))
    return str(tmp / "tiny.ts"), None, Normalization(), 6


def torchvision_example(tmp: Path) -> Example:
    torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed (it does not import "
                                      "beside the pinned CPU torch 2.13.0 on the development machine)")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp / "resnet18.pth")
    return ("torchvision:resnet18", tmp / "resnet18.pth",
            Normalization(size=224, resize_mode="bilinear", channels="rgb", intensity="imagenet"), 512)


EXAMPLES: Dict[str, Callable[[Path], Example]] = {
    "bundle": bundle_example, "torchscript": torchscript_example, "torchvision": torchvision_example,
}


@pytest.mark.parametrize("name", [k.name for k in registered_extractor_kinds()])
def test_kind_recognises_loads_and_normalizes(name, tmp_path):
    assert name in EXAMPLES, f"extractor kind {name!r} has no example in tests/test_extractor_kinds.py::EXAMPLES"
    spec, weights, default, dim = EXAMPLES[name](tmp_path)
    kind, target = resolve_extractor(spec)
    assert kind.name == name
    assert kind.default_normalization(target) == default
    ext = load_feature_extractor(spec, weights=weights)
    assert ext.normalization == default
    images = torch.rand(3, 1, 20, 20, generator=torch.Generator().manual_seed(1))
    feats = ext(images, batch_size=2)
    assert feats.shape == (3, dim) and feats.dtype == torch.float32 and torch.isfinite(feats).all()
    again = load_feature_extractor(spec, weights=weights)(images, batch_size=3)
    assert torch.allclose(feats, again, atol=1e-6)  # same weights, same features
    custom = load_feature_extractor(spec, weights=weights, normalization={"size": 8, "resize_mode": "nearest"})
    assert custom.normalization == replace(default, size=8, resize_mode="nearest")


def test_recognition_order_and_unknown_specs(tmp_path):
    assert [k.name for k in registered_extractor_kinds()][:3] == ["torchvision", "bundle", "torchscript"]
    bundle = tiny_extractor_bundle(tmp_path / "bundles")
    kind, target = resolve_extractor("tiny_extractor", bundle_dirs=[tmp_path / "bundles"])  # a bundle id
    assert kind.name == "bundle" and target == bundle.resolve()
    assert resolve_extractor(DEFAULT_EXTRACTOR)[0].name == "bundle"  # the shipped one, by id
    with pytest.raises(ZooError, match=r"Unknown feature extractor 'nope\.ts': pass torchvision:NAME with "
                                       r"weights=PATH, a feature-extractor bundle id or folder \(default "
                                       r"medmnist_feature_extractor\) or a TorchScript file\."):
        resolve_extractor("nope.ts")


def test_bundle_kind_uses_the_runtime_weights_loader(tmp_path):
    plain = tiny_extractor_bundle(tmp_path / "a", nested=False)
    nested = tiny_extractor_bundle(tmp_path / "b", nested=True)
    images = torch.rand(2, 1, 16, 16)
    assert torch.equal(load_feature_extractor(plain)(images), load_feature_extractor(nested)(images))
    torch.save(torch.nn.Conv2d(1, 8, 3).state_dict(), plain / "models" / "model.pt")
    with pytest.raises(BundleLoadError, match=r"^Weights .*model\.pt .*do not fit the network: .*wrong shape") as err:
        load_feature_extractor(plain)
    assert "\n" not in str(err.value)
    (plain / "models" / "model.pt").unlink()
    with pytest.raises(BundleLoadError, match="not found"):
        load_feature_extractor(plain)


def test_a_generator_bundle_is_not_an_extractor():
    bundle = BUNDLES / "chest_xray_cdcgan"
    if not (bundle / "configs" / "metadata.json").is_file():
        pytest.skip("bundles/chest_xray_cdcgan is not in the repository")
    with pytest.raises(ZooError, match="is not a feature extractor"):
        load_feature_extractor(bundle)


def test_old_import_paths_still_work():
    """Shipped configs name medigan_zoo.evaluation.features.load_bundle_extractor."""
    from medigan_zoo.evaluation import features

    assert features.load_bundle_extractor.__module__ == "medigan_zoo.evaluation.extractor_kinds"
    assert features.DEFAULT_EXTRACTOR == DEFAULT_EXTRACTOR
    with pytest.raises(AttributeError):
        features.no_such_name  # noqa: B018
