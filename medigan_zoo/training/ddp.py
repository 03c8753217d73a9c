"""Data-parallel training under ``torchrun`` (issue #15): what a process learns from torchrun's environment.

:func:`from_environment` returns None for a plain single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``), which is
how ``medigan-zoo train`` runs. Data-parallel training of the zoo's recipes is not available yet: under torchrun
with more than one process it stops with one line saying so (docs/contributing_models.md), rather than training N
unsynchronised copies.
"""
from __future__ import annotations

import os
from typing import Any, Optional

from medigan_zoo.core.errors import ZooError


def world_size() -> int:
    """torchrun's ``WORLD_SIZE`` (1 when unset)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ZooError(f"WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} is not a whole number; run under torchrun or "
                       "unset it.") from None


def from_environment(device: Optional[str] = None) -> Optional[Any]:
    """None for a single process; under torchrun with several processes, a ZooError (not implemented yet)."""
    if world_size() <= 1:
        return None
    raise ZooError("data-parallel training (torchrun with WORLD_SIZE > 1) is not available yet for the zoo's "
                   "recipes; run `medigan-zoo train` as one process (docs/contributing_models.md).")
