"""Verified downloads of catalog bundles, against a local HTTP server on 127.0.0.1 (no internet here)."""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import re
import threading
import zipfile

import pytest
from zoo_fixtures import ZOO_BLOCK, metadata, write_catalog, write_metadata_bundle

from medigan_zoo import Generators, ZooError
from medigan_zoo.catalog.download import VERIFIED_MARKER
from medigan_zoo.core.errors import BundleNotAvailableError


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


def _catalog(tmp_path, url, sha256, **extra):
    return write_catalog(tmp_path / "cat.json", [{
        "id": "remote_toygan", "zoo": ZOO_BLOCK,
        "download": {"url": url, "sha256": sha256, "format": "monai-bundle-zip", **extra}}])


def _cache_leftovers():
    """Everything a failed download could leave in the cache (``.partial-*`` folders, half-unpacked bundles)."""
    from medigan_zoo.catalog.download import bundle_cache_root

    root = bundle_cache_root()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_download_verifies_caches_and_then_works_offline(tmp_path, served_bundle_zip):
    url, digest, server = served_bundle_zip
    gens = Generators(catalogs=[_catalog(tmp_path, url, digest)], include_builtin=False)
    with pytest.raises(BundleNotAvailableError, match="medigan-zoo download remote_toygan"):
        gens.bundle_dir("remote_toygan")
    path = gens.download("remote_toygan", progress=False)
    assert (path / "configs" / "metadata.json").is_file()
    marker = json.loads((path / VERIFIED_MARKER).read_text())
    assert marker["sha256"] == digest and marker["source"] == url and marker["revision"] is None
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", marker["verified_at"])
    server.shutdown()  # offline from here on
    again = Generators(catalogs=[_catalog(tmp_path, url, digest)], include_builtin=False)
    assert again.bundle_dir("remote_toygan") == path
    assert again.download("remote_toygan") == path


def test_wrong_sha256_is_refused_and_leaves_no_cache(tmp_path, served_bundle_zip):
    url, _, _ = served_bundle_zip
    gens = Generators(catalogs=[_catalog(tmp_path, url, "0" * 64)], include_builtin=False)
    with pytest.raises(ZooError, match="its sha256 is [0-9a-f]{64}, the catalog pins 0{64}; nothing was kept"):
        gens.download("remote_toygan", progress=False)
    with pytest.raises(BundleNotAvailableError):
        gens.bundle_dir("remote_toygan")
    assert _cache_leftovers() == []


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


# --- hostile or broken servers and archives: one line, nothing left behind ------------------------------------

class _Server:
    """A local HTTP server on 127.0.0.1 serving ``routes`` (path -> bytes, or a callable handling the request)."""

    def __init__(self, routes):
        routes_ = routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                route = routes_.get(self.path)
                if route is None:
                    self.send_error(404)
                elif callable(route):
                    route(self)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(route)))
                    self.end_headers()
                    self.wfile.write(route)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    servers = []

    def make(routes):
        servers.append(_Server(routes))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _zip_bytes(members):
    """A zip (deflated) of ``members`` (name -> bytes)."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _bundle_members(tmp_path):
    src = write_metadata_bundle(tmp_path / "src", "remote_toygan", metadata())
    return {str(f.relative_to(src.parent)): f.read_bytes() for f in src.rglob("*") if f.is_file()}


def _refused(tmp_path, url, data_or_sha, match, **extra):
    sha = data_or_sha if isinstance(data_or_sha, str) else hashlib.sha256(data_or_sha).hexdigest()
    gens = Generators(catalogs=[_catalog(tmp_path, url, sha, **extra)], include_builtin=False)
    with pytest.raises(ZooError, match=match) as caught:
        gens.download("remote_toygan", progress=False)
    assert "\n" not in str(caught.value) and caught.value.__cause__ is None
    assert _cache_leftovers() == []
    return caught.value


def test_a_server_that_never_answers_times_out(tmp_path, monkeypatch):
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # connections complete in the kernel's backlog; nothing is ever sent
    monkeypatch.setenv("MEDIGAN_ZOO_DOWNLOAD_TIMEOUT", "0.5")
    try:
        start = time.monotonic()
        _refused(tmp_path, f"http://127.0.0.1:{listener.getsockname()[1]}/b.zip", "0" * 64,
                 r"no answer within 0.5 s \(set MEDIGAN_ZOO_DOWNLOAD_TIMEOUT")
        assert time.monotonic() - start < 5
    finally:
        listener.close()


def test_more_than_max_bytes_is_refused_from_the_header(tmp_path, server):
    body = b"x" * 5000
    srv = server({"/big.zip": body})
    _refused(tmp_path, srv.url("/big.zip"), body, "more than the 0.0 MiB allowed", max_bytes=1000)


def test_more_than_max_bytes_is_refused_while_streaming(tmp_path, server):
    def endless(handler):  # no Content-Length: the limit must be enforced on the bytes received
        handler.send_response(200)
        handler.end_headers()
        for _ in range(50):
            handler.wfile.write(b"y" * 1000)

    srv = server({"/stream.zip": endless})
    _refused(tmp_path, srv.url("/stream.zip"), "0" * 64, "sends more than the 0.0 MiB allowed", max_bytes=10_000)


def test_http_errors_are_one_line(tmp_path, server):
    srv = server({})
    _refused(tmp_path, srv.url("/missing.zip"), "0" * 64, "HTTP 404")


def test_zip_bomb_is_refused(tmp_path, server):
    bomb = _zip_bytes({**_bundle_members(tmp_path), "remote_toygan/models/zeros.bin": bytes(20 * 1024 ** 2)})
    assert len(bomb) < 100_000
    srv = server({"/bomb.zip": bomb})
    _refused(tmp_path, srv.url("/bomb.zip"), bomb, r"unpacks to 20.0 MiB, more than the 1.0 MiB allowed",
             max_unpacked_bytes=1024 ** 2)


def test_too_many_members_are_refused(tmp_path, server):
    many = _zip_bytes({**_bundle_members(tmp_path), **{f"remote_toygan/junk/{i}": b"" for i in range(50)}})
    srv = server({"/many.zip": many})
    _refused(tmp_path, srv.url("/many.zip"), many, r"members, more than the 20 allowed", max_members=20)


@pytest.mark.parametrize("name", ["../evil.txt", "remote_toygan/../../evil.txt", "/tmp/evil.txt"])
def test_path_traversal_members_are_refused(tmp_path, server, name):
    archive = _zip_bytes({**_bundle_members(tmp_path), name: b"pwned"})
    srv = server({"/t.zip": archive})
    _refused(tmp_path, srv.url("/t.zip"), archive, "would be written outside the bundle folder")
    assert not (tmp_path / "evil.txt").exists()


def test_not_a_zip_is_refused(tmp_path, server):
    body = b"<html>this is a login page, not a zip</html>"
    srv = server({"/page.zip": body})
    _refused(tmp_path, srv.url("/page.zip"), body, "not a valid zip file")


def test_a_download_killed_midway_is_cleaned_by_the_next(tmp_path, served_bundle_zip):
    from medigan_zoo.catalog.download import bundle_cache_root

    url, digest, _ = served_bundle_zip
    stale = bundle_cache_root() / "remote_toygan" / ".partial-999999999-abc"
    (stale / "bundle").mkdir(parents=True)
    gens = Generators(catalogs=[_catalog(tmp_path, url, digest)], include_builtin=False)
    gens.download("remote_toygan", progress=False)
    assert not stale.exists()


def test_local_zip_source(tmp_path):
    archive = tmp_path / "b.zip"
    archive.write_bytes(_zip_bytes(_bundle_members(tmp_path)))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    catalog = write_catalog(tmp_path / "cat.json", [{"id": "remote_toygan", "zoo": ZOO_BLOCK, "download": {
        "url": archive.as_uri(), "sha256": digest, "format": "local-zip"}}])
    path = Generators(catalogs=[catalog], include_builtin=False).download("remote_toygan", progress=False)
    assert json.loads((path / VERIFIED_MARKER).read_text())["sha256"] == digest
    archive.write_bytes(archive.read_bytes() + b"tampered")
    catalog = write_catalog(tmp_path / "cat2.json", [{"id": "other_toygan", "zoo": ZOO_BLOCK, "download": {
        "url": str(archive), "sha256": digest, "format": "local-zip"}}])
    with pytest.raises(ZooError, match="its sha256 is"):
        Generators(catalogs=[catalog], include_builtin=False).download("other_toygan", progress=False)


def test_every_source_kind_is_in_the_catalog_schema():
    from medigan_zoo.catalog.download import SOURCES
    from medigan_zoo.catalog.schema import CATALOG_SCHEMA, load_schema

    schema = load_schema(CATALOG_SCHEMA)
    download = schema["properties"]["models"]["items"]["properties"]["download"]["properties"]
    assert set(download["format"]["enum"]) == set(SOURCES)


def test_hf_hub_offline_is_one_line(tmp_path):
    """In a subprocess: huggingface_hub reads HF_HUB_OFFLINE when it is imported."""
    import os
    import subprocess
    import sys

    pytest.importorskip("huggingface_hub")
    catalog = write_catalog(tmp_path / "cat.json", [{"id": "hf_toygan", "zoo": ZOO_BLOCK, "download": {
        "url": "hf://nobody/hf_toygan", "revision": "0123456789abcdef0123456789abcdef01234567", "format": "hf-hub"}}])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "MEDIGAN_ZOO_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-m", "medigan_zoo", "--catalogs", str(catalog), "--include_builtin",
                          "False", "download", "hf_toygan"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr + run.stdout, run.stderr
    assert "HF_HUB_OFFLINE is set" in lines[0] and "hf://nobody/hf_toygan" in lines[0]
    assert not any((tmp_path / "home").rglob(".partial-*"))
