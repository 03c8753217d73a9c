"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for GAN discriminators on small data sets.

The same :class:`DiffAugment` op is applied to real and fake images before the discriminator (each image gets
its own random parameters), so D never sees un-augmented images and G is not pushed to reproduce the
augmentations. All ops keep the shape and are differentiable w.r.t. the images. Images are in [-1, 1]:

* brightness: add U(-b, b) per image;
* saturation: scale each pixel's deviation from its channel mean by U(1 - s, 1 + s) per image (colour images;
  a no-op on one channel);
* contrast: scale the deviation from the image mean by U(1 - c, 1 + c);
* translation: integer shift up to ``translation`` x size, zero (= -1 after the background shift) padding;
* cutout: a square of side ``cutout`` x size at a random position set to the background (-1).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from medigan_zoo.training.gan import translate


def _uniform(b: int, low: float, high: float, like: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    u = torch.rand(b, 1, 1, 1, generator=generator).to(like.device, like.dtype)
    return low + (high - low) * u


def brightness(x: torch.Tensor, strength: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Add a per-image offset U(-strength, strength)."""
    return x + _uniform(x.shape[0], -strength, strength, x, generator) if strength > 0 else x


def saturation(x: torch.Tensor, strength: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Scale each pixel's deviation from its mean over channels by U(1 - strength, 1 + strength) per image."""
    if strength <= 0:
        return x
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _uniform(x.shape[0], 1.0 - strength, 1.0 + strength, x, generator) + mean


def contrast(x: torch.Tensor, strength: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Scale each image's deviation from its mean by U(1 - strength, 1 + strength)."""
    if strength <= 0:
        return x
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x.shape[0], 1.0 - strength, 1.0 + strength, x, generator) + mean


def translate_background(x: torch.Tensor, ratio: float, background: float = -1.0) -> torch.Tensor:
    """:func:`medigan_zoo.training.gan.translate` with ``background`` (not 0) shifted in from the border."""
    return translate(x - background, ratio) + background if ratio > 0 else x


def cutout(x: torch.Tensor, ratio: float, background: float = -1.0,
           generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Set a random square of side ``ratio`` x size of every image to ``background``."""
    if ratio <= 0:
        return x
    b, _, h, w = x.shape
    sh, sw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    y0 = torch.randint(0, h - sh + 1, (b, 1, 1), generator=generator).to(x.device)
    x0 = torch.randint(0, w - sw + 1, (b, 1, 1), generator=generator).to(x.device)
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (gy >= y0) & (gy < y0 + sh) & (gx >= x0) & (gx < x0 + sw)
    keep = (~inside).unsqueeze(1).to(x.dtype)
    return x * keep + background * (1.0 - keep)


class DiffAugment:
    """brightness -> saturation -> contrast -> translation -> cutout, each with its own strength (0 disables it).

    ``generator`` (optional) draws every random parameter from that ``torch.Generator`` instead of the global RNG
    (translation always uses the global RNG).
    """

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, translation: float = 0.0,
                 cutout: float = 0.0, background: float = -1.0, saturation: float = 0.0):
        for name, value in (("brightness", brightness), ("contrast", contrast), ("translation", translation),
                            ("cutout", cutout), ("saturation", saturation)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"DiffAugment {name} must be in [0, 1], got {value}")
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.translation = float(translation)
        self.cutout = float(cutout)
        self.saturation = float(saturation)
        self.background = float(background)

    def __call__(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        x = brightness(x, self.brightness, generator)
        x = saturation(x, self.saturation, generator)
        x = contrast(x, self.contrast, generator)
        x = translate_background(x, self.translation, self.background)
        return cutout(x, self.cutout, self.background, generator)

    def __repr__(self) -> str:
        return (f"DiffAugment(brightness={self.brightness}, saturation={self.saturation}, contrast={self.contrast}, "
                f"translation={self.translation}, cutout={self.cutout})")


def downsample_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Area down-sampling of (B, C, H, W) to (B, C, size, size) (the reconstruction target of the discriminator)."""
    return F.adaptive_avg_pool2d(x, size) if x.shape[-1] != size else x
