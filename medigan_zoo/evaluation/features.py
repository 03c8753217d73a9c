"""Feature extractors for FID / precision-recall, and the normalization applied before them.

:class:`FeatureExtractor` wraps a network: images (N, C, *spatial) in [0, 1] -> :class:`Normalization` -> ``features``
(or ``forward``) -> (N, F); outputs (B, F, h, w) are global-average-pooled, volumes are cut into slices. Which
networks a spec string (``--feature_extractor``) can name is the registry of kinds in ``extractor_kinds.py``
(a feature-extractor bundle, ``torchvision:NAME``, a TorchScript file); ``load_feature_extractor``,
``load_bundle_extractor``, ``load_torchvision_extractor`` and ``DEFAULT_EXTRACTOR`` are importable from here too
(shipped bundle configs name ``medigan_zoo.evaluation.features.load_bundle_extractor``).

Which normalization was used changes FID a lot (Osuala et al., medigan, 2023), so every metric records
``Normalization.describe()`` next to the extractor name.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
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
            raise ZooError(f"Feature extraction takes (N, C, H, W) or (N, C, D, H, W) images, got "
                           f"{tuple(images.shape)}.")
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


def describe_normalization(norm: Normalization) -> Tuple[str, ...]:
    """The normalization fields as strings (for tables)."""
    return tuple(f"{k}={v}" for k, v in asdict(norm).items())


#: names that live in extractor_kinds.py and stay importable from this module (lazily: that module imports this one)
_KIND_NAMES = ("load_feature_extractor", "load_bundle_extractor", "load_torchvision_extractor", "DEFAULT_EXTRACTOR")


def __getattr__(name: str) -> Any:
    if name in _KIND_NAMES:
        from medigan_zoo.evaluation import extractor_kinds

        return getattr(extractor_kinds, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
