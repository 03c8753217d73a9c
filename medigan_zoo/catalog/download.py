"""Fetch a catalog model's bundle: offline-first cache, sha256-verified, immutable per hash/revision.

Sources (a catalog entry's ``download``):
- ``monai-bundle-zip``: a zip of a MONAI bundle at ``url``, pinned by ``sha256`` (MONAI's ``download_url`` and
  ``extractall`` do the transfer, hash check and unpacking). Unpinned archives are refused.
- ``hf-hub``: a Hugging Face Hub repo ``url`` = ``hf://owner/name`` at an immutable ``revision`` (a commit hash),
  via ``huggingface_hub.snapshot_download``; the local cache is tried first.
- ``medigan-zip``: a medigan model package. It is not a MONAI bundle and runs medigan's own Python code, which
  the zoo never imports; convert it to a bundle first.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from medigan_zoo.core.errors import BundleNotAvailableError, ZooError
from medigan_zoo.catalog.model_info import ModelInfo
from medigan_zoo.core.paths import find_bundles, zoo_home

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


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


def fetch_bundle(info: ModelInfo, progress: bool = True) -> Path:
    """Return the bundle folder of a catalog model, downloading and verifying it if it is not cached."""
    if info.bundle_dir is not None:
        return info.bundle_dir
    cached = cached_bundle(info)
    if cached is not None:
        return cached
    source = dict(info.download or {})
    url, kind = source.get("url"), source.get("format", "monai-bundle-zip")
    if not url:
        raise BundleNotAvailableError(f"Model {info.id!r} has no download source in {info.origin}.")
    if kind == "medigan-zip":
        raise BundleNotAvailableError(
            f"Model {info.id!r} is a medigan package ({url}), not a MONAI bundle; the zoo does not run medigan's "
            "packaged Python code. Convert it to a bundle (docs/bundle_contract.md) and pass it with --bundle_dirs.")
    target = bundle_cache_root() / info.id / _pin(info)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=_mkdir(target.parent)))
    try:
        if kind == "hf-hub":
            _fetch_hf(url, source.get("revision"), staging / "bundle")
        elif kind == "monai-bundle-zip":
            _fetch_zip(url, source.get("sha256"), staging, progress)
        else:
            raise ZooError(f"Unknown download format {kind!r} for {info.id!r} in {info.origin}; "
                           "use monai-bundle-zip, hf-hub or medigan-zip.")
        if not find_bundles(staging / "bundle"):
            raise ZooError(f"The download of {info.id!r} from {url} holds no MONAI bundle (no configs/metadata.json).")
        (staging / ".complete").write_text(url + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)  # atomic publish: a cache entry is complete or absent
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return find_bundles(target / "bundle")[0]


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fetch_zip(url: str, sha256: Optional[str], staging: Path, progress: bool) -> None:
    if not sha256:
        raise ZooError(f"Refusing to download {url}: the catalog pins no sha256. Add the archive's sha256 to the "
                       "catalog entry's download.sha256.")
    from monai.apps.utils import download_url, extractall

    archive = staging / "bundle.zip"
    try:
        download_url(url, filepath=archive, hash_val=sha256, hash_type="sha256", progress=progress)
    except Exception as err:  # noqa: BLE001 - network errors and hash mismatches, both for the user
        raise ZooError(f"Download of {url} failed: {err}") from None
    extractall(archive, output_dir=staging / "bundle", hash_val=sha256, hash_type="sha256", has_base=False)
    archive.unlink()


def _fetch_hf(url: str, revision: Optional[str], out: Path) -> None:
    repo_id = url.removeprefix("hf://")
    if not revision or not _COMMIT.match(revision):
        raise ZooError(f"Refusing to download {url}: pin download.revision to a 40-character commit hash "
                       "(branches and tags can change).")
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(repo_id, revision=revision, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached yet: go online
        path = snapshot_download(repo_id, revision=revision)
    shutil.copytree(path, out)
