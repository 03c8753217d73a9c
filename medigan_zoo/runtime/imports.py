"""A bundle's own Python files (``scripts/``) importable while, and only while, its config is instantiated.

``monai.bundle run`` inserts the bundle root at ``sys.path[1]`` and leaves it there, so a ``sqlite3.py`` or
``pandas.py`` in a bundle would shadow the standard library for the rest of the process. The zoo appends the root
after every other entry instead (the standard library and installed packages always win) and removes it again.

Bundles also share module names: MONAI's bundles each have a ``scripts`` package. While one bundle is instantiated,
the modules of its own top-level names that nothing outside a bundle provides (``scripts``, ``scripts.sampler``)
are taken out of ``sys.modules`` (another bundle's ``scripts`` may be cached there) and put back afterwards, so
each bundle imports its own code whatever was opened before it.
"""
from __future__ import annotations

import contextlib
import sys
import threading
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Dict, Iterator, List, Union

_LOCK = threading.RLock()


def _own_names(root: Path, others: List[str]) -> List[str]:
    """Top-level module and package names in ``root`` that no other ``sys.path`` entry provides."""
    names = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    for entry in entries:
        if entry.suffix == ".py" and entry.is_file():
            name = entry.stem
        elif entry.is_dir() and any(entry.glob("*.py")):
            name = entry.name
        else:
            continue
        if not name.isidentifier():
            continue
        spec = PathFinder.find_spec(name, others)
        if spec is None or spec.loader is None:  # nothing, or only a namespace portion (a regular package wins)
            names.append(name)
    return names


def _modules_named(names: List[str]) -> Dict[str, object]:
    return {key: module for key, module in list(sys.modules.items()) if key.split(".", 1)[0] in names}


@contextlib.contextmanager
def bundle_on_sys_path(bundle_dir: Union[str, Path]) -> Iterator[None]:
    """Inside the block ``bundle_dir`` is the last entry of ``sys.path`` and its own top-level modules are its own;
    after it, ``sys.path`` and those entries of ``sys.modules`` are as before."""
    root = Path(bundle_dir).resolve()
    with _LOCK:
        others = [p for p in sys.path if p != str(root)]
        names = _own_names(root, others)
        cached = _modules_named(names)  # e.g. another bundle's `scripts`
        for key in cached:
            del sys.modules[key]
        added = str(root) not in sys.path
        if added:
            sys.path.append(str(root))
        try:
            yield
        finally:
            if added:
                with contextlib.suppress(ValueError):
                    sys.path.remove(str(root))
            for key in _modules_named(names):
                del sys.modules[key]
            sys.modules.update(cached)  # type: ignore[arg-type]
