"""Every output format x every shipped generator bundle: write a few samples with ``generate``, read each file
back with the format's own reader library (PIL, nibabel, numpy, pydicom), and compare with ``save_images=False``.

Raster formats (png, jpg, dcm) store the [0, 1]-normalised values as integers in display order: exact for
lossless ones (one rounding step), within a few grey levels for JPEG. npy and nii.gz store float32 exactly.
A format that cannot hold a model's outputs (PNG for a 3D volume) must refuse before any work.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import required_input_path, shipped_generators

engine = pytest.importorskip("medigan_zoo.engine")
from medigan_zoo.core.errors import GenerationError  # noqa: E402
from medigan_zoo.engine import formats  # noqa: E402

NUM = 2
#: keep diffusion sampling short: the round trip is about files, not image quality
FAST_OPTIONS = {"chest_xray_ddpm": {"num_inference_steps": 2, "guidance_scale": 1.0}}


def _read_with_library(fmt: str, path: Path) -> np.ndarray:
    """The stored array, read with the library a user would use (not through the zoo's registry)."""
    if fmt in ("png", "jpg"):
        from PIL import Image

        arr = np.array(Image.open(path))
        return arr[..., None] if arr.ndim == 2 else arr
    if fmt == "npy":
        return np.load(path)
    if fmt == "nii.gz":
        import nibabel as nib

        return np.asarray(nib.load(str(path)).dataobj)
    if fmt == "dcm":
        import pydicom

        ds = pydicom.dcmread(str(path))
        assert ds.SyntheticData == "YES"
        arr = ds.pixel_array
        return arr[..., None] if int(ds.SamplesPerPixel) == 1 else arr
    raise AssertionError(f"no library reader in this test for {fmt!r}: add one with the format")


def _expected(fmt: str, sample: np.ndarray, header: dict) -> np.ndarray:
    """What the file of format ``fmt`` should hold for a channel-last ``save_images=False`` sample."""
    spec = formats.FORMATS[fmt]
    if not spec.raster:
        chw = np.moveaxis(sample, -1, 0).astype(np.float32)
        return formats.nifti_layout(chw) if fmt == "nii.gz" else chw
    low, high = header["value_range"]
    unit = np.clip((sample.astype(np.float64) - low) / (high - low), 0.0, 1.0)
    spatial = sample.ndim - 1
    if header["spatial_order"] == "monai":  # (x, y[, z]) -> display order (rows = y ...)
        unit = np.transpose(unit, tuple(range(spatial - 1, -1, -1)) + (spatial,))
    top = 255.0 if header["bit_depth"] == 8 else 65535.0
    return np.round(unit * top)


def _expected_mask(fmt: str, mask: np.ndarray, header: dict) -> np.ndarray:
    """What the mask file of format ``fmt`` holds for a channel-last label map: the labels themselves (never scaled),
    laid out as the image is; DICOM: the SEG's frame, in display order like a raster file."""
    spec = formats.FORMATS[fmt]
    if not spec.raster and fmt != "dcm":
        chw = np.moveaxis(mask, -1, 0).astype(np.float32)
        return formats.nifti_layout(chw) if fmt == "nii.gz" else chw
    spatial = mask.ndim - 1
    if header["spatial_order"] == "monai":
        mask = np.transpose(mask, tuple(range(spatial - 1, -1, -1)) + (spatial,))
    return mask.astype(np.float64)


def _read_mask_with_library(fmt: str, path: Path) -> np.ndarray:
    """A mask file read with the library a user would use; DICOM: a SEG (Modality SEG, synthetic), its one frame."""
    if fmt != "dcm":
        return _read_with_library(fmt, path)
    import pydicom

    ds = pydicom.dcmread(str(path))
    assert ds.Modality == "SEG" and ds.SyntheticData == "YES"
    return np.asarray(ds.pixel_array).reshape(int(ds.Rows), int(ds.Columns), 1)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """bundle -> (sampler, arrays of samples 0..NUM-1, input_path), loaded once per module; a bundle whose zoo
    block declares a required image input is run on its own example inputs (or synthetic ones of its shape)."""
    cache = {}

    def get(bundle: Path):
        if bundle.name not in cache:
            inputs = required_input_path(bundle, tmp_path_factory.mktemp(f"{bundle.name}_inputs"), NUM)
            sampler = engine.load_bundle_sampler(bundle, device="cpu", options=FAST_OPTIONS.get(bundle.name))
            arrays = engine.generate(bundle, NUM, seed=3, save_images=False, sampler=sampler, batch_size=NUM,
                                     options=FAST_OPTIONS.get(bundle.name), input_path=inputs)
            cache[bundle.name] = (sampler, arrays, inputs)
        return cache[bundle.name]

    return get


@pytest.mark.parametrize("fmt", list(formats.FORMATS))
@pytest.mark.parametrize("bundle", shipped_generators(), ids=lambda b: b.name)
def test_every_format_round_trips_every_shipped_model(bundle, fmt, loaded, tmp_path):
    if not (bundle / "models" / "model.pt").is_file():
        pytest.skip(f"{bundle.name} has no weights in this checkout")
    sampler, arrays, inputs = loaded(bundle)
    spec = formats.FORMATS[fmt]
    kwargs = dict(seed=3, output_format=fmt, quiet=True, batch_size=NUM, num_workers=0, sampler=sampler,
                  options=FAST_OPTIONS.get(bundle.name), input_path=inputs)
    has_masks = isinstance(arrays[0], tuple)
    if not spec.holds(len(sampler.spatial_shape), sampler.num_channels) or (spec.lossy and has_masks):
        # a format that cannot hold the outputs, or a lossy one for a model with masks, is refused before any work
        with pytest.raises(GenerationError, match=f"output_format {fmt!r}"):
            engine.generate(bundle, NUM, tmp_path / "out", **kwargs)
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
        return
    result = engine.generate(bundle, NUM, tmp_path / "out", **kwargs)
    header = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(result.files) == NUM
    for i, (path, sample) in enumerate(zip(result.files, arrays)):
        assert path.name.endswith(spec.extension)
        if isinstance(sample, tuple):  # an image + mask model: (image, mask), the mask beside the image
            sample, mask = sample
            stored_mask = _read_mask_with_library(fmt, result.mask_files[i])
            expected_mask = _expected_mask(fmt, mask, header)
            assert stored_mask.shape == expected_mask.shape, (result.mask_files[i], stored_mask.shape)
            assert np.array_equal(stored_mask.astype(np.float64), expected_mask), result.mask_files[i]
        stored = _read_with_library(fmt, path)
        expected = _expected(fmt, sample, header)
        assert stored.shape == expected.shape, (path, stored.shape, expected.shape)
        diff = np.abs(stored.astype(np.float64) - expected)
        if spec.lossy:
            assert diff.mean() < 8, (path, diff.mean())
        elif spec.raster:
            assert diff.max() <= 1, (path, diff.max())  # one rounding step (float32 vs float64 normalisation)
        else:
            assert diff.max() == 0, (path, diff.max())


@pytest.mark.parametrize("fmt", list(formats.FORMATS))
def test_registry_reader_inverts_encoder(fmt, tmp_path):
    """The registry's reader returns exactly the array its encoder was given (lossless formats)."""
    spec = formats.FORMATS[fmt]
    info = formats.SampleInfo(index=0, seed=1, condition={}, model_id="m", model_name="M", version="1",
                              weights_sha256="0" * 64, zoo_version="0", bit_depth=8)
    rng = np.random.default_rng(0)
    if spec.raster:
        arr = rng.integers(0, 256, size=(6, 5, 3 if 3 in (spec.channels or (3,)) else 1), dtype=np.uint8)
    else:
        arr = rng.standard_normal((3, 6, 5)).astype(np.float32)
    path = tmp_path / f"x{spec.extension}"
    formats.atomic_write(path, lambda tmp: spec.encoder(tmp, arr, info), suffix=spec.extension)
    back = spec.reader(path)
    assert back.shape == arr.shape
    if not spec.lossy:
        assert np.array_equal(back, arr)


def test_registry_views_follow_the_blocks():
    assert set(formats.EXTENSIONS) == set(formats.ENCODERS) == set(formats.FORMATS)
    assert tuple(formats.RASTER) == tuple(n for n, f in formats.FORMATS.items() if f.raster)
    for name, spec in formats.FORMATS.items():
        for alias in (name, name.upper(), spec.extension, *spec.aliases):
            assert formats.normalize_format(alias) == name
    with pytest.raises(ValueError, match="already registered"):
        formats.register(formats.FORMATS["png"])
