"""Lightweight FastGAN-style class-conditional GAN for 128x128 (or 64x64) single- or multi-channel images.

Generator (after Liu et al. 2021, "Towards Faster and Stabilized GAN Training for High-fidelity Few-shot Image
Synthesis"): the latent and a class embedding are projected to a 4x4 map, then five up-sampling blocks
(nearest x2, 3x3 convolution, class-conditional batch norm, GLU) reach 128x128; skip-layer excitation (SLE)
lets the 8x8 features gate the 64x64 ones and the 16x16 features gate the 128x128 ones (global shape steers
fine texture at little cost). Class conditioning enters twice: the embedding concatenated to the latent and
the per-class scale/shift of every conditional batch norm. No noise injection, so the output is a
deterministic function of (latent, label) and the generator is TorchScript-scriptable.

Discriminator: spectral-norm residual down-sampling blocks (FastGAN's ``DownBlockComp`` with spectral norm in
place of batch norm), global sum pooling and a class projection term (Miyato & Koyama 2018) for the hinge
loss, an optional minibatch standard-deviation channel (Karras et al. 2018) against mode collapse, plus an
optional small decoder that reconstructs a 32x32 version of a real input from the 8x8 features
(FastGAN's self-supervised auxiliary loss, here with L1), which regularises D on small data sets.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

#: Feature map sides of the generator's stages: a 4x4 start and five up-samplings.
GENERATOR_SIDES: Tuple[int, ...] = (4, 8, 16, 32, 64, 128)
#: Output sides the generator supports (64: the last up-sampling and its SLE are left out).
IMAGE_SIZES: Tuple[int, ...] = (64, 128)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without affine parameters followed by a per-class scale (1 + gamma_y) and shift beta_y."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.channels = int(channels)
        self.norm = nn.BatchNorm2d(self.channels, affine=False)
        self.embed = nn.Embedding(int(num_classes), 2 * self.channels)
        nn.init.zeros_(self.embed.weight)  # starts as plain batch norm

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.embed(labels).chunk(2, dim=1)
        return self.norm(x) * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]


class UpBlock(nn.Module):
    """x2 up-sampling (``upsample_mode`` "nearest" or "bilinear"; bilinear avoids blocky grid artefacts), then
    ``num_convs`` x (3x3 conv -> conditional BN -> activation) to ``out_channels``; the activation is GLU (FastGAN;
    the convolution makes twice the channels) or, cheaper at high resolution, LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, num_classes: int, num_convs: int = 1, glu: bool = True,
                 upsample_mode: str = "nearest"):
        super().__init__()
        if num_convs not in (1, 2):
            raise ValueError(f"UpBlock num_convs must be 1 or 2, got {num_convs}")
        if upsample_mode not in ("nearest", "bilinear"):
            raise ValueError(f"upsample_mode must be 'nearest' or 'bilinear', got {upsample_mode!r}")
        self.bilinear = upsample_mode == "bilinear"
        self.glu = bool(glu)
        width = 2 if self.glu else 1
        self.conv1 = nn.Conv2d(int(in_channels), width * int(out_channels), 3, padding=1, bias=False)
        self.norm1 = ConditionalBatchNorm2d(width * int(out_channels), num_classes)
        self.two = num_convs == 2
        c2 = int(out_channels) if self.two else 1  # a 1-channel placeholder keeps the module scriptable
        self.conv2 = nn.Conv2d(c2, width * c2, 3, padding=1, bias=False)
        self.norm2 = ConditionalBatchNorm2d(width * c2, num_classes)

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(x, dim=1) if self.glu else F.leaky_relu(x, 0.2)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.bilinear:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        else:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self._act(self.norm1(self.conv1(x), labels))
        if self.two:
            x = self._act(self.norm2(self.conv2(x), labels))
        return x


class SkipLayerExcitation(nn.Module):
    """SLE: channel gates for a high-resolution map computed from a low-resolution one (pool to 4x4, 4x4 conv,
    LeakyReLU, 1x1 conv, sigmoid)."""

    def __init__(self, low_channels: int, high_channels: int):
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(int(low_channels), int(high_channels), 4),
                                  nn.LeakyReLU(0.1), nn.Conv2d(int(high_channels), int(high_channels), 1),
                                  nn.Sigmoid())

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return high * self.gate(low)


class FastGANGenerator(nn.Module):
    """(latent (B, latent_size), labels (B,)) -> image (B, out_channels, S, S) in [-1, 1], S = ``image_size``.

    ``labels`` may be left out (None: class 0 for every sample), which is how an unconditional model
    (``num_classes=1``) is called.

    Args:
        latent_size: length of the standard-normal latent (a (B, latent_size, 1, 1) latent is flattened).
        num_classes: number of class labels (>= 1; 1 = unconditional).
        channels: feature channels at 4, 8, 16, 32, 64 and 128 px (six entries; five, up to 64 px, when
            ``image_size`` is 64).
        out_channels: image channels.
        embed_size: length of the class embedding concatenated to the latent.
        double_conv_up_to: stages up to this side (px) use two convolutions, larger ones one (CPU budget).
        glu_up_to: stages up to this side (px) use GLU, larger ones LeakyReLU (half the convolution cost).
        upsample_mode: "nearest" (FastGAN) or "bilinear" (smoother, no blocky grid artefacts).
        image_size: 128 (five up-samplings, SLE 8 -> 64 px and 16 -> 128 px) or 64 (four, SLE 8 -> 64 px).
    """

    def __init__(self, latent_size: int = 128, num_classes: int = 4,
                 channels: Sequence[int] = (256, 256, 128, 64, 32, 16), out_channels: int = 1,
                 embed_size: int = 32, double_conv_up_to: int = 32, glu_up_to: int = 128,
                 upsample_mode: str = "nearest", image_size: int = 128):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if int(image_size) not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {list(IMAGE_SIZES)}, got {image_size}")
        sides = [s for s in GENERATOR_SIDES if s <= int(image_size)]
        if len(channels) != len(sides):
            raise ValueError(f"channels needs {len(sides)} entries (for {sides} px), got {list(channels)}")
        c = [int(v) for v in channels]
        self.image_size = int(image_size)
        self.latent_size = int(latent_size)
        self.start_channels = c[0]
        self.embed = nn.Embedding(int(num_classes), int(embed_size))
        self.project = nn.Sequential(nn.Linear(self.latent_size + int(embed_size), 2 * c[0] * 16, bias=False),
                                     nn.BatchNorm1d(2 * c[0] * 16))

        def convs(side: int) -> int:
            return 2 if side <= int(double_conv_up_to) else 1

        def block(cin: int, cout: int, side: int) -> UpBlock:
            return UpBlock(cin, cout, num_classes, convs(side), glu=side <= int(glu_up_to), upsample_mode=upsample_mode)

        self.up8 = block(c[0], c[1], 8)
        self.up16 = block(c[1], c[2], 16)
        self.up32 = block(c[2], c[3], 32)
        self.up64 = block(c[3], c[4], 64)
        self.se64 = SkipLayerExcitation(c[1], c[4])
        # None at 64 px: TorchScript treats a None submodule as a constant and drops the 128 px branch
        self.up128 = block(c[4], c[5], 128) if self.image_size == 128 else None
        self.se128 = SkipLayerExcitation(c[2], c[5]) if self.image_size == 128 else None
        self.head = nn.Conv2d(c[-1], int(out_channels), 3, padding=1)

    def forward(self, latent: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        if labels is None:
            labels = torch.zeros(latent.shape[0], dtype=torch.long, device=latent.device)
        labels = labels.reshape(-1).long()
        z = torch.cat([latent.reshape(latent.shape[0], -1), self.embed(labels)], dim=1)
        x = F.glu(self.project(z), dim=1).reshape(z.shape[0], self.start_channels, 4, 4)
        f8 = self.up8(x, labels)
        f16 = self.up16(f8, labels)
        f32 = self.up32(f16, labels)
        out = self.se64(f8, self.up64(f32, labels))
        if self.up128 is not None and self.se128 is not None:
            out = self.se128(f16, self.up128(out, labels))
        return torch.tanh(self.head(out))


class DownBlock(nn.Module):
    """Spectral-norm residual down-sampling: (4x4 stride-2 conv, LReLU, 3x3 conv, LReLU) averaged with
    (2x2 average pool, 1x1 conv, LReLU)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        cin, cout = int(in_channels), int(out_channels)
        self.main = nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
                                  spectral_norm(nn.Conv2d(cout, cout, 3, padding=1)), nn.LeakyReLU(0.2))
        self.direct = nn.Sequential(nn.AvgPool2d(2), spectral_norm(nn.Conv2d(cin, cout, 1)), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.main(x) + self.direct(x))


class MinibatchStdDev(nn.Module):
    """Append one channel: the mean over features and pixels of the standard deviation across groups of
    ``group_size`` samples (Karras et al. 2018), so the discriminator can see a lack of diversity (mode
    collapse). A batch not divisible by the group size uses groups of 1 (the channel is then 0)."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = int(group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = min(self.group_size, b)
        if g < 2 or b % g != 0:
            return torch.cat([x, x.new_zeros(b, 1, h, w)], dim=1)
        y = x.reshape(g, b // g, c, h, w)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (b // g,)
        std = std.reshape(1, b // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(b, 1, h, w)
        return torch.cat([x, std], dim=1)


class FastGANDiscriminator(nn.Module):
    """(image (B, C, 128, 128), labels (B,)) -> score (B,); with ``return_recon`` also a 32x32 reconstruction.

    Args:
        in_channels: image channels.
        num_classes: number of class labels.
        channels: channels at 64, 32, 16, 8 and 4 px (five entries): a 4x4 stride-2 stem to 64 px, then
            down-sampling blocks.
        full_res_stem: start with a 3x3 convolution at the input resolution before the stride-2 stem (a bare
            stride-2 stem cannot see some pixel-level patterns, e.g. checkerboard artefacts).
        recon: build the auxiliary decoder (8x8 features -> 16x16 -> 32x32 image in [-1, 1], with the 32 and
            16 px channel counts).
        mbstd_group: group size of the minibatch standard-deviation channel appended to the 8x8 features
            (0 disables it).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 4, channels: Sequence[int] = (16, 32, 64, 128, 256),
                 recon: bool = True, mbstd_group: int = 0, full_res_stem: bool = False):
        super().__init__()
        if len(channels) != 5:
            raise ValueError(f"channels needs 5 entries (64, 32, 16, 8, 4 px), got {list(channels)}")
        c = [int(v) for v in channels]
        first = [spectral_norm(nn.Conv2d(int(in_channels), c[0], 3, padding=1)), nn.LeakyReLU(0.2)] \
            if full_res_stem else []
        cin = c[0] if full_res_stem else int(in_channels)
        self.stem = nn.Sequential(*first, spectral_norm(nn.Conv2d(cin, c[0], 4, stride=2, padding=1)),
                                  nn.LeakyReLU(0.2))
        self.down = nn.Sequential(DownBlock(c[0], c[1]), DownBlock(c[1], c[2]), DownBlock(c[2], c[3]))  # -> 8 px
        self.mbstd = MinibatchStdDev(int(mbstd_group)) if int(mbstd_group) > 0 else None
        self.down4 = DownBlock(c[3] + (1 if self.mbstd is not None else 0), c[4])
        self.linear = spectral_norm(nn.Linear(c[4], 1))
        self.embed = spectral_norm(nn.Embedding(int(num_classes), c[4]))
        self.decoder = None
        if recon:
            self.decoder = nn.Sequential(
                nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(c[3], c[1], 3, padding=1), nn.LeakyReLU(0.2),
                nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(c[1], c[0], 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(c[0], int(in_channels), 3, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor, labels: torch.Tensor, return_recon: bool = False):
        f8 = self.down(self.stem(x))
        h = self.down4(self.mbstd(f8) if self.mbstd is not None else f8).sum(dim=(2, 3))  # global sum pooling
        score = self.linear(h).reshape(-1) + (self.embed(labels.reshape(-1).long()) * h).sum(dim=1)
        if return_recon:
            if self.decoder is None:
                raise ValueError("FastGANDiscriminator was built with recon=False; build it with recon=True")
            return score, self.decoder(f8)
        return score
