"""The manifest of an output folder: which file is which sample, made how, by which weights.

``manifest.json`` (the header) holds the run's parameters; ``manifest.jsonl`` one JSON line per file. While a run
goes on, every process appends to its own part file under ``.manifest-parts/`` (held with an exclusive ``flock``);
parts are merged into ``manifest.jsonl`` at the end under ``.manifest.lock``. A part whose lock can be taken
belongs to a finished or killed process and is folded in and deleted; a part still locked is read but kept.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from medigan_zoo.core.errors import GenerationError
from medigan_zoo.core.files import file_digest
from medigan_zoo.core.paths import as_output_path
from medigan_zoo.engine.formats import HOST, as_generation_error, atomic_write, check_writable

fcntl: Optional[ModuleType]
try:
    import fcntl
except ImportError:  # Windows: no advisory locks; parts of other processes are then never deleted
    fcntl = None

HEADER = "manifest.json"
LINES = "manifest.jsonl"
PARTS = ".manifest-parts"
LOCK = ".manifest.lock"

# header keys that must match for a second run to add to (or resume) the files of a first one
RUN_KEYS = ("model_id", "version", "weights_sha256", "seed", "output_format", "bit_depth", "conditions",
            "options", "split_by_condition", "file_pattern", "inputs")
#: values of run keys that headers written before the key existed stand for
RUN_KEY_DEFAULTS: Dict[str, Any] = {"options": {}, "inputs": None}


#: names the zoo itself leaves while a run starts (write probes, the header being written, temporary files)
_ZOO_TEMPORARY = re.compile(r"^\.(write_probe|manifest)|~tmp~")


def output_folder(output_path: Any) -> Path:
    """The output folder of a ``generate`` run, checked before any work: a path value (not empty, not a number),
    creatable and writable, and either empty or a zoo output folder (one with a ``manifest.json``).

    A non-empty folder without a zoo manifest holds someone's own files: it is refused, naming what is there,
    so that no user file is ever written over.
    """
    folder = as_output_path(output_path).resolve()
    if folder.exists() and not folder.is_dir():
        raise GenerationError(f"output_path {folder} is a file, not a folder; choose a folder for the samples.")
    if folder.is_dir() and not (folder / HEADER).is_file():
        try:
            names = sorted(os.listdir(folder))
        except OSError as err:
            raise GenerationError(f"Cannot read output folder {folder}: {err.strerror or err}. "
                                  "Choose a readable, writable output_path.") from None
        names = [n for n in names if not _ZOO_TEMPORARY.search(n)]  # another process of this run, starting
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise GenerationError(f"output_path {folder} already holds files that are not a zoo output folder "
                                  f"(no {HEADER}): {shown}. Choose an empty or new folder; the zoo never writes "
                                  "over files it did not make.")
    check_writable(folder)
    return folder


def holds_only_run_records(folder: Path) -> bool:
    """True when ``folder`` holds nothing but what a run writes before its first sample: the header, manifest
    lines without records, manifest parts, locks, probes, temporary files and empty sub-folders."""
    for path in folder.rglob("*"):
        if path.is_dir():
            continue
        rel = path.relative_to(folder)
        if rel.parts[0] == PARTS or _ZOO_TEMPORARY.search(rel.name) or rel.as_posix() == HEADER:
            if rel.parts[0] == PARTS and path.stat().st_size > 0:
                return False  # records of finished samples
            continue
        if rel.as_posix() == LINES and path.stat().st_size == 0:
            continue
        return False
    return True


def remove_unused_folder(folder: Path, keep_folder: bool = False) -> bool:
    """Remove what a run that failed before writing a sample left in ``folder`` (the folder itself too, unless
    ``keep_folder``: it existed, empty, before the run), when it holds only what :func:`holds_only_run_records`
    allows; returns whether anything was removed. Never removes a sample or a user's file."""
    import shutil

    if not folder.is_dir() or not holds_only_run_records(folder):
        return False
    if not keep_folder:
        shutil.rmtree(folder, ignore_errors=True)
        return not folder.exists()
    for child in list(folder.iterdir()):
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                child.unlink()
    return True


def ensure_header(folder: Path, header: Mapping[str, Any]) -> Dict[str, Any]:
    """Write ``header`` unless the folder has one; return the folder's header.

    A folder that holds a run with other parameters raises GenerationError naming the differences.
    """
    path = folder / HEADER
    text = json.dumps(header, indent=2, default=str) + "\n"
    if not path.exists():
        tmp = folder / f".{HEADER}~{HOST}~{os.getpid()}~{uuid.uuid4().hex[:8]}"
        try:
            tmp.write_text(text, encoding="utf-8")
            try:
                os.link(tmp, path)  # atomic create-if-absent, with the whole content
            except FileExistsError:
                pass
            except OSError:  # file systems without hard links
                with contextlib.suppress(FileExistsError), open(path, "x", encoding="utf-8") as fh:
                    fh.write(text)
        except OSError as err:
            raise as_generation_error(err, path) from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise GenerationError(f"{path} is unreadable ({err}); remove it or choose another output_path.") from None
    expected = json.loads(json.dumps({k: header.get(k) for k in RUN_KEYS}, default=str))
    there = {k: existing.get(k, RUN_KEY_DEFAULTS.get(k)) for k in RUN_KEYS}
    diffs = [f"{k}: {there[k]!r} there, {expected[k]!r} now" for k in RUN_KEYS if there[k] != expected[k]]
    if diffs:
        raise GenerationError(f"{folder} already holds samples generated with other parameters ({'; '.join(diffs)}). "
                              "Use another output_path, or the same parameters to resume that run.")
    return existing


def _records(path: Path) -> Iterator[Dict[str, Any]]:
    """Records of a manifest file; a torn last line (a killed writer) is skipped."""
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("index"), int):
                    yield rec
    except FileNotFoundError:
        return


def _paths(folder: Path, rec: Mapping[str, Any]) -> List[Path]:
    return [folder / rec[k] for k in rec if (k == "file" or k.endswith("_file")) and rec.get(k)]


def file_fields(folder: Path, key: str, relative: str) -> Dict[str, Any]:
    """The manifest fields of one written file: ``file``/``size``/``sha256`` for key "file", ``mask_file``/
    ``mask_size``/``mask_sha256`` for key "mask_file"."""
    size, sha = file_digest(folder / relative)
    prefix = key[: -len("file")]
    return {key: relative, f"{prefix}size": size, f"{prefix}sha256": sha}


def intact(folder: Path, rec: Mapping[str, Any]) -> bool:
    """Every file of ``rec`` is on disk with the recorded size and sha256 (records of older runs, without them,
    are checked for presence only)."""
    for key in [k for k in rec if (k == "file" or k.endswith("_file")) and rec.get(k)]:
        path = folder / rec[key]
        prefix = key[: -len("file")]
        size, sha = rec.get(f"{prefix}size"), rec.get(f"{prefix}sha256")
        try:
            if size is not None and path.stat().st_size != size:
                return False
            if not path.is_file() or (sha is not None and file_digest(path)[1] != sha):
                return False
        except OSError:
            return False
    return True


def finished(folder: Path) -> Dict[int, Dict[str, Any]]:
    """Samples already done in ``folder``: listed in the manifest (or a part) with their files on disk and
    unchanged (same size and sha256 as recorded); a missing, truncated or altered file makes its sample pending."""
    done: Dict[int, Dict[str, Any]] = {}
    sources = [folder / LINES] + sorted((folder / PARTS).glob("part-*.jsonl"))
    for source in sources:
        for rec in _records(source):
            done[rec["index"]] = rec
    return {i: r for i, r in done.items() if intact(folder, r)}


def _flock(fh: Any, blocking: bool) -> Optional[bool]:
    """Take an exclusive flock: True when held, False when another process holds it, None when this file system
    (or OS) has no locks."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:  # e.g. ENOLCK on an NFS mount without a lock daemon
        return None
    return True


class ManifestPart:
    """This process's part file: records appended (and flushed) after their files are in place."""

    def __init__(self, folder: Path, tag: str = ""):
        self.folder = folder
        parts = folder / PARTS
        try:
            parts.mkdir(exist_ok=True)
            name = f"part-{HOST}-{os.getpid()}-{tag}{uuid.uuid4().hex[:8]}.jsonl"
            tmp = parts / f".{name}"
            self._fh = open(tmp, "a", encoding="utf-8")
            _flock(self._fh, blocking=True)
            os.replace(tmp, parts / name)  # visible to mergers only once locked
        except OSError as err:
            raise as_generation_error(err, parts / "part.jsonl") from None
        self.path = parts / name

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        if not records:
            return
        try:
            self._fh.write("".join(json.dumps(r, default=str) + "\n" for r in records))
            self._fh.flush()
        except OSError as err:
            raise as_generation_error(err, self.path) from None

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()  # releases the lock


def merge(folder: Path, own_part: Optional[Path] = None) -> Tuple[Path, int]:
    """Fold every part into ``manifest.jsonl`` (one line per index, sorted, only files present); return its path
    and number of lines. ``own_part`` (closed) and parts of finished or killed processes (their lock is free) are
    deleted; parts of running processes, or of any process where locks are unavailable, are kept."""
    lines_path = folder / LINES
    try:
        with open(folder / LOCK, "a+b") as lock, contextlib.ExitStack() as held:
            _flock(lock, blocking=True)  # without locks (None) the merge goes on; the parts stay
            records: Dict[int, Dict[str, Any]] = {r["index"]: r for r in _records(lines_path)}
            finished_parts = []
            for part in sorted((folder / PARTS).glob("part-*.jsonl")):
                fh = held.enter_context(open(part, "a+b"))
                if part == own_part or _flock(fh, blocking=False):
                    finished_parts.append(part)
                for rec in _records(part):
                    records[rec["index"]] = rec
            kept = [records[i] for i in sorted(records) if all(p.is_file() for p in _paths(folder, records[i]))]
            text = "".join(json.dumps(r, default=str) + "\n" for r in kept)
            atomic_write(lines_path, lambda p: p.write_text(text, encoding="utf-8"))
            for part in finished_parts:
                part.unlink()
            with contextlib.suppress(OSError):
                (folder / PARTS).rmdir()
    except OSError as err:
        raise as_generation_error(err, lines_path) from None
    return lines_path, len(kept)
