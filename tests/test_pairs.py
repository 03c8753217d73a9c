"""Models with image inputs and several outputs (docs/bundle_contract.md section 5): reading and checking inputs
(PNG, npy, NIfTI, DICOM series), one output per input, manifests with the input's sha256, paired image/mask files
in every format, resume, the dataset, the CLI and `python -m monai.bundle run inferring` of the test bundles."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import mr_dicom_slice
from pair_bundles import make_pair_bundle, make_translation_bundle
from PIL import Image

from medigan_zoo import engine
from medigan_zoo.core.errors import GenerationError
from medigan_zoo.core.files import file_sha256


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair_bundles")
    return make_translation_bundle(root), make_pair_bundle(root)


def _pngs(folder: Path, count: int = 3, size: int = 32) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(folder / f"t1_{k}.png")
    return folder


def _lines(folder: Path):
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_translation_of_png_folder_keeps_each_input(bundles, tmp_path):
    translator, _ = bundles
    inputs = _pngs(tmp_path / "in")
    result = engine.generate(translator, None, tmp_path / "out", input_path=inputs, quiet=True, num_workers=0)
    assert [p.name for p in result.files] == ["sample_000000_image.png", "sample_000001_image.png",
                                              "sample_000002_image.png"]
    for k, path in enumerate(result.files):  # identity network: the output is the input
        assert np.array_equal(np.array(Image.open(path)), np.array(Image.open(inputs / f"t1_{k}.png")))
    rec = _lines(tmp_path / "out")[1]
    assert rec["inputs"]["t1"] == {"path": str(inputs / "t1_1.png"), "sha256": file_sha256(inputs / "t1_1.png"),
                                   "slice": None}
    again = engine.generate(translator, None, tmp_path / "out", input_path=inputs, quiet=True, num_workers=0)
    assert again.num_skipped == 3 and again.num_written == 0  # resume


def test_samples_per_input_and_limits(bundles, tmp_path):
    translator, _ = bundles
    inputs = _pngs(tmp_path / "in", count=2)
    arrays = engine.generate(translator, None, input_path=inputs, samples_per_input=2, save_images=False)
    assert len(arrays) == 4 and np.array_equal(arrays[0], arrays[1]) and not np.array_equal(arrays[1], arrays[2])
    with pytest.raises(GenerationError, match="make 2 samples"):
        engine.generate(translator, 5, input_path=inputs, save_images=False)
    with pytest.raises(GenerationError, match="give input_path"):
        engine.generate(translator, 2, save_images=False)


@pytest.mark.parametrize("case, match", [
    ("shape", r"is 16x16 but the model takes 't1' as 32x32.*resize"),
    ("channels", r"3 channel\(s\) but the model takes 't1' with 1"),
    ("range", r"values in \[0, 7\] but the model takes 't1' in \[0, 1\]"),
    ("modality", r"modality CT, the model takes 't1' of modality MR"),
    ("missing", r"does not exist"),
])
def test_wrong_inputs_fail_before_any_work(bundles, tmp_path, case, match):
    translator, _ = bundles
    bad = tmp_path / "bad"
    bad.mkdir()
    if case == "shape":
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(bad / "a.png")
    elif case == "channels":
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(bad / "a.png")
    elif case == "range":
        np.save(bad / "a.npy", np.full((32, 32), 7.0, np.float32).clip(0, 7) * np.eye(32, dtype=np.float32))
    elif case == "modality":
        _dicom_series(bad, modality="CT")
    else:
        bad = tmp_path / "nothing"
    with pytest.raises(GenerationError, match=match):
        engine.generate(translator, None, tmp_path / "out", input_path=bad, quiet=True)
    assert not (tmp_path / "out").exists()  # refused before the output folder was made


def _dicom_series(folder: Path, modality: str = "MR", count: int = 3) -> Path:
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    frame, series = generate_uid(), generate_uid()
    for k in range(count):
        ds = mr_dicom_slice(modality, series, generate_uid())
        ds.FrameOfReferenceUID = frame
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, 5.0 * (count - 1 - k)]  # files in reverse slice order
        ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 5.0
        ds.Rows = ds.Columns = 32
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.full((32, 32), 100 * (count - k), np.uint16).tobytes()
        ds.save_as(str(folder / f"slice_{k}.dcm"), enforce_file_format=True)
    return folder


def test_dicom_series_input_keeps_geometry(bundles, tmp_path):
    import pydicom

    translator, _ = bundles
    series = _dicom_series(tmp_path / "series")
    from medigan_zoo.catalog.bundle_reader import read_bundle
    from medigan_zoo.engine.inputs import read_inputs

    info = read_bundle(translator)
    spec = dict(info.zoo)
    spec["inputs"] = [{**spec["inputs"][0], "normalization": "minmax"}]
    from dataclasses import replace

    minmax = read_inputs(replace(info, zoo=spec), series)
    assert [i.path.name for i in minmax.items["t1"]] == ["slice_2.dcm", "slice_1.dcm", "slice_0.dcm"]  # by position
    result = engine.generate(translator, None, tmp_path / "out", input_path=minmax.items["t1"][0].path.parent,
                             inputs=minmax, output_format="dcm", quiet=True, num_workers=0)
    out = pydicom.dcmread(str(result.files[0]))
    source = pydicom.dcmread(str(series / "slice_2.dcm"))
    assert [float(v) for v in out.ImagePositionPatient] == [float(v) for v in source.ImagePositionPatient]
    assert out.FrameOfReferenceUID == source.FrameOfReferenceUID and out.SyntheticData == "YES"
    assert out.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID


def test_nifti_volume_to_2d_model_one_input_per_slice(bundles, tmp_path):
    import nibabel as nib

    translator, _ = bundles
    volume = np.random.default_rng(1).random((32, 32, 2)).astype(np.float32)  # (x, y, z)
    affine = np.diag([0.5, 0.5, 3.0, 1.0])
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "t1.nii.gz"))
    result = engine.generate(translator, None, tmp_path / "out", input_path=tmp_path / "t1.nii.gz",
                             output_format="nii.gz", quiet=True, num_workers=0)
    out = nib.load(str(result.files[1]))
    assert np.allclose(out.affine, affine @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]]))
    assert np.allclose(np.asarray(out.dataobj)[..., 0], volume[..., 1], atol=1e-6)  # identity, same layout
    assert _lines(tmp_path / "out")[1]["inputs"]["t1"]["slice"] == 1


@pytest.mark.parametrize("fmt", ["png", "npy", "nii.gz", "dcm"])
def test_image_mask_pairs_in_every_format(bundles, tmp_path, fmt):
    _, pairs = bundles
    result = engine.generate(pairs, 3, tmp_path / fmt, output_format=fmt, quiet=True, num_workers=0)
    ext = {"png": ".png", "npy": ".npy", "nii.gz": ".nii.gz", "dcm": ".dcm"}[fmt]
    names = sorted(p.name for p in (tmp_path / fmt).glob("sample_*"))
    assert result.mask_files[2] == tmp_path / fmt / f"sample_000002_mask{ext}"
    assert names == sorted(f"sample_00000{i}_{o}{ext}" for i in range(3) for o in ("image", "mask"))
    rec = _lines(tmp_path / fmt)[0]
    assert rec["file"] == f"sample_000000_image{ext}" and rec["mask_file"] == f"sample_000000_mask{ext}"
    made = engine.generate(pairs, 3, save_images=False)
    reader = engine.formats.FORMATS[fmt].reader
    mask = reader(tmp_path / fmt / f"sample_000000_mask{ext}")
    assert set(np.unique(mask)) <= {0, 1} and (fmt == "nii.gz" or mask.dtype == np.uint8)  # a label map, unscaled
    assert np.array_equal(mask.reshape(-1), made[0][1].reshape(-1).astype(np.uint8))
    if fmt == "nii.gz":
        import nibabel as nib

        image, label = (nib.load(str(tmp_path / fmt / f"sample_000000_{o}.nii.gz")) for o in ("image", "mask"))
        assert np.array_equal(image.affine, label.affine) and image.shape == label.shape
        assert label.get_data_dtype() == np.uint8


def test_pair_dataset_and_tuples(bundles):
    _, pairs = bundles
    item = engine.SyntheticDataset(pairs, 2)[1]
    assert set(item) >= {"image", "mask", "seed", "index"} and item["mask"].shape == (1, 16, 16)
    made = engine.generate(pairs, 2, save_images=False)
    assert isinstance(made[0], tuple) and made[0][0].shape == (16, 16, 1)
    assert torch.equal(torch.from_numpy(made[1][1]).permute(2, 0, 1), item["mask"])


def test_translation_dataset_with_inputs(bundles, tmp_path):
    translator, _ = bundles
    inputs = _pngs(tmp_path / "in", count=2)
    data = engine.SyntheticDataset(translator, None, inputs=inputs)
    assert len(data) == 2 and data[1]["t1_path"] == str(inputs / "t1_1.png")
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 1, 32, 32)


def test_cli_generate_with_input_path(bundles, tmp_path):
    translator, _ = bundles
    inputs = _pngs(tmp_path / "in", count=2)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "medigan_zoo", "--trust", str(translator), "--bundle_dirs",
                          str(translator.parent), "generate", translator.name, "--input_path", str(inputs),
                          "--output_path", str(tmp_path / "out"), "--quiet"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("sample_*")) == ["sample_000000_image.png",
                                                                         "sample_000001_image.png"]
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(bad / "x.png")
    run = subprocess.run([sys.executable, "-m", "medigan_zoo", "--trust", str(translator), "--bundle_dirs",
                          str(translator.parent), "generate", translator.name, "--input_path", str(bad),
                          "--output_path", str(tmp_path / "out2")], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "resize" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def _monai_run(bundle: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{bundle}:{Path(__file__).resolve().parents[1]}", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "monai.bundle", "run", "inferring", "--config_file",
                           str(bundle / "configs" / "inference.json"), "--meta_file",
                           str(bundle / "configs" / "metadata.json"), "--logging_file",
                           str(bundle / "configs" / "logging.conf"), "--bundle_root", str(bundle), "--output_dir",
                           str(out), *extra], capture_output=True, text=True, env=env, cwd=bundle)


def test_monai_bundle_run_inferring_of_both_bundles(bundles, tmp_path):
    translator, pairs = bundles
    inputs = _pngs(tmp_path / "in", count=2)
    run = _monai_run(translator, tmp_path / "t", "--input_dir", str(inputs))
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["t1_0_image.png", "t1_1_image.png"]
    zoo = engine.generate(translator, None, save_images=False, input_path=inputs)
    monai_png = np.array(Image.open(tmp_path / "t" / "t1_1_image.png"))
    assert np.abs(monai_png.astype(int) - np.rint(zoo[1][..., 0] * 255).astype(int)).max() <= 1  # same orientation
    run = _monai_run(pairs, tmp_path / "p")
    assert run.returncode == 0, run.stderr[-2000:]
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert names == sorted(f"sample_00000{i}_{o}.png" for i in range(3) for o in ("image", "mask"))
    made = engine.generate(pairs, 3, save_images=False)
    monai_mask = np.array(Image.open(tmp_path / "p" / "sample_000002_mask.png"))
    assert np.array_equal(monai_mask, made[2][1][..., 0].astype(np.uint8))


def test_validate_covers_inputs_and_outputs(bundles, tmp_path):
    import shutil

    from medigan_zoo.runtime.validate import validate

    translator, pairs = bundles
    for bundle in bundles:
        assert not validate(bundle).errors, [str(p) for p in validate(bundle).errors]
    broken = shutil.copytree(pairs, tmp_path / "broken")
    meta = json.loads((broken / "configs" / "metadata.json").read_text())
    meta["medigan_zoo"]["outputs"] = [{"name": "picture", "kind": "image"}, {"name": "mask", "kind": "mask"},
                                      {"name": "mask", "kind": "mask", "labels": {"0": "bg"}},
                                      {"name": "x", "kind": "volume"}]
    meta["medigan_zoo"]["inputs"] = [{"name": "t1", "kind": "image", "spatial_shape": [4, 4, 4], "num_channels": 1}]
    (broken / "configs" / "metadata.json").write_text(json.dumps(meta))
    text = "\n".join(str(p) for p in validate(broken).errors)
    for expected in ("no output is named 'image'", "a mask output without labels", "'mask' is used twice",
                     "3-D input for a 2-D model", "outputs[3].kind", "declares no input_dir"):
        assert expected in text, (expected, text)


def test_grids_show_masks_as_overlays_and_inputs_above_outputs(bundles, tmp_path):
    from medigan_zoo.engine.preview import LABEL_COLOURS
    from medigan_zoo.engine.visualize import write_sample_grid

    translator, pairs = bundles
    grid = np.array(Image.open(write_sample_grid(pairs, tmp_path / "pairs.png", num_per_row=3, scale=1)))
    made = engine.generate(pairs, 3, save_images=False)
    mask = made[0][1][..., 0] > 0
    tile = grid[2:18, 2:18].astype(int)  # first tile (padding 2, 16x16)
    red = tile[..., 0] - tile[..., 1]
    assert mask.any() and (red[mask] > 40).all() and (np.abs(red[~mask]) <= 1).all()  # label 1 tinted red
    assert LABEL_COLOURS[0][0] > LABEL_COLOURS[0][1]
    inputs = _pngs(tmp_path / "in", count=2)
    grid = np.array(Image.open(write_sample_grid(translator, tmp_path / "t.png", num_per_row=4, scale=1,
                                                 input_path=inputs)))
    assert grid.shape[0] == 2 * (32 + 2) + 2  # a row of inputs, a row of outputs
    with pytest.raises(GenerationError, match="give input_path"):
        write_sample_grid(translator, tmp_path / "x.png")


def test_sharding_is_by_input(bundles, tmp_path):
    from medigan_zoo.engine.distributed import Shard
    from medigan_zoo.engine.runner import read_model, shard_indices

    translator, _ = bundles
    from medigan_zoo.engine.inputs import read_inputs

    inputs = read_inputs(read_model(translator), _pngs(tmp_path / "in", count=3), samples_per_input=2)
    ranks = [list(shard_indices(range(0, 6), Shard(world_size=2, rank=r), inputs)) for r in (0, 1)]
    assert ranks == [[0, 1, 4, 5], [2, 3]]  # inputs 0 and 2 on rank 0, input 1 on rank 1
    assert list(shard_indices(range(1, 6), Shard(world_size=2, rank=1))) == [1, 3, 5]  # noise models: by sample


@pytest.mark.slow
def test_torchrun_with_inputs_equals_one_process(bundles, tmp_path):
    translator, _ = bundles
    inputs = _pngs(tmp_path / "in", count=3)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "medigan_zoo", "--trust", str(translator), "--bundle_dirs", str(translator.parent),
                           "--include_builtin", "False", "generate", translator.name, "--input_path", str(inputs),
                           "--samples_per_input", "2", "--output_path", str(out), "--quiet"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = engine.generate(translator, None, tmp_path / "single", input_path=inputs, samples_per_input=2,
                             quiet=True, num_workers=0)
    assert sorted(p.name for p in out.glob("sample_*")) == sorted(p.name for p in single.files)
    assert all((out / p.name).read_bytes() == p.read_bytes() for p in single.files)
    strip = [{k: v for k, v in rec.items() if k != "inputs"} for rec in _lines(out)]
    assert strip == [{k: v for k, v in rec.items() if k != "inputs"} for rec in _lines(tmp_path / "single")]


def test_seg_writer_hook_gets_the_image_and_the_label_map(bundles, tmp_path):
    """The hook the deploy package's highdicom ``write_seg`` plugs into: called with the written image's dataset,
    the (H, W) uint8 label map and the label names; what it returns is the mask file (marked synthetic)."""
    import pydicom

    from medigan_zoo.engine import formats

    _, pairs = bundles
    calls = []

    def write_seg(sources, mask, labels):
        calls.append((sources, mask, labels))
        seg = pydicom.Dataset()
        seg.file_meta = sources[0].file_meta
        seg.SOPClassUID, seg.SOPInstanceUID = sources[0].SOPClassUID, pydicom.uid.generate_uid()
        seg.SeriesDescription = "SEG of " + sources[0].SOPInstanceUID
        return seg

    formats.register_seg_writer(write_seg)
    try:
        engine.generate(pairs, 1, tmp_path / "dcm", output_format="dcm", quiet=True, num_workers=0)
    finally:
        formats.SEG_WRITERS.clear()
    image = pydicom.dcmread(str(tmp_path / "dcm" / "sample_000000_image.dcm"))
    (sources, mask, labels), = calls
    assert sources[0].SOPInstanceUID == image.SOPInstanceUID and labels == {0: "background", 1: "tumor"}
    assert mask.dtype == np.uint8 and mask.shape == (16, 16)
    seg = pydicom.dcmread(str(tmp_path / "dcm" / "sample_000000_mask.dcm"))
    assert seg.SeriesDescription == f"SEG of {image.SOPInstanceUID}" and seg.SyntheticData == "YES"


def test_dicom_runs_write_masks_as_highdicom_segs_of_their_images(bundles, tmp_path):
    """With highdicom installed (deploy extra) and no other writer registered, the mask of a DICOM run is a real
    DICOM SEG: highdicom reads it back, it references the sample's image, its segment pixels equal the mask the npy
    run writes for the same seed, and it is marked synthetic."""
    hd = pytest.importorskip("highdicom", reason="highdicom (the deploy extra) is not installed")
    import pydicom

    from medigan_zoo.engine import formats

    _, pairs = bundles
    formats.SEG_WRITERS.clear()
    engine.generate(pairs, 2, tmp_path / "dcm", output_format="dcm", quiet=True, num_workers=0)
    engine.generate(pairs, 2, tmp_path / "npy", output_format="npy", quiet=True, num_workers=0)
    for index in range(2):
        image = pydicom.dcmread(str(tmp_path / "dcm" / f"sample_{index:06d}_image.dcm"))
        seg = hd.seg.segread(str(tmp_path / "dcm" / f"sample_{index:06d}_mask.dcm"))
        assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SyntheticData == "YES"
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == image.SeriesInstanceUID
        assert [s.SegmentLabel for s in seg.SegmentSequence] == ["tumor"]
        expected = np.load(tmp_path / "npy" / f"sample_{index:06d}_mask.npy").squeeze()
        got = seg.get_pixels_by_source_instance([image.SOPInstanceUID], combine_segments=True).squeeze()
        assert np.array_equal(got, expected.astype(got.dtype))
