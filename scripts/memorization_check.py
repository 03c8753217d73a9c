#!/usr/bin/env python
"""Memorization check of a 2D/3D bundle: mean nearest-neighbour L2 distance to the training images of
256 samples, next to the same figure for 256 held-out real test images (pixels in [0, 1], same grid).

    python scripts/memorization_check.py bundles/chest_xray_cdcgan --data ../shared/data/pneumoniamnist.npz
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medigan_zoo.engine.visualize import condition_rows  # noqa: E402
from medigan_zoo.evaluation.memorization import memorization_report  # noqa: E402
from medigan_zoo.runtime.bundle import load_bundle_sampler  # noqa: E402
from medigan_zoo.runtime.sample import condition_plan, sample_all  # noqa: E402


def to_unit(images: np.ndarray, channels: int) -> torch.Tensor:
    """npz images (N, H, W[, C]) or (N, D, H, W) uint8 -> (N, C, ...) float in [0, 1]."""
    x = torch.as_tensor(images).float() / 255.0
    if channels == 3 and x.shape[-1] == 3:
        return x.permute(0, 3, 1, 2)
    return x.unsqueeze(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sampler = load_bundle_sampler(args.bundle, device="cpu")
    rows = condition_rows(sampler.conditions)
    columns = {name: [row[name] for row in rows] for name in rows[0]}  # one row per value of the varied condition
    plan = condition_plan(sampler, {k: v if len(set(v)) > 1 else v[0] for k, v in columns.items()})
    samples = torch.cat([b.normalized() for b in sample_all(sampler, range(args.n), plan, args.seed, 64)])
    rng = np.random.default_rng(args.seed)
    data = np.load(args.data)
    if "train_images" in data:  # MedMNIST npz
        train = to_unit(data["train_images"], sampler.num_channels)
        test_all = data["test_images"]
        test = to_unit(test_all[rng.choice(len(test_all), min(args.n, len(test_all)), replace=False)],
                       sampler.num_channels)
    else:  # brain_mri_pgbm_128.npz: slices as the bundle was trained on them, held-out patient as test
        from medigan_zoo.training.data import reference_images

        size = int(samples.shape[-1])
        train = torch.as_tensor(reference_images(args.data, "train", size=size))
        test_all = reference_images(args.data, "test", size=size)
        test = torch.as_tensor(test_all[rng.choice(len(test_all), min(args.n, len(test_all)), replace=False)])
    if train.shape[2:] != samples.shape[2:]:
        raise SystemExit(f"sample shape {tuple(samples.shape[2:])} differs from data {tuple(train.shape[2:])}")
    report = memorization_report(samples, train, test)
    report.update(num_samples=args.n, num_train=len(train), num_test=len(test), seed=args.seed, data=args.data.name)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
