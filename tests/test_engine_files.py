"""Generation engine, files: every output format, 3D NIfTI/DICOM geometry, resuming, concurrent writers, errors."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from test_engine import folder_bytes, manifest_lines, one_torch_thread, tiny3d_bundle, tiny_bundle  # noqa: F401

from medigan_zoo.core.errors import GenerationError

engine = pytest.importorskip("medigan_zoo.engine")


def _png_pixels(path: Path) -> np.ndarray:
    from PIL import Image

    return np.array(Image.open(path))


# --- formats --------------------------------------------------------------------------------------------------

def test_png_and_jpeg_are_marked_synthetic(tiny_bundle, tmp_path):
    from PIL import Image

    png = engine.generate(tiny_bundle, 2, tmp_path / "png", seed=2, conditions={"class_label": 1}, quiet=True)
    image = Image.open(png.files[0])
    assert image.mode == "L" and image.size == (16, 16) and image.text["synthetic"] == "true"
    provenance = json.loads(image.text["medigan_zoo"])
    assert provenance["synthetic"] is True and provenance["index"] == 0
    assert provenance["condition"] == {"class_label": 1}
    assert "SYNTHETIC" in image.text["Description"]
    jpg = engine.generate(tiny_bundle, 2, tmp_path / "jpg", seed=2, output_format="jpeg", quiet=True,
                          conditions={"class_label": 1})
    assert jpg.files[0].suffix == ".jpg"
    image = Image.open(jpg.files[0])
    assert image.format == "JPEG" and image.info["comment"].startswith(b"synthetic")
    assert np.abs(np.array(image).astype(int) - _png_pixels(png.files[0])).mean() < 8  # lossy, same picture


def test_png_16_bit(tiny_bundle, tmp_path):
    eight = engine.generate(tiny_bundle, 2, tmp_path / "8", quiet=True)
    sixteen = engine.generate(tiny_bundle, 2, tmp_path / "16", bit_depth=16, quiet=True)
    wide = _png_pixels(sixteen.files[1]).astype(np.int64)
    assert wide.dtype == np.int64 and wide.max() > 255
    assert np.abs(np.round(wide / 257) - _png_pixels(eight.files[1])).max() <= 1


def test_npy_keeps_float_values(tiny_bundle, tmp_path):
    result = engine.generate(tiny_bundle, 3, tmp_path / "npy", seed=9, output_format="npy", quiet=True)
    arrays = engine.generate(tiny_bundle, 3, seed=9, save_images=False)
    for path, arr in zip(result.files, arrays):
        stored = np.load(path)
        assert stored.dtype == np.float32 and stored.shape == (1, 16, 16)
        assert np.array_equal(stored, np.moveaxis(arr, -1, 0))


def test_dicom_secondary_capture(tiny_bundle, tmp_path):
    import pydicom

    result = engine.generate(tiny_bundle, 3, tmp_path / "dcm", seed=4, output_format="dicom", quiet=True,
                             conditions={"class_label": 1})
    png = engine.generate(tiny_bundle, 3, tmp_path / "png", seed=4, quiet=True, conditions={"class_label": 1})
    uids = set()
    for i, path in enumerate(result.files):
        ds = pydicom.dcmread(path)
        assert ds[0x0008, 0x001C].value == "YES"  # Synthetic Data
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and ds.BurnedInAnnotation == "NO"
        assert not str(ds.get("PatientName", "")) and not ds.get("PatientID", "") and not ds.get("PatientBirthDate")
        assert "SYNTHETIC" in ds.SeriesDescription and "toy_xray_cgan" in ds.ImageComments
        assert ds.Modality == "DX" and ds.InstanceNumber == i + 1 and ds.ConversionType == "SYN"
        assert np.array_equal(ds.pixel_array, _png_pixels(png.files[i]))
        uids.add(ds.SOPInstanceUID)
        study, series = ds.StudyInstanceUID, ds.SeriesInstanceUID
    assert len(uids) == 3
    header = json.loads((tmp_path / "dcm" / "manifest.json").read_text())
    assert header["dicom"] == {"study": study, "series": series}  # one study/series per run, kept when resuming


def test_nifti_3d_geometry(tiny3d_bundle, tmp_path):
    import nibabel as nib

    result = engine.generate(tiny3d_bundle, 2, tmp_path / "nii", seed=1, output_format="nii.gz", quiet=True)
    arrays = engine.generate(tiny3d_bundle, 2, seed=1, save_images=False)
    image = nib.load(result.files[1])
    assert result.files[1].name == "sample_000001.nii.gz"
    assert image.shape == (8, 8, 8) and image.header.get_zooms() == (2.0, 1.5, 1.0)
    assert np.allclose(image.affine, np.diag([2.0, 1.5, 1.0, 1.0]))
    assert image.header["sform_code"] > 0 and image.header.get_xyzt_units()[0] == "mm"
    assert b"SYNTHETIC" in image.header["descrip"].tobytes()
    assert np.array_equal(image.get_fdata(dtype=np.float32), arrays[1][..., 0])


def test_dicom_3d_multiframe(tiny3d_bundle, tmp_path):
    import pydicom

    result = engine.generate(tiny3d_bundle, 1, tmp_path / "dcm", output_format="dcm", quiet=True)
    ds = pydicom.dcmread(result.files[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7.2" and ds.SyntheticData == "YES"
    assert int(ds.NumberOfFrames) == 8 and ds.pixel_array.shape == (8, 8, 8)
    assert [float(v) for v in ds.PixelSpacing] == [1.5, 1.0] and float(ds.SliceThickness) == 2.0


# --- no data lost ------------------------------------------------------------------------------------------------

def _leftovers(folder: Path, parts: bool = True):
    """Temporary files (and, with ``parts``, unmerged manifest parts) left in ``folder``."""
    return [p.name for p in folder.rglob("*") if "~tmp~" in p.name or (parts and p.name == ".manifest-parts")]


def test_disk_full_then_resume(tiny_bundle, tmp_path, monkeypatch):
    from medigan_zoo.engine import formats

    clean = engine.generate(tiny_bundle, 20, tmp_path / "clean", batch_size=4, quiet=True)
    real = formats.ENCODERS["png"]
    calls = {"n": 0}

    def fills_the_disk_after_9(path, array, info):
        calls["n"] += 1
        real(path, array, info)  # a partial temporary file is left behind ...
        if calls["n"] > 9:
            raise OSError(errno.ENOSPC, "No space left on device")  # ... and the write fails

    monkeypatch.setitem(formats.ENCODERS, "png", fills_the_disk_after_9)
    with pytest.raises(GenerationError, match="Disk full"):
        engine.generate(tiny_bundle, 20, tmp_path / "out", batch_size=4, quiet=True, num_workers=2)
    partial = folder_bytes(tmp_path / "out")
    assert 0 < len(partial) < 20 and all(partial[k] == v for k, v in folder_bytes(clean.output_path).items()
                                         if k in partial)
    assert not _leftovers(tmp_path / "out", parts=False)  # no temporary file survives the error
    monkeypatch.setitem(formats.ENCODERS, "png", real)
    resumed = engine.generate(tiny_bundle, 20, tmp_path / "out", batch_size=4, quiet=True)
    assert resumed.num_skipped == len(partial)  # every file written before the error was recorded
    assert resumed.num_written + resumed.num_skipped == 20
    assert folder_bytes(tmp_path / "out") == folder_bytes(clean.output_path)
    assert manifest_lines(tmp_path / "out") == manifest_lines(clean.output_path)
    assert not _leftovers(tmp_path / "out")


def _run_generate(out: Path, num_samples: int, extra: str = "") -> subprocess.Popen:
    code = (f"import sys, time\n"
            f"from medigan_zoo.engine import generate, runner\n"
            f"{extra}\n"
            f"generate(sys.argv[1], {num_samples}, sys.argv[2], batch_size=2, quiet=True, num_workers=1)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, str(BUNDLE[0]), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


BUNDLE: list = []
SLOW_WRITES = ("real = runner._write_sample\n"
               "def slow(*a):\n    time.sleep(0.02)\n    real(*a)\n"
               "runner._write_sample = slow\n")


def test_killed_run_resumes_to_the_same_files(tiny_bundle, tmp_path):
    BUNDLE[:] = [tiny_bundle]
    out = tmp_path / "out"
    proc = _run_generate(out, 60, SLOW_WRITES)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("sample_*.png"))) < 10 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert 10 <= len(list(out.glob("sample_*.png"))) < 60
    resumed = engine.generate(tiny_bundle, 60, out, batch_size=2, quiet=True)
    assert resumed.num_skipped >= 1
    clean = engine.generate(tiny_bundle, 60, tmp_path / "clean", batch_size=64, quiet=True)
    assert folder_bytes(out) == folder_bytes(clean.output_path)
    assert manifest_lines(out) == manifest_lines(clean.output_path)
    assert not _leftovers(out)


def test_two_processes_one_folder(tiny_bundle, tmp_path):
    BUNDLE[:] = [tiny_bundle]
    out = tmp_path / "out"
    procs = [_run_generate(out, 40, SLOW_WRITES.replace("0.02", "0.005")) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    clean = engine.generate(tiny_bundle, 40, tmp_path / "clean", quiet=True)
    assert folder_bytes(out) == folder_bytes(clean.output_path)
    lines = manifest_lines(out)
    assert [r["index"] for r in lines] == list(range(40)) and lines == manifest_lines(clean.output_path)
    assert not _leftovers(out)


def test_dicom_rgb_and_16_bit_encoders(tmp_path):
    """The DICOM encoder on arrays the tiny bundles do not make: RGB, 16-bit gray, an RGB volume."""
    import pydicom

    from medigan_zoo.engine import formats

    rng = np.random.default_rng(0)
    cases = {
        "rgb": (rng.integers(0, 256, (6, 5, 3), dtype=np.uint8), 8, "1.2.840.10008.5.1.4.1.1.7", "RGB"),
        "gray16": (rng.integers(0, 65536, (6, 5, 1), dtype=np.uint16), 16, "1.2.840.10008.5.1.4.1.1.7", "MONOCHROME2"),
        "rgb3d": (rng.integers(0, 256, (4, 6, 5, 3), dtype=np.uint8), 8, "1.2.840.10008.5.1.4.1.1.7.4", "RGB"),
    }
    for name, (arr, bits, sop, photometric) in cases.items():
        info = formats.SampleInfo(index=0, seed=1, condition={}, model_id="m", model_name="M", version="1",
                                  weights_sha256="0" * 64, zoo_version="0", bit_depth=bits)
        path = tmp_path / f"{name}.dcm"
        formats.write_dcm(path, arr, info)
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == sop and ds.PhotometricInterpretation == photometric and ds.SyntheticData == "YES"
        assert np.array_equal(ds.pixel_array, arr[..., 0] if arr.shape[-1] == 1 else arr), name
