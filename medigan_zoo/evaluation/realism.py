"""Realism check (classifier two-sample test): can a small CNN tell real from generated images?

``prepare_classifier_data`` mixes real and generated images at a chosen percentage, as the GAN synthesis
framework's ``data_preparation_classifier.py`` does; ``realism_auc`` trains on a balanced mix and reports the
held-out ROC AUC (0.5: indistinguishable; 1.0: trivially told apart).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch

from medigan_zoo.core.errors import ZooError
from medigan_zoo.evaluation.bootstrap import DEFAULT_RESAMPLES, bootstrap_ci
from medigan_zoo.evaluation.classifiers import (
    TrainConfig,
    accuracy,
    fit_classifier,
    predict_proba,
    roc_auc,
)

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

    Returns ``auc``, ``accuracy``, ``n_train``, ``n_test`` and the AUC's bootstrap interval over the held-out
    images (``ci_low``, ``ci_high``, ``num_resamples``). ``max_per_class`` caps the images per side.
    """
    n = min(len(real), len(generated))
    if max_per_class:
        n = min(n, int(max_per_class))
    if n < 8:
        raise ZooError(f"The realism classifier needs at least 8 real and 8 generated images, got {n}.")
    data = prepare_classifier_data(real, generated, 50.0, total=2 * n, seed=seed)
    train, test = stratified_split(data.labels, test_fraction, seed + 1)
    model = fit_classifier(data.images[train], data.labels[train], 2, seed=seed + 2, config=config)
    probs = predict_proba(model, data.images[test], config.size)
    labels = data.labels[test]
    out: Dict[str, float] = {"auc": roc_auc(probs[:, 1], labels == GENERATED), "accuracy": accuracy(probs, labels),
                             "n_train": int(len(train)), "n_test": int(len(test))}
    out.update(auc_interval(probs[:, 1], labels, seed + 3))
    return out


def auc_interval(scores: torch.Tensor, labels: torch.Tensor, seed: int,
                 num_resamples: int = DEFAULT_RESAMPLES) -> Dict[str, float]:
    """Bootstrap interval of a real-vs-generated AUC: real and generated scores resampled separately."""
    fake, real = scores[labels == GENERATED].double(), scores[labels == REAL].double()

    def auc(f: torch.Tensor, r: torch.Tensor) -> float:
        return roc_auc(torch.cat([f, r]), torch.cat([torch.ones(len(f)), torch.zeros(len(r))]).bool())

    return bootstrap_ci(auc, [fake, real], num_resamples, seed)


@dataclass(frozen=True)
class StrongC2ST:
    """The cross-validated realism test (``realism_auc_cv``): folds, and the classifier's capacity, schedule and input
    size relative to the evaluation's classifier settings (width x ``width_factor``, epochs x ``epoch_factor`` of
    Adam with a one-cycle schedule, random flips and shifts of ``max_shift`` px; 2D images of at most
    ``native_up_to`` px per side are seen at their own resolution, not resized)."""

    folds: int = 3
    width_factor: int = 2
    epoch_factor: int = 2
    max_shift: int = 1
    native_up_to: int = 64


def realism_auc_cv(real: torch.Tensor, generated: torch.Tensor, seed: int = 0, max_per_class: Optional[int] = None,
                   config: TrainConfig = TrainConfig(), strong: StrongC2ST = StrongC2ST()) -> Dict[str, Any]:
    """The stronger classifier two-sample test: k-fold cross-validated CNN (every image is scored once, by the
    classifier of the fold that did not train on it), twice as wide and trained twice as long as
    ``realism_auc``'s, with flips and random shifts, on small 2D images at their own resolution.

    Returns ``auc`` (over all out-of-fold scores), ``accuracy``, ``n_scored``, ``epochs``, ``size`` (None = native)
    and the AUC's bootstrap interval.
    """
    n = min(len(real), len(generated))
    if max_per_class:
        n = min(n, int(max_per_class))
    if n < 4 * strong.folds:
        raise ZooError(f"The cross-validated realism test needs at least {4 * strong.folds} real and generated images, "
                       f"got {n}.")
    data = prepare_classifier_data(real, generated, 50.0, total=2 * n, seed=seed)
    spatial = data.images.shape[2:]
    native = len(spatial) == 2 and max(spatial) <= strong.native_up_to
    cfg = TrainConfig(epochs=config.epochs * strong.epoch_factor, batch_size=config.batch_size, lr=config.lr,
                      weight_decay=config.weight_decay, width=config.width * strong.width_factor,
                      size=None if native else config.size, flip=True, max_shift=strong.max_shift)
    gen = torch.Generator().manual_seed(int(seed) + 1)
    fold_of = torch.empty(len(data.labels), dtype=torch.long)
    for value in (REAL, GENERATED):  # stratified folds
        idx = torch.nonzero(data.labels == value).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        fold_of[idx] = torch.arange(len(idx)) % strong.folds
    scores = torch.empty(len(data.labels), dtype=torch.float64)
    probs_all = torch.empty(len(data.labels), 2)
    for fold in range(strong.folds):
        test = torch.nonzero(fold_of == fold).flatten()
        train = torch.nonzero(fold_of != fold).flatten()
        model = fit_classifier(data.images[train], data.labels[train], 2, seed=seed + 20 + fold, config=cfg)
        probs = predict_proba(model, data.images[test], cfg.size)
        probs_all[test] = probs
        scores[test] = probs[:, 1].double()
    out: Dict[str, Any] = {"auc": roc_auc(scores, data.labels == GENERATED),
                           "accuracy": accuracy(probs_all, data.labels), "n_scored": int(len(data.labels)),
                           "epochs": cfg.epochs, "size": cfg.size, "width": cfg.width}
    out.update(auc_interval(scores, data.labels, seed + 3))
    return out
