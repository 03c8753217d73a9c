"""Read JSON files with errors that name the file, the line and the JSON path.

Every JSON file the zoo reads from users (catalogs, bundle metadata and configs, medigan configs) goes through
``load_json``: a file that is missing, unreadable, not UTF-8, malformed, or nested deeper than ``MAX_DEPTH``
raises one MetadataError naming the file (and the line where there is one), never a traceback.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Union

from medigan_zoo.core.errors import MetadataError

#: deepest nesting of arrays/objects accepted; real catalogs and bundle configs stay under 20
MAX_DEPTH = 200


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` arrays/objects deep (iterative: no recursion limit)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_json_bytes(data: bytes, path: Union[str, Path], what: str = "JSON file") -> Any:
    """Parse UTF-8 JSON ``data`` read from ``path``; every failure is a MetadataError naming the file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MetadataError(f"{what} is not UTF-8 text (byte 0x{data[err.start]:02x} at line "
                            f"{_line_of(data, err.start)})", file=path, hint="save the file as UTF-8") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise MetadataError(
            f"malformed {what}: {err.msg} (line {err.lineno}, column {err.colno})",
            file=path,
            hint="fix the JSON syntax",
        ) from None
    except RecursionError:
        raise MetadataError(f"{what} is nested too deeply to parse (the limit is {MAX_DEPTH} levels)",
                            file=path) from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise MetadataError(f"{what} is nested more than {MAX_DEPTH} levels deep", file=path,
                            hint="no zoo file needs that; is it the right file?")
    return value


def load_json(path: Union[str, Path], what: str = "JSON file") -> Any:
    """Parse ``path``; a missing, unreadable, non-UTF-8, malformed or absurdly nested file raises MetadataError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MetadataError(f"{what} not found", file=path, hint="check the path") from None
    except IsADirectoryError:
        raise MetadataError(f"{what} is a folder, not a file", file=path) from None
    except OSError as err:
        raise MetadataError(f"cannot read {what}: {err.strerror or err}", file=path) from None
    return parse_json_bytes(data, path, what)


def json_path(parts: Iterable[Union[str, int]]) -> str:
    """Render a JSON path like ``$.medigan_zoo.metrics[0].value``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
