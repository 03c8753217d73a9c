"""Fréchet distance on features (FID), and medigan's FID ratio.

``fid_from_features`` uses MONAI's ``FIDMetric`` (which needs scipy for the matrix square root) and, without scipy
or when MONAI's square root fails on a near-singular product, the equivalent symmetric form
``tr(sqrt(sqrt(S1) S2 sqrt(S1)))`` computed with eigendecompositions in float64 (always real).
"""
from __future__ import annotations

from typing import Tuple

import torch

from medigan_zoo.core.errors import ZooError


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ZooError(f"FID needs two (N, F) feature matrices of equal F, got {tuple(a.shape)} and {tuple(b.shape)}.")
    if min(a.shape[0], b.shape[0]) < 2:
        raise ZooError("FID needs at least 2 samples on each side.")


def _stats(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    x = x.double()
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / (x.shape[0] - 1)


def _psd_sqrt(m: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh((m + m.T) / 2)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance_eigh(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID of two feature sets via symmetric eigendecompositions (no scipy)."""
    _check(a, b)
    mu1, s1 = _stats(a)
    mu2, s2 = _stats(b)
    r1 = _psd_sqrt(s1)
    inner = torch.linalg.eigvalsh(((r1 @ s2 @ r1) + (r1 @ s2 @ r1).T) / 2).clamp_min(0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * inner
    return float(value.clamp_min(0))


def fid_from_features(synthetic: torch.Tensor, real: torch.Tensor) -> float:
    """FID between two (N, F) feature matrices (MONAI's FIDMetric; eigh fallback, see module docstring)."""
    _check(synthetic, real)
    try:
        import warnings

        import scipy.linalg  # noqa: F401 - MONAI's _sqrtm needs it
        from monai.metrics import FIDMetric

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(FIDMetric()(synthetic.double(), real.double()))
        if value == value and value > -1e-6:  # not NaN, not meaningfully negative
            return max(value, 0.0)
    except (ImportError, ValueError, RuntimeError):
        pass
    return frechet_distance_eigh(synthetic, real)


def split_halves(n: int, seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint halves (index tensors, sizes floor(n/2) each) of a seeded permutation of range(n)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    half = n // 2
    return perm[:half], perm[half:2 * half]


def fid_ratio(real: torch.Tensor, synthetic: torch.Tensor, seed: int = 0) -> Tuple[float, float, float]:
    """medigan's FID ratio: FID(real_a, real_b) / FID(real_a, synthetic), 1.0 = as close as real data is to itself.

    ``real_a`` and ``real_b`` are disjoint halves of the real features (seeded split). ``real_b`` and the synthetic
    side are cut to the same size m = min(len(real) // 2, len(synthetic)): FID is biased by the sample size, so the
    numerator and the denominator compare sets of equal sizes. Returns (ratio, FID(real_a, real_b),
    FID(real_a, synthetic)).
    """
    a, b = split_halves(real.shape[0], seed)
    m = min(len(b), synthetic.shape[0])
    if m < 2:
        raise ZooError("The FID ratio needs at least 4 real and 2 synthetic samples.")
    pick = torch.randperm(synthetic.shape[0], generator=torch.Generator().manual_seed(int(seed) + 1))[:m]
    real_real = fid_from_features(real[b[:m]], real[a])
    real_synth = fid_from_features(synthetic[pick], real[a])
    ratio = real_real / real_synth if real_synth > 0 else float("inf")
    return ratio, real_real, real_synth
