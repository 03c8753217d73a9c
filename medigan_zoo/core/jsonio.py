"""Read JSON files with errors that name the file, the line and the JSON path."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Union

from medigan_zoo.core.errors import MetadataError


def load_json(path: Union[str, Path], what: str = "JSON file") -> Any:
    """Parse ``path``; a missing or malformed file raises MetadataError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MetadataError(f"{what} not found", file=path, hint="check the path") from None
    except OSError as err:
        raise MetadataError(f"cannot read {what}: {err.strerror}", file=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise MetadataError(
            f"malformed {what}: {err.msg} (line {err.lineno}, column {err.colno})",
            file=path,
            hint="fix the JSON syntax",
        ) from None


def json_path(parts: Iterable[Union[str, int]]) -> str:
    """Render a JSON path like ``$.medigan_zoo.metrics[0].value``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
