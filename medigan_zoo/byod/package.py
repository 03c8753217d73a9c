"""``medigan-zoo package``: a bundle that passes ``validate`` (static) becomes a reproducible zip, its sha256, and a
catalog that ``--catalogs`` accepts and ``medigan-zoo download`` verifies.

Invariant (tests/test_package.py): packaging the same files twice gives byte-identical zips. The zip holds the
bundle's files under ``<bundle id>/``, sorted by path, each with the timestamp ``ZIP_DATE_TIME``, permissions 0644,
Unix as creator system and deflate level 9; ``__pycache__``, ``*.pyc``, ``training_output`` folders, ``.git`` and the
zoo's download marker are left out (``EXCLUDED``). Nothing else about the machine or the time goes into the bytes.

Outputs in ``DIR``: ``<id>-<version>.zip``, ``<id>-<version>.zip.sha256`` (``sha256sum`` format) and
``<id>-<version>.catalog.json`` with one entry: the bundle's name, version, description and zoo block, and a
``download`` block pinning the zip by sha256 with size limits equal to the zip's own size, unpacked size and member
count. The entry's source is ``local-zip`` with the zip's absolute path unless ``url`` names where the zip will be
served (``http(s)://``: ``monai-bundle-zip``).
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from medigan_zoo.catalog.download import VERIFIED_MARKER, file_sha256
from medigan_zoo.catalog.model_info import ZOO_KEY
from medigan_zoo.catalog.schema import CATALOG_SCHEMA, check_schema
from medigan_zoo.core.errors import ZooError
from medigan_zoo.core.jsonio import load_json
from medigan_zoo.core.paths import builtin_bundles_root, is_bundle_dir

#: the timestamp of every member (the earliest a zip can store)
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
#: folder and file names never packaged
EXCLUDED = frozenset({"__pycache__", "training_output", ".git", ".ipynb_checkpoints", ".DS_Store", VERIFIED_MARKER})
PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class PackageResult:
    """The files ``package`` wrote and the zip's sha256."""

    zip_path: Path
    sha256: str
    sha256_path: Path
    catalog_path: Path
    members: int

    def lines(self) -> List[str]:
        return [f"zip: {self.zip_path} ({self.zip_path.stat().st_size:,} bytes, {self.members} files)",
                f"sha256: {self.sha256}", f"catalog entry: {self.catalog_path}",
                f"try it: {download_command(self.catalog_path)}"]


def download_command(catalog: Path) -> str:
    """The command that downloads the packaged bundle through its catalog (``--include_builtin False`` when the id
    is also a shipped bundle's, which would otherwise win)."""
    model_id = json.loads(catalog.read_text(encoding="utf-8"))["models"][0]["id"]
    hide = " --include_builtin False" if (builtin_bundles_root() / model_id).is_dir() else ""
    return f"medigan-zoo --catalogs {catalog}{hide} download {model_id}"


def bundle_files(bundle: Path) -> List[Path]:
    """The files packaged from ``bundle``, sorted by their posix path (``EXCLUDED`` names and ``*.pyc`` left out).

    A link is packaged as the file it points to when that lies inside the bundle; a link out of it raises ZooError
    (a package holds the bundle's own files only).
    """
    found = []
    root = bundle.resolve()
    for path in bundle.rglob("*"):
        rel = path.relative_to(bundle)
        if any(part in EXCLUDED for part in rel.parts) or path.suffix == ".pyc" or not path.is_file():
            continue
        if not path.resolve().is_relative_to(root):
            raise ZooError(f"package: {path} is a link to {path.resolve()}, outside the bundle; copy the file into "
                           "the bundle (a package holds the bundle's own files only).")
        found.append(path)
    return sorted(found, key=lambda p: p.relative_to(bundle).as_posix())


def write_reproducible_zip(bundle: Path, files: List[Path], dest: Path, prefix: str) -> int:
    """Write ``files`` of ``bundle`` into ``dest`` as ``prefix/<path>`` (module docstring); return the member
    count."""
    with zipfile.ZipFile(dest, "w") as zf:
        for path in files:
            info = zipfile.ZipInfo(f"{prefix}/{path.relative_to(bundle).as_posix()}", date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the machine
            info.external_attr = (0o100644 & 0xFFFF) << 16
            zf.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return len(files)


def check_valid(bundle: Path, verb: str = "package", before: str = "before packaging.") -> None:
    """Refuse (one line, naming ``verb``) a folder that is not a bundle or does not pass ``validate``; ``before``
    ends the message (what the fix comes before)."""
    from medigan_zoo.runtime.validate import validate

    if not is_bundle_dir(bundle):
        raise ZooError(f"{verb}: {bundle} is not a bundle folder (no configs/metadata.json); pass the folder that "
                       "holds configs/, models/ and docs/.")
    report = validate(bundle)
    if report.failed:
        errors = report.errors
        raise ZooError(f"{verb}: {bundle} does not pass validate ({len(errors)} error(s); first: {errors[0]}); run "
                       f"`medigan-zoo validate {bundle}` and fix them {before}")


def catalog_entry(metadata: Dict[str, Any], model_id: str, url: str, sha256: str, zip_bytes: int,
                  unpacked_bytes: int, members: int) -> Dict[str, Any]:
    """A one-model catalog (schemas/catalog.schema.json) pinning the zip at ``url`` by ``sha256``."""
    kind = "monai-bundle-zip" if url.startswith(("http://", "https://")) else "local-zip"
    return {"catalog_format": "medigan_zoo.catalog/1", "name": f"{model_id} (medigan-zoo package)",
            "models": [{"id": model_id, "name": str(metadata.get("name") or model_id),
                        "version": str(metadata.get("version") or "0.0.0"),
                        "description": str(metadata.get("description") or ""),
                        "zoo": metadata[ZOO_KEY],
                        "download": {"url": url, "sha256": sha256, "format": kind, "max_bytes": zip_bytes,
                                     "max_unpacked_bytes": max(unpacked_bytes, 1), "max_members": members}}]}


def package(bundle: PathLike, output: PathLike, url: Optional[str] = None,
            model_id: Optional[str] = None) -> PackageResult:
    """Validate ``bundle``, then write its reproducible zip, sha256 file and catalog into ``output``.

    ``model_id`` names the catalog entry (default: the bundle folder's name, its id in the zoo); ``url`` is where the
    zip will be served (default: the zip's absolute path, source kind ``local-zip``). Raises ZooError (one line) for
    an invalid bundle or an unwritable output; an existing zip of the same name is replaced atomically.
    """
    bundle = Path(bundle).expanduser().resolve()
    check_valid(bundle)
    metadata = load_json(bundle / "configs" / "metadata.json", "bundle metadata")
    if not isinstance(metadata.get(ZOO_KEY), dict):
        raise ZooError(f"package: {bundle / 'configs' / 'metadata.json'} has no {ZOO_KEY!r} block, which the catalog "
                       "entry is made of; add one (docs/bundle_contract.md) and run `medigan-zoo validate`.")
    files = bundle_files(bundle)  # before anything is written: a link out of the bundle stops here
    model_id = str(model_id or bundle.name)
    version = str(metadata.get("version") or "0.0.0")
    out = Path(output).expanduser().resolve()
    if out.is_relative_to(bundle):
        raise ZooError(f"package: the output {out} is inside the bundle {bundle}; choose a folder outside it (the next "
                       "package would contain this one).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ZooError(f"package: cannot create {out}: {err.strerror or err}.") from None
    stem = f"{model_id}-{version}"
    zip_path, sha_path, catalog_path = out / f"{stem}.zip", out / f"{stem}.zip.sha256", out / f"{stem}.catalog.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.partial-", suffix=".zip", dir=out)
    os.close(fd)
    try:
        members = write_reproducible_zip(bundle, files, Path(tmp), bundle.name)
        os.chmod(tmp, 0o644)
        os.replace(tmp, zip_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    digest = file_sha256(zip_path)
    unpacked = sum(p.stat().st_size for p in files)
    catalog = catalog_entry(metadata, model_id, url or str(zip_path), digest, zip_path.stat().st_size, unpacked,
                            members)
    check_schema(catalog, CATALOG_SCHEMA, catalog_path)  # what --catalogs will check, before anything is written
    sha_path.write_text(f"{digest}  {zip_path.name}\n", encoding="utf-8")
    catalog_path.write_text(json.dumps(catalog, indent=2) + "\n", encoding="utf-8")
    return PackageResult(zip_path, digest, sha_path, catalog_path, members)
