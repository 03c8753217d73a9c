"""``medigan-zoo package`` on a shipped bundle: byte-identical zips from two runs (and from a copy with other
timestamps and a ``__pycache__``), an invalid bundle refused on one line, and the catalog entry it writes taken by
``--catalogs``, ``download`` (local-zip and a local HTTP server on 127.0.0.1) and ``generate``."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import BUNDLES

from medigan_zoo import Generators
from medigan_zoo.byod.package import ZIP_DATE_TIME, package
from medigan_zoo.catalog.catalogs import read_catalog
from medigan_zoo.catalog.download import VERIFIED_MARKER, bundle_cache_root
from medigan_zoo.cli import main
from medigan_zoo.core.errors import ZooError

BUNDLE = BUNDLES / "chest_xray_cdcgan"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    return package(BUNDLE, tmp_path_factory.mktemp("dist"))


def test_zip_is_reproducible_sorted_and_clean(tmp_path, packaged):
    again = package(BUNDLE, tmp_path / "again")
    assert again.zip_path.read_bytes() == packaged.zip_path.read_bytes()
    assert again.sha256 == packaged.sha256 == hashlib.sha256(packaged.zip_path.read_bytes()).hexdigest()
    assert packaged.sha256_path.read_text() == f"{packaged.sha256}  {packaged.zip_path.name}\n"
    # a copy with new timestamps, compiled code and a training run in it packages to the same bytes
    copy = tmp_path / "copy" / BUNDLE.name
    shutil.copytree(BUNDLE, copy)
    (copy / "configs" / "__pycache__").mkdir()
    (copy / "configs" / "__pycache__" / "x.cpython-312.pyc").write_bytes(b"\0")
    (copy / "training_output").mkdir()
    (copy / "training_output" / "checkpoint.pt").write_bytes(b"\0" * 10)
    os.utime(copy / "LICENSE", (0, 2_000_000_000))
    os.chmod(copy / "LICENSE", 0o600)
    assert package(copy, tmp_path / "from_copy").zip_path.read_bytes() == packaged.zip_path.read_bytes()

    with zipfile.ZipFile(packaged.zip_path) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    shipped = sorted(p.relative_to(BUNDLE.parent).as_posix() for p in BUNDLE.rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    assert names == shipped == sorted(names) and len(names) == packaged.members
    assert all(i.date_time == ZIP_DATE_TIME and (i.external_attr >> 16) == 0o100644 for i in infos)


def test_catalog_entry_is_accepted_and_pins_the_zip(packaged):
    info, = read_catalog(packaged.catalog_path)  # what --catalogs reads (schema-checked)
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    assert info.id == BUNDLE.name and info.version == meta["version"] and info.zoo == meta["medigan_zoo"]
    assert info.download == {"url": str(packaged.zip_path), "sha256": packaged.sha256, "format": "local-zip",
                             "max_bytes": packaged.zip_path.stat().st_size,
                             "max_unpacked_bytes": sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file()
                                                       and "__pycache__" not in p.parts),
                             "max_members": packaged.members}


def _samples(folder: Path):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("sample_*.png"))}


def test_download_local_zip_and_generate_from_the_copy(tmp_path, packaged, capsys):
    catalog = str(packaged.catalog_path)
    main(["--catalogs", catalog, "--include_builtin", "False", "download", BUNDLE.name])
    assert f"bundle of {BUNDLE.name} is in {bundle_cache_root()}" in capsys.readouterr().out
    gens = Generators(catalogs=[catalog], include_builtin=False)
    copy = gens.bundle_dir(BUNDLE.name)
    assert copy.is_relative_to(bundle_cache_root()) and copy.name == BUNDLE.name
    assert json.loads((copy / VERIFIED_MARKER).read_text())["sha256"] == packaged.sha256
    assert (copy / "models" / "model.pt").read_bytes() == (BUNDLE / "models" / "model.pt").read_bytes()
    gens.generate(BUNDLE.name, num_samples=2, output_path=tmp_path / "from_copy", seed=0, quiet=True)
    Generators().generate(BUNDLE.name, num_samples=2, output_path=tmp_path / "shipped", seed=0, quiet=True)
    from_copy = _samples(tmp_path / "from_copy")
    assert len(from_copy) == 2 and from_copy == _samples(tmp_path / "shipped")  # the same model, byte for byte



def test_download_over_http_with_url(tmp_path, http_root, capsys):
    www, base = http_root
    main(["package", str(BUNDLE), "-o", str(www), "--url", f"{base}/{BUNDLE.name}-served.zip",
          "--model_id", "chest_xray_cdcgan_served"])
    printed = capsys.readouterr().out
    built = next(www.glob("*.zip"))
    built.rename(www / f"{BUNDLE.name}-served.zip")
    catalog = next(www.glob("*.catalog.json"))
    assert f"--catalogs {catalog} download chest_xray_cdcgan_served" in printed  # not a shipped id: no flag needed
    entry = json.loads(catalog.read_text())["models"][0]
    assert entry["download"]["format"] == "monai-bundle-zip" and entry["download"]["url"].startswith(base)
    path = Generators(catalogs=[str(catalog)], include_builtin=False).download("chest_xray_cdcgan_served",
                                                                          progress=False)
    assert (path / "models" / "model.ts").read_bytes() == (BUNDLE / "models" / "model.ts").read_bytes()


def test_invalid_bundle_refused_on_one_line(tmp_path, capsys):
    broken = tmp_path / BUNDLE.name
    shutil.copytree(BUNDLE, broken)
    (broken / "models" / "model.pt").unlink()
    with pytest.raises(SystemExit) as exit_info:
        main(["package", str(broken), "-o", str(tmp_path / "dist")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"medigan-zoo: error: package: {broken} does not pass validate") and "model.pt" in err
    assert not (tmp_path / "dist").exists()


def test_link_out_of_the_bundle_refused_before_writing(tmp_path):
    copy = tmp_path / BUNDLE.name
    shutil.copytree(BUNDLE, copy)
    (copy / "docs" / "extra.json").symlink_to(BUNDLES / "brain_mri_cdcgan" / "configs" / "metadata.json")
    with pytest.raises(ZooError, match=r"docs/extra.json is a link to .*, outside the bundle; copy the file"):
        package(copy, tmp_path / "dist")
    assert not (tmp_path / "dist").exists()


def test_output_inside_the_bundle_refused(tmp_path):
    copy = tmp_path / BUNDLE.name
    shutil.copytree(BUNDLE, copy)
    with pytest.raises(ZooError, match="is inside the bundle"):
        package(copy, copy / "dist")
    assert not (copy / "dist").exists()
