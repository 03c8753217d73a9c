"""3D generator and critic for volumetric GAN bundles (e.g. 28^3 shape masks), optionally class-conditional.

Thin 3D presets of :mod:`medigan_zoo.networks.wgan`: the generator upsamples 7^3 -> 14^3 -> 28^3 with
nearest-neighbour + 3x3x3 convolutions (no transposed convolutions, so no checkerboard artefacts) and few
channels at full resolution (3D convolutions at 28^3 dominate the cost on a CPU); the critic has no batch
norm (WGAN-GP) and a projection term for the class label.
"""
from __future__ import annotations

from typing import Sequence

from medigan_zoo.networks.wgan import Critic, UpsampleGenerator


class Generator3D(UpsampleGenerator):
    """latent (B, latent_size) [+ labels (B,)] -> volume (B, out_channels, D, H, W) in [-1, 1] (tanh)."""

    def __init__(self, latent_size: int = 128, start_size: int = 7, channels: Sequence[int] = (64, 32, 8),
                 out_channels: int = 1, num_classes: int = 0, embed_size: int = 16, convs_per_block: int = 1):
        super().__init__(latent_size=latent_size, start_size=start_size, channels=channels,
                         out_channels=out_channels, num_classes=num_classes, spatial_dims=3, embed_size=embed_size,
                         convs_per_block=convs_per_block)


class Critic3D(Critic):
    """volume (B, C, D, H, W) [+ labels (B,)] -> score (B,); strided 4^3 convolutions, no batch norm."""

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (16, 32, 64), num_classes: int = 0):
        super().__init__(in_channels=in_channels, channels=channels, num_classes=num_classes, spatial_dims=3)
