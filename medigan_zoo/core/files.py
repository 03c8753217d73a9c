"""File helpers shared by every layer: content digests and whether a process that left a temporary file lives."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Tuple, Union

_CHUNK = 1 << 20


def file_digest(path: Union[str, Path]) -> Tuple[int, str]:
    """Size in bytes and sha256 (hex) of ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def file_sha256(path: Union[str, Path]) -> str:
    """sha256 (hex) of ``path``."""
    return file_digest(path)[1]


def pid_alive(pid: int) -> bool:
    """True unless process ``pid`` of this host is known to be gone (on Windows it cannot be probed: True)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
