"""Data hygiene: held-out real images that are near copies of training images (the one home of that rule).

Some public splits hold the same image twice (BreastMNIST's test split: 30 of its 156 images lie within the
threshold below of a training image). Such images are not held out: they make memorization and membership figures
look like copying and the real-vs-real baseline look too close. The evaluation drops them from the held-out split
before those figures (``near_copies``; the number dropped is recorded in the split's name).

Rule: a held-out image is a near copy when the root-mean-square pixel difference (pixels in [0, 1], same grid) to
its nearest training image is below ``NEAR_COPY_RMSE`` = 0.02, about 5 grey levels of 255. Measured nearest
distances of the held-out images (median): BreastMNIST 0.099, PneumoniaMNIST 0.076, RetinaMNIST 0.054; below 0.02:
30/156, 0/624, 0/400.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from medigan_zoo.evaluation.memorization import nearest_neighbour_l2

if TYPE_CHECKING:
    from medigan_zoo.evaluation.data import RealData

NEAR_COPY_RMSE = 0.02


def nearest_rmse(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """RMS pixel difference of each image to its nearest ``reference`` image."""
    pixels = images[0].numel() if len(images) else 1
    return nearest_neighbour_l2(images, reference) / pixels ** 0.5


def near_copies(held_out: torch.Tensor, train: torch.Tensor, threshold: float = NEAR_COPY_RMSE) -> torch.Tensor:
    """Boolean mask (len(held_out),): True where the image is a near copy of a training image (see module)."""
    if len(held_out) == 0 or len(train) == 0:
        return torch.zeros(len(held_out), dtype=torch.bool)
    return nearest_rmse(held_out, train) < threshold


def deduplicated(held_out: "RealData", train: "RealData", threshold: float = NEAR_COPY_RMSE) -> "RealData":
    """``held_out`` without its near copies of ``train`` images; the name records how many were dropped
    (e.g. ``breastmnist.npz:test-dedup(30 near copies of train dropped)``); unchanged when there are none."""
    from medigan_zoo.evaluation.data import RealData

    copies = near_copies(held_out.images, train.images, threshold)
    dropped = int(copies.sum())
    if not dropped:
        return held_out
    keep = torch.nonzero(~copies).flatten()
    kept = held_out.subset(keep)
    return RealData(kept.images, kept.labels, f"{held_out.name}-dedup({dropped} near copies of train dropped)")
