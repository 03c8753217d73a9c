"""memorization_report: means, ratio and tails of the nearest-neighbour distances to the training set."""
from __future__ import annotations

import torch

from medigan_zoo.evaluation.memorization import memorization_report


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    train = torch.rand(200, 1, 8, 8, generator=g)
    test = torch.rand(100, 1, 8, 8, generator=g)
    return train, test, g


def test_copies_of_training_images_are_flagged_by_the_tails():
    train, test, g = _data()
    copies = train[:50] + 0.001 * torch.randn(50, 1, 8, 8, generator=g)
    report = memorization_report(copies, train, test)
    assert report["nn_l2_ratio"] < 0.05
    assert report["nn_l2_synthetic_min"] < 0.05 < report["nn_l2_test_min"]
    assert report["share_below_test_p1"] == 1.0


def test_new_images_from_the_same_distribution_look_like_held_out_ones():
    train, test, g = _data()
    fresh = torch.rand(400, 1, 8, 8, generator=g)
    report = memorization_report(fresh, train, test)
    assert 0.9 < report["nn_l2_ratio"] < 1.1
    assert report["share_below_test_p1"] < 0.05
    assert report["nn_l2_synthetic_p5"] > 0.8 * report["nn_l2_test_p5"]
