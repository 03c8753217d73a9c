"""Realism check (classifier two-sample test): can a small CNN tell real from generated images?

``prepare_classifier_data`` mixes real and generated images at a chosen percentage, as the GAN synthesis
framework's ``data_preparation_classifier.py`` does; ``realism_auc`` trains on a balanced mix and reports the
held-out ROC AUC (0.5: indistinguishable; 1.0: trivially told apart).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch

from medigan_zoo.core.errors import ZooError
from medigan_zoo.evaluation.classifiers import TrainConfig, evaluate_classifier, fit_classifier

REAL, GENERATED = 0, 1


@dataclass
class ClassifierData:
    """A shuffled mix: ``images`` (N, C, *spatial), ``labels`` (N,) with 0 = real and 1 = generated."""

    images: torch.Tensor
    labels: torch.Tensor

    @property
    def percent_generated(self) -> float:
        return 100.0 * float(self.labels.double().mean()) if len(self.labels) else 0.0


def prepare_classifier_data(real: torch.Tensor, generated: torch.Tensor, percent_generated: float = 50.0,
                            total: Optional[int] = None, seed: int = 0) -> ClassifierData:
    """Mix ``real`` and ``generated`` images so that ``percent_generated`` % of the result is generated.

    ``total`` images are drawn without replacement (default: the most the two pools allow at that percentage),
    picked and shuffled with ``seed``. 0 % gives real images only, 100 % generated only.
    """
    if not 0.0 <= float(percent_generated) <= 100.0:
        raise ZooError(f"percent_generated must be within [0, 100], got {percent_generated}.")
    if real.shape[1:] != generated.shape[1:]:
        raise ZooError(f"Real images {tuple(real.shape[1:])} and generated images {tuple(generated.shape[1:])} "
                       "differ in shape; resize them first.")
    p = float(percent_generated) / 100.0
    limits = []
    if p < 1.0:
        limits.append(len(real) / (1.0 - p))
    if p > 0.0:
        limits.append(len(generated) / p)
    most = int(min(limits) + 1e-9)
    total = most if total is None else int(total)
    if total > most:
        raise ZooError(f"Cannot draw {total} images with {percent_generated}% generated from {len(real)} real and "
                       f"{len(generated)} generated images (at most {most}).")
    n_gen = int(round(total * p))
    n_real = total - n_gen
    gen = torch.Generator().manual_seed(int(seed))
    pick_real = torch.randperm(len(real), generator=gen)[:n_real]
    pick_gen = torch.randperm(len(generated), generator=gen)[:n_gen]
    images = torch.cat([real[pick_real], generated[pick_gen]])
    labels = torch.cat([torch.full((n_real,), REAL), torch.full((n_gen,), GENERATED)]).long()
    order = torch.randperm(total, generator=gen)
    return ClassifierData(images[order], labels[order])


def stratified_split(labels: torch.Tensor, test_fraction: float, seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(train index, test index) holding ``test_fraction`` of every label value out for testing."""
    gen = torch.Generator().manual_seed(int(seed))
    train, test = [], []
    for value in torch.unique(labels):
        idx = torch.nonzero(labels == value).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_test = max(1, int(round(len(idx) * test_fraction)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return torch.sort(torch.cat(train)).values, torch.sort(torch.cat(test)).values


def realism_auc(real: torch.Tensor, generated: torch.Tensor, seed: int = 0, test_fraction: float = 0.25,
                max_per_class: Optional[int] = None, config: TrainConfig = TrainConfig()) -> Dict[str, float]:
    """Held-out AUC of a CNN trained to tell ``generated`` from ``real`` on a balanced mix.

    Returns ``auc``, ``accuracy``, ``n_train`` and ``n_test``. ``max_per_class`` caps the images per side.
    """
    n = min(len(real), len(generated))
    if max_per_class:
        n = min(n, int(max_per_class))
    if n < 8:
        raise ZooError(f"The realism classifier needs at least 8 real and 8 generated images, got {n}.")
    data = prepare_classifier_data(real, generated, 50.0, total=2 * n, seed=seed)
    train, test = stratified_split(data.labels, test_fraction, seed + 1)
    model = fit_classifier(data.images[train], data.labels[train], 2, seed=seed + 2, config=config)
    scores = evaluate_classifier(model, data.images[test], data.labels[test], config.size)
    return {"auc": scores["AUROC"], "accuracy": scores["accuracy"], "n_train": int(len(train)),
            "n_test": int(len(test))}
