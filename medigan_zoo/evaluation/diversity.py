"""Diversity: how alike are samples of a model compared with real images of the same condition?

The mean MS-SSIM (MONAI ``MultiScaleSSIMMetric``) of random pairs of synthetic samples is compared with that of
random pairs of real images, per condition value where labels are known. Diversity is ``1 - MS-SSIM``; the
diversity ratio is ``(1 - MS-SSIM_synthetic) / (1 - MS-SSIM_real)``: 1 = as varied as real images, below 1 =
samples more alike than real images are (template-like, mode collapse), above 1 = more varied (noise).

MS-SSIM on small images: MONAI's default (11 px Gaussian kernel, 5 scales) needs sides of at least 161 px. The zoo
uses 3 scales (MS-SSIM's first three weights 0.0448, 0.2856, 0.3001, renormalised to sum to 1) and a Gaussian kernel
(sigma 1.5) of the largest odd size <= 7 that MONAI accepts at the coarsest scale (side // 4 > size - 1):
7 px for 28 x 28 and larger, 3 px for 16 x 16 (``ms_ssim_settings``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import torch

#: MS-SSIM scale weights (the first three of Wang et al. 2003, renormalised)
WEIGHTS: Tuple[float, ...] = tuple(w / (0.0448 + 0.2856 + 0.3001) for w in (0.0448, 0.2856, 0.3001))
SIGMA = 1.5
DEFAULT_PAIRS = 500


def ms_ssim_settings(spatial_shape: Sequence[int]) -> Dict[str, Any]:
    """Kernel size, sigma and weights that MONAI's MS-SSIM accepts for images of ``spatial_shape``."""
    side = min(int(s) for s in spatial_shape)
    coarse = side // 2 ** (len(WEIGHTS) - 1)
    kernel = next((k for k in (7, 5, 3) if coarse > k - 1), None)
    if kernel is None:
        raise ValueError(f"MS-SSIM with {len(WEIGHTS)} scales needs sides of at least 12 px, got "
                         f"{tuple(spatial_shape)}")
    return {"kernel_size": kernel, "kernel_sigma": SIGMA, "weights": WEIGHTS}


def describe_settings(spatial_shape: Sequence[int]) -> str:
    s = ms_ssim_settings(spatial_shape)
    return (f"MS-SSIM (MONAI), {len(s['weights'])} scales, Gaussian kernel {s['kernel_size']} px sigma {SIGMA}, "
            "pixels in [0,1]")


def mean_pairwise_ms_ssim(images: torch.Tensor, num_pairs: int = DEFAULT_PAIRS, seed: int = 0) -> float:
    """Mean MS-SSIM of ``num_pairs`` seeded random pairs of distinct images (N, C, *spatial) in [0, 1]
    (NaN with fewer than 2 images)."""
    from monai.metrics import MultiScaleSSIMMetric

    n = images.shape[0]
    if n < 2:
        return float("nan")
    gen = torch.Generator().manual_seed(int(seed))
    first = torch.randint(n, (num_pairs,), generator=gen)
    second = (first + torch.randint(1, n, (num_pairs,), generator=gen)) % n  # never the same image
    metric = MultiScaleSSIMMetric(spatial_dims=images.ndim - 2, data_range=1.0, **ms_ssim_settings(images.shape[2:]))
    values = metric(images[first].float(), images[second].float())
    assert isinstance(values, torch.Tensor)  # one tensor (not a list) for a tensor pair
    return float(values.flatten().nanmean())


def diversity(synthetic: torch.Tensor, real: torch.Tensor, synthetic_labels: Optional[torch.Tensor] = None,
              real_labels: Optional[torch.Tensor] = None, num_pairs: int = DEFAULT_PAIRS, seed: int = 0
              ) -> Dict[str, Any]:
    """Mean pairwise MS-SSIM of synthetic and of real images and the diversity ratio, per condition value when both
    label sets are given (values present on both sides), else over all images. The summary figures are means over
    the condition values. Returns ``ms_ssim_synthetic``, ``ms_ssim_real``, ``ratio`` and ``per_condition``
    (value -> those three)."""
    if synthetic_labels is not None and real_labels is not None:
        values = sorted(set(synthetic_labels.tolist()) & set(real_labels.tolist()))
        groups = {str(v): (synthetic[synthetic_labels == v], real[real_labels == v]) for v in values}
    else:
        groups = {"all": (synthetic, real)}
    per: Dict[str, Dict[str, float]] = {}
    for i, (name, (syn, rea)) in enumerate(groups.items()):
        if len(syn) < 2 or len(rea) < 2:
            continue
        s = mean_pairwise_ms_ssim(syn, num_pairs, seed + 2 * i)
        r = mean_pairwise_ms_ssim(rea, num_pairs, seed + 2 * i + 1)
        per[name] = {"ms_ssim_synthetic": s, "ms_ssim_real": r,
                     "ratio": (1.0 - s) / (1.0 - r) if r < 1.0 else float("nan")}
    if not per:
        return {"ms_ssim_synthetic": float("nan"), "ms_ssim_real": float("nan"), "ratio": float("nan"),
                "per_condition": {}}

    def mean(key: str) -> float:
        return sum(v[key] for v in per.values()) / len(per)

    return {"ms_ssim_synthetic": mean("ms_ssim_synthetic"), "ms_ssim_real": mean("ms_ssim_real"),
            "ratio": mean("ratio"), "per_condition": per}
