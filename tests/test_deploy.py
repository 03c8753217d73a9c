"""The MONAI Deploy application end to end on CPU, and its DICOM checked by tools no one here wrote.

One in-process run of ``SyntheticStudyApp`` (Holoscan starts once) serves every request of this module: a 2D zoo
bundle (chest_xray_cdcgan, DICOM + NIfTI), the 3D bundle (adrenal_ct_3dgan, DICOM + NIfTI), MONAI's foreign MedNIST
GAN from ../shared/bundles (its test skips when ../shared is absent) and four bad requests. The studies are checked
with dicom3tools' ``dciodvfy`` (no error; the warnings it may give are listed in ``ACCEPTED`` with the reason),
pydicom read-back and SimpleITK's series reader (GDCM); one subprocess runs ``python -m medigan_zoo.deploy`` as the
SDK documents (flags, exit status, log).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BUNDLES, MEDNIST_GAN, REPO


def _sdk():
    """Skip unless the deploy extra (MONAI Deploy App SDK + Holoscan) is installed; the study writer tests need not."""
    pytest.importorskip("monai.deploy.core", reason="the deploy extra (monai-deploy-app-sdk) is not installed")

pydicom = pytest.importorskip("pydicom")
sitk = pytest.importorskip("SimpleITK", reason="SimpleITK (test extra) is not installed")
nib = pytest.importorskip("nibabel")

DCIODVFY = shutil.which("dciodvfy") or "/usr/bin/dciodvfy"

#: dciodvfy messages accepted, each with its reason; any other warning or error fails the test
ACCEPTED = {
    # dicom3tools 1.00~20220618 (Debian) predates Synthetic Data (0008,001C) in its dictionary, so it calls the
    # attribute unknown (an "Error" and two warnings about the same tag) and the SOP class "Standard Extended".
    r"\(0x0008,0x001c\)": "Synthetic Data unknown to this dciodvfy's dictionary",
    r"Dicom dataset contains attributes not present in standard DICOM IOD - this is a Standard Extended SOP Class":
        "follows from the Synthetic Data tag above",
    # Laterality is empty: a generator does not know which side of a paired organ (adrenal gland, eye) it made
    r"only permitted to be empty when actually unknown.*<Laterality>": "laterality unknown",
    # CT: Rescale Type US (unspecified) says the values are the model's own range, not Hounsfield units
    r"Unrecognized defined term <US> for value 1 of attribute <Rescale Type>": "not HU",
}


def dciodvfy_problems(path: Path) -> list:
    """dciodvfy's error and warning lines for ``path`` that are not accepted."""
    if not Path(DCIODVFY).exists():
        pytest.skip("dicom3tools' dciodvfy is not installed (apt-get install dicom3tools)")
    out = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if re.search(r"\b(Error|Warning)\b", ln)]
    return [ln for ln in lines if not any(re.search(pattern, ln) for pattern in ACCEPTED)]


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append((record.levelname, self.format(record)))


REQUESTS = {
    "cxr": {"model": "chest_xray_cdcgan", "num_samples": 3, "seed": 7, "conditions": {"class_label": [0, 1]},
            "outputs": ["dicom", "nifti"]},
    "cxr_again": {"model": "chest_xray_cdcgan", "num_samples": 1, "seed": 7, "conditions": {"class_label": 0}},
    "adrenal": {"model": "adrenal_ct_3dgan", "num_samples": 2, "seed": 3, "outputs": ["dicom", "nifti"]},
    "bad_model": {"model": "no_such_model", "num_samples": 2},
    "bad_condition": {"model": "chest_xray_cdcgan", "conditions": {"class_label": 9}},
    "bad_key": {"model": "chest_xray_cdcgan", "num_sample": 2},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The app run once on every request; returns (output folder, app results, log lines, seconds)."""
    import time

    _sdk()
    from medigan_zoo.deploy.app import SyntheticStudyApp

    root = tmp_path_factory.mktemp("deploy")
    inputs, out = root / "in", root / "out"
    inputs.mkdir()
    requests = dict(REQUESTS)
    if MEDNIST_GAN.is_dir():
        requests["mednist"] = {"model": "mednist_gan", "num_samples": 2, "seed": 1}
    for name, body in requests.items():
        (inputs / f"{name}.json").write_text(json.dumps(body))
    (inputs / "broken.json").write_text('{"model": "chest_xray_cdcgan",\n "num_samples": }')
    argv = ["python", "app.py", "-i", str(inputs), "-o", str(out)]
    if MEDNIST_GAN.is_dir():
        argv += ["-m", str(MEDNIST_GAN.parent)]
    handler = Records()
    log = logging.getLogger("medigan_zoo.deploy")
    log.addHandler(handler)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("MEDIGAN_ZOO_BUNDLE_PATH", raising=False)
            mp.delenv("MEDIGAN_ZOO_CATALOGS", raising=False)
            app = SyntheticStudyApp(argv, device="cpu")
            start = time.perf_counter()
            app.run()
            seconds = time.perf_counter() - start
    finally:
        log.removeHandler(handler)
    return out, app.results, handler.lines, seconds


def _instances(folder: Path):
    return sorted((pydicom.dcmread(str(p)) for p in folder.rglob("*.dcm")), key=lambda d: int(d.InstanceNumber))


def _model_values(ds) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _check_common(ds, model_id: str, version: str, seed: int, modality: str) -> None:
    assert ds.SyntheticData == "YES"
    assert str(ds.PatientName).startswith("SYNTHETIC") and ds.PatientID.startswith("SYNTHETIC-")
    assert ds.Modality == modality
    assert f"SYNTHETIC {model_id} v{version} seed {seed}" in ds.SeriesDescription
    assert ds.PatientIdentityRemoved == "YES" and ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


def test_good_requests_make_studies_and_bad_ones_nothing(run):
    out, results, lines, seconds = run
    ok = {Path(r["request"]).stem for r in results if r["ok"]}
    assert ok >= {"cxr", "cxr_again", "adrenal"}
    failed = {Path(r["request"]).stem: r["error"] for r in results if not r["ok"]}
    assert set(failed) == {"bad_model", "bad_condition", "bad_key", "broken"}
    assert "Unknown model id 'no_such_model'" in failed["bad_model"]
    assert "class_label=9" in failed["bad_condition"] and "Valid values: 0 (normal), 1 (pneumonia)" in \
        failed["bad_condition"]
    assert "unknown key(s) 'num_sample'" in failed["bad_key"]
    assert "not valid JSON (line 2" in failed["broken"]
    errors = [text for level, text in lines if level == "ERROR"]
    for name, error in failed.items():  # one log line per bad request, naming its file and the problem
        mine = [e for e in errors if f"{name}.json" in e]
        assert len(mine) == 1 and "\n" not in mine[0] and error in mine[0]
    # no partial study: the bad requests left no folder, and no staging folder is left anywhere
    assert sorted(p.name for p in out.iterdir()) == sorted(ok)
    print(f"app run (in process, {len(results)} requests): {seconds:.1f} s")


def test_2d_study_read_back(run):
    out, _, _, _ = run
    study = out / "cxr"
    datasets = _instances(study / "dicom")
    header = json.loads((study / "manifest.json").read_text())
    assert header["synthetic"] is True and header["model_id"] == "chest_xray_cdcgan" and header["seed"] == 7
    records = [json.loads(line) for line in (study / "manifest.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2] and [r["condition"]["class_label"] for r in records] == [0, 1, 0]
    assert len(datasets) == 3
    assert len({d.StudyInstanceUID for d in datasets}) == 1 and len({d.SeriesInstanceUID for d in datasets}) == 1
    assert len({d.SOPInstanceUID for d in datasets}) == 3
    low, high = header["value_range"]
    for k, ds in enumerate(datasets):
        _check_common(ds, "chest_xray_cdcgan", header["version"], 7, "DX")
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # DX: Secondary Capture
        assert (ds.Rows, ds.Columns) == (28, 28) and [float(v) for v in ds.PixelSpacing] == [1.0, 1.0]
        assert float(ds.WindowCenter) == pytest.approx((low + high) / 2) and float(ds.WindowWidth) == high - low
        assert ds.RescaleType == "US" and ds.BitsStored == 16
        # the rescaled pixels are the model's values: the same sample's float32 NIfTI within one stored step
        nifti = np.asarray(nib.load(str(study / "nifti" / f"sample_{k:06d}.nii.gz")).dataobj)
        assert np.abs(_model_values(ds) - nifti).max() <= float(ds.RescaleSlope)
        assert dciodvfy_problems(study / records[k]["file"]) == []
    other = _instances(out / "cxr_again" / "dicom")[0]
    assert other.StudyInstanceUID != datasets[0].StudyInstanceUID  # fresh UIDs per request
    assert other.SeriesInstanceUID != datasets[0].SeriesInstanceUID
    assert np.array_equal(other.pixel_array, datasets[0].pixel_array)  # same seed, same sample 0


def test_3d_study_geometry_validity_and_simpleitk(run):
    out, _, _, _ = run
    study = out / "adrenal"
    series = sorted((study / "dicom").iterdir())
    assert [s.name for s in series] == ["sample_000000", "sample_000001"]  # one series per volume
    first = _instances(series[0])
    assert len(first) == 28
    uids = {ds.SeriesInstanceUID for s in series for ds in _instances(s)}
    assert len(uids) == 2 and len({ds.StudyInstanceUID for ds in first}) == 1
    for k, ds in enumerate(first):
        _check_common(ds, "adrenal_ct_3dgan", ds.SoftwareVersions[1], 3, "CT")
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.ImagePositionPatient] == [0, 0, float(k)]
        assert float(ds.SliceThickness) == 1.0 and [float(v) for v in ds.PixelSpacing] == [1.0, 1.0]
        assert "sample 0" in ds.SeriesDescription
    for path in (sorted(series[0].glob("*.dcm"))[:3] + sorted(series[1].glob("*.dcm"))[-1:]):
        assert dciodvfy_problems(path) == []
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(series[0]))
    reader.SetFileNames(names)
    image = reader.Execute()
    assert image.GetSize() == (28, 28, 28) and image.GetSpacing() == (1.0, 1.0, 1.0)
    assert image.GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1) and image.GetOrigin() == (0, 0, 0)
    nifti = np.asarray(nib.load(str(study / "nifti" / "sample_000000.nii.gz")).dataobj)
    slope = float(first[0].RescaleSlope)
    assert np.abs(sitk.GetArrayFromImage(image) - nifti).max() <= slope * 1.01  # (D, H, W) as the model made it


def test_foreign_mednist_gan_study(run):
    out, results, _, _ = run
    if not MEDNIST_GAN.is_dir():
        pytest.skip(f"MONAI's MedNIST GAN bundle not found at {MEDNIST_GAN} (../shared is absent on this machine)")
    datasets = _instances(out / "mednist" / "dicom")
    assert len(datasets) == 2 and (datasets[0].Rows, datasets[0].Columns) == (64, 64)
    for ds in datasets:
        _check_common(ds, "mednist_gan", "0.4.2", 1, "DX")
    assert dciodvfy_problems(next((out / "mednist" / "dicom").rglob("*.dcm"))) == []


def test_seg_of_a_thresholded_volume_references_its_series(run, tmp_path):
    hd = pytest.importorskip("highdicom", reason="highdicom (deploy extra) is not installed")

    from medigan_zoo.engine.dicom_study import read_series, write_segmentation

    out, _, _, _ = run
    source = read_series(out / "adrenal" / "dicom" / "sample_000000")
    volume = np.stack([_model_values(ds) for ds in source])
    mask = volume > 0.5  # the adrenal model makes soft shape masks
    assert 0 < mask.sum() < mask.size
    path = write_segmentation(tmp_path, source, mask, ["adrenal gland"], model_id="adrenal_ct_3dgan", version="0.2.0")
    assert dciodvfy_problems(path) == []
    seg = hd.seg.segread(str(path))
    assert seg.SyntheticData == "YES" and seg.StudyInstanceUID == source[0].StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source[0].SeriesInstanceUID
    assert seg.SegmentSequence[0].SegmentLabel == "adrenal gland"
    labels = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in source], combine_segments=True)
    assert np.array_equal(labels > 0, mask)  # frame k segments source slice k


def test_study_geometry_with_anisotropic_spacing(tmp_path):
    """The study writer alone (no model): a (D, H, W) volume with spacing (2.5, 0.8, 0.6) mm comes back from
    SimpleITK with spacing (0.6, 0.8, 2.5) (x, y, z), identity direction and the same values."""
    from medigan_zoo.engine.dicom_study import StudySpec, write_study

    rng = np.random.default_rng(0)
    volume = rng.uniform(-1000, 2000, size=(1, 5, 7, 9)).astype(np.float32)
    spec = StudySpec(model_id="toy", model_name="Toy", version="1.0", weights_sha256="0" * 64, modality="CT",
                     spacing=(2.5, 0.8, 0.6), value_range=(-1000.0, 2000.0), seed=5)
    result = write_study(tmp_path, [volume], [11], [{}], spec)
    assert len(result.files) == 5
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "dicom" / "sample_000000")))
    image = reader.Execute()
    assert image.GetSize() == (9, 7, 5)
    assert np.allclose(image.GetSpacing(), (0.6, 0.8, 2.5)) and image.GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1)
    assert np.abs(sitk.GetArrayFromImage(image) - volume[0]).max() <= 3000 / 65535 * 1.01
    assert dciodvfy_problems(result.files[2]) == []


def test_mr_and_rgb_studies_are_valid(tmp_path):
    """MR (no Modality LUT in its IOD) and RGB (Secondary Capture, 8-bit) instances pass dciodvfy."""
    from medigan_zoo.engine.dicom_study import MR_IMAGE, SECONDARY_CAPTURE, StudySpec, write_study

    rng = np.random.default_rng(1)
    for modality, channels, sop in (("MR", 1, MR_IMAGE), ("OP", 3, SECONDARY_CAPTURE)):
        spec = StudySpec(model_id="toy", model_name="Toy", version="1.0", weights_sha256="0" * 64,
                         modality=modality, spacing=(1.0, 1.0), value_range=(-1.0, 1.0), seed=0)
        image = rng.uniform(-1, 1, size=(channels, 6, 8)).astype(np.float32)
        result = write_study(tmp_path / modality, [image], [0], [{}], spec)
        ds = pydicom.dcmread(str(result.files[0]))
        assert ds.SOPClassUID == sop and ds.SyntheticData == "YES"
        assert dciodvfy_problems(result.files[0]) == []


def _cli_inputs(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "one.json").write_text(json.dumps({"num_samples": 1, "seed": 2}))
    (inputs / "two.json").write_text(json.dumps({"model": "chest_xray_cdcgan", "conditions": {"bogus": 1}}))
    return inputs, out, ["-i", str(inputs), "-o", str(out), "-m", str(BUNDLES / "breast_ultrasound_wgangp")]


def _check_cli_outputs(out, errors):
    assert len(errors) == 1 and "two.json" in errors[0] and "bogus" in errors[0], errors
    assert sorted(p.name for p in out.iterdir()) == ["one"]
    ds = _instances(out / "one" / "dicom")[0]
    _check_common(ds, "breast_ultrasound_wgangp", ds.SoftwareVersions[1], 2, "US")


def test_main_with_the_sdk_flags(tmp_path):
    """``main(["-i", IN, "-o", OUT, "-m", BUNDLE])`` (what ``python app.py`` runs): a request naming no model runs
    the -m bundle; a bad one logs one ERROR line; the exit status is 2 because one request failed."""
    _sdk()
    from medigan_zoo.deploy.app import main

    inputs, out, flags = _cli_inputs(tmp_path)
    handler = Records()
    logging.getLogger("medigan_zoo.deploy").addHandler(handler)
    try:
        assert main(flags) == 2
    finally:
        logging.getLogger("medigan_zoo.deploy").removeHandler(handler)
    _check_cli_outputs(out, [text for level, text in handler.lines if level == "ERROR"])
    assert main(["-i", str(inputs / "one.json"), "-o", str(tmp_path / "out2"), "-m",
                 str(BUNDLES / "breast_ultrasound_wgangp")]) == 0


def test_main_without_requests_says_so(tmp_path):
    _sdk()
    from medigan_zoo.deploy.app import main

    handler = Records()
    logging.getLogger("medigan_zoo.deploy").addHandler(handler)
    try:
        assert main(["-i", str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    finally:
        logging.getLogger("medigan_zoo.deploy").removeHandler(handler)
    assert [level for level, _ in handler.lines] == ["ERROR"] and "holds no request (*.json)" in handler.lines[0][1]


@pytest.mark.slow
def test_cli_as_the_sdk_documents(tmp_path):
    """The same as a fresh process: ``python -m medigan_zoo.deploy -i IN -o OUT -m BUNDLE`` (slow: a fresh
    interpreter imports torch, MONAI and Holoscan; test_main_with_the_sdk_flags covers the same path in-process)."""
    _sdk()
    inputs, out, flags = _cli_inputs(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-W", "ignore", "-m", "medigan_zoo.deploy", *flags],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 2, log
    _check_cli_outputs(out, [ln for ln in log.splitlines() if "[ERROR] (medigan_zoo.deploy)" in ln])


def test_image_and_mask_model_gets_a_seg_per_sample(tmp_path):
    """An image+mask model (the toy two-head bundle of tests/pair_bundles.py): its study holds the image series and,
    per sample, a DICOM SEG that references the sample's image, carries the declared label, equals the model's mask
    and passes dciodvfy."""
    _sdk()
    hd = pytest.importorskip("highdicom", reason="highdicom (deploy extra) is not installed")
    from pair_bundles import make_pair_bundle

    from medigan_zoo.deploy.app import SyntheticStudyApp
    from medigan_zoo.engine import formats

    models = tmp_path / "models"
    make_pair_bundle(models)
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "pairs.json").write_text(json.dumps({"model": "toy_brain_tumor_pairs", "num_samples": 2, "seed": 3}))
    formats.SEG_WRITERS.clear()
    app = SyntheticStudyApp(["python", "app.py", "-i", str(inputs), "-o", str(out), "-m", str(models)], device="cpu")
    app.run()
    study = out / "pairs"
    segs = sorted((study / "seg").glob("*.dcm"))
    assert [p.name for p in segs] == ["sample_000000_mask.dcm", "sample_000001_mask.dcm"]
    images = {ds.SOPInstanceUID: ds for ds in _instances(study / "dicom")}
    for path in segs:
        assert dciodvfy_problems(path) == []
        seg = hd.seg.segread(str(path))
        assert seg.SyntheticData == "YES" and [s.SegmentLabel for s in seg.SegmentSequence] == ["tumor"]
        (ref,) = [r.ReferencedSOPInstanceUID for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence]
        assert ref in images and seg.StudyInstanceUID == images[ref].StudyInstanceUID
        mask = seg.get_pixels_by_source_instance([ref], combine_segments=True).squeeze()
        assert 0 < int(mask.sum()) < mask.size
