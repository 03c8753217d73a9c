"""Per-sample seeds: sample ``i`` of a run with base ``seed`` always gets the same random numbers."""
from __future__ import annotations

import numpy as np

_MASK63 = (1 << 63) - 1


def sample_seed(seed: int, index: int) -> int:
    """Seed of sample ``index`` for base ``seed``: independent of batch size, workers and ranks.

    Uses numpy's SeedSequence so that nearby (seed, index) pairs give unrelated streams
    (``sample_seed(0, 1) != sample_seed(1, 0)``). The result fits a torch.Generator (< 2**63).
    """
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, dtype=np.uint32)
    return ((int(state[0]) << 32) | int(state[1])) & _MASK63


def sample_seeds(seed: int, start: int, stop: int) -> list[int]:
    """Seeds of samples ``start .. stop-1``."""
    return [sample_seed(seed, i) for i in range(start, stop)]
