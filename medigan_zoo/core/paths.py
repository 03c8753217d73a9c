"""Where the zoo finds shipped bundles, schemas, extra bundle folders, catalogs and its cache."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

from medigan_zoo.core.errors import ZooError

PathLike = Union[str, os.PathLike]

#: extra bundle folders (a bundle, or a folder of bundles), separated by os.pathsep
ENV_BUNDLE_PATH = "MEDIGAN_ZOO_BUNDLE_PATH"
#: extra catalog JSON files, separated by os.pathsep
ENV_CATALOGS = "MEDIGAN_ZOO_CATALOGS"
#: root of the zoo's cache (downloads, default generation outputs); default ~/.cache/medigan_zoo
ENV_HOME = "MEDIGAN_ZOO_HOME"
#: the shared folder of real training / reference data sets (MedMNIST npz files, brain MRI slices)
ENV_DATA = "MEDIGAN_ZOO_DATA"

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the medigan_zoo package folder


def _installed_or_source(installed: str, source: str) -> Path:
    """An installed wheel ships data under the package; a source checkout has it beside the package."""
    packaged = _PACKAGE_DIR / installed
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent / source


def source_checkout_data_dir() -> Path:
    """``../shared/data`` beside a source checkout of the repository (it exists only there)."""
    return _PACKAGE_DIR.parent.parent / "shared" / "data"


def default_data_dir(path: Optional[PathLike] = None) -> Path:
    """The shared data folder: ``path``, else ``$MEDIGAN_ZOO_DATA``, else the source checkout's ``../shared/data``
    when that folder exists.

    Raises ZooError when none is given and there is no such folder (an installed wheel has none): the message
    names the argument and the environment variable to set. Bundle ``train.json`` files use this as the default
    of their ``data_dir`` id.
    """
    if path:
        return Path(path).expanduser()
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    checkout = source_checkout_data_dir()
    if checkout.is_dir():
        return checkout
    raise ZooError(f"No shared data folder: pass --data_dir DIR (or set {ENV_DATA}=DIR) to the folder holding the "
                   f"real data sets (MedMNIST npz files such as pneumoniamnist.npz); the default {checkout} "
                   "exists only beside a source checkout.")


def builtin_bundles_root() -> Path:
    """Folder holding the bundles shipped with the zoo."""
    return _installed_or_source("_bundles", "bundles")


def schemas_root() -> Path:
    """Folder holding the JSON Schemas."""
    return _installed_or_source("_schemas", "schemas")


def is_bundle_dir(path: Path) -> bool:
    """A MONAI bundle has configs/metadata.json."""
    return (path / "configs" / "metadata.json").is_file()


def find_bundles(root: PathLike) -> List[Path]:
    """``root`` itself if it is a bundle, else its immediate sub-folders that are bundles (sorted)."""
    root = Path(root).expanduser()
    try:
        if is_bundle_dir(root):
            return [root.resolve()]
        if not root.is_dir():
            return []
        return sorted(p.resolve() for p in root.iterdir() if p.is_dir() and is_bundle_dir(p))
    except OSError as err:  # an unreadable folder: say which, as the zoo's other user errors do
        from medigan_zoo.core.errors import ZooError

        raise ZooError(f"Cannot read bundle folder {root}: {err.strerror or err}. Fix its permissions or leave "
                       "it out of --bundle_dirs / MEDIGAN_ZOO_BUNDLE_PATH.") from None


def split_env_paths(name: str) -> List[Path]:
    """Paths listed in environment variable ``name`` (os.pathsep separated, empty entries ignored)."""
    return [Path(p).expanduser() for p in os.environ.get(name, "").split(os.pathsep) if p.strip()]


def as_path_list(value: Optional[Union[PathLike, Sequence[PathLike]]]) -> List[Path]:
    """Accept None, one path, or a list of paths (fire passes comma lists as tuples)."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        parts: Iterable[PathLike] = [p for p in str(value).split(",") if p]
    else:
        parts = value
    return [Path(p).expanduser() for p in parts]


def zoo_home() -> Path:
    """Root of the zoo's cache; never the current directory."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "medigan_zoo"


def as_output_path(value: object, what: str = "output_path") -> Path:
    """``value`` as a user-given output path, or a GenerationError: empty text, numbers and other non-path values
    (fire turns ``--output_path 123`` into an int) are refused rather than guessed at."""
    from medigan_zoo.core.errors import GenerationError

    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        kind = "a number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__
        raise GenerationError(f"{what} must be a path, got {value!r} ({kind}); for a folder named like a number "
                              f"quote it twice on the command line, e.g. --{what} '\"{value}\"'.")
    text = os.fspath(value)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip():
        raise GenerationError(f"{what} is empty; name a folder (or file) to write to.")
    if "\0" in text:
        raise GenerationError(f"{what} contains a NUL character; name a real path.")
    return Path(text).expanduser()
