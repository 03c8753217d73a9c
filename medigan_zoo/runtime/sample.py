"""The one sample loop: sample indices -> per-sample seeds and conditions -> sampler -> arrays in display order.

Sample ``i`` of a run with base ``seed`` and conditions plan ``plan`` is always made from seed
``sample_seed(seed, i)`` and condition ``plan.at(i)``, whatever batch it is made in. Files (``generate``), datasets,
returned arrays, grids (``visualize``), evaluation and the memorization check all call :func:`sample`, so they see
the same sample ``i``: ``(C, *spatial)`` in display order (``[D,] H, W``) and in the model's value range
(:meth:`SampleBatch.normalized` scales to [0, 1]).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Sequence

import torch

from medigan_zoo.core.seeding import sample_seed


@dataclass(frozen=True)
class SampleBatch:
    """Samples ``indices`` of a run: their seeds, conditions and outputs (name -> (B, C, *spatial) float32 CPU)."""

    indices: Sequence[int]
    seeds: List[int]
    conditions: List[Dict[str, Any]]
    outputs: Dict[str, torch.Tensor]
    sampler: Any

    def normalized(self, name: str = "image") -> torch.Tensor:
        """Output ``name`` scaled from the model's value range to [0, 1]."""
        return self.sampler.normalized(name, self.outputs[name])


def sample(sampler: Any, indices: Sequence[int], plan: Any, seed: int, inputs: Any = None) -> SampleBatch:
    """Samples ``indices`` of ``sampler`` (a :class:`~medigan_zoo.runtime.sampler.BundleSampler`) for base ``seed``
    and the conditions ``plan`` (a :class:`~medigan_zoo.engine.conditions.ConditionPlan`), in one forward pass.
    ``inputs`` (an :class:`~medigan_zoo.engine.inputs.InputSet`, models with image inputs): sample ``i`` is made
    from input ``inputs.input_of(i)``."""
    indices = list(indices)
    seeds = [sample_seed(seed, i) for i in indices]
    conditions = [plan.at(i) for i in indices]
    conds = plan.tensors(conditions, sampler.device) if plan.specs else None
    outputs = sampler(seeds, conds, inputs.batch(indices)) if inputs is not None else sampler(seeds, conds)
    return SampleBatch(indices=indices, seeds=seeds, conditions=conditions, outputs=outputs, sampler=sampler)


def index_batches(indices: Iterable[int], batch_size: int) -> Iterator[List[int]]:
    """``indices`` in consecutive lists of at most ``batch_size``, lazily (a run of 10**12 samples holds one batch)."""
    it = iter(indices)
    while True:
        batch = list(islice(it, batch_size))
        if not batch:
            return
        yield batch


def sample_all(sampler: Any, indices: Iterable[int], plan: Any, seed: int, batch_size: int,
               inputs: Any = None) -> Iterator[SampleBatch]:
    """:func:`sample` over ``indices`` in batches of ``batch_size`` (lazy)."""
    for batch in index_batches(indices, batch_size):
        yield sample(sampler, batch, plan, seed, inputs)


def condition_plan(sampler: Any, conditions: Mapping[str, Any] | None = None) -> Any:
    """The conditions plan of ``sampler``'s model for ``conditions`` (values or lists cycled over the samples)."""
    from medigan_zoo.engine.conditions import resolve_conditions

    return resolve_conditions(sampler.conditions, dict(conditions or {}), sampler.model_id)
