"""Decode one source file into images in [0, 1] and the patient it belongs to. The normalisation rule per modality
(documented in docs/contributing_models.md, "Prepare your data"):

- **PNG / JPEG** (Pillow): divided by the maximum of the stored type (255 for 8-bit, 65535 for 16-bit); gray
  (L, LA, I;16, I) gives 1 channel, colour (RGB, RGBA, P, CMYK) 3 channels (alpha dropped).
- **DICOM** (pydicom): stored values x RescaleSlope + RescaleIntercept (modality units, e.g. HU), then the first
  window of the file (WindowCenter / WindowWidth, [c - w/2, c + w/2] -> [0, 1]) when it has one, else the 0.5th
  to 99.5th percentile of the image -> [0, 1]; MONOCHROME1 is inverted so that bright means dense everywhere. A
  multi-frame file gives one image per frame. The patient is the file's PatientID.
- **NIfTI** (nibabel): the 0.5th to 99.5th percentile of the whole volume -> [0, 1] (slices of one volume keep their
  relative brightness); a 3D volume gives one image per slice along its last axis, all of the same patient (the
  volume), so a volume never straddles two splits.

Values outside the range are clipped. Every failure raises :class:`UnreadableFile` with the reason, which
``prepare`` reports.
"""
from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
NIFTI_EXTENSIONS = (".nii", ".nii.gz")
#: the percentiles mapped to 0 and 1 when a file carries no window
PERCENTILES = (0.5, 99.5)


class UnreadableFile(Exception):
    """A source file ``prepare`` cannot use; ``str()`` is the reason it reports."""


@dataclass
class Decoded:
    """The images of one file, each (H, W, C) float32 in [0, 1], its modality reader and patient id (or None)."""

    images: List[np.ndarray]
    modality: str
    patient: Optional[str] = None


def _percentile_scale(values: np.ndarray) -> np.ndarray:
    low, high = np.percentile(values, PERCENTILES)
    if not np.isfinite(low) or not np.isfinite(high):
        raise UnreadableFile("holds non-finite values")
    if high <= low:
        return np.zeros_like(values, dtype=np.float32)
    return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)


def read_raster(data: bytes) -> Decoded:
    """PNG or JPEG bytes -> one image; 8/16-bit scaled by the type's maximum."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            mode = img.mode
            if mode in ("L", "1"):
                arr = np.asarray(img.convert("L"), dtype=np.float32)[..., None] / 255.0
            elif mode == "LA":
                arr = np.asarray(img.getchannel("L"), dtype=np.float32)[..., None] / 255.0
            elif mode.startswith("I;16") or mode == "I":
                raw = np.asarray(img, dtype=np.float32)
                arr = (raw / (65535.0 if mode.startswith("I;16") or raw.max() > 255 else 255.0))[..., None]
            elif mode == "F":
                raise UnreadableFile("is a floating-point image (mode F); store it as 8 or 16-bit or as NIfTI")
            else:
                arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except UnidentifiedImageError:
        raise UnreadableFile("has a PNG/JPEG name but is not a PNG or JPEG image Pillow can identify") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise UnreadableFile(f"cannot be decoded as PNG/JPEG ({type(err).__name__}: {err})") from None
    return Decoded([np.clip(arr, 0.0, 1.0).astype(np.float32)], "photo")


def read_dicom(data: bytes, force: bool = False) -> Decoded:
    """DICOM bytes -> one image per frame: rescale slope/intercept, then the file's window or percentiles."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=force)
        pixels = ds.pixel_array.astype(np.float32)
    except InvalidDicomError:
        raise UnreadableFile("is not a PNG, JPEG, DICOM or NIfTI file") from None
    except Exception as err:  # noqa: BLE001 - pydicom raises many kinds for missing pixel data / codecs
        raise UnreadableFile(f"DICOM pixel data cannot be decoded ({type(err).__name__}: {err})") from None
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if samples == 1:
        pixels = pixels.reshape((frames,) + pixels.shape[-2:])[..., None]
    else:
        pixels = pixels.reshape((frames,) + pixels.shape[-3:])
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    values = pixels * slope + intercept
    center, width = _first(getattr(ds, "WindowCenter", None)), _first(getattr(ds, "WindowWidth", None))
    if center is not None and width is not None and width > 0:
        scaled = np.clip((values - (center - width / 2.0)) / width, 0.0, 1.0).astype(np.float32)
    else:
        scaled = np.stack([_percentile_scale(frame) for frame in values])
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        scaled = 1.0 - scaled
    patient = str(getattr(ds, "PatientID", "") or "").strip() or None
    return Decoded([frame for frame in scaled], "dicom", patient)


def _first(value) -> Optional[float]:
    if value is None:
        return None
    try:
        return float(value[0]) if hasattr(value, "__len__") and not isinstance(value, str) else float(value)
    except (TypeError, ValueError, IndexError):
        return None


def read_nifti(data: bytes, gzipped: bool) -> Decoded:
    """NIfTI bytes -> one image per slice along the last spatial axis, percentiles of the whole volume."""
    import nibabel as nib

    try:
        raw = gzip.decompress(data) if gzipped else data
        volume = np.asarray(nib.Nifti1Image.from_bytes(raw).get_fdata(dtype=np.float32))
    except Exception as err:  # noqa: BLE001 - nibabel and gzip raise many kinds for damaged files
        raise UnreadableFile(f"cannot be decoded as NIfTI ({type(err).__name__}: {err})") from None
    volume = np.squeeze(volume)
    if volume.ndim == 2:
        volume = volume[..., None]
    if volume.ndim != 3:
        raise UnreadableFile(f"is a {volume.ndim}D NIfTI image; prepare reads 2D images and 3D volumes")
    scaled = _percentile_scale(volume)
    return Decoded([scaled[..., k][..., None] for k in range(scaled.shape[-1])], "nifti")


def decode(name: str, data: bytes) -> Decoded:
    """The reader chosen by ``name``'s extension; any other file is tried as DICOM (DICOM files often have none)."""
    low = name.lower()
    if low.endswith(IMAGE_EXTENSIONS):
        return read_raster(data)
    if low.endswith(NIFTI_EXTENSIONS):
        return read_nifti(data, gzipped=low.endswith(".gz"))
    return read_dicom(data, force=low.endswith(".dcm"))
