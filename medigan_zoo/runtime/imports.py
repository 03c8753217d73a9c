"""A bundle's own Python files (``scripts/``) importable while, and only while, its config is instantiated.

``monai.bundle run`` inserts the bundle root at ``sys.path[1]`` and leaves it there, so a ``sqlite3.py`` or
``pandas.py`` in a bundle would shadow the standard library or an installed package for the rest of the process.
The zoo never lets a bundle's file stand for a name the standard library or an installed package provides: it
appends the root after every other ``sys.path`` entry and removes it again.

Bundles also share module names: MONAI's bundles each have a ``scripts`` package, and a bundle root that
``monai.bundle run`` left on ``sys.path`` would otherwise answer for every later bundle's ``scripts``. While one
bundle is instantiated, its own top-level names (those no standard-library or installed path provides) are found in
its folder first (a meta-path finder that lives only inside the block), another bundle's cached modules of those
names are set aside, and afterwards ``sys.path``, ``sys.meta_path`` and those ``sys.modules`` entries are as before.
"""
from __future__ import annotations

import contextlib
import sys
import sysconfig
import threading
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

_LOCK = threading.RLock()


def _system_paths() -> List[str]:
    """The standard library's and the installed packages' folders (never shadowed by a bundle)."""
    paths = sysconfig.get_paths()
    return sorted({paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths})


def _own_names(root: Path) -> List[str]:
    """Top-level module and package names in ``root`` that neither the standard library nor an installed package
    provides (``sqlite3.py`` or ``pandas/`` in a bundle never count)."""
    system = _system_paths()
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
        if not name.isidentifier() or name in sys.builtin_module_names or name in sys.stdlib_module_names:
            continue
        spec = PathFinder.find_spec(name, system)
        if spec is None or spec.loader is None:  # nothing, or only a namespace portion
            names.append(name)
    return names


class _BundleFirst(MetaPathFinder):
    """Finds the bundle's own top-level names in its folder (submodules then follow the package's ``__path__``)."""

    def __init__(self, root: Path, names: Sequence[str]):
        self.root, self.names = str(root), set(names)

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Optional[ModuleSpec]:
        if path is None and fullname in self.names:
            return PathFinder.find_spec(fullname, [self.root])
        return None


def _modules_named(names: Sequence[str]) -> Dict[str, Any]:
    return {key: module for key, module in list(sys.modules.items()) if key.split(".", 1)[0] in names}


@contextlib.contextmanager
def bundle_on_sys_path(bundle_dir: Union[str, Path]) -> Iterator[None]:
    """Inside the block the bundle's own modules import from ``bundle_dir`` (its root is also the last entry of
    ``sys.path``); after it, ``sys.path``, ``sys.meta_path`` and those entries of ``sys.modules`` are as before."""
    root = Path(bundle_dir).resolve()
    with _LOCK:
        names = _own_names(root)
        cached = _modules_named(names)  # e.g. another bundle's `scripts`
        for key in cached:
            del sys.modules[key]
        finder = _BundleFirst(root, names)
        sys.meta_path.insert(0, finder)
        added = str(root) not in sys.path
        if added:
            sys.path.append(str(root))
        try:
            yield
        finally:
            if added:
                with contextlib.suppress(ValueError):
                    sys.path.remove(str(root))
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(finder)
            for key in _modules_named(names):
                del sys.modules[key]
            sys.modules.update(cached)
