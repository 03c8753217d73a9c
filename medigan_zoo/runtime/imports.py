"""A bundle's own Python files (``scripts/``) importable while, and only while, its config is instantiated.

``monai.bundle run`` inserts the bundle root at ``sys.path[1]`` and leaves it there, so a ``sqlite3.py`` or
``pandas.py`` in a bundle would shadow the standard library for the rest of the process. The zoo appends the root
after every other entry instead (the standard library and installed packages always win) and removes it again.
"""
from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path
from typing import Iterator, Union

_LOCK = threading.RLock()


@contextlib.contextmanager
def bundle_on_sys_path(bundle_dir: Union[str, Path]) -> Iterator[None]:
    """Inside the block ``bundle_dir`` is the last entry of ``sys.path``; after it, ``sys.path`` is as before."""
    root = str(Path(bundle_dir).resolve())
    with _LOCK:
        added = root not in sys.path
        if added:
            sys.path.append(root)
        try:
            yield
        finally:
            if added:
                with contextlib.suppress(ValueError):
                    sys.path.remove(root)
