"""Train / validation / test split by group (a patient, a volume, or a single image when nothing links images).

Invariant: all images of one group land in the same split, so no patient is in two splits. Groups are shuffled
with ``seed`` and taken in that order for the test split until it holds at least ``round(test * N)`` images, then
for the validation split likewise; the rest is the training split, which always keeps at least one group.
"""
from __future__ import annotations

import random
from typing import Dict, List, Sequence

from medigan_zoo.core.errors import ZooError

SPLITS = ("train", "val", "test")


def check_fractions(val: float, test: float) -> None:
    for name, value in (("val", val), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ZooError(f"prepare: --{name} must be a fraction in [0, 1), got {value!r}.")
    if val + test >= 1:
        raise ZooError(f"prepare: --val {val} + --test {test} leaves no training images; keep their sum below 1.")


def split_by_group(groups: Sequence[str], val: float, test: float, seed: int) -> List[str]:
    """The split name of each item, given each item's group (same length and order as ``groups``)."""
    check_fractions(val, test)
    sizes: Dict[str, int] = {}
    for group in groups:
        sizes[group] = sizes.get(group, 0) + 1
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    total = len(groups)
    assigned: Dict[str, str] = {}
    position = 0
    for split, fraction in (("test", test), ("val", val)):
        target, taken = round(fraction * total), 0
        while taken < target and position < len(order) - 1:  # the last group always stays for training
            assigned[order[position]] = split
            taken += sizes[order[position]]
            position += 1
    for group in order[position:]:
        assigned[group] = "train"
    return [assigned[g] for g in groups]
