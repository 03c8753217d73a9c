"""Errors meant for users: each says what was wrong, where, and what to do."""
from __future__ import annotations

import difflib
from typing import Iterable, Optional, Sequence


class ZooError(Exception):
    """Base class for every error the zoo raises for bad user input or bad files.

    The CLI prints ``str(error)`` on one line and exits with status 2.
    """


class ModelNotFoundError(ZooError, KeyError):
    """An unknown model id; the message lists the closest known ids."""

    def __init__(self, model_id: object, known_ids: Iterable[str]):
        known = list(known_ids)
        close = difflib.get_close_matches(str(model_id), known, n=5, cutoff=0.3)
        if not close:
            low = str(model_id).lower()
            close = [k for k in known if low in k.lower()][:5]
        hint = f" Closest ids: {', '.join(close)}." if close else ""
        super().__init__(
            f"Unknown model id {model_id!r}.{hint} Run `medigan-zoo list` to see all {len(known)} ids."
        )
        self.model_id = model_id
        self.closest = close

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class MetricNotFoundError(ZooError, KeyError):
    """An unknown performance metric; the message lists the metrics present."""

    def __init__(self, metric: str, present: Iterable[str]):
        names = sorted(set(present))
        super().__init__(
            f"Unknown metric {metric!r}. Metrics present in the selected models: {', '.join(names) or 'none'}."
        )

    def __str__(self) -> str:
        return self.args[0]


class MetadataError(ZooError, ValueError):
    """A malformed JSON file (catalog, metadata, config): names the file and the JSON path."""

    def __init__(self, message: str, file: Optional[object] = None, json_path: str = "", hint: str = ""):
        where = str(file) if file else ""
        if json_path:
            where = f"{where} at {json_path}" if where else json_path
        text = f"{where}: {message}" if where else message
        if hint:
            text = f"{text} ({hint})"
        super().__init__(text)
        self.file = file
        self.json_path = json_path
        self.hint = hint


class BundleNotAvailableError(ZooError):
    """The model is known from a catalog, but its bundle is not on disk."""


class GenerationError(ZooError):
    """Bad generation arguments or a failure writing the outputs."""


class BundleLoadError(GenerationError):
    """A bundle's configs or weights cannot be turned into a runnable model (names the file and what to do)."""


class MetricOverwriteError(ZooError):
    """Writing evaluation results would replace stored metrics measured with more samples (``--force`` allows it).

    ``report`` carries the measurements that were not written (set by ``evaluate_bundle``), so callers can still
    show them.
    """

    report: Optional[object] = None


class UntrustedBundleError(ZooError):
    """Running a bundle's config code was asked for, but the bundle is not trusted (docs/security.md)."""


class InvalidQueryError(ZooError, ValueError):
    """A malformed selection query (medigan verbs): empty values, an unknown operator or order."""


class ConfigKeyNotFoundError(ZooError, KeyError):
    """A (dotted) config key that is not in the model's config; lists the keys that are."""

    def __init__(self, key: str, model_id: Optional[str], available: Sequence[str]):
        where = f"the config of {model_id!r}" if model_id else "any model's selection config"
        shown = ", ".join(map(str, list(available)[:30])) or "none"
        super().__init__(f"Key {key!r} is not in {where}. Keys available at that level: {shown}.")
        self.key = key

    def __str__(self) -> str:
        return self.args[0]
