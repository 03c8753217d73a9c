"""Generator and critic for WGAN-GP bundles (2D), optionally class-conditional.

The generator upsamples with nearest-neighbour + 3x3 convolutions (no transposed convolutions, so no
checkerboard artefacts) and ends in ``tanh`` ([-1, 1]). The critic has no batch norm (the gradient penalty is
per-sample), uses layer-free LeakyReLU convolutions and, when conditional, a projection term
(Miyato & Koyama 2018).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn


def _up_block(cin: int, cout: int, dims: int, convs: int = 2) -> nn.Sequential:
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
    layers: list = [nn.Upsample(scale_factor=2, mode="nearest")]
    for i in range(convs):
        layers += [conv(cin if i == 0 else cout, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class UpsampleGenerator(nn.Module):
    """latent (B, latent_size) [+ class label (B,)] -> image (B, out_channels, *spatial) in [-1, 1].

    Args:
        latent_size: length of the latent vector.
        start_size: side length of the first feature map (output side = start_size * 2 ** len(channels)).
        channels: feature channels at the start and after each upsampling, e.g. (256, 128, 64).
        out_channels: image channels.
        num_classes: number of class labels (0: unconditional); labels are embedded and concatenated to the latent.
        spatial_dims: 2 or 3.
        embed_size: length of the class embedding.
        convs_per_block: 3x3 convolutions after each upsampling.
    """

    def __init__(self, latent_size: int = 128, start_size: int = 7, channels: Sequence[int] = (256, 128, 64),
                 out_channels: int = 1, num_classes: int = 0, spatial_dims: int = 2, embed_size: int = 16,
                 convs_per_block: int = 2):
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        self.latent_size = int(latent_size)
        self.num_classes = int(num_classes)
        self.spatial_dims = int(spatial_dims)
        self.start_shape = (int(channels[0]),) + (int(start_size),) * self.spatial_dims
        cond = int(embed_size) if self.num_classes > 0 else 0
        self.embed = nn.Embedding(self.num_classes, cond) if self.num_classes > 0 else None
        numel = 1
        for s in self.start_shape:
            numel *= s
        self.project = nn.Sequential(nn.Linear(self.latent_size + cond, numel, bias=False),
                                     nn.BatchNorm1d(numel), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[_up_block(channels[i], channels[i + 1], self.spatial_dims, convs_per_block)
                                      for i in range(len(channels) - 1)])
        conv = nn.Conv2d if self.spatial_dims == 2 else nn.Conv3d
        self.head = nn.Sequential(conv(int(channels[-1]), int(out_channels), 3, padding=1), nn.Tanh())

    def forward(self, latent: torch.Tensor, class_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        z = latent.reshape(latent.shape[0], -1)
        if self.embed is not None:
            if class_labels is None:
                raise ValueError("this generator is class-conditional: pass class_labels")
            z = torch.cat([z, self.embed(class_labels.reshape(-1).long())], dim=1)
        x = self.project(z).reshape((z.shape[0],) + self.start_shape)
        return self.head(self.blocks(x))


class Critic(nn.Module):
    """image (B, C, *spatial) [+ class label (B,)] -> score (B,). No batch norm (WGAN-GP).

    Args:
        in_channels: image channels.
        channels: channels of the strided 4x4 convolutions, each halving the size, e.g. (64, 128, 256).
        num_classes: number of class labels (0: unconditional); adds a projection term <embed(y), features>.
        spatial_dims: 2 or 3.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (64, 128, 256), num_classes: int = 0,
                 spatial_dims: int = 2):
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        layers = []
        cin = int(in_channels)
        for cout in channels:
            layers += [conv(cin, int(cout), 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            cin = int(cout)
        layers += [conv(cin, cin, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        self.linear = nn.Linear(cin, 1)
        self.embed = nn.Embedding(int(num_classes), cin) if num_classes > 0 else None

    def forward(self, x: torch.Tensor, class_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.features(x).flatten(2).sum(dim=2)  # global sum pooling
        out = self.linear(h).reshape(-1)
        if self.embed is not None:
            if class_labels is None:
                raise ValueError("this critic is class-conditional: pass class_labels")
            out = out + (self.embed(class_labels.reshape(-1).long()) * h).sum(dim=1)
        return out
