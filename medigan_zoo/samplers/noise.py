"""The one seeded-noise function: row ``b`` comes from a CPU ``torch.Generator`` seeded with ``seeds[b]``.

Every sampler of the zoo draws its per-sample randomness here, so sample ``i`` does not depend on the batch it is
made in (docs/generation.md, "Reproducibility").
"""
from __future__ import annotations

from typing import Sequence, Union

import torch

DISTRIBUTIONS = ("normal", "uniform")


def seeded_generators(seeds: Union[torch.Tensor, Sequence[int]]) -> list:
    """One CPU ``torch.Generator`` per seed."""
    values = seeds.reshape(-1).tolist() if isinstance(seeds, torch.Tensor) else list(seeds)
    return [torch.Generator().manual_seed(int(s)) for s in values]


def seeded_noise(seeds: Union[torch.Tensor, Sequence[int]], shape: Sequence[int],
                 distribution: str = "normal") -> torch.Tensor:
    """(B, *shape) float32 noise; row b is ``torch.randn`` (or ``torch.rand``) from generator ``seeds[b]``."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"latent distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    draw = torch.randn if distribution == "normal" else torch.rand
    shape = tuple(int(s) for s in shape)
    rows = [draw(shape, generator=g) for g in seeded_generators(seeds)]
    return torch.stack(rows) if rows else torch.empty((0, *shape))
