"""Bounds on what one request may ask of the server (so that one user cannot exhaust it)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UISettings:
    """Request limits and queue sizes of the web UI.

    Attributes:
        max_samples: most samples one generate request makes.
        max_compare: most models compared side by side.
        max_compare_samples: samples per condition row in compare.
        max_interpolation_steps: most images in an interpolation row.
        concurrency_limit: model runs at the same time (all panels share one queue).
        max_queue: requests waiting in the queue before new ones are refused.
        max_loaded_models: loaded samplers kept in memory (least recently used dropped first).
        max_batches: generated batches kept on disk for download (oldest removed first).
        num_real: real images shown beside the synthetic ones.
    """

    max_samples: int = 64
    max_compare: int = 4
    max_compare_samples: int = 8
    max_interpolation_steps: int = 16
    concurrency_limit: int = 1
    max_queue: int = 32
    max_loaded_models: int = 4
    max_batches: int = 32
    num_real: int = 8
