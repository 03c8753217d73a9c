"""Spectral-norm projection discriminator (Miyato & Koyama 2018) for class-conditional 2D GANs."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn.utils import spectral_norm


class ProjectionDiscriminator(nn.Module):
    """image (B, C, H, W) + class label (B,) -> realness score (B,).

    Strided 4x4 convolutions with spectral norm and LeakyReLU, global sum pooling, a linear score plus the
    projection ``<embed(y), features>`` that makes the score class-aware.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (64, 128, 256), num_classes: int = 2):
        super().__init__()
        layers = []
        cin = int(in_channels)
        for cout in channels:
            layers += [spectral_norm(nn.Conv2d(cin, int(cout), 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            cin = int(cout)
        layers += [spectral_norm(nn.Conv2d(cin, cin, 3, padding=1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.linear = spectral_norm(nn.Linear(cin, 1))
        self.embed = spectral_norm(nn.Embedding(int(num_classes), cin)) if num_classes > 0 else None

    def forward(self, x: torch.Tensor, class_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.features(x).flatten(2).sum(dim=2)
        out = self.linear(h).reshape(-1)
        if self.embed is not None:
            if class_labels is None:
                raise ValueError("this discriminator is class-conditional: pass class_labels")
            out = out + (self.embed(class_labels.reshape(-1).long()) * h).sum(dim=1)
        return out
