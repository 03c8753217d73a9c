"""Small CNN classifiers for the realism test and the downstream task, trained deterministically, and ROC AUC.

Inputs are images in [0, 1], (N, C, H, W) or (N, C, D, H, W); ``prepare_inputs`` resizes them to ``size`` per
spatial axis (default 32) so that every bundle trains at the same small cost on a CPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn


def prepare_inputs(x: torch.Tensor, size: Optional[int] = 32) -> torch.Tensor:
    """Resize (area when shrinking, else bilinear/trilinear) to ``size`` per spatial axis and map to [-1, 1]."""
    x = x.float()
    spatial = x.shape[2:]
    if size is not None and any(s != size for s in spatial):
        target = (size,) * len(spatial)
        if all(s >= size for s in spatial):
            x = F.interpolate(x, size=target, mode="area")
        else:
            x = F.interpolate(x, size=target, mode="bilinear" if len(spatial) == 2 else "trilinear",
                              align_corners=False)
    return (x * 2.0 - 1.0).contiguous()


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU-maxpool stages (``width``, 2x, 4x channels), global average pooling, a linear head."""

    def __init__(self, in_channels: int, num_classes: int, spatial_dims: int = 2, width: int = 16):
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d
        pool = nn.MaxPool2d if spatial_dims == 2 else nn.MaxPool3d
        layers = []
        cin = in_channels
        for cout in (width, 2 * width, 4 * width):
            layers += [conv(cin, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(inplace=True), pool(2)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(2).mean(-1))


@dataclass(frozen=True)
class TrainConfig:
    """Classifier training settings (Adam, cross-entropy, fixed number of epochs, no early stopping)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 16
    size: Optional[int] = 32
    flip: bool = True  # random horizontal flips
    max_shift: int = 0  # random whole-pixel shifts of up to this many pixels per axis (0: none)


def fit_classifier(x: torch.Tensor, y: torch.Tensor, num_classes: int, seed: int = 0,
                   config: TrainConfig = TrainConfig()) -> nn.Module:
    """Train a SmallCNN on images ``x`` in [0, 1] and labels ``y``; every random number comes from ``seed``."""
    inputs = prepare_inputs(x, config.size)
    y = y.long()
    gen = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = SmallCNN(inputs.shape[1], num_classes, inputs.ndim - 2, config.width)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * max(1, -(-len(inputs) // config.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(inputs), generator=gen)
        for start in range(0, len(order), config.batch_size):
            idx = order[start:start + config.batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            xb = random_shift(inputs[idx], config.max_shift, gen) if config.max_shift else inputs[idx]
            if config.flip:
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb = torch.where(flip.view(-1, *([1] * (xb.ndim - 1))), xb.flip(-1), xb)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def predict_proba(model: nn.Module, x: torch.Tensor, size: Optional[int] = 32, batch_size: int = 500) -> torch.Tensor:
    """Softmax class probabilities (N, K) of images ``x`` in [0, 1]."""
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            out.append(model(prepare_inputs(x[start:start + batch_size], size)).softmax(1))
    return torch.cat(out)


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks with ties sharing their average rank."""
    order = torch.argsort(values, stable=True)
    sorted_vals = values[order]
    _, inverse, counts = torch.unique_consecutive(sorted_vals, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    avg = ends - (counts.double() - 1) / 2
    ranks = torch.empty_like(values, dtype=torch.float64)
    ranks[order] = avg[inverse]
    return ranks


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (Mann-Whitney U, ties counted half)."""
    scores = scores.double().flatten()
    labels = labels.flatten().bool()
    n_pos = int(labels.sum())
    n_neg = int(labels.numel() - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auc(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Binary: AUC of the positive-class probability; multi-class: mean one-vs-rest AUC over present classes."""
    if probs.shape[1] == 2:
        return roc_auc(probs[:, 1], labels == 1)
    values = [roc_auc(probs[:, c], labels == c) for c in range(probs.shape[1])
              if 0 < int((labels == c).sum()) < len(labels)]
    return float(sum(values) / len(values)) if values else float("nan")


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    return float((probs.argmax(1) == labels.long()).double().mean())


def evaluate_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, size: Optional[int] = 32
                        ) -> Dict[str, float]:
    """Accuracy and (macro one-vs-rest) AUROC on a test set."""
    probs = predict_proba(model, x, size)
    return {"accuracy": accuracy(probs, y), "AUROC": macro_auc(probs, y)}


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each image moved by its own random whole-pixel offset in [-max_shift, max_shift] per spatial axis
    (reflection padding, then a crop back to the input size)."""
    if max_shift <= 0:
        return x
    spatial = x.shape[2:]
    pad = [max_shift] * (2 * len(spatial))
    padded = F.pad(x, pad, mode="reflect")
    offsets = torch.randint(0, 2 * max_shift + 1, (x.shape[0], len(spatial)), generator=gen)
    out = torch.empty_like(x)
    for i, off in enumerate(offsets.tolist()):
        index = (i, slice(None)) + tuple(slice(o, o + s) for o, s in zip(off, spatial))
        out[i] = padded[index]
    return out

