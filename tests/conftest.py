"""Shared test fixtures: repository paths and the read-only ../shared folder (skips when absent)."""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDIGAN_ZOO_SHARED", REPO.parent / "shared"))
DATA_DIR = Path(os.environ.get("MEDIGAN_ZOO_DATA", SHARED / "data"))
REFERENCE_DIR = SHARED / "reference"
#: medigan's model config (global.json of github.com/RichardObi/medigan-models, MIT), shipped as a test fixture so
#: the medigan parity and import tests run on a fresh clone; see tests/fixtures/medigan/README.md
MEDIGAN_GLOBAL = REPO / "tests" / "fixtures" / "medigan" / "medigan_global.json"
MEDNIST_GAN = SHARED / "bundles" / "mednist_gan"
BUNDLES = REPO / "bundles"


#: where zoo bundles live: shipped ones in bundles/, work in progress in drafts/ (not indexed)
BUNDLE_HOMES = (BUNDLES, REPO / "drafts")


def zoo_bundle(name: str) -> Path:
    """The folder of zoo bundle ``name``: bundles/ first, then drafts/ (so tests of a draft keep working once it is
    moved to bundles/); bundles/ when it is in neither."""
    return next((home / name for home in BUNDLE_HOMES if (home / name / "configs" / "metadata.json").is_file()),
                BUNDLES / name)


def shipped_bundles():
    """Bundle folders shipped in bundles/ (sorted)."""
    if not BUNDLES.is_dir():
        return []
    return sorted(p for p in BUNDLES.iterdir() if (p / "configs" / "metadata.json").is_file())


def require(path: Path, what: str) -> Path:
    """Skip the test with a clear reason when a ../shared input is absent."""
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (../shared is absent on this machine)")
    return path


def mr_dicom_slice(modality: str, series: str, study: str):
    """A pydicom ``Dataset`` of one MR-storage slice with its file meta, modality, series and study UIDs set (the
    caller adds geometry and pixels); the tests' DICOM series writers share it."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = modality, series, study
    return ds


def shipped_generators():
    """Shipped bundles that generate images (feature extractors are indexed apart)."""
    import json

    return [b for b in shipped_bundles() if (json.loads((b / "configs" / "metadata.json").read_text())
                                             .get("medigan_zoo") or {}).get("role", "generator") == "generator"]


def required_input_path(bundle: Path, folder: Path, count: int):
    """``input_path`` for a run of ``count`` samples of ``bundle``: None when its zoo block declares no required
    image input (it generates from noise); its own ``docs/example_inputs`` when it takes one required input and the
    folder holds at least ``count`` files; else a mapping input name -> a folder under ``folder`` of ``count``
    synthetic ``.npy`` inputs of the declared shape and channels (images uniform in ``value_range``, masks 0/1)."""
    import numpy as np

    from medigan_zoo.engine.inputs import input_files
    from medigan_zoo.engine.runner import read_model

    info = read_model(bundle)
    required = info.required_inputs
    if not required:
        return None
    examples = bundle / "docs" / "example_inputs"
    if len(required) == 1 and examples.is_dir() and len(input_files(examples)) >= count:
        return examples
    rng = np.random.default_rng(0)
    paths = {}
    for spec in required:
        where = folder / spec.name
        where.mkdir(parents=True, exist_ok=True)
        shape = (spec.num_channels, *spec.spatial_shape)
        for k in range(count):
            if spec.kind == "mask":
                array = (rng.random(shape) > 0.5).astype(np.float32)
            else:
                array = rng.uniform(*spec.value_range, size=shape).astype(np.float32)
            np.save(where / f"input_{k:03d}.npy", array)
        paths[spec.name] = where
    return paths


@pytest.fixture
def medigan_global() -> Path:
    return MEDIGAN_GLOBAL


@pytest.fixture
def mednist_gan() -> Path:
    return require(MEDNIST_GAN, "MONAI's MedNIST GAN bundle")


@pytest.fixture
def data_dir() -> Path:
    return require(DATA_DIR, "the shared medical data folder")


#: folders whose bundles the tests run: the bundles tests write into pytest's temporary folders, and ../shared's
#: MONAI bundles (tests/test_trust.py clears this to test the trust policy itself)
TEST_TRUSTED_PATHS = "MEDIGAN_ZOO_TRUSTED_PATHS"


@pytest.fixture(autouse=True)
def _isolated_zoo_env(monkeypatch, tmp_path_factory):
    """Tests never read the user's extra bundles/catalogs or write into the user's cache; they trust the bundles
    they write themselves (docs/security.md)."""
    monkeypatch.delenv("MEDIGAN_ZOO_BUNDLE_PATH", raising=False)
    monkeypatch.delenv("MEDIGAN_ZOO_CATALOGS", raising=False)
    monkeypatch.setenv("MEDIGAN_ZOO_HOME", str(tmp_path_factory.mktemp("zoo_home")))
    monkeypatch.setenv(TEST_TRUSTED_PATHS, os.pathsep.join([str(tmp_path_factory.getbasetemp()),
                                                            str(SHARED / "bundles")]))


@contextlib.contextmanager
def static_http_server(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_root(tmp_path):
    """(folder, base URL): an empty folder served over HTTP on 127.0.0.1 for the test."""
    www = tmp_path / "www"
    www.mkdir()
    with static_http_server(www) as url:
        yield www, url


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module (the CPU cores are shared by parallel jobs); restored after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
