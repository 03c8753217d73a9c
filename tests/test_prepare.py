"""``medigan-zoo prepare`` on image files the tests write themselves (PNG class folders, a DICOM series with
PatientIDs written with pydicom, a NIfTI volume, a zip) and, when ../shared/data is present, on real brain MRI
slices written as PNG and DICOM. Checked: counts, the npz layout the training code reads, the sha256 of every source
file, that no patient is in two splits, the normalisation rules, and that every bad input is reported."""
from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA_DIR, require
from PIL import Image

from medigan_zoo.byod.prepare import JSON_NAME, NPZ_NAME, folder_classes, prepare
from medigan_zoo.byod.split import split_by_group
from medigan_zoo.cli import main
from medigan_zoo.core.errors import ZooError
from medigan_zoo.training.data import load_npz_split

SPLITS = ("train", "val", "test")


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _dicom(path: Path, pixels: np.ndarray, patient: str, window=None, slope=1.0, intercept=0.0,
           photometric="MONOCHROME2") -> Path:
    """A minimal valid 16-bit MR DICOM file written with pydicom."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.PatientName = "MR", patient, patient
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype("<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load(out: Path):
    return json.loads((out / JSON_NAME).read_text()), np.load(out / NPZ_NAME)


def _reasons(dataset) -> dict:
    return {s["file"]: s["reason"] for s in dataset["skipped"]}


def _assert_patients_disjoint(dataset) -> None:
    seen = {split: {r["patient"] for r in dataset["splits"][split] if r["patient"]} for split in SPLITS}
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not seen[a] & seen[b], f"patients in {a} and {b}: {seen[a] & seen[b]}"


def _class_folders(root: Path, rng: np.random.RandomState) -> Path:
    src = root / "src"
    for label in ("normal", "pneumonia"):
        for i in range(6):
            _png(src / label / f"{i:02d}.png", rng.randint(0, 256, (40, 50), dtype=np.uint8))
    Image.fromarray(rng.randint(0, 256, (60, 40), dtype=np.uint8)).save(src / "pneumonia" / "scan.jpg", quality=90)
    _png(src / "rare" / "only.png", rng.randint(0, 256, (40, 50), dtype=np.uint8))  # too few images
    _png(src / "normal" / "colour.png", rng.randint(0, 256, (40, 50, 3), dtype=np.uint8))  # 3 channels among 1
    (src / "normal" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # unreadable
    (src / "pneumonia" / "notes.txt").write_text("not an image")
    return src


def test_png_class_folders_counts_npz_sha256_and_report(tmp_path, capsys):
    src = _class_folders(tmp_path, np.random.RandomState(0))
    out = tmp_path / "dataset"
    main(["prepare", str(src), "--output", str(out), "--size", "32", "--val", "0.25", "--test", "0.25", "--seed",
          "0", "--min_per_class", "3"])
    printed = capsys.readouterr().out
    dataset, npz = _load(out)

    assert dataset["label_names"] == ["normal", "pneumonia"]
    assert sum(dataset["counts"][s]["total"] for s in SPLITS) == 13  # 6 + 6 PNG, 1 JPEG
    assert [dataset["counts"][s]["total"] for s in SPLITS] == [7, 3, 3]  # round(0.25 * 13) each, one image a group
    assert "pneumonia/scan.jpg" in {r["file"] for s in SPLITS for r in dataset["splits"][s]}
    for split in SPLITS:
        images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32)
        assert labels.dtype == np.int64 and labels.shape == (len(images), 1)
        assert [r["label"] for r in dataset["splits"][split]] == labels[:, 0].tolist()
        assert dict(zip(dataset["label_names"], np.bincount(labels[:, 0], minlength=2).tolist())) == \
            dataset["counts"][split]["per_label"]
        read, read_labels = load_npz_split(out / NPZ_NAME, split)  # what the training code reads
        assert read.shape == (len(images), 1, 32, 32) and read.max() <= 1.0
    # every source file is hashed, used or skipped with a reason; none is dropped silently
    files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    assert sorted(s["file"] for s in dataset["sources"]) == files
    assert all(s["sha256"] == _sha(src / s["file"]) for s in dataset["sources"])
    used = {r["file"] for s in SPLITS for r in dataset["splits"][s]}
    assert used | set(_reasons(dataset)) == set(files) and not used & set(_reasons(dataset))
    reasons = _reasons(dataset)
    assert reasons["normal/broken.png"] == "has a PNG/JPEG name but is not a PNG or JPEG image Pillow can identify"
    assert "is not a PNG, JPEG, DICOM or NIfTI file" in reasons["pneumonia/notes.txt"]
    assert reasons["normal/colour.png"].startswith("has 3 channel(s); the data set has 1")
    assert reasons["rare/only.png"] == "class 'rare' has 1 image(s), fewer than --min_per_class 3"
    for name, reason in reasons.items():
        assert f"skipped {name}: {reason}" in printed  # the report is printed too
    assert dataset["provenance"]["command"].startswith("medigan-zoo prepare ")
    assert dataset["provenance"]["source"] == str(src.resolve()) and dataset["provenance"]["zoo_version"]
    assert dataset["npz_sha256"] == _sha(out / NPZ_NAME)
    assert dataset["split_by"] == "file"


def test_resize_and_crop_keep_the_centre(tmp_path):
    """A 40x80 image, black but for columns 16..63 -> resized to 20x40 (white columns 8..31) -> centre crop
    (columns 10..29): all white, and the black borders are gone."""
    img = np.zeros((40, 80), np.uint8)
    img[:, 16:64] = 255
    for i in range(3):
        _png(tmp_path / "src" / f"{i}.png", img)
    dataset, npz = _load(prepare(tmp_path / "src", tmp_path / "out", size=20, val=0, test=0, min_per_class=1).output)
    assert npz["train_images"].shape == (3, 20, 20)
    assert (npz["train_images"] == 255).all()
    assert dataset["label_names"] == ["all"]


def test_dicom_series_split_by_patient_and_rescale_window(tmp_path):
    src = tmp_path / "dicom"
    rng = np.random.RandomState(1)
    for p in range(4):
        for k in range(3):
            _dicom(src / f"p{p}" / f"{k:06d}", rng.randint(0, 4000, (24, 24)), patient=f"PAT-{p}")  # no extension
    # slope 2, intercept -100, window centre 300 width 200: stored 150 -> 200 -> 0.0; 200 -> 300 -> 0.5; 250 -> 1.0
    windowed = np.tile(np.array([150, 200, 250, 260], np.uint16), (24, 6))
    _dicom(src / "p0" / "windowed.dcm", windowed, patient="PAT-0", window=(300, 200), slope=2, intercept=-100)
    result = prepare(src, tmp_path / "out", size=24, val=0.25, test=0.25, seed=3, min_per_class=1,
                     class_folders=False)
    dataset, npz = _load(result.output)
    assert dataset["split_by"] == "patient"
    assert dataset["label_names"] == ["all"]  # patient folders are not classes unless asked
    _assert_patients_disjoint(dataset)
    assert sorted(p for s in SPLITS for p in dataset["counts"][s]["patients"]) == [f"PAT-{p}" for p in range(4)]
    assert sum(dataset["counts"][s]["total"] for s in SPLITS) == 13 and not dataset["skipped"]
    split, row = next((s, i) for s in SPLITS for i, r in enumerate(dataset["splits"][s])
                      if r["file"] == "p0/windowed.dcm")
    image = npz[f"{split}_images"][row]
    assert image[0, :4].tolist() == [0, 128, 255, 255]  # round(0.5 * 255) = 128; above the window clips to 1
    assert "RescaleSlope" in dataset["image"]["normalisation"]["dicom"]


def test_two_patients_never_share_a_split(tmp_path):
    rng = np.random.RandomState(2)
    for p in ("A", "B"):
        for k in range(4):
            _dicom(tmp_path / "src" / f"{p}{k}.dcm", rng.randint(0, 1000, (16, 16)), patient=p)
    dataset, _ = _load(prepare(tmp_path / "src", tmp_path / "out", size=16, val=0.1, test=0.4, min_per_class=1)
                       .output)
    _assert_patients_disjoint(dataset)
    assert dataset["counts"]["test"]["total"] == 4 and dataset["counts"]["train"]["total"] == 4
    assert dataset["notes"] == ["the val split is empty although --val is 0.1: the 2 group(s) (a patient, or a file "
                                "when no patient is known) could not be divided further; the training split keeps "
                                "at least one"]


@pytest.mark.parametrize("names, class_folders, expected", [
    (["a/1.png", "b/2.png"], None, {"a/1.png": "a", "b/2.png": "b"}),
    (["wrap/a/1.png", "wrap/b/2.png", "wrap/README.txt"], None, {"wrap/a/1.png": "a", "wrap/b/2.png": "b"}),
    (["p1/study/s/1", "p2/study/s/2"], None, {}),  # a DICOM tree: not classes
    (["1.png", "2.png"], None, {}),
    (["a/1.png", "b/2.png"], False, {}),
    (["a/1.png", "x/b/2.png", "3.png"], True, {"a/1.png": "a", "x/b/2.png": "x", "3.png": None}),
])
def test_folder_classes(names, class_folders, expected):
    assert folder_classes(names, class_folders) == expected


def test_split_invariants_on_many_groups():
    groups = [f"g{i % 37}" for i in range(500)]
    for seed in range(5):
        splits = split_by_group(groups, 0.2, 0.1, seed)
        where = {}
        for g, s in zip(groups, splits):
            assert where.setdefault(g, s) == s  # a group is in one split
        assert splits.count("test") >= 50 and splits.count("val") >= 100 and splits.count("train") > 0


def test_nifti_volume_slices_stay_together(tmp_path):
    import nibabel as nib

    rng = np.random.RandomState(3)
    (tmp_path / "src").mkdir()
    for v in range(3):
        volume = rng.rand(20, 20, 4).astype(np.float32) * 1000
        nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "src" / f"vol{v}.nii.gz"))
    dataset, npz = _load(prepare(tmp_path / "src", tmp_path / "out", size=16, val=0.3, test=0.3, min_per_class=1)
                         .output)
    assert sum(dataset["counts"][s]["total"] for s in SPLITS) == 12
    for v in range(3):
        assert len({s for s in SPLITS for r in dataset["splits"][s] if r["file"] == f"vol{v}.nii.gz"}) == 1
    assert sorted(r["frame"] for s in SPLITS for r in dataset["splits"][s] if r["file"] == "vol0.nii.gz") == \
        [0, 1, 2, 3]


def test_zip_with_traversal_member_and_labels_csv(tmp_path):
    rng = np.random.RandomState(4)
    archive = tmp_path / "images.zip"
    pngs = {f"img{i}.png": _png(tmp_path / "png" / f"img{i}.png", rng.randint(0, 256, (20, 20), dtype=np.uint8))
            for i in range(6)}
    with zipfile.ZipFile(archive, "w") as zf:
        for name, path in pngs.items():
            zf.write(path, f"scans/{name}")
        zf.writestr("../evil.png", pngs["img0.png"].read_bytes())
        zf.writestr("scans/unlisted.png", pngs["img1.png"].read_bytes())
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label,patient_id\n" + "".join(f"scans/img{i}.png,{i % 2},P{i // 2}\n" for i in range(6))
                      + "scans/missing.png,0,P9\n")
    dataset, npz = _load(prepare(archive, tmp_path / "out", size=16, labels=labels, val=0.3, test=0.3,
                                 min_per_class=1).output)
    reasons = _reasons(dataset)
    assert "outside the archive" in reasons["../evil.png"]
    assert not (tmp_path / "evil.png").exists()
    assert reasons["scans/unlisted.png"].startswith("not listed in --labels")
    assert reasons["scans/missing.png"].startswith("listed in --labels")
    assert dataset["label_names"] == ["0", "1"] and dataset["split_by"] == "patient"
    assert dataset["provenance"]["source_kind"] == "zip"
    assert dataset["provenance"]["labels_csv_sha256"] == _sha(labels)
    _assert_patients_disjoint(dataset)
    by_name = {s["file"]: s["sha256"] for s in dataset["sources"]}
    assert by_name["scans/img3.png"] == _sha(pngs["img3.png"])


def test_existing_output_refused_and_failures_leave_nothing(tmp_path):
    src = tmp_path / "src"
    for i in range(2):
        _png(src / f"{i}.png", np.full((8, 8), 10 * i, np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ZooError, match="exists and is not empty"):
        prepare(src, out, size=8, min_per_class=1)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    with pytest.raises(ZooError, match=r"no usable image .* fewer than --min_per_class 5"):
        prepare(src, tmp_path / "new", size=8, min_per_class=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no output, no partial folder
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare(src, empty, size=8, val=0, test=0, min_per_class=1)  # an empty folder is fine
    assert (empty / NPZ_NAME).is_file()


@pytest.mark.parametrize("args, message", [
    (["--val", "0.6", "--test", "0.5"], "leaves no training images"),
    (["--size", "0"], "size must be a whole number >= 1"),
    (["--test", "1.5"], r"--test must be a fraction in \[0, 1\)"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, args, message):
    _png(tmp_path / "src" / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", str(tmp_path / "src"), "--output", str(tmp_path / "out")] + args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert re.search(message, err)


def test_real_brain_mri_slices_as_png_and_dicom(tmp_path):
    """Real slices of ../shared/data/brain_mri_pgbm_128.npz, written as PNG (one folder per sequence) and as DICOM
    (PatientID from the data set's JSON): the split is by patient and the images survive the round trip."""
    npz_path = require(DATA_DIR / "brain_mri_pgbm_128.npz", "brain MRI slices (brain_mri_pgbm_128.npz)")
    meta = json.loads(npz_path.with_suffix(".json").read_text())
    wanted = {"T2_reg": "T2", "FLAIR_reg": "FLAIR"}
    series = [m for m in meta if m["series"] in wanted][:8]
    src = tmp_path / "brain"
    with np.load(npz_path) as npz:
        for m in series:
            volume = npz[m["key"]].astype(np.float32)
            scale = float(np.percentile(volume, 99.5)) or 1.0
            for k in range(0, volume.shape[0], 6):  # a few slices of each series
                pixels = np.clip(volume[k] / scale, 0, 1)
                _png(src / "png" / wanted[m["series"]] / f"{m['key']}_{k:02d}.png",
                     np.round(pixels * 255).astype(np.uint8))
                _dicom(src / "dicom" / f"{m['key']}_{k:02d}.dcm", np.round(volume[k]).clip(0, 65535),
                       patient=m["patient"])
    patients = sorted({m["patient"] for m in series})
    assert len(patients) >= 2, "the first series of the data set span at least two patients"

    png = _load(prepare(src / "png", tmp_path / "png_ds", size=64, val=0.2, test=0.2, min_per_class=2).output)[0]
    assert png["label_names"] == ["FLAIR", "T2"] and not png["skipped"]
    assert sum(png["counts"][s]["total"] for s in SPLITS) == len(list((src / "png").rglob("*.png")))

    dicom, npz = _load(prepare(src / "dicom", tmp_path / "dicom_ds", size=64, val=0.2, test=0.3, seed=1,
                               min_per_class=2).output)
    assert dicom["split_by"] == "patient" and not dicom["skipped"]
    _assert_patients_disjoint(dicom)
    assert sorted(p for s in SPLITS for p in dicom["counts"][s]["patients"]) == patients
    assert sum(npz[f"{s}_images"].shape[0] for s in SPLITS) == len(list((src / "dicom").glob("*.dcm")))
    assert max(npz[f"{s}_images"].max() for s in SPLITS if len(npz[f"{s}_images"])) == 255  # percentile scaling


def test_zip_member_over_the_size_limit_is_not_read(tmp_path, monkeypatch):
    from medigan_zoo.byod import sources

    monkeypatch.setattr(sources, "MAX_MEMBER_BYTES", 1000)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(2):
            zf.writestr(f"{i}.png", _png(tmp_path / f"{i}.png", np.full((8, 8), 7, np.uint8)).read_bytes())
        zf.writestr("big.png", b"\0" * 5000)  # compresses to a few bytes, declares 5,000
    dataset, _ = _load(prepare(archive, tmp_path / "out", size=8, val=0, test=0, min_per_class=1).output)
    assert _reasons(dataset) == {"big.png": "zip member unpacks to 5,000 bytes, more than the 1,000 read per file; "
                                            "not read"}
    assert dataset["counts"]["train"]["total"] == 2
