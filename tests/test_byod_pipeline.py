"""Bring your own data, end to end (issue #15): real PneumoniaMNIST images written by the test as PNG (normal) and
DICOM (pneumonia) files -> prepare -> init -> train (a few iterations, through monai.bundle) -> evaluate -> validate
-> package -> catalog + download from a local HTTP server on 127.0.0.1 -> generate; every artifact is checked."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DATA_DIR

from medigan_zoo import Generators
from medigan_zoo.catalog.download import VERIFIED_MARKER
from medigan_zoo.cli import main

PNEUMONIA = DATA_DIR / "pneumoniamnist.npz"
PER_CLASS = 30


def _write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _write_dicom(path: Path, pixels: np.ndarray, patient: str) -> None:
    """8-bit pixels as a 16-bit CR DICOM file whose window maps them back to [0, 1]."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ComputedRadiographyImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = ComputedRadiographyImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.PatientName = "CR", patient, patient
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.WindowCenter, ds.WindowWidth = 127.5 * 16, 255 * 16
    ds.PixelData = (pixels.astype("<u2") * 16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)



@pytest.mark.skipif(not PNEUMONIA.is_file(), reason=f"{PNEUMONIA} not found (../shared/data is absent)")
def test_images_to_a_downloadable_trained_bundle(tmp_path, http_root, capsys):
    # 1. image files: 30 normal chest X-rays as PNG, 30 pneumonia ones as DICOM (one patient each)
    with np.load(PNEUMONIA) as npz:
        images, labels = npz["train_images"], npz["train_labels"].reshape(-1)
    src = tmp_path / "images"
    for label, folder in ((0, "normal"), (1, "pneumonia")):
        for n, index in enumerate(np.flatnonzero(labels == label)[:PER_CLASS]):
            if label == 0:
                _write_png(src / folder / f"{n:03d}.png", images[index])
            else:
                _write_dicom(src / folder / f"{n:03d}.dcm", images[index], patient=f"P{n:03d}")
    # 2. prepare
    data = tmp_path / "dataset"
    main(["prepare", str(src), "--output", str(data), "--size", "28", "--val", "0.1", "--test", "0.3", "--seed", "0",
          "--min_per_class", "5"])
    dataset = json.loads((data / "dataset.json").read_text())
    assert dataset["label_names"] == ["normal", "pneumonia"] and not dataset["skipped"]
    assert sum(c["total"] for c in dataset["counts"].values()) == 2 * PER_CLASS
    # 3. init
    bundle = tmp_path / "bundles" / "my_cxr_gan"
    main(["init", "my_cxr_gan", "--template", "cgan", "--output", str(bundle), "--dataset", "my_pneumonia_xrays"])
    assert (bundle / "models" / "model.pt").is_file() and (bundle / "models" / "model.ts").is_file()
    initial = torch.load(bundle / "models" / "model.pt", weights_only=True)
    capsys.readouterr()
    # 4. train (a few iterations) and evaluate, in place
    trust = ["--trust", str(tmp_path / "bundles")]
    main(trust + ["train", str(bundle), "--data", str(data), "--epochs", "2", "--epoch_length", "2", "--batch_size",
                  "8", "--bn_batches", "2", "--evaluate_samples", "24", "--evaluate_metrics", "fid,prdc",
                  "--progress", "False"])
    printed = capsys.readouterr().out
    assert "trained" in printed and "4 iterations, 2 epochs" in printed and "metrics: FID" in printed
    trained = torch.load(bundle / "models" / "model.pt", weights_only=True)
    assert any(not torch.equal(initial[k], trained[k]) for k in initial)
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["version"] == "0.2.0" and "medigan-zoo train" in meta["changelog"]["0.2.0"]
    assert "0.1.0" in meta["changelog"]
    metrics = {m["name"]: m for m in meta["medigan_zoo"]["metrics"]}
    assert {"FID", "precision", "recall"} <= set(metrics) and metrics["FID"]["num_samples"] == 24
    assert "FID" in (bundle / "docs" / "README.md").read_text()
    log = (bundle / "docs" / "training_log.txt").read_text()
    assert "Iterations: 4 (2 epochs)" in log and "Wall time:" in log and "medigan-zoo --trust" in log
    assert (bundle / "docs" / "samples.png").stat().st_size > 0
    with _no_exit():
        main(trust + ["validate", str(bundle), "--run"])
    assert "OK (0 errors" in capsys.readouterr().out
    # 5. package, served over HTTP, found through its catalog entry, downloaded and verified
    www, base = http_root
    main(["package", str(bundle), "-o", str(www), "--url", f"{base}/my_cxr_gan-0.2.0.zip"])
    catalog = www / "my_cxr_gan-0.2.0.catalog.json"
    assert catalog.is_file() and (www / "my_cxr_gan-0.2.0.zip").is_file()
    gens = Generators(catalogs=[str(catalog)], include_builtin=False)
    assert gens.get_model_info("my_cxr_gan").version == "0.2.0"
    copy = gens.download("my_cxr_gan", progress=False)
    assert json.loads((copy / VERIFIED_MARKER).read_text())["sha256"] == \
        (www / "my_cxr_gan-0.2.0.zip.sha256").read_text().split()[0]
    assert not (copy / "training_output").exists()  # package leaves the scratch folder out
    # 6. generate from the downloaded copy == from the trained folder, byte for byte, labelled synthetic
    gens.generate("my_cxr_gan", num_samples=3, output_path=tmp_path / "from_copy", seed=0, quiet=True)
    local = Generators(bundle_dirs=[str(tmp_path / "bundles")], include_builtin=False,
                       trust_bundles=[str(tmp_path / "bundles")])
    local.generate("my_cxr_gan", num_samples=3, output_path=tmp_path / "local", seed=0, quiet=True)
    samples = sorted((tmp_path / "from_copy").glob("sample_*.png"))
    assert len(samples) == 3
    assert [p.read_bytes() for p in samples] == [p.read_bytes() for p in sorted((tmp_path / "local").glob("*.png"))]
    assert "synthetic" in (tmp_path / "from_copy" / "manifest.json").read_text().lower()


class _no_exit:
    """validate exits only on failure; inside this block a SystemExit fails the test with its code."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is SystemExit:
            pytest.fail(f"validate exited with {value.code}")
        return False
