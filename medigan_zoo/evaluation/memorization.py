"""Memorization check: how close are generated samples to the training images?

Compare the mean nearest-neighbour L2 distance of samples to the training set with the same figure for
held-out real test images: samples much closer to the training set than real unseen images are a sign of
copying.
"""
from __future__ import annotations

from typing import Dict

import torch


def nearest_neighbour_l2(samples: torch.Tensor, reference: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """For each sample, the L2 distance to its nearest reference image (both (N, ...) on the same pixel grid).

    Batched with ``torch.cdist`` in chunks of ``chunk`` samples: no per-image Python loop.
    """
    if samples.shape[1:] != reference.shape[1:]:
        raise ValueError(f"samples {tuple(samples.shape[1:])} and reference {tuple(reference.shape[1:])} must have "
                         "the same shape per image")
    ref = reference.reshape(reference.shape[0], -1).double()
    flat = samples.reshape(samples.shape[0], -1).double()
    out = [torch.cdist(flat[i:i + chunk], ref).min(dim=1).values for i in range(0, flat.shape[0], chunk)]
    return torch.cat(out).float()


def memorization_report(samples: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> Dict[str, float]:
    """Mean NN distance to the training set of the samples and of held-out real test images, and their ratio; the
    tails too: the smallest distances, and the share of samples closer to the training set than the closest 1 % of
    held-out images (about 0.01 when samples sit as near the training images as new real images do; near copies
    push it up)."""
    d_synthetic = nearest_neighbour_l2(samples, train).double()
    d_real = nearest_neighbour_l2(test, train).double()
    synthetic, real = float(d_synthetic.mean()), float(d_real.mean())
    real_p1 = float(torch.quantile(d_real, 0.01))
    return {"nn_l2_synthetic_to_train": synthetic, "nn_l2_test_to_train": real,
            "nn_l2_ratio": synthetic / real if real > 0 else float("nan"),
            "nn_l2_synthetic_min": float(d_synthetic.min()), "nn_l2_test_min": float(d_real.min()),
            "nn_l2_synthetic_p5": float(torch.quantile(d_synthetic, 0.05)),
            "nn_l2_test_p5": float(torch.quantile(d_real, 0.05)),
            "share_below_test_p1": float((d_synthetic < real_p1).double().mean())}
