"""Verified downloads of catalog bundles, against a local HTTP server on 127.0.0.1 (no internet here)."""
from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import zipfile

import pytest

from medigan_zoo import Generators, ZooError
from medigan_zoo.core.errors import BundleNotAvailableError

from zoo_fixtures import ZOO_BLOCK, metadata, write_catalog, write_metadata_bundle


@pytest.fixture
def served_bundle_zip(tmp_path):
    """A zipped bundle served by a local HTTP server; yields (url, sha256, server)."""
    src = write_metadata_bundle(tmp_path / "src", "remote_toygan", metadata())
    www = tmp_path / "www"
    www.mkdir()
    archive = www / "remote_toygan.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in src.rglob("*"):
            zf.write(f, f.relative_to(src.parent))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/remote_toygan.zip", digest, server
    finally:
        server.shutdown()
        server.server_close()


def _catalog(tmp_path, url, sha256):
    return write_catalog(tmp_path / "cat.json", [{
        "id": "remote_toygan", "zoo": ZOO_BLOCK,
        "download": {"url": url, "sha256": sha256, "format": "monai-bundle-zip"}}])


def test_download_verifies_caches_and_then_works_offline(tmp_path, served_bundle_zip):
    url, digest, server = served_bundle_zip
    gens = Generators(catalogs=[_catalog(tmp_path, url, digest)], include_builtin=False)
    with pytest.raises(BundleNotAvailableError, match="medigan-zoo download remote_toygan"):
        gens.bundle_dir("remote_toygan")
    path = gens.download("remote_toygan", progress=False)
    assert (path / "configs" / "metadata.json").is_file()
    server.shutdown()  # offline from here on
    again = Generators(catalogs=[_catalog(tmp_path, url, digest)], include_builtin=False)
    assert again.bundle_dir("remote_toygan") == path
    assert again.download("remote_toygan") == path


def test_wrong_sha256_is_refused_and_leaves_no_cache(tmp_path, served_bundle_zip):
    url, _, _ = served_bundle_zip
    gens = Generators(catalogs=[_catalog(tmp_path, url, "0" * 64)], include_builtin=False)
    with pytest.raises(ZooError, match="failed"):
        gens.download("remote_toygan", progress=False)
    with pytest.raises(BundleNotAvailableError):
        gens.bundle_dir("remote_toygan")


def test_unpinned_archive_is_refused(tmp_path, served_bundle_zip):
    url, _, _ = served_bundle_zip
    gens = Generators(catalogs=[_catalog(tmp_path, url, None)], include_builtin=False)
    with pytest.raises(ZooError, match="pins no sha256"):
        gens.download("remote_toygan", progress=False)


def test_medigan_packages_are_never_imported(tmp_path):
    catalog = write_catalog(tmp_path / "cat.json", [{
        "id": "00001_DCGAN_MMG_CALC_ROI", "zoo": ZOO_BLOCK,
        "download": {"url": "https://zenodo.org/record/7031735/files/x.zip", "sha256": None, "format": "medigan-zip"}}])
    gens = Generators(catalogs=[catalog], include_builtin=False)
    with pytest.raises(BundleNotAvailableError, match="not a MONAI bundle"):
        gens.download(1)
    with pytest.raises(BundleNotAvailableError, match="zenodo.org"):
        gens.generate(1, num_samples=1, output_path=tmp_path / "o")
