"""Keep ``import monai`` from importing the MONAI Deploy App SDK.

MONAI's package init imports every sub-package it finds in its folder. The MONAI Deploy App SDK (the ``deploy``
extra) installs itself there as ``monai.deploy`` and imports Holoscan: about 8 s of CPU and a stack-size warning on
stderr in every process that imports monai (each CLI call, each worker), measured here. Only
``medigan_zoo.deploy`` needs the SDK.

:func:`install` puts a one-shot finder in front of the import of ``monai``. While monai's init runs, ``monai.deploy``
is a placeholder module without ``__path__`` (MONAI then skips it); the placeholder is gone when the init returns,
so a later ``import monai.deploy.core`` loads the real SDK. Nothing changes where the SDK is not installed, or where
monai was imported before medigan_zoo.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from pathlib import Path
from typing import Any, Optional, Sequence

DEPLOY = "monai.deploy"


class _MonaiInitLoader(importlib.abc.Loader):
    """Runs monai's own loader with the ``monai.deploy`` placeholder in place."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[types.ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        # the module keeps monai's real loader (resources, reloads, pkgutil)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        placeholder = types.ModuleType(DEPLOY)
        sys.modules.setdefault(DEPLOY, placeholder)
        try:
            self._loader.exec_module(module)
        finally:
            if sys.modules.get(DEPLOY) is placeholder:
                del sys.modules[DEPLOY]


class _MonaiFinder(importlib.abc.MetaPathFinder):
    """Finds ``monai`` once, wrapping its loader when the Deploy SDK sits in its folder."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[types.ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != "monai":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not _has_deploy(spec):
            return spec
        spec.loader = _MonaiInitLoader(spec.loader)
        return spec


def _has_deploy(spec: importlib.machinery.ModuleSpec) -> bool:
    return any((Path(folder) / "deploy").is_dir() for folder in spec.submodule_search_locations or ())


def install() -> None:
    """Guard the next ``import monai`` (no-op once monai is imported or the guard is in place)."""
    if "monai" in sys.modules or any(isinstance(finder, _MonaiFinder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _MonaiFinder())
