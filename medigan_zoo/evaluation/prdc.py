"""Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020) on features.

All four use k-nearest-neighbour balls: the ball of a real sample has the radius of its k-th nearest real
neighbour (itself excluded), and likewise for synthetic samples. Distances are computed block-wise with
``torch.cdist`` (no per-sample Python loop); blocks bound the memory to ``block x N`` distances.
"""
from __future__ import annotations

from typing import Dict

import torch

from medigan_zoo.core.errors import ZooError


def _kth_radii(x: torch.Tensor, k: int, block: int) -> torch.Tensor:
    """Distance of every row of ``x`` to its k-th nearest other row."""
    out = []
    for start in range(0, x.shape[0], block):
        d = torch.cdist(x[start:start + block], x)
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])  # column 0 is the point itself
    return torch.cat(out)


def precision_recall_density_coverage(real: torch.Tensor, synthetic: torch.Tensor, k: int = 5,
                                      block: int = 2048) -> Dict[str, float]:
    """The four manifold metrics of ``synthetic`` against ``real`` (both (N, F) features; higher is better).

    precision: share of synthetic samples inside some real k-NN ball; recall: share of real samples inside some
    synthetic k-NN ball; density: mean number of real balls holding a synthetic sample, divided by k (can exceed
    1); coverage: share of real balls holding at least one synthetic sample.
    """
    if real.ndim != 2 or synthetic.ndim != 2 or real.shape[1] != synthetic.shape[1]:
        raise ZooError(f"PRDC needs (N, F) features of equal F, got {tuple(real.shape)} and {tuple(synthetic.shape)}.")
    if min(real.shape[0], synthetic.shape[0]) <= k:
        raise ZooError(f"PRDC with k={k} needs more than {k} samples on each side.")
    real = real.double()
    synthetic = synthetic.double()
    r_real = _kth_radii(real, k, block)  # (R,)
    r_syn = _kth_radii(synthetic, k, block)  # (S,)
    inside_any = torch.zeros(synthetic.shape[0], dtype=torch.bool)  # synthetic j in some real ball
    count = torch.zeros(synthetic.shape[0], dtype=torch.float64)  # number of real balls holding j
    recall_hits = []
    nearest_syn = []
    for start in range(0, real.shape[0], block):
        d = torch.cdist(real[start:start + block], synthetic)  # (b, S)
        in_real_ball = d < r_real[start:start + block, None]
        inside_any |= in_real_ball.any(0)
        count += in_real_ball.sum(0)
        recall_hits.append((d < r_syn[None, :]).any(1))
        nearest_syn.append(d.min(1).values)
    coverage = (torch.cat(nearest_syn) < r_real).double().mean()
    return {
        "precision": float(inside_any.double().mean()),
        "recall": float(torch.cat(recall_hits).double().mean()),
        "density": float(count.mean() / k),
        "coverage": float(coverage),
    }
