"""The files of a ``prepare`` source: a folder (walked recursively, sorted) or a zip read with the standard library.

Zip members whose names would land outside the archive (absolute, drive letters, ``..``) or that declare more than
``MAX_MEMBER_BYTES`` are never read; they are returned as skipped with the reason, like every other file that is not
used. A member is read only up to its declared size (``zipfile`` checks the size and CRC).
"""
from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, List, Tuple

from medigan_zoo.core.errors import ZooError

#: largest zip member read (declared unpacked size); a larger one is skipped with the reason, never inflated
MAX_MEMBER_BYTES = 2 * 1024 ** 3


@dataclass(frozen=True)
class SourceFile:
    """One file of the source: its posix path relative to the source root and a reader of its bytes."""

    name: str
    read: Callable[[], bytes]

    @property
    def parts(self) -> Tuple[str, ...]:
        return PurePosixPath(self.name).parts


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _unsafe_member(name: str) -> bool:
    posix = PurePosixPath(name.replace("\\", "/"))
    return posix.is_absolute() or bool(re.match(r"^[A-Za-z]:", name)) or ".." in posix.parts


def list_source(src: Path) -> Tuple[str, List[SourceFile], List[Tuple[str, str]]]:
    """(kind "folder" or "zip", the files sorted by name, skipped (name, reason) pairs) of ``src``.

    Raises ZooError (one line) when ``src`` is neither a folder nor a readable zip.
    """
    src = Path(src).expanduser()
    if src.is_dir():
        files = sorted((p for p in src.rglob("*") if p.is_file()), key=lambda p: p.relative_to(src).as_posix())
        return "folder", [SourceFile(p.relative_to(src).as_posix(), p.read_bytes) for p in files], []
    if src.is_file() and zipfile.is_zipfile(src):
        return ("zip",) + _zip_members(src)
    if src.exists():
        raise ZooError(f"prepare: {src} is neither a folder nor a zip file; pass a folder of images (or one "
                       "sub-folder per class) or a zip of one.")
    raise ZooError(f"prepare: {src} does not exist; pass a folder of images or a zip of one.")


def _zip_members(src: Path) -> Tuple[List[SourceFile], List[Tuple[str, str]]]:
    try:
        with zipfile.ZipFile(src) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as err:
        raise ZooError(f"prepare: cannot read the zip {src}: {err}.") from None
    files, skipped = [], []
    for info in sorted(infos, key=lambda i: i.filename):
        if _unsafe_member(info.filename):
            skipped.append((info.filename, "zip member would be written outside the archive (absolute path or "
                                           "'..'); not read"))
            continue
        if info.file_size > MAX_MEMBER_BYTES:
            skipped.append((info.filename, f"zip member unpacks to {info.file_size:,} bytes, more than the "
                                           f"{MAX_MEMBER_BYTES:,} read per file; not read"))
            continue
        files.append(SourceFile(info.filename, _member_reader(src, info.filename)))
    return files, skipped


def _member_reader(src: Path, name: str) -> Callable[[], bytes]:
    def read() -> bytes:
        with zipfile.ZipFile(src) as zf:
            return zf.read(name)
    return read
