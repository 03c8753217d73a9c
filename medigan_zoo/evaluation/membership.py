"""Privacy beyond nearest neighbours: a distance-based membership-inference attack.

An attacker holds real images and the model's samples, and guesses that an image was in the training set when a
sample lies close to it. Score of a real image: minus its pixel L2 distance to the nearest synthetic sample.
The attack's ROC AUC separating training images (members) from held-out real images (non-members, near copies
of training images removed: ``evaluation.dedup``) is the figure: 0.5 = the samples reveal nothing about which
images were trained on; towards 1 = they do. Both sides are balanced (seeded subset of the larger one).
"""
from __future__ import annotations

from typing import Dict

import torch

from medigan_zoo.evaluation.bootstrap import DEFAULT_RESAMPLES, bootstrap_ci
from medigan_zoo.evaluation.classifiers import roc_auc
from medigan_zoo.evaluation.memorization import nearest_neighbour_l2


def _auc(members: torch.Tensor, non_members: torch.Tensor) -> float:
    scores = torch.cat([members, non_members])
    labels = torch.cat([torch.ones(len(members)), torch.zeros(len(non_members))]).bool()
    return roc_auc(scores, labels)


def membership_inference(synthetic: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor, seed: int = 0,
                         num_resamples: int = DEFAULT_RESAMPLES) -> Dict[str, float]:
    """AUC of the distance attack (see module), its bootstrap interval, and the members / non-members used."""
    n = min(len(train), len(held_out))
    if n < 2:
        raise ValueError("membership inference needs at least 2 training and 2 held-out images")
    gen = torch.Generator().manual_seed(int(seed))
    members = train[torch.randperm(len(train), generator=gen)[:n]]
    non_members = held_out[torch.randperm(len(held_out), generator=gen)[:n]]
    s_in = -nearest_neighbour_l2(members, synthetic).double()
    s_out = -nearest_neighbour_l2(non_members, synthetic).double()
    out = {"auc": _auc(s_in, s_out), "members": n, "non_members": n}
    out.update(bootstrap_ci(_auc, [s_in, s_out], num_resamples, seed + 1))
    return out
