"""Small class-conditional DCGAN for 2D images of 28-64 px (generator + projection discriminator).

The generator embeds the class label and concatenates it to the latent, projects to a small feature map and
upsamples it with nearest-neighbour (or bilinear) upsampling + 3x3 convolutions (MONAI ``Convolution`` blocks: conv,
batch norm, ReLU), which avoids the checkerboard artefacts of transposed convolutions; it ends in ``tanh``
([-1, 1]). The discriminator is a stack of spectrally normalised strided convolutions with a projection term
<embed(y), features> (Miyato & Koyama 2018), trained with the hinge loss (``medigan_zoo.training.gan``).

Both take the condition as a tensor input, so the generator is TorchScript-scriptable:
``torch.jit.script(generator)(latent, labels)``.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from monai.networks.blocks import Convolution
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class CondDCGANGenerator(nn.Module):
    """(latent (B, latent_size), labels (B,)) -> image (B, out_channels, H, W) in [-1, 1].

    Args:
        latent_size: length of the latent vector (a (B, latent_size, 1, 1) latent is flattened).
        num_classes: number of class labels (>= 1).
        start_size: side of the first feature map; output side = start_size * 2 ** (len(channels) - 1).
        channels: feature channels at the start and after each upsampling, e.g. (128, 64, 32) for 7 -> 28 px.
        out_channels: image channels (1 gray, 3 RGB).
        embed_size: length of the class embedding concatenated to the latent.
        upsample_mode: "nearest" or "bilinear" (smoother; better for 64 px).
        convs_per_block: 3x3 convolution blocks after each upsampling.
    """

    def __init__(self, latent_size: int = 64, num_classes: int = 2, start_size: int = 7,
                 channels: Sequence[int] = (128, 64, 32), out_channels: int = 1, embed_size: int = 16,
                 upsample_mode: str = "nearest", convs_per_block: int = 1):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if len(channels) < 2:
            raise ValueError(f"channels needs at least 2 entries (one upsampling), got {list(channels)}")
        self.latent_size = int(latent_size)
        self.num_classes = int(num_classes)
        self.start_channels = int(channels[0])
        self.start_size = int(start_size)
        self.embed = nn.Embedding(self.num_classes, int(embed_size))
        numel = self.start_channels * self.start_size * self.start_size
        self.project = nn.Sequential(nn.Linear(self.latent_size + int(embed_size), numel, bias=False),
                                     nn.BatchNorm1d(numel), nn.ReLU())
        if upsample_mode not in ("nearest", "bilinear"):
            raise ValueError(f"upsample_mode must be 'nearest' or 'bilinear', got {upsample_mode!r}")
        blocks: List[nn.Module] = []
        for cin, cout in zip(channels[:-1], channels[1:]):
            blocks.append(nn.Upsample(scale_factor=2.0, mode=upsample_mode))
            for k in range(max(1, int(convs_per_block))):
                blocks.append(Convolution(2, int(cin) if k == 0 else int(cout), int(cout), kernel_size=3, act="RELU",
                                          norm="BATCH", bias=False))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(Convolution(2, int(channels[-1]), int(out_channels), kernel_size=3, conv_only=True),
                                  nn.Tanh())

    def forward(self, latent: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = latent.reshape(latent.shape[0], -1)
        z = torch.cat([z, self.embed(labels.reshape(-1).long())], dim=1)
        x = self.project(z).reshape(z.shape[0], self.start_channels, self.start_size, self.start_size)
        return self.head(self.blocks(x))


class ProjectionDiscriminator(nn.Module):
    """(image (B, C, H, W), labels (B,)) -> score (B,): spectral-norm conv net with a class projection term.

    Args:
        in_channels: image channels.
        num_classes: number of class labels.
        channels: channels of the strided 4x4 convolutions, each halving the size, e.g. (64, 128, 256).
        use_spectral_norm: wrap every convolution, the linear head and the embedding in spectral norm.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, channels: Sequence[int] = (64, 128, 256),
                 use_spectral_norm: bool = True):
        super().__init__()
        sn = spectral_norm if use_spectral_norm else (lambda m: m)
        layers = [sn(nn.Conv2d(int(in_channels), int(channels[0]), 3, padding=1)), nn.LeakyReLU(0.2)]
        cin = int(channels[0])
        for cout in channels:
            layers += [sn(nn.Conv2d(cin, int(cout), 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            cin = int(cout)
        self.features = nn.Sequential(*layers)
        self.linear = sn(nn.Linear(cin, 1))
        self.embed = sn(nn.Embedding(int(num_classes), cin))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(x).sum(dim=(2, 3))  # global sum pooling
        return self.linear(h).reshape(-1) + (self.embed(labels.reshape(-1).long()) * h).sum(dim=1)
