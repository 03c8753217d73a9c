"""Kernel Inception Distance (KID, Binkowski et al., 2018) on any features: the unbiased estimator of the squared
MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets.

Unlike FID, the estimator has no bias from the sample size, so KID figures measured with a few hundred samples
compare with those measured with thousands (their spread is larger: see the bootstrap interval). It can be
slightly negative when the two sets are equally distributed.
"""
from __future__ import annotations

import torch

from medigan_zoo.core.errors import ZooError


def polynomial_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(x.y / d + 1)^3 for every row pair of ``a`` (n, d) and ``b`` (m, d)."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased squared MMD of two feature sets (diagonal terms of the within-set kernels left out)."""
    n, m = x.shape[0], y.shape[0]
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid_from_features(synthetic: torch.Tensor, real: torch.Tensor, subset_size: int = 1000, num_subsets: int = 10,
                      seed: int = 0) -> float:
    """KID of two (N, F) feature matrices: the mean unbiased MMD^2 over ``num_subsets`` seeded random subsets of
    ``min(subset_size, len(synthetic), len(real))`` rows per side."""
    if synthetic.ndim != 2 or real.ndim != 2 or synthetic.shape[1] != real.shape[1]:
        raise ZooError(f"KID needs two (N, F) feature matrices of equal F, got {tuple(synthetic.shape)} and "
                       f"{tuple(real.shape)}.")
    m = min(int(subset_size), synthetic.shape[0], real.shape[0])
    if m < 2:
        raise ZooError("KID needs at least 2 samples on each side.")
    x, y = synthetic.double(), real.double()
    gen = torch.Generator().manual_seed(int(seed))
    values = [mmd2_unbiased(x[torch.randperm(len(x), generator=gen)[:m]], y[torch.randperm(len(y), generator=gen)[:m]])
              for _ in range(int(num_subsets))]
    return float(sum(values) / len(values))
