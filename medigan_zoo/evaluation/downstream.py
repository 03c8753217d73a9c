"""Downstream gain of a conditional model: a classifier trained on real, on synthetic, and on both.

Each classifier is evaluated on the real test split. Results use medigan's metric names
(``CLF.trained_on_real.accuracy`` ...) plus ``CLF_delta`` = accuracy(real + synthetic) - accuracy(real).
"""
from __future__ import annotations

from typing import Dict

import torch

from medigan_zoo.core.errors import ZooError
from medigan_zoo.evaluation.classifiers import TrainConfig, evaluate_classifier, fit_classifier


def downstream_gain(real_train_x: torch.Tensor, real_train_y: torch.Tensor, real_test_x: torch.Tensor,
                    real_test_y: torch.Tensor, synthetic_x: torch.Tensor, synthetic_y: torch.Tensor,
                    num_classes: int, seed: int = 0, config: TrainConfig = TrainConfig()) -> Dict[str, float]:
    """Metrics of the three training sets; the same seed (initialisation, batch order) for each."""
    if real_train_x.shape[1:] != synthetic_x.shape[1:]:
        raise ZooError(f"Real {tuple(real_train_x.shape[1:])} and synthetic {tuple(synthetic_x.shape[1:])} images "
                       "differ in shape.")
    sets = {
        "trained_on_real": (real_train_x, real_train_y),
        "trained_on_fake": (synthetic_x, synthetic_y),
        "trained_on_real_and_fake": (torch.cat([real_train_x, synthetic_x]), torch.cat([real_train_y, synthetic_y])),
    }
    out: Dict[str, float] = {}
    for key, (x, y) in sets.items():
        model = fit_classifier(x, y, num_classes, seed=seed, config=config)
        scores = evaluate_classifier(model, real_test_x, real_test_y, config.size)
        out[f"CLF.{key}.accuracy"] = scores["accuracy"]
        out[f"CLF.{key}.AUROC"] = scores["AUROC"]
    out["CLF_delta"] = out["CLF.trained_on_real_and_fake.accuracy"] - out["CLF.trained_on_real.accuracy"]
    return out


def labels_like(reference: torch.Tensor, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` labels with the class proportions of ``reference`` (largest-remainder rounding), seeded order."""
    values, counts = torch.unique(reference.long(), return_counts=True)
    exact = counts.double() / counts.sum() * count
    n = exact.floor().long()
    rest = count - int(n.sum())
    if rest > 0:
        n[torch.argsort(exact - n.double(), descending=True, stable=True)[:rest]] += 1
    labels = torch.repeat_interleave(values, n)
    return labels[torch.randperm(count, generator=torch.Generator().manual_seed(int(seed)))]
