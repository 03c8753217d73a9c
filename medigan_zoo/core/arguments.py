"""Checks of user-given argument values (command line or Python), each raising one ZooError that names the
argument, the value and what is accepted."""
from __future__ import annotations

from typing import Any

from medigan_zoo.core.errors import ZooError


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` as an int >= ``minimum``; integral floats (fire turns ``1e3`` into 1000.0) are accepted, text,
    booleans, fractions and smaller numbers raise ZooError."""
    try:
        ok = not isinstance(value, bool) and float(value).is_integer() and int(float(value)) >= minimum
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ZooError(f"{name} must be a whole number >= {minimum}, got {value!r}.")
    return int(value) if isinstance(value, int) else int(float(value))
