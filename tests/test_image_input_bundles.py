"""The two image-input bundles of issue #16 through the zoo (docs/bundle_contract.md section 5):

* ``brain_mri_tumor_maskgan`` both ways: from noise ((image, mask) pairs; its mask input is ``optional``) and from a
  user's masks (``--input_path``: one image per mask, or ``samples_per_input`` per mask, the given mask returned as
  the pair's mask), in every output format (PNG / npy / NIfTI pairs, DICOM image + a DICOM SEG referencing it), through
  ``engine.generate``, ``Generators`` (tuples, dataset, DataLoader), the CLI and ``python -m monai.bundle run``.
  The tests save a randomly initialised network of its ``network_def`` (seed 0; a bank of square masks) into a
  temporary copy of the bundle, which tests the plumbing independently of the weights.
* ``brain_mri_t1_to_t2_pix2pix`` on DICOM series (written here with pydicom, and the real TCIA series of
  ../shared/data reduced to the model's 64x64): the translated slices keep the input's geometry (DICOM position,
  orientation and spacing; NIfTI affine).

Each error of the inputs is refused before any work with a message naming the file. The bundles are found with
``conftest.zoo_bundle`` (bundles/ first, then drafts/).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DATA_DIR, REPO, mr_dicom_slice, require, zoo_bundle
from PIL import Image

from medigan_zoo import engine
from medigan_zoo.core.errors import GenerationError
from medigan_zoo.core.files import file_sha256

MASKGAN = zoo_bundle("brain_mri_tumor_maskgan")
TRANSLATOR = zoo_bundle("brain_mri_t1_to_t2_pix2pix")
EXT = {"png": ".png", "npy": ".npy", "nii.gz": ".nii.gz", "dcm": ".dcm"}


@pytest.fixture(scope="module")
def maskgan(tmp_path_factory) -> Path:
    """A copy of the mask bundle with randomly initialised weights (seed 0) as models/model.pt; its mask bank (if
    the network has one) holds squares of several sizes and places."""
    from monai.bundle import ConfigParser

    require(MASKGAN / "configs" / "inference.json", "the brain_mri_tumor_maskgan bundle")
    bundle = shutil.copytree(MASKGAN, tmp_path_factory.mktemp("maskgan") / MASKGAN.name,
                             ignore=shutil.ignore_patterns("model.pt", "model.ts"))
    parser = ConfigParser()
    parser.read_config(bundle / "configs" / "inference.json")
    parser["device"] = "$torch.device('cpu')"
    torch.manual_seed(0)
    generator = parser.get_parsed_content("network_def")
    if hasattr(generator, "set_masks"):
        bank = torch.zeros_like(generator.mask_bank.masks)
        for k in range(len(bank)):
            top, left, side = 16 + k % 5 * 4, 14 + k % 7 * 4, 4 + k % 9
            bank[k, 0, top:top + side, left:left + side] = 1
        generator.set_masks(bank)
    (bundle / "models").mkdir(exist_ok=True)
    torch.save(generator.state_dict(), bundle / "models" / "model.pt")
    return bundle


@pytest.fixture(scope="module")
def sampler(maskgan):
    from medigan_zoo.runtime.bundle import load_bundle_sampler

    return load_bundle_sampler(maskgan, device="cpu", trusted=True)


@pytest.fixture(scope="module")
def masks(tmp_path_factory) -> Path:
    """Two 64x64 binary tumor masks saved as 0/255 PNGs (how masks are usually drawn)."""
    folder = tmp_path_factory.mktemp("masks")
    for k in range(2):
        mask = np.zeros((64, 64), np.uint8)
        mask[12 + 8 * k:34, 20:44 - 6 * k] = 255
        Image.fromarray(mask).save(folder / f"case{k}.png")
    return folder


def _given(masks: Path, k: int) -> np.ndarray:
    return (np.array(Image.open(masks / f"case{k}.png")) > 0).astype(np.uint8)


def _lines(folder: Path):
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def _gen(bundle, num, out, sampler, **kw):
    return engine.generate(bundle, num, out, quiet=True, num_workers=0, sampler=sampler, **kw)


# --- the mask model: both ways ------------------------------------------------------------------

def test_maskgan_declares_an_optional_mask_input(maskgan, tmp_path):
    from medigan_zoo.engine.runner import read_model
    from medigan_zoo.runtime.validate import validate

    info = read_model(maskgan)
    assert [(s.name, s.kind, s.optional) for s in info.inputs] == [("mask", "mask", True)]
    assert info.required_inputs == [] and [o.name for o in info.outputs] == ["image", "mask"]
    assert not validate(maskgan).errors, [str(p) for p in validate(maskgan).errors]
    broken = shutil.copytree(maskgan, tmp_path / "broken", ignore=shutil.ignore_patterns("*.pt"))
    meta = json.loads((broken / "configs" / "metadata.json").read_text())
    meta["medigan_zoo"]["inputs"][0]["optional"] = "yes"
    (broken / "configs" / "metadata.json").write_text(json.dumps(meta))
    assert any("inputs[0].optional" in str(p) for p in validate(broken).errors)


@pytest.mark.parametrize("fmt", ["png", "npy", "nii.gz", "dcm"])
def test_maskgan_from_noise_writes_pairs(maskgan, sampler, tmp_path, fmt):
    ext = EXT[fmt]
    result = _gen(maskgan, 2, tmp_path / "out", sampler, output_format=fmt)
    names = sorted(p.name for p in (tmp_path / "out").glob("sample_*"))
    assert names == sorted(f"sample_00000{i}_{o}{ext}" for i in range(2) for o in ("image", "mask"))
    assert result.mask_files[1] == tmp_path / "out" / f"sample_000001_mask{ext}"
    rec = _lines(tmp_path / "out")[0]
    assert "inputs" not in rec and rec["mask_file"] == f"sample_000000_mask{ext}"
    made = engine.generate(maskgan, 2, save_images=False, sampler=sampler)  # medigan's (image, mask) tuples
    assert isinstance(made[0], tuple) and made[0][0].shape == made[0][1].shape == (64, 64, 1)
    if fmt != "dcm":
        mask = engine.formats.FORMATS[fmt].reader(tmp_path / "out" / f"sample_000000_mask{ext}")
        assert np.array_equal(mask.reshape(-1), made[0][1].reshape(-1).astype(mask.dtype))
    if fmt == "nii.gz":
        import nibabel as nib

        image, label = (nib.load(str(tmp_path / "out" / f"sample_000000_{o}.nii.gz")) for o in ("image", "mask"))
        assert np.array_equal(image.affine, label.affine) and image.shape == label.shape
    if fmt == "dcm":
        _check_seg(tmp_path / "out", 0, made[0][1][..., 0])


def _check_seg(folder: Path, index: int, expected: np.ndarray) -> None:
    """The mask file is a DICOM SEG that pydicom and highdicom read, referencing the sample's image, with the
    expected pixels and marked synthetic."""
    hd = pytest.importorskip("highdicom", reason="highdicom (the deploy extra) is not installed")
    import pydicom

    image = pydicom.dcmread(str(folder / f"sample_{index:06d}_image.dcm"))
    raw = pydicom.dcmread(str(folder / f"sample_{index:06d}_mask.dcm"))
    assert raw.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and raw.Modality == "SEG"
    assert raw.SyntheticData == "YES" and image.SyntheticData == "YES"
    assert raw.ReferencedSeriesSequence[0].SeriesInstanceUID == image.SeriesInstanceUID
    assert raw.StudyInstanceUID == image.StudyInstanceUID
    seg = hd.seg.segread(str(folder / f"sample_{index:06d}_mask.dcm"))
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["tumor"]
    got = seg.get_pixels_by_source_instance([image.SOPInstanceUID], combine_segments=True).squeeze()
    assert np.array_equal(got, expected.astype(got.dtype))


@pytest.mark.parametrize("fmt", ["png", "npy", "nii.gz", "dcm"])
def test_maskgan_from_user_masks_keeps_each_mask(maskgan, sampler, masks, tmp_path, fmt):
    ext = EXT[fmt]
    out = tmp_path / "out"
    result = _gen(maskgan, None, out, sampler, input_path=masks, samples_per_input=2, output_format=fmt)
    assert len(result.files) == 4 and result.num_written == 4  # 2 masks x 2 samples each
    lines = _lines(out)
    for index, rec in enumerate(lines):
        source = masks / f"case{index // 2}.png"
        assert rec["inputs"]["mask"] == {"path": str(source), "sha256": file_sha256(source), "slice": None}
        assert rec["file"] == f"sample_{index:06d}_image{ext}" and rec["mask_file"] == f"sample_{index:06d}_mask{ext}"
    assert len({rec["seed"] for rec in lines}) == 4
    if fmt == "dcm":
        for index in (0, 3):
            _check_seg(out, index, _given(masks, index // 2))
        return
    read = engine.formats.FORMATS[fmt].reader
    for index in range(4):  # the pair's mask is the given one
        mask = read(out / f"sample_{index:06d}_mask{ext}")
        assert np.array_equal(mask.reshape(64, 64), _given(masks, index // 2))
    first, second = (read(out / f"sample_00000{i}_image{ext}") for i in (0, 1))
    assert not np.array_equal(first, second)  # same mask, two seeds: two images
    again = _gen(maskgan, None, out, sampler, input_path=masks, samples_per_input=2, output_format=fmt)
    assert again.num_skipped == 4 and again.num_written == 0  # resume


def test_maskgan_nifti_mask_gives_pairs_with_its_affine(maskgan, sampler, masks, tmp_path):
    import nibabel as nib

    affine = np.array([[-0.9, 0, 0, 10], [0, 0.9, 0, -20], [0, 0, 5, 30], [0, 0, 0, 1]], dtype=float)
    volume = np.stack([_given(masks, 0).T, _given(masks, 1).T], axis=-1)  # (x, y, z): two slices
    nib.save(nib.Nifti1Image(volume.astype(np.uint8), affine), str(tmp_path / "masks.nii.gz"))
    _gen(maskgan, None, tmp_path / "out", sampler, input_path=tmp_path / "masks.nii.gz", output_format="nii.gz")
    for k in range(2):
        image, label = (nib.load(str(tmp_path / "out" / f"sample_00000{k}_{o}.nii.gz")) for o in ("image", "mask"))
        moved = affine @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, k], [0, 0, 0, 1]], dtype=float)
        assert np.allclose(image.affine, moved) and np.allclose(label.affine, moved)
        assert np.array_equal(np.asarray(label.dataobj)[..., 0], volume[..., k])  # same layout as the input
    assert [rec["inputs"]["mask"]["slice"] for rec in _lines(tmp_path / "out")] == [0, 1]


@pytest.mark.parametrize("case, match", [
    ("labels", r"holds the values \[0, 1, 2\] but the model's 'mask' labels are \[0, 1\]"),
    ("shape", r"is 32x32 but the model takes 'mask' as 64x64.*resize"),
    ("channels", r"3 channel\(s\) but the model takes 'mask' with 1"),
    ("missing", r"does not exist"),
    ("empty", r"holds no input files"),
    ("unknown", r"\['t1'\] are not among them"),
])
def test_maskgan_wrong_masks_fail_before_any_work(maskgan, sampler, tmp_path, case, match):
    bad = tmp_path / "bad"
    bad.mkdir()
    given: object = bad
    if case == "labels":
        labels = np.zeros((64, 64), np.uint8)
        labels[5:9, 5:9], labels[20:30, 20:30] = 1, 2
        Image.fromarray(labels).save(bad / "a.png")
    elif case == "shape":
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(bad / "a.png")
    elif case == "channels":
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(bad / "a.png")
    elif case == "missing":
        given = tmp_path / "nothing"
    elif case == "unknown":
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(bad / "a.png")
        given = {"t1": bad}
    with pytest.raises(GenerationError, match=match):
        _gen(maskgan, None, tmp_path / "out", sampler, input_path=given)
    assert not (tmp_path / "out").exists()  # refused before the output folder was made


def test_maskgan_refuses_a_lossy_format_before_any_work(maskgan, sampler, tmp_path):
    """JPEG would blur the label values at the mask edges: refused, naming the lossless formats to use."""
    with pytest.raises(GenerationError, match=r"output_format 'jpg' is lossy .* mask output\(s\) mask; use a "
                                              r"lossless format: png, .*npy"):
        engine.generate(maskgan, 2, tmp_path / "out", output_format="jpg", quiet=True, num_workers=0,
                        sampler=sampler)
    assert not (tmp_path / "out").exists()


def test_maskgan_through_generators_dataset_and_dataloader(maskgan, masks):
    from medigan_zoo import Generators

    gens = Generators(bundle_dirs=[maskgan.parent], include_builtin=False, trust_bundles=True, device="cpu")
    model = maskgan.name
    pairs = gens.generate(model, num_samples=2, save_images=False)  # medigan's (image, mask) tuples
    assert all(isinstance(p, tuple) and len(p) == 2 for p in pairs)
    assert set(np.unique(pairs[0][1])) <= {0.0, 1.0}
    given = gens.generate(model, input_path=masks, save_images=False)
    assert len(given) == 2 and np.array_equal(given[1][1][..., 0], _given(masks, 1))
    data = gens.get_as_torch_dataset(model, inputs=masks, samples_per_input=2)
    assert len(data) == 4 and data[3]["mask_path"] == str(masks / "case1.png")
    assert torch.equal(data[2]["mask"][0], torch.from_numpy(_given(masks, 1)).float())
    assert torch.allclose(data[0]["image"], torch.from_numpy(given[0][0]).permute(2, 0, 1))
    noise = gens.get_as_torch_dataset(model, num_samples=3)
    assert len(noise) == 3 and "mask_path" not in noise[0] and noise[0]["mask"].shape == (1, 64, 64)
    batch = next(iter(gens.get_as_torch_dataloader(model, inputs=masks, batch_size=2)))
    assert batch["image"].shape == batch["mask"].shape == (2, 1, 64, 64)
    assert batch["mask_path"] == [str(masks / "case0.png"), str(masks / "case1.png")]


def test_maskgan_grid_from_noise_and_from_masks(sampler, masks):
    from medigan_zoo.engine.visualize import sample_grid_image

    noise = np.array(sample_grid_image(sampler, num_per_row=3, scale=1))
    given = np.array(sample_grid_image(sampler, num_per_row=3, scale=1, input_path=masks))
    assert given.shape[0] > noise.shape[0]  # a row of the given masks above the row of their pairs


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


def test_maskgan_cli_generate_with_the_example_masks(maskgan, tmp_path):
    """The card's command: the bundle's example masks (real, held-out patient), two samples each."""
    examples = sorted((maskgan / "docs" / "example_inputs").glob("*_mask.png"))
    assert len(examples) == 3
    run = subprocess.run([sys.executable, "-m", "medigan_zoo", "--trust", str(maskgan.parent), "--bundle_dirs",
                          str(maskgan.parent), "--include_builtin", "False", "generate", maskgan.name,
                          "--input_path", str(maskgan / "docs" / "example_inputs"), "--samples_per_input", "2",
                          "--output_path", str(tmp_path / "out"), "--quiet"],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "out").glob("sample_*")) == \
        sorted(f"sample_00000{i}_{o}.png" for i in range(6) for o in ("image", "mask"))
    for index in (0, 5):
        mask = np.array(Image.open(tmp_path / "out" / f"sample_00000{index}_mask.png"))
        assert mask.any() and np.array_equal(mask, np.array(Image.open(examples[index // 2])) > 0)


def test_maskgan_cli_generate_from_noise_in_process(maskgan, tmp_path, capsys):
    """``medigan-zoo generate`` without --input_path: the mask input is optional, so pairs from noise."""
    from medigan_zoo.cli import main

    main(["--trust", str(maskgan.parent), "--bundle_dirs", str(maskgan.parent), "--include_builtin", "False",
          "generate", maskgan.name, "--num_samples", "2", "--output_path", str(tmp_path / "out"), "--quiet"])
    assert sorted(p.name for p in (tmp_path / "out").glob("sample_*")) == \
        sorted(f"sample_00000{i}_{o}.png" for i in range(2) for o in ("image", "mask"))
    assert all("inputs" not in rec for rec in _lines(tmp_path / "out"))


def test_maskgan_monai_bundle_run_inferring_both_ways(maskgan, sampler, masks, tmp_path):
    """``monai.bundle.run("inferring", ...)`` (what the card's ``python -m monai.bundle run inferring`` calls; both
    runs in one process to start Python once): from noise (``num_samples``) and from masks (``input_dir``), the same
    pairs as the zoo's for the same seeds."""
    common = dict(config_file=str(maskgan / "configs" / "inference.json"),
                  meta_file=str(maskgan / "configs" / "metadata.json"),
                  logging_file=str(maskgan / "configs" / "logging.conf"), bundle_root=str(maskgan))
    runs = [dict(common, output_dir=str(tmp_path / "noise"), num_samples=2),
            dict(common, output_dir=str(tmp_path / "given"), input_dir=str(masks))]
    code = ("import json, sys\nfrom monai.bundle import run\n"
            "for kw in json.loads(sys.argv[1]):\n    run('inferring', **kw)")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(runs)], capture_output=True, text=True, env=_env(),
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "noise").iterdir()) == \
        sorted(f"sample_00000{i}_{o}.png" for i in range(2) for o in ("image", "mask"))
    zoo = engine.generate(maskgan, 2, save_images=False, sampler=sampler)
    mask = np.array(Image.open(tmp_path / "noise" / "sample_000001_mask.png"))
    assert np.array_equal(mask, zoo[1][1][..., 0].astype(np.uint8))
    assert sorted(p.name for p in (tmp_path / "given").iterdir()) == \
        sorted(f"case{i}_{o}.png" for i in range(2) for o in ("image", "mask"))
    zoo = engine.generate(maskgan, None, save_images=False, sampler=sampler, input_path=masks)
    image = np.array(Image.open(tmp_path / "given" / "case1_image.png")).astype(int)
    assert np.abs(image - np.rint(zoo[1][0][..., 0] * 255).astype(int)).max() <= 1  # same sample, same orientation
    assert np.array_equal(np.array(Image.open(tmp_path / "given" / "case1_mask.png")), _given(masks, 1))


# --- the translator: DICOM series in, geometry kept ---------------------------------------------

def _series(folder: Path, count: int = 3, size: int = 64, modality: str = "MR") -> Path:
    """A small oblique DICOM series (pydicom), files in reverse slice order."""
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    frame, series, study = generate_uid(), generate_uid(), generate_uid()
    rng = np.random.default_rng(0)
    row, col = np.array([1.0, 0.0, 0.0]), np.array([0.0, np.cos(0.2), -np.sin(0.2)])
    normal = np.cross(row, col)
    for k in range(count):
        ds = mr_dicom_slice(modality, series, study)
        ds.FrameOfReferenceUID, ds.InstanceNumber = frame, count - k
        ds.ImageOrientationPatient = [f"{v:.10g}" for v in (*row, *col)]
        position = np.array([-90.5, -80.25, 40.0]) + 5.0 * (count - 1 - k) * normal
        ds.ImagePositionPatient = [f"{v:.10g}" for v in position]
        ds.PixelSpacing, ds.SliceThickness = ["3.4375", "3.5"], "5"
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = rng.integers(0, 2000, (size, size), dtype=np.uint16).tobytes()
        ds.save_as(str(folder / f"im_{k}.dcm"), enforce_file_format=True)
    return folder


def _real_series_64(folder: Path, count: int = 3) -> Path:
    """The first ``count`` slices of the real TCIA series (320x260), centre-cropped to 256x256 and block-averaged
    to the translator's 64x64, with ImagePositionPatient and PixelSpacing moved to match (a real scanner geometry)."""
    import pydicom
    from pydicom.uid import generate_uid

    source = require(DATA_DIR / "dicom_mri_series", "the TCIA DICOM series")
    folder.mkdir(parents=True, exist_ok=True)
    series = generate_uid()
    for path in sorted(source.glob("*.dcm"))[:count]:
        ds = pydicom.dcmread(str(path))
        pixels = ds.pixel_array.astype(np.float64)
        r0, c0 = (ds.Rows - 256) // 2, (ds.Columns - 256) // 2
        small = pixels[r0:r0 + 256, c0:c0 + 256].reshape(64, 4, 64, 4).mean(axis=(1, 3))
        row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
        orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
        first = np.array([float(v) for v in ds.ImagePositionPatient]) + \
            (c0 + 1.5) * col_spacing * orientation[:3] + (r0 + 1.5) * row_spacing * orientation[3:]
        ds.ImagePositionPatient = [f"{v:.10g}" for v in first]
        ds.PixelSpacing = [f"{4 * row_spacing:.10g}", f"{4 * col_spacing:.10g}"]
        ds.Rows = ds.Columns = 64
        ds.PixelData = np.rint(small).astype(np.uint16).tobytes()
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(str(folder / path.name), enforce_file_format=True)
    return folder


def _positions(folder: Path):
    import pydicom

    datasets = [pydicom.dcmread(str(p)) for p in sorted(folder.glob("*.dcm"))]
    normal = np.cross(*(np.array([float(v) for v in datasets[0].ImageOrientationPatient]).reshape(2, 3)))
    return sorted(datasets, key=lambda d: float(np.dot(normal, [float(v) for v in d.ImagePositionPatient])))


@pytest.fixture(scope="module")
def translator():
    from medigan_zoo.runtime.bundle import load_bundle_sampler

    require(TRANSLATOR / "models" / "model.pt", "trained weights of the translation bundle")
    return load_bundle_sampler(TRANSLATOR, device="cpu", trusted=True)


@pytest.mark.parametrize("kind", ["written", "real"])
def test_translator_dicom_series_to_dicom_keeps_geometry(translator, tmp_path, kind):
    import pydicom

    series = _series(tmp_path / "series") if kind == "written" else _real_series_64(tmp_path / "series")
    result = _gen(TRANSLATOR, None, tmp_path / "out", translator, input_path=series, output_format="dcm")
    sources = _positions(series)
    assert len(result.files) == len(sources) == 3
    for path, source in zip(result.files, sources):  # sample k is slice k, in position order
        out = pydicom.dcmread(str(path))
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            assert np.allclose([float(v) for v in getattr(out, keyword)],
                               [float(v) for v in getattr(source, keyword)], atol=1e-6), keyword
        assert out.FrameOfReferenceUID == source.FrameOfReferenceUID and (out.Rows, out.Columns) == (64, 64)
        assert out.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert out.SyntheticData == "YES"
    recs = _lines(tmp_path / "out")
    assert [r["inputs"]["t1"]["path"] for r in recs] == [str(series / Path(s.filename).name) for s in sources]
    assert recs[0]["inputs"]["t1"]["sha256"] == file_sha256(Path(sources[0].filename))


def test_translator_dicom_series_to_nifti_has_the_series_affine(translator, tmp_path):
    """A NIfTI output of a DICOM slice gets the slice's affine (RAS), the one MONAI's own DICOM reader gives."""
    import nibabel as nib
    from monai.transforms import LoadImage

    series = _series(tmp_path / "series")
    result = _gen(TRANSLATOR, None, tmp_path / "out", translator, input_path=series, output_format="nii.gz")
    volume = LoadImage(reader="PydicomReader", image_only=True)(str(series))  # MONAI: (x, y, z), affine in RAS
    for k, path in enumerate(result.files):
        out = nib.load(str(path))
        expected = np.asarray(volume.affine, dtype=float) @ np.array(
            [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, k], [0, 0, 0, 1]], dtype=float)
        assert out.shape[:2] == (64, 64)
        assert np.allclose(out.affine[:3, :2], expected[:3, :2], atol=1e-4)  # in-plane axes and spacing
        assert np.allclose(out.affine[:3, 3], expected[:3, 3], atol=1e-3)  # where the slice lies


@pytest.mark.parametrize("case, match", [
    ("modality", r"modality CT, the model takes 't1' of modality MR"),
    ("channels", r"3 channel\(s\) but the model takes 't1' with 1"),
    ("shape", r"is 32x32 but the model takes 't1' as 64x64"),
    ("missing", r"does not exist"),
    ("not an image", r"not a readable DICOM file"),
])
def test_translator_wrong_inputs_fail_before_any_work(translator, tmp_path, case, match):
    bad = tmp_path / "bad"
    if case == "modality":
        _series(bad, count=2, modality="CT")
    elif case == "channels":
        bad.mkdir()
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(bad / "rgb.png")
    elif case == "shape":
        _series(bad, count=2, size=32)
    elif case == "not an image":
        bad.mkdir()
        (bad / "broken.dcm").write_bytes(b"not a DICOM file")
    with pytest.raises(GenerationError, match=match):
        _gen(TRANSLATOR, None, tmp_path / "out", translator, input_path=bad)
    assert not (tmp_path / "out").exists()
    with pytest.raises(GenerationError, match="give input_path"):  # its input is required
        _gen(TRANSLATOR, 2, tmp_path / "out", translator)
