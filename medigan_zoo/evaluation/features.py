"""Feature extractors for FID / precision-recall, and the normalization applied before them.

An extractor is given by a spec string:

* ``medmnist_feature_extractor`` (default) or any path to a bundle whose zoo ``role`` is ``feature_extractor``;
* a TorchScript file (``*.ts`` / ``*.pt`` / ``*.pth`` holding a scripted module): ``forward`` (or an exported
  ``features`` method) maps ``(B, C, H, W)`` to ``(B, F)`` or ``(B, F, h, w)`` (global-average-pooled);
* ``torchvision:NAME`` with ``weights=PATH`` (e.g. ``torchvision:inception_v3`` with ImageNet weights, or
  ``torchvision:resnet50`` with RadImageNet weights): the classifier head is replaced by the identity. Nothing is
  downloaded; torchvision must be installed.

Which normalization was used changes FID a lot (Osuala et al., medigan, 2023), so every metric records
``Normalization.describe()`` next to the extractor name.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from medigan_zoo.core.errors import ZooError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTENSITIES = ("[0,1]", "[-1,1]", "imagenet")
CHANNELS = ("rgb", "gray", "keep")
RESIZE_MODES = ("bilinear", "bicubic", "area", "nearest")
DEFAULT_EXTRACTOR = "medmnist_feature_extractor"


@dataclass(frozen=True)
class Normalization:
    """How images in [0, 1] are turned into extractor inputs.

    Args:
        size: side length the 2D images (or 2D slices of volumes) are resized to; None keeps the size.
        resize_mode: interpolation (bilinear/bicubic use antialiasing when shrinking; area averages).
        channels: "rgb" (gray replicated to 3 channels), "gray" (RGB -> ITU-R 601 luma, 1 channel), "keep".
        intensity: "[0,1]" (as is), "[-1,1]", or "imagenet" (ImageNet mean/std per RGB channel).
        slices_3d: volumes (B, C, D, H, W) are cut into this many slices per axis (evenly spaced over the central
            40 % of the axis); features are averaged over the slices of an axis and the 3 axes concatenated.
    """

    size: Optional[int] = 32
    resize_mode: str = "bilinear"
    channels: str = "rgb"
    intensity: str = "[0,1]"
    slices_3d: int = 3

    def __post_init__(self):
        if self.intensity not in INTENSITIES:
            raise ZooError(f"normalization intensity must be one of {', '.join(INTENSITIES)}, got {self.intensity!r}")
        if self.channels not in CHANNELS:
            raise ZooError(f"normalization channels must be one of {', '.join(CHANNELS)}, got {self.channels!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ZooError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}, got {self.resize_mode!r}")
        if self.size is not None and int(self.size) < 1:
            raise ZooError(f"resize size must be >= 1 or None, got {self.size!r}")
        if self.intensity == "imagenet" and self.channels == "gray":
            raise ZooError("ImageNet normalization needs 3 channels; use channels='rgb'.")

    @classmethod
    def from_any(cls, value: Union[None, "Normalization", Mapping[str, Any]],
                 base: Optional["Normalization"] = None) -> "Normalization":
        """A Normalization from None (``base`` or the default), an instance, or a dict of overrides of ``base``."""
        base = base or cls()
        if value is None:
            return base
        if isinstance(value, Normalization):
            return value
        unknown = set(value) - set(asdict(base))
        if unknown:
            raise ZooError(f"Unknown normalization option(s) {sorted(unknown)}; known: {sorted(asdict(base))}.")
        fields = {k: v for k, v in value.items() if v is not None}
        if "size" in value and str(value["size"]).lower() in ("none", "0", "keep"):
            fields["size"] = None
        elif "size" in fields:
            fields["size"] = int(fields["size"])
        if "slices_3d" in fields:
            fields["slices_3d"] = int(fields["slices_3d"])
        return replace(base, **fields)

    def describe(self, spatial_shape: Sequence[int] = (), num_channels: Optional[int] = None) -> str:
        """E.g. ``"[0,1], gray->RGB, resize 28 -> 32 bilinear"`` (what a metric records)."""
        parts = [self.intensity if self.intensity != "imagenet" else "ImageNet mean/std"]
        if self.channels == "rgb" and num_channels in (None, 1):
            parts.append("gray->RGB")
        elif self.channels == "gray" and num_channels in (None, 3):
            parts.append("RGB->gray")
        src = "x".join(str(s) for s in spatial_shape[-2:]) if spatial_shape else "input"
        if len(spatial_shape) == 3:
            parts.append(f"3D: {self.slices_3d} slices/axis x 3 axes, features averaged per axis and concatenated")
        if self.size is None:
            parts.append(f"no resize ({src})")
        else:
            parts.append(f"resize {src} -> {self.size}x{self.size} {self.resize_mode}")
        return ", ".join(parts)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> extractor input."""
        x = x.float()
        if self.channels == "rgb" and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif self.channels == "gray" and x.shape[1] == 3:
            w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True)
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            size = (int(self.size), int(self.size))
            if self.resize_mode in ("bilinear", "bicubic"):
                x = F.interpolate(x, size=size, mode=self.resize_mode, align_corners=False,
                                  antialias=x.shape[-1] > self.size)
            else:
                x = F.interpolate(x, size=size, mode=self.resize_mode)
        if self.intensity == "[-1,1]":
            x = x * 2.0 - 1.0
        elif self.intensity == "imagenet":
            if x.shape[1] != 3:
                raise ZooError("ImageNet normalization needs 3-channel inputs; use channels='rgb'.")
            mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        return x.contiguous()


def volume_slices(x: torch.Tensor, per_axis: int) -> torch.Tensor:
    """(B, C, D, H, W) -> (3, per_axis, B, C, s, s'): evenly spaced slices over the central 40 % of each axis."""
    out = []
    for axis in (2, 3, 4):
        n = x.shape[axis]
        pos = torch.linspace(0.3 * (n - 1), 0.7 * (n - 1), per_axis).round().long() if per_axis > 1 else \
            torch.tensor([(n - 1) // 2])
        out.append(torch.stack([x.select(axis, int(p)) for p in pos]))
    if len({tuple(s.shape[-2:]) for s in out}) != 1:  # anisotropic volumes: resize slices to a common shape
        side = max(s.shape[-1] for s in out)
        out = [F.interpolate(s.flatten(0, 1), size=(side, side), mode="bilinear").unflatten(0, s.shape[:2])
               for s in out]
    return torch.stack(out)


class FeatureExtractor:
    """Batched feature extraction: images (N, C, *spatial) in [0, 1] -> features (N, F) float32 on CPU.

    Args:
        module: the network; if it has a ``features`` method that is used, else ``forward``.
        name: what metrics record (e.g. ``medmnist_feature_extractor@0.1.0``).
        normalization: the preprocessing (see Normalization).
        device: where the network runs.
    """

    def __init__(self, module: nn.Module, name: str, normalization: Normalization = Normalization(),
                 device: Union[str, torch.device] = "cpu"):
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.name = name
        self.normalization = normalization
        self._fn: Callable[[torch.Tensor], Any] = getattr(self.module, "features", None) or self.module

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        out = self._fn(self.normalization.apply(x).to(self.device))
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, Mapping):
            out = next(iter(out.values()))
        if out.ndim > 2:
            out = out.flatten(2).mean(-1)
        return out.float().cpu()

    def __call__(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        if images.ndim not in (4, 5):
            raise ZooError(f"Feature extraction takes (N, C, H, W) or (N, C, D, H, W) images, got {tuple(images.shape)}.")
        feats = []
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                batch = images[start:start + batch_size]
                if batch.ndim == 4:
                    feats.append(self._run(batch))
                    continue
                slices = volume_slices(batch, self.normalization.slices_3d)  # (3, k, B, C, s, s)
                a, k, b = slices.shape[:3]
                f = self._run(slices.flatten(0, 2)).view(a, k, b, -1).mean(1)  # (3, B, F)
                feats.append(f.permute(1, 0, 2).reshape(b, -1))
        return torch.cat(feats) if feats else torch.empty(0, 0)

    def describe(self, spatial_shape: Sequence[int] = (), num_channels: Optional[int] = None) -> str:
        return self.normalization.describe(spatial_shape, num_channels)


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _bundle_path(spec: str, bundle_dirs: Sequence[Path]) -> Optional[Path]:
    path = Path(spec).expanduser()
    if (path / "configs" / "metadata.json").is_file():
        return path
    for root in bundle_dirs:
        if (root / spec / "configs" / "metadata.json").is_file():
            return root / spec
    return None


def load_bundle_extractor(bundle_dir: Union[str, Path], device: Union[str, torch.device] = "cpu",
                          normalization: Optional[Mapping[str, Any]] = None, trusted: Any = None) -> FeatureExtractor:
    """A feature-extractor bundle: ``network`` from configs/inference.json, weights from ``ckpt_path``.

    The bundle's inference.json ids ``input_size``, ``input_channels`` (``rgb``/``gray``), ``input_intensity`` and
    ``resize_mode`` give the default normalization (the one it was trained with); ``normalization`` overrides it.
    """
    import warnings

    from monai.bundle import ConfigParser

    from medigan_zoo.catalog.trust import check_trusted
    from medigan_zoo.core.jsonio import load_json
    from medigan_zoo.runtime.imports import bundle_on_sys_path

    check_trusted(bundle_dir, trusted)
    bundle_dir = Path(bundle_dir).expanduser().resolve()
    meta = load_json(bundle_dir / "configs" / "metadata.json", "bundle metadata")
    zoo = meta.get("medigan_zoo") or {}
    if zoo.get("role") != "feature_extractor":
        raise ZooError(f"Bundle {bundle_dir} is not a feature extractor (its medigan_zoo role is "
                       f"{zoo.get('role', 'generator')!r}).")
    parser = ConfigParser()
    with bundle_on_sys_path(bundle_dir), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser.read_config(str(bundle_dir / "configs" / "inference.json"))
        parser.update({"bundle_root": str(bundle_dir), "device": f"$torch.device('{torch.device(device)}')"})
        network = parser.get_parsed_content("network_def")
        ckpt = Path(parser.get_parsed_content("ckpt_path"))
        base = Normalization(
            size=parser.get("input_size", 32), channels=parser.get("input_channels", "rgb"),
            intensity=parser.get("input_intensity", "[0,1]"), resize_mode=parser.get("resize_mode", "bilinear"))
    ckpt = ckpt if ckpt.is_absolute() else bundle_dir / ckpt
    network.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
    name = f"{bundle_dir.name}@{meta.get('version', '?')}"
    return FeatureExtractor(network, name, Normalization.from_any(normalization, base), device)


def load_torchvision_extractor(name: str, weights: Optional[Union[str, Path]], device: Union[str, torch.device],
                               normalization: Optional[Mapping[str, Any]] = None) -> FeatureExtractor:
    """``torchvision.models.NAME`` with a local state dict, classifier head replaced by the identity."""
    try:
        import torchvision
    except ImportError:
        raise ZooError(f"torchvision is not installed, so feature extractor 'torchvision:{name}' cannot be built; "
                       "install torchvision (pinned to your torch) or export the model to TorchScript.") from None
    if weights is None:
        raise ZooError(f"torchvision:{name} needs weights=PATH (a local state dict: nothing is downloaded).")
    builder = getattr(torchvision.models, name, None)
    if builder is None:
        raise ZooError(f"torchvision.models has no {name!r}.")
    kwargs = {"weights": None}
    if name == "inception_v3":
        kwargs.update(aux_logits=True, init_weights=False)
    model = builder(**kwargs)
    state = torch.load(Path(weights).expanduser(), map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not m.startswith(("fc.", "classifier.", "AuxLogits."))]:
        raise ZooError(f"Weights {weights} do not fit torchvision {name}: missing {missing[:5]}, "
                       f"unexpected {unexpected[:5]}.")
    for head in ("fc", "classifier", "head"):
        if hasattr(model, head):
            setattr(model, head, nn.Identity())
            break
    size = 299 if name == "inception_v3" else 224
    base = Normalization(size=size, channels="rgb", intensity="imagenet", resize_mode="bilinear")
    label = f"torchvision:{name}({Path(weights).name}, sha256 {_sha(Path(weights).expanduser())})"
    return FeatureExtractor(model, label, Normalization.from_any(normalization, base), device)


def load_feature_extractor(spec: Union[str, Path, FeatureExtractor, None] = None,
                           device: Union[str, torch.device] = "cpu",
                           normalization: Optional[Union[Normalization, Mapping[str, Any]]] = None,
                           weights: Optional[Union[str, Path]] = None,
                           bundle_dirs: Sequence[Path] = (), trusted: Any = None) -> FeatureExtractor:
    """Build the extractor named by ``spec`` (see the module docstring) with ``normalization`` overrides
    (``trusted``: extra trust for an extractor bundle's config code, medigan_zoo.catalog.trust)."""
    if isinstance(spec, FeatureExtractor):
        if normalization is not None:
            spec.normalization = Normalization.from_any(normalization, spec.normalization)
        return spec
    if isinstance(normalization, Normalization):
        normalization = asdict(normalization)
    spec = str(spec or DEFAULT_EXTRACTOR)
    if spec.startswith("torchvision:"):
        return load_torchvision_extractor(spec.split(":", 1)[1], weights, device, normalization)
    from medigan_zoo.core.paths import builtin_bundles_root

    bundle = _bundle_path(spec, list(bundle_dirs) + [builtin_bundles_root()])
    if bundle is not None:
        return load_bundle_extractor(bundle, device, normalization, trusted=trusted)
    path = Path(spec).expanduser()
    if path.is_file():
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as err:  # noqa: BLE001 - TorchScript loading has many error types
            raise ZooError(f"Feature extractor {path} is not a TorchScript file ({err}). Save one with "
                           "torch.jit.save(torch.jit.script(model), path).") from None
        label = f"torchscript:{path.name}(sha256 {_sha(path)})"
        return FeatureExtractor(module, label, Normalization.from_any(normalization), device)
    raise ZooError(f"Unknown feature extractor {spec!r}: pass a feature-extractor bundle id or folder "
                   f"(default {DEFAULT_EXTRACTOR}), a TorchScript file, or torchvision:NAME with weights=PATH.")


def describe_normalization(norm: Normalization) -> Tuple[str, ...]:
    """The normalization fields as strings (for tables)."""
    return tuple(f"{k}={v}" for k, v in asdict(norm).items())
