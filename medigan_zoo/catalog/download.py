"""Fetch a catalog model's bundle: offline-first cache, sha256-verified, immutable per hash/revision, bounded.

A catalog entry's ``download`` names a source kind in ``format``; each kind is one ``register_source`` block at
the end of this module:

- ``monai-bundle-zip``: a zip of a MONAI bundle at an http(s) ``url``, pinned by ``sha256``.
- ``local-zip``: the same from a local file (``url`` is a path or ``file://`` URL), pinned by ``sha256``.
- ``hf-hub``: a Hugging Face Hub repo ``url`` = ``hf://owner/name`` at an immutable ``revision`` (a commit hash),
  via ``huggingface_hub.snapshot_download``; the local Hugging Face cache is tried first.
- ``medigan-zip``: a medigan model package. It is not a MONAI bundle and runs medigan's own Python code, which
  the zoo never imports; convert it to a bundle first.

Every transfer is bounded (``DownloadLimits``): a timeout for connecting and for each read, a maximum download
size (``download.max_bytes`` of the entry, default ``DEFAULT_MAX_BYTES``), and for zips a maximum unpacked size
and member count; members that would land outside the bundle folder are refused. Everything happens in a
``.partial-<pid>-*`` folder beside the cache entry, removed on any failure (and, when its process is gone, by the
next download), and moved into place only once complete. A verified bundle gets ``VERIFIED_MARKER`` at its root,
which the trust policy reads.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Mapping, Optional

from medigan_zoo.catalog.model_info import ModelInfo
from medigan_zoo.core.errors import BundleNotAvailableError, ZooError
from medigan_zoo.core.files import file_sha256, pid_alive
from medigan_zoo.core.paths import find_bundles, zoo_home

#: largest download accepted unless the catalog entry declares ``download.max_bytes`` (2 GiB)
DEFAULT_MAX_BYTES = 2 * 1024 ** 3
#: largest total unpacked size of a zip unless the entry declares ``download.max_unpacked_bytes`` (8 GiB)
DEFAULT_MAX_UNPACKED_BYTES = 8 * 1024 ** 3
#: most members a zip may have unless the entry declares ``download.max_members``
DEFAULT_MAX_MEMBERS = 10_000
#: seconds to wait for a connection and for each read (override with MEDIGAN_ZOO_DOWNLOAD_TIMEOUT)
DEFAULT_TIMEOUT_S = 60.0
ENV_TIMEOUT = "MEDIGAN_ZOO_DOWNLOAD_TIMEOUT"
#: written at the root of a bundle whose download was verified against its catalog pin
VERIFIED_MARKER = ".medigan_zoo_verified.json"

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_PARTIAL = re.compile(r"^\.partial-(?P<pid>\d+)-")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DownloadLimits:
    """Bounds of one download: seconds per connect/read, bytes fetched, bytes unpacked, zip members."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    max_bytes: int = DEFAULT_MAX_BYTES
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS

    @classmethod
    def for_entry(cls, source: Mapping[str, Any]) -> "DownloadLimits":
        """The defaults, with the entry's ``max_bytes`` / ``max_unpacked_bytes`` / ``max_members`` and the
        MEDIGAN_ZOO_DOWNLOAD_TIMEOUT environment variable applied."""
        timeout = DEFAULT_TIMEOUT_S
        raw = os.environ.get(ENV_TIMEOUT, "").strip()
        if raw:
            try:
                timeout = float(raw)
                assert timeout > 0
            except (ValueError, AssertionError):
                raise ZooError(f"{ENV_TIMEOUT} must be a number of seconds > 0, got {raw!r}.") from None
        return cls(timeout_s=timeout,
                   max_bytes=int(source.get("max_bytes") or DEFAULT_MAX_BYTES),
                   max_unpacked_bytes=int(source.get("max_unpacked_bytes") or DEFAULT_MAX_UNPACKED_BYTES),
                   max_members=int(source.get("max_members") or DEFAULT_MAX_MEMBERS))


@dataclass(frozen=True)
class Fetched:
    """What a source kind verified: the archive's sha256 and/or the pinned revision."""

    sha256: Optional[str] = None
    revision: Optional[str] = None


#: (model id, the entry's download block, staging folder, limits, progress) -> Fetched; the bundle goes to
#: ``staging / "bundle"`` (the bundle itself or a folder holding it)
Fetch = Callable[[str, Mapping[str, Any], Path, DownloadLimits, bool], Fetched]


@dataclass(frozen=True)
class SourceKind:
    """One kind of download source, named by a catalog entry's ``download.format``."""

    name: str
    fetch: Fetch
    description: str


SOURCES: Dict[str, SourceKind] = {}


def register_source(kind: SourceKind) -> SourceKind:
    if kind.name in SOURCES:
        raise ValueError(f"download source kind {kind.name!r} already registered")
    SOURCES[kind.name] = kind
    return kind


# --- the cache -----------------------------------------------------------------------------------------

def bundle_cache_root() -> Path:
    """Where downloaded bundles live: MEDIGAN_ZOO_HOME/bundles/<id>/<pin>/."""
    return zoo_home() / "bundles"


def _pin(info: ModelInfo) -> str:
    source = info.download or {}
    return str(source.get("sha256") or source.get("revision") or "unpinned")[:16]


def cached_bundle(info: ModelInfo) -> Optional[Path]:
    """The already-downloaded bundle of ``info`` (offline), or None."""
    target = bundle_cache_root() / info.id / _pin(info)
    if (target / ".complete").is_file():
        found = find_bundles(target / "bundle")
        return found[0] if found else None
    return None


def remove_stale_partials(folder: Path) -> int:
    """Delete ``.partial-<pid>-*`` folders in ``folder`` whose process is gone (killed downloads); return how
    many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = _PARTIAL.match(entry.name)
        if match and not pid_alive(int(match["pid"])):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def fetch_bundle(info: ModelInfo, progress: bool = True) -> Path:
    """Return the bundle folder of a catalog model, downloading and verifying it if it is not cached.

    Raises ZooError (one line) for every failure: no or unknown source, unpinned source, timeout, too large,
    wrong sha256, not a zip, unsafe or oversized zip, no bundle inside. Nothing is left in the cache then.
    """
    if info.bundle_dir is not None:
        return info.bundle_dir
    cached = cached_bundle(info)
    if cached is not None:
        return cached
    source = dict(info.download or {})
    url, name = source.get("url"), source.get("format", "monai-bundle-zip")
    if not url:
        raise BundleNotAvailableError(f"Model {info.id!r} has no download source in {info.origin}.")
    kind = SOURCES.get(name)
    if kind is None:
        raise ZooError(f"Unknown download format {name!r} for {info.id!r} in {info.origin}; "
                       f"use one of {', '.join(SOURCES)}.")
    limits = DownloadLimits.for_entry(source)
    target = bundle_cache_root() / info.id / _pin(info)
    parent = _mkdir(target.parent)
    remove_stale_partials(parent)
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{os.getpid()}-", dir=parent))
    try:
        fetched = kind.fetch(info.id, source, staging, limits, progress)
        found = find_bundles(staging / "bundle")
        if not found:
            raise ZooError(f"The download of {info.id!r} from {url} holds no MONAI bundle (no configs/metadata.json).")
        _write_marker(found[0], fetched, url, name)
        (staging / ".complete").write_text(url + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)  # atomic publish: a cache entry is complete or absent
    except OSError as err:
        raise ZooError(f"Download of {info.id!r} failed: {err.strerror or err} ({getattr(err, 'filename', '')}).") \
            from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        if not target.exists():
            with contextlib.suppress(OSError):
                parent.rmdir()  # only when empty: no trace of a failed first download
    return find_bundles(target / "bundle")[0]


def _write_marker(bundle: Path, fetched: Fetched, url: str, kind: str) -> None:
    marker = {"sha256": fetched.sha256, "source": url, "format": kind, "revision": fetched.revision,
              "verified_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (bundle / VERIFIED_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def read_marker(bundle: Path) -> Optional[Dict[str, Any]]:
    """The verification marker of a downloaded bundle, or None (absent or unreadable)."""
    try:
        data = json.loads((Path(bundle) / VERIFIED_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _mkdir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ZooError(f"Cannot create the download cache {path}: {err.strerror or err}. Set MEDIGAN_ZOO_HOME to a "
                       "writable folder.") from None
    return path


def _mib(n: int) -> str:
    return f"{n / 1024 ** 2:,.1f} MiB"


# --- transfers -----------------------------------------------------------------------------------------

def http_download(url: str, dest: Path, limits: DownloadLimits, progress: bool = False) -> str:
    """Stream ``url`` into ``dest`` within ``limits``; return the sha256 of the bytes. One-line ZooError on a
    timeout, an HTTP or network error, or more than ``limits.max_bytes`` (checked against Content-Length first)."""
    request = urllib.request.Request(url, headers={"User-Agent": "medigan_zoo"})
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=limits.timeout_s) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise ZooError(f"Refusing {url}: it is {_mib(int(declared))}, more than the {_mib(limits.max_bytes)} "
                               "allowed (raise download.max_bytes in the catalog entry if it is right).")
            bar = _progress_bar(progress, int(declared) if declared and declared.isdigit() else None, url)
            with open(dest, "wb") as fh:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limits.max_bytes:
                        raise ZooError(f"Refusing {url}: it sends more than the {_mib(limits.max_bytes)} allowed "
                                       "(raise download.max_bytes in the catalog entry if it is right).")
                    digest.update(chunk)
                    fh.write(chunk)
                    bar(len(chunk))
    except ZooError:
        raise
    except urllib.error.HTTPError as err:
        raise ZooError(f"Download of {url} failed: HTTP {err.code} {err.reason}.") from None
    except (socket.timeout, TimeoutError):
        raise ZooError(f"Download of {url} failed: no answer within {limits.timeout_s:g} s (set "
                       f"{ENV_TIMEOUT} to wait longer).") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, (socket.timeout, TimeoutError)):
            raise ZooError(f"Download of {url} failed: no answer within {limits.timeout_s:g} s (set "
                           f"{ENV_TIMEOUT} to wait longer).") from None
        raise ZooError(f"Download of {url} failed: {err.reason}.") from None
    except (OSError, ValueError) as err:  # connection reset, bad URL, http.client errors
        raise ZooError(f"Download of {url} failed: {type(err).__name__}: {err}.") from None
    return digest.hexdigest()


def _progress_bar(enabled: bool, total: Optional[int], url: str) -> Callable[[int], None]:
    if not enabled:
        return lambda n: None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return lambda n: None
    bar = tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1][:40], leave=False)
    return bar.update


def _check_sha256(actual: str, pinned: str, where: str) -> None:
    if actual != pinned.lower():
        raise ZooError(f"Refusing {where}: its sha256 is {actual}, the catalog pins {pinned}; nothing was kept.")


def _member_path(name: str, out: Path) -> Path:
    """Where zip member ``name`` goes under ``out``; absolute names, drive letters and ``..`` are refused."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or re.match(r"^[A-Za-z]:", name) or ".." in posix.parts:
        raise ZooError(f"Refusing the archive: member {name!r} would be written outside the bundle folder.")
    target = (out / Path(*posix.parts)) if posix.parts else out
    if not target.resolve().is_relative_to(out.resolve()):
        raise ZooError(f"Refusing the archive: member {name!r} would be written outside the bundle folder.")
    return target


def safe_extract(archive: Path, out: Path, limits: DownloadLimits, where: str = "") -> None:
    """Unpack ``archive`` into ``out`` within ``limits`` (member count, declared and actual unpacked bytes),
    refusing members outside ``out``. One-line ZooError for a file that is not a zip or a damaged one."""
    where = where or str(archive)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > limits.max_members:
                raise ZooError(f"Refusing {where}: {len(members):,} members, more than the {limits.max_members:,} "
                               "allowed (download.max_members in the catalog entry).")
            targets = [_member_path(m.filename, out) for m in members]
            declared = sum(m.file_size for m in members)
            if declared > limits.max_unpacked_bytes:
                raise ZooError(f"Refusing {where}: it unpacks to {_mib(declared)}, more than the "
                               f"{_mib(limits.max_unpacked_bytes)} allowed (download.max_unpacked_bytes).")
            written = 0
            for member, target in zip(members, targets):
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as dst:
                    for chunk in iter(lambda: src.read(_CHUNK), b""):
                        written += len(chunk)
                        if written > limits.max_unpacked_bytes:  # sizes in the headers can lie
                            raise ZooError(f"Refusing {where}: it unpacks to more than the "
                                           f"{_mib(limits.max_unpacked_bytes)} allowed (download.max_unpacked_bytes).")
                        dst.write(chunk)
    except zipfile.BadZipFile as err:
        raise ZooError(f"Refusing {where}: not a valid zip file ({err}).") from None
    except (NotImplementedError, RuntimeError, EOFError, ValueError) as err:  # unsupported/encrypted/truncated
        raise ZooError(f"Refusing {where}: cannot unpack it ({type(err).__name__}: {err}).") from None


# --- the source kinds ----------------------------------------------------------------------------------

def _require_sha256(source: Mapping[str, Any], url: str) -> str:
    sha256 = source.get("sha256")
    if not sha256:
        raise ZooError(f"Refusing to download {url}: the catalog pins no sha256. Add the archive's sha256 to the "
                       "catalog entry's download.sha256.")
    return str(sha256)


def _fetch_url_zip(model_id: str, source: Mapping[str, Any], staging: Path, limits: DownloadLimits,
                   progress: bool) -> Fetched:
    url = str(source["url"])
    sha256 = _require_sha256(source, url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ZooError(f"Refusing {url}: monai-bundle-zip downloads over http(s); use format local-zip for a file.")
    archive = staging / "bundle.zip"
    _check_sha256(http_download(url, archive, limits, progress), sha256, url)
    safe_extract(archive, staging / "bundle", limits, where=url)
    archive.unlink()
    return Fetched(sha256=sha256.lower())


def _local_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path))
    return Path(url).expanduser()


def _fetch_local_zip(model_id: str, source: Mapping[str, Any], staging: Path, limits: DownloadLimits,
                     progress: bool) -> Fetched:
    url = str(source["url"])
    sha256 = _require_sha256(source, url)
    path = _local_path(url)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ZooError(f"Cannot read {path} (download of {model_id!r}): {err.strerror or err}.") from None
    if size > limits.max_bytes:
        raise ZooError(f"Refusing {path}: it is {_mib(size)}, more than the {_mib(limits.max_bytes)} allowed "
                       "(raise download.max_bytes in the catalog entry if it is right).")
    _check_sha256(file_sha256(path), sha256, str(path))
    safe_extract(path, staging / "bundle", limits, where=str(path))
    return Fetched(sha256=sha256.lower())


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def _fetch_hf(model_id: str, source: Mapping[str, Any], staging: Path, limits: DownloadLimits,
              progress: bool) -> Fetched:
    url = str(source["url"])
    repo_id, revision = url.removeprefix("hf://"), source.get("revision")
    if not revision or not _COMMIT.match(str(revision)):
        raise ZooError(f"Refusing to download {url}: pin download.revision to a 40-character commit hash "
                       "(branches and tags can change).")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ZooError(f"Model {model_id!r} is on the Hugging Face Hub; install huggingface_hub to fetch it.") \
            from None
    try:
        path = snapshot_download(repo_id, revision=revision, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the local cache: go online
        path = None
    if path is None:
        try:
            path = snapshot_download(repo_id, revision=revision)
        except Exception as err:  # noqa: BLE001 - offline, unknown repo/revision, network: all for the user
            offline = " (HF_HUB_OFFLINE is set and the revision is not in the local cache)" \
                if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on") else ""
            raise ZooError(f"Cannot fetch {url} at {revision[:12]} from the Hugging Face Hub{offline}: "
                           f"{_first_line(err)}.") from None
    total = sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
    if total > limits.max_bytes:
        raise ZooError(f"Refusing {url}: it is {_mib(total)}, more than the {_mib(limits.max_bytes)} allowed "
                       "(raise download.max_bytes in the catalog entry if it is right).")
    shutil.copytree(path, staging / "bundle")
    return Fetched(revision=str(revision))


def _refuse_medigan(model_id: str, source: Mapping[str, Any], staging: Path, limits: DownloadLimits,
                    progress: bool) -> Fetched:
    raise BundleNotAvailableError(
        f"Model {model_id!r} is a medigan package ({source.get('url')}), not a MONAI bundle; the zoo does not run "
        "medigan's packaged Python code. Convert it to a bundle (docs/bundle_contract.md) and pass it with "
        "--bundle_dirs.")


register_source(SourceKind("monai-bundle-zip", _fetch_url_zip,
                           "a zipped MONAI bundle at an http(s) URL, pinned by sha256"))
register_source(SourceKind("local-zip", _fetch_local_zip,
                           "a zipped MONAI bundle in a local file (path or file:// URL), pinned by sha256"))
register_source(SourceKind("hf-hub", _fetch_hf,
                           "a Hugging Face Hub repo hf://owner/name at a pinned 40-character commit revision"))
register_source(SourceKind("medigan-zip", _refuse_medigan,
                           "a medigan package: listed for search, never downloaded or run"))
