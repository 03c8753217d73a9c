"""Output formats: turning a batch into arrays, encoding one sample into a file, and writing files atomically.

Each format is one ``register(OutputFormat(...))`` block at the end of the encoders section: its name, aliases,
file extension, encoder, reader, the dimensions / channel counts / bit depths it holds, and whether it stores
integers scaled from [0, 1] (raster) or the model's float32 values. ``EXTENSIONS``, ``ENCODERS`` and ``RASTER``
are views of that registry. Adding a format (TIFF, MHA ...) is one block here plus a row in the round-trip test
(tests/test_formats_roundtrip.py picks it up through ``FORMATS``).

Every file is marked synthetic: PNG text chunks, a JPEG comment, the NIfTI header's ``descrip``, DICOM's Synthetic
Data attribute (0008,001C) = YES. Files are written to a temporary name in the same folder and moved into place
with ``os.replace``, so a file under its final name is always complete.
"""
from __future__ import annotations

import errno
import io
import json
import os
import re
import socket
import time
import uuid
from collections import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, cast

import numpy as np

from medigan_zoo.core.errors import GenerationError
from medigan_zoo.core.files import pid_alive

if TYPE_CHECKING:  # nibabel is imported where a NIfTI file is read or written
    from nibabel.dataobj_images import DataobjImage

Encoder = Callable[[Path, np.ndarray, "SampleInfo"], None]
Reader = Callable[[Path], np.ndarray]


@dataclass(frozen=True)
class OutputFormat:
    """One output format.

    The encoder takes ``(temporary path, array, SampleInfo)``; the array is what ``batch_arrays`` makes of one
    sample: channel-last uint8/uint16 in display order for raster formats, (C, *spatial) float32 otherwise. The
    reader returns that same array from a file (the inverse of the encoder, up to the format's quantisation).
    """

    name: str
    extension: str
    encoder: Encoder
    reader: Reader
    raster: bool
    aliases: Tuple[str, ...] = ()
    dims: Tuple[int, ...] = (2, 3)
    channels: Optional[Tuple[int, ...]] = None  # None: any number
    bit_depths: Tuple[int, ...] = (8,)  # raster formats, single-channel images
    multichannel_bit_depths: Tuple[int, ...] = (8,)  # raster formats, 2+ channels
    lossy: bool = False
    label: str = ""  # how messages name it (default: the name in capitals)

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name.upper())

    def holds(self, dims: int, channels: int) -> bool:
        return dims in self.dims and (self.channels is None or channels in self.channels)

    def depths_for(self, channels: int) -> Tuple[int, ...]:
        return self.bit_depths if channels == 1 else self.multichannel_bit_depths


#: the registry: canonical name -> OutputFormat (filled by the ``register`` blocks below)
FORMATS: Dict[str, "OutputFormat"] = {}
#: views of the registry kept for the engine and older callers: name -> file extension, name -> encoder
EXTENSIONS: Dict[str, str] = {}
ENCODERS: Dict[str, Callable[[Path, np.ndarray, "SampleInfo"], None]] = {}
_ALIASES: Dict[str, str] = {}


class _RasterNames(abc.Sequence):
    """Live view: names of the registered raster formats (integers scaled from [0, 1])."""

    def _names(self) -> List[str]:
        return [name for name, fmt in FORMATS.items() if fmt.raster]

    def __getitem__(self, i):
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, name: object) -> bool:
        return name in FORMATS and FORMATS[name].raster

    def __repr__(self) -> str:
        return repr(tuple(self._names()))


#: formats that store integers scaled from [0, 1] (png, jpg, dcm); npy and nii.gz keep float32
RASTER = _RasterNames()


def normalize_format(output_format: Any) -> str:
    """The canonical name of ``output_format`` ("PNG", ".jpeg", "nifti" ...) or a GenerationError listing them."""
    name = str(output_format).strip().lower().lstrip(".")
    name = _ALIASES.get(name, name)
    if name not in FORMATS:
        aliases = ", ".join(sorted(_ALIASES))
        raise GenerationError(f"Unknown output_format {output_format!r}. Valid formats: {', '.join(FORMATS)} "
                              f"(aliases: {aliases}).")
    return name


def _fitting(dims: int, channels: int) -> str:
    names = [f.name for f in FORMATS.values() if f.holds(dims, channels)]
    return ", ".join(names) or "none"


def check_format(fmt: str, dims: int, channels: int, bit_depth: Optional[int], native_16bit: bool = False,
                 masks: Sequence[str] = ()) -> int:
    """Check that ``fmt`` can hold the model's outputs; return the bit depth (8 or 16 for raster formats, 32 for
    the float32 ones).

    ``bit_depth=None`` picks 16 for formats that store 16 bits at this channel count when the model's outputs do
    not fit 8 bits (``native_16bit``), else 8. A lossy format is refused for a model with mask outputs (``masks``):
    compression would change label values at the mask edges.
    """
    if bit_depth not in (None, 8, 16):
        raise GenerationError(f"bit_depth must be 8 or 16, got {bit_depth!r}.")
    spec = FORMATS[normalize_format(fmt)]
    if spec.lossy and masks:
        lossless = ", ".join(f.name for f in FORMATS.values() if not f.lossy and f.holds(dims, channels))
        raise GenerationError(f"output_format {spec.name!r} is lossy ({spec.label} compression) and would change the "
                              f"labels of this model's mask output(s) {', '.join(masks)}; use a lossless format: "
                              f"{lossless}.")
    if dims not in spec.dims:
        held = "2D images" if spec.dims == (2,) else "3D volumes" if spec.dims == (3,) else f"{spec.dims}-D arrays"
        made = "3D volumes" if dims == 3 else "2D images" if dims == 2 else f"{dims}-D arrays"
        raise GenerationError(f"output_format {spec.name!r} holds {held} but the model makes {made}; use "
                              f"{_fitting(dims, channels)}.")
    if spec.channels is not None and channels not in spec.channels:
        raise GenerationError(f"output_format {spec.name!r} holds {' or '.join(map(str, spec.channels))}-channel "
                              f"images, the model makes {channels}; use {_fitting(dims, channels)}.")
    if not spec.raster:
        return 32
    depths = spec.depths_for(channels)
    if bit_depth is not None and bit_depth not in depths:
        wide = [f.label for f in FORMATS.values() if f.raster and 16 in f.bit_depths]
        raise GenerationError(f"{bit_depth}-bit output is available for single-channel {' and '.join(wide)} only "
                              f"(not {channels}-channel {spec.label}); use bit_depth=8, or npy/nii.gz for float32.")
    if bit_depth is None:
        return 16 if native_16bit and 16 in depths else 8
    return bit_depth


def mask_arrays(fmt: str, x: Any) -> np.ndarray:
    """A (B, C, *spatial) batch of label values as uint8 label maps, unscaled: channel-last for raster formats,
    (C, *spatial) for npy/nii.gz (docs/bundle_contract.md section 5)."""
    labels = x.round().clamp(0, 255).to(dtype=__import__("torch").uint8)
    if FORMATS[fmt].raster:
        labels = labels.permute((0,) + tuple(range(2, labels.ndim)) + (1,))
    return labels.contiguous().numpy()


def batch_arrays(fmt: str, x: Any, normalized: Any, bit_depth: int) -> np.ndarray:
    """A (B, C, *spatial) output batch in display order (``runtime.sampler``) as the arrays the encoders take.

    Raster formats: ``normalized`` ([0, 1]) scaled to uint8/uint16, channel-last (rows, columns[, channels]).
    npy/nii.gz: ``x`` as float32, (C, *spatial), unchanged.
    """
    import torch

    if not FORMATS[fmt].raster:
        return x.numpy()
    perm = (0,) + tuple(range(2, normalized.ndim)) + (1,)
    top, dtype = (255.0, torch.uint8) if bit_depth == 8 else (65535.0, torch.int32)
    scaled = (normalized * top).round_().to(dtype).permute(perm).contiguous().numpy()
    return scaled if bit_depth == 8 else scaled.astype(np.uint16)


@dataclass(frozen=True)
class SampleInfo:
    """What a file says about itself: provenance written into its metadata."""

    index: int
    seed: int
    condition: Mapping[str, Any]
    model_id: str
    model_name: str
    version: str
    weights_sha256: str
    zoo_version: str
    bit_depth: int = 8
    spacing: Tuple[float, ...] = ()
    modality: str = "OT"
    dicom_uids: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)  # sampling options of the run
    output: str = "image"  # which output of the sample (docs/bundle_contract.md section 5)
    label_names: Mapping[int, str] = field(default_factory=dict)  # masks: label value -> name
    #: outputs of an input read from NIfTI: its affine (MONAI's (x, y, z) order); the file keeps that layout
    affine: Optional[Tuple[Tuple[float, ...], ...]] = None
    #: outputs of an input read from DICOM: the source slice's geometry attributes (ImagePositionPatient ...)
    dicom_geometry: Mapping[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        cond = "".join(f", {k}={v}" for k, v in self.condition.items())
        return (f"SYNTHETIC image generated by {self.model_name} ({self.model_id} v{self.version}) with medigan_zoo "
                f"{self.zoo_version}, seed {self.seed}, sample {self.index}{cond}")

    def provenance(self) -> str:
        return json.dumps({"synthetic": True, "model": self.model_id, "version": self.version,
                           "weights_sha256": self.weights_sha256, "index": self.index, "seed": self.seed,
                           "condition": dict(self.condition), "options": dict(self.options),
                           "zoo_version": self.zoo_version})


# --- encoders: (temporary path, array, info) -> file ------------------------------------------------

def _pil_image(arr: np.ndarray):
    from PIL import Image

    return Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)


def _save_encoded(path: Path, image: Any, **params: Any) -> None:
    """Encode ``image`` in memory (PIL releases the GIL while compressing), then write the bytes with one call:
    much less time under the GIL than PIL's chunk-by-chunk writes, which matters when lanes run in parallel."""
    buffer = io.BytesIO()
    image.save(buffer, **params)
    with open(path, "wb") as fh:
        fh.write(buffer.getbuffer())


def write_png(path: Path, arr: np.ndarray, info: SampleInfo) -> None:
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    text.add_text("synthetic", "true")
    text.add_text("Description", info.description)
    text.add_text("medigan_zoo", info.provenance())
    _save_encoded(path, _pil_image(arr), format="PNG", pnginfo=text)


def write_jpg(path: Path, arr: np.ndarray, info: SampleInfo) -> None:
    _save_encoded(path, _pil_image(arr), format="JPEG", quality=95, comment=f"synthetic: {info.provenance()}".encode())


def write_npy(path: Path, arr: np.ndarray, info: SampleInfo) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)


def affine_for(spacing: Sequence[float]) -> np.ndarray:
    """Diagonal affine for ``spacing`` (mm) along the array axes; the array's first axis is NIfTI's i axis."""
    affine = np.eye(4)
    for axis, size in enumerate(list(spacing)[:3]):
        affine[axis, axis] = float(size)
    return affine


def nifti_layout(arr: np.ndarray) -> np.ndarray:
    """A (C, *spatial) array in MONAI's NIfTI layout: one channel -> the spatial array (2D or 3D); several
    channels -> (x, y, z, C), a 2D image getting z = 1 (as MONAI's NibabelWriter writes channel-last data)."""
    if arr.shape[0] == 1:
        return arr[0]
    spatial = arr.shape[1:] + (1,) * (3 - (arr.ndim - 1))
    return np.moveaxis(arr, 0, -1).reshape(spatial + (arr.shape[0],))


def write_nifti(path: Path, arr: np.ndarray, info: SampleInfo) -> None:
    """NIfTI-1 (gzipped): float32 in ``nifti_layout``, the model's spacing as qform/sform (mm), descrip marked."""
    import nibabel as nib

    dtype = np.uint8 if arr.dtype == np.uint8 else np.float32  # masks stay label maps
    if info.affine is not None:  # an output of a NIfTI input: its layout (MONAI's (x, y[, z])) and affine
        arr = np.transpose(np.asarray(arr), (0,) + tuple(range(arr.ndim - 1, 0, -1)))
        if arr.ndim == 3:  # a slice of a volume: one z plane at the slice's position
            arr = arr[..., None]
        affine = np.asarray(info.affine, dtype=float)
    else:
        affine = affine_for(info.spacing or (1.0,) * (arr.ndim - 1))
    data = np.ascontiguousarray(nifti_layout(np.asarray(arr, dtype=dtype)))
    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_xyzt_units("mm")
    header["descrip"] = f"SYNTHETIC {info.model_id} v{info.version} seed {info.seed}".encode()[:79]
    header["aux_file"] = b"medigan_zoo synthetic"[:23]
    image = nib.Nifti1Image(data, affine, header=header)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    # nibabel picks the compression from the name; the temporary name ends in .nii.gz (atomic_write's suffix)
    nib.save(image, str(path))


def read_nifti(path: Path) -> np.ndarray:
    """The (C, *spatial) float32 array of a file written by ``write_nifti`` (a 4D file is channel-last)."""
    import nibabel as nib

    # nib.load is typed as returning the base FileBasedImage; every NIfTI image is a DataobjImage (has .dataobj)
    image = cast("DataobjImage", nib.load(str(path)))
    data = np.asarray(image.dataobj, dtype=np.float32)
    if data.ndim <= 3:
        return data[None]
    channels_first = np.moveaxis(data, -1, 0)
    return channels_first[..., 0] if channels_first.shape[-1] == 1 else channels_first


_SC = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
_SC_MULTIFRAME = {8: "1.2.840.10008.5.1.4.1.1.7.2", 16: "1.2.840.10008.5.1.4.1.1.7.3"}  # Grayscale Byte / Word SC
_SC_MULTIFRAME_RGB = "1.2.840.10008.5.1.4.1.1.7.4"  # Multi-frame True Color SC


def dicom_dataset(arr: np.ndarray, info: SampleInfo):
    """A Secondary Capture DICOM dataset (multi-frame for volumes) marked synthetic, without patient identity."""
    from pydicom.uid import UID

    volume = arr.ndim == 4  # (frames, rows, columns, channels)
    if volume:
        sop_class = UID(_SC_MULTIFRAME_RGB if arr.shape[-1] == 3 else _SC_MULTIFRAME[info.bit_depth])
    else:
        sop_class = UID(_SC)  # the UID pydicom would make of the str
    ds = synthetic_dicom(sop_class, info)
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ConversionType = "SYN"
    ds.InstanceNumber = info.index + 1
    frames, rows, cols, channels = arr.shape if volume else (1,) + arr.shape
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = channels
    ds.PhotometricInterpretation = "RGB" if channels == 3 else "MONOCHROME2"
    if channels == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = info.bit_depth
    ds.HighBit = info.bit_depth - 1
    ds.PixelRepresentation = 0
    spacing = list(info.spacing or ())
    if len(spacing) >= 2:
        ds.PixelSpacing = [f"{spacing[-2]:g}", f"{spacing[-1]:g}"]
    if volume:
        ds.NumberOfFrames = frames
        ds.FrameIncrementPointer = 0x00182005  # Slice Location Vector
        step = spacing[0] if len(spacing) == 3 else 1.0
        ds.SliceLocationVector = [f"{k * step:g}" for k in range(frames)]
        ds.SliceThickness = f"{step:g}"
        if channels == 1:
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    if info.label_names:  # a mask written without a SEG writer: a label map, say which value is what
        ds.ImageType = ["DERIVED", "SECONDARY", "LABELMAP"]
        ds.ImageComments = (f"label map ({', '.join(f'{k}={v}' for k, v in info.label_names.items())}); "
                            + info.description)[:10240]
    geo = info.dicom_geometry
    if geo and not volume:  # an output of a DICOM input keeps the source slice's geometry
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness"):
            if keyword in geo:
                value = geo[keyword]
                # 10 significant digits fit a DS (16 characters); "%g" (6) would move a slice by up to ~1e-4 mm
                setattr(ds, keyword, [f"{v:.10g}" for v in value] if isinstance(value, list) else f"{value:.10g}")
        if "FrameOfReferenceUID" in geo:
            ds.FrameOfReferenceUID = geo["FrameOfReferenceUID"]
        if "SOPInstanceUID" in geo and "SOPClassUID" in geo:
            from pydicom.dataset import Dataset as _Item
            from pydicom.sequence import Sequence as _Seq

            source = _Item()
            source.ReferencedSOPClassUID = geo["SOPClassUID"]
            source.ReferencedSOPInstanceUID = geo["SOPInstanceUID"]
            ds.SourceImageSequence = _Seq([source])
    ds.PixelData = np.ascontiguousarray(arr).tobytes()
    return ds


def synthetic_dicom(sop_class: str, info: SampleInfo):
    """The part of every DICOM file of the zoo that is not pixels nor geometry: file meta (explicit VR little
    endian), SOP Common, study / series / patient modules left empty of identity, Synthetic Data (0008,001C) = YES,
    the provenance (model, version, seed, weights) in Image Comments and Derivation Description. Study and series
    UIDs come from ``info.dicom_uids`` (fresh ones when absent). Used by ``dicom_dataset`` (one file per sample)
    and ``engine.dicom_study`` (a study per request)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    sop_class = UID(sop_class)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = info.dicom_uids.get("study") or generate_uid()
    series_key = "series" if info.output == "image" else f"series_{info.output}"  # one series per output
    ds.SeriesInstanceUID = info.dicom_uids.get(series_key) or generate_uid()
    ds.SyntheticData = "YES"
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "SYNTHETIC: generated by a model, no real patient"
    ds.Modality = info.modality
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                    "ReferringPhysicianName", "StudyID", "AccessionNumber", "PatientOrientation"):
        setattr(ds, keyword, "")
    now = time.gmtime()
    ds.ContentDate = time.strftime("%Y%m%d", now)
    ds.ContentTime = time.strftime("%H%M%S", now)
    ds.SeriesNumber = 1
    ds.Manufacturer = "medigan_zoo"
    ds.ManufacturerModelName = info.model_id[:64]
    ds.SoftwareVersions = [info.zoo_version, info.version]
    ds.SeriesDescription = f"SYNTHETIC {info.model_name}"[:64]
    ds.ImageComments = info.description[:10240]
    ds.DerivationDescription = info.provenance()[:1024]
    return ds


def write_dcm(path: Path, arr: np.ndarray, info: SampleInfo) -> None:
    from pydicom import dcmwrite

    dcmwrite(str(path), dicom_dataset(arr, info), enforce_file_format=True)


def read_pil(path: Path) -> np.ndarray:
    """Channel-last pixels of a PNG/JPEG (a grayscale image gets a channel axis of 1)."""
    from PIL import Image

    with Image.open(path) as image:
        arr = np.array(image)
    return arr[..., None] if arr.ndim == 2 else arr


def read_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def read_dcm(path: Path) -> np.ndarray:
    """Channel-last pixels of a DICOM file (frames first for a volume)."""
    import pydicom

    ds = pydicom.dcmread(str(path))
    arr = ds.pixel_array
    return arr[..., None] if int(ds.SamplesPerPixel) == 1 else arr


def register(fmt: OutputFormat) -> OutputFormat:
    """Add ``fmt`` to the registry and its views; a name or alias already taken raises ValueError."""
    taken = set(FORMATS) | set(_ALIASES)
    clash = [n for n in (fmt.name, *fmt.aliases) if n in taken]
    if clash:
        raise ValueError(f"output format name(s) {clash} already registered")
    FORMATS[fmt.name] = fmt
    EXTENSIONS[fmt.name] = fmt.extension
    ENCODERS[fmt.name] = fmt.encoder
    for alias in fmt.aliases:
        _ALIASES[alias] = fmt.name
    return fmt


# --- the formats ---------------------------------------------------------------------------------------

register(OutputFormat(name="png", extension=".png", encoder=write_png, reader=read_pil, raster=True,
                      dims=(2,), channels=(1, 2, 3, 4), bit_depths=(8, 16)))
register(OutputFormat(name="jpg", extension=".jpg", encoder=write_jpg, reader=read_pil, raster=True,
                      aliases=("jpeg",), dims=(2,), channels=(1, 3), lossy=True, label="JPEG"))
register(OutputFormat(name="nii.gz", extension=".nii.gz", encoder=write_nifti, reader=read_nifti, raster=False,
                      aliases=("nii", "nifti"), label="NIfTI"))
register(OutputFormat(name="npy", extension=".npy", encoder=write_npy, reader=read_npy, raster=False,
                      aliases=("numpy",)))
register(OutputFormat(name="dcm", extension=".dcm", encoder=write_dcm, reader=read_dcm, raster=True,
                      aliases=("dicom",), channels=(1, 3), bit_depths=(8, 16), label="DICOM"))


# --- DICOM SEG: the hook for a mask next to a DICOM image --------------------------------------------

#: A SEG writer takes ``(source_datasets, mask, label_names)``: the pydicom datasets of the image it segments, the
#: mask as an (H, W) / (D, H, W) uint8 label map, label value -> name; it returns a pydicom Dataset (a DICOM SEG
#: referencing the sources). None registered: masks are written as Secondary Capture label maps.
SegWriter = Callable[[Sequence[Any], np.ndarray, Mapping[int, str]], Any]
SEG_WRITERS: List[SegWriter] = []


def seg_writer() -> Optional[SegWriter]:
    """The SEG writer of DICOM runs: the registered one, else highdicom's (``engine.dicom_study``) where highdicom
    is installed (the ``deploy`` extra), else None (masks then go out as Secondary Capture label maps)."""
    if not SEG_WRITERS:
        try:
            import highdicom  # noqa: F401
        except ImportError:
            return None
        from medigan_zoo.engine.dicom_study import seg_from_label_map

        SEG_WRITERS.append(seg_from_label_map)
    return SEG_WRITERS[0]


def register_seg_writer(writer: SegWriter) -> SegWriter:
    """Make ``writer`` (e.g. the deploy package's highdicom ``write_seg``) write the masks of DICOM runs."""
    SEG_WRITERS[:] = [writer]
    return writer


def write_seg_file(path: Path, image_path: Path, mask: np.ndarray, info: SampleInfo) -> None:
    """The mask of a sample as a DICOM SEG referencing its image file ``image_path`` (written just before), through
    the registered SEG writer, atomically; the SEG is marked synthetic like every file."""
    import pydicom

    labels = mask[..., 0] if mask.ndim >= 3 and mask.shape[-1] == 1 else mask
    source = pydicom.dcmread(str(image_path))
    writer = seg_writer()
    if writer is None:
        raise GenerationError("No DICOM SEG writer: install highdicom (pip install 'medigan_zoo[deploy]').")
    seg = writer([source], np.asarray(labels, dtype=np.uint8), dict(info.label_names) or {1: "mask"})
    seg.SyntheticData = "YES"
    atomic_write(path, lambda tmp: seg.save_as(str(tmp), enforce_file_format=True), suffix=".dcm")


# --- atomic writes -----------------------------------------------------------------------------------

HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"
_TEMP = re.compile(r"^\..+~tmp~(?P<host>[^~]+)~(?P<pid>\d+)~[0-9a-f]{8}(\.[A-Za-z0-9.]+)?$")


def as_generation_error(err: OSError, path: Path) -> GenerationError:
    """A user-facing error for a failed write (disk full, no permission, read-only ...)."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return GenerationError(f"Disk full (or over quota) writing {path}. Free space and rerun the same command: "
                               "finished samples are kept and skipped.")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return GenerationError(f"Cannot write into {path.parent}: {err.strerror}. Choose a writable output_path.")
    return GenerationError(f"Cannot write {path}: {err.strerror or err}.")


def atomic_write(path: Path, write: Callable[[Path], object], suffix: str = "") -> None:
    """Write ``path`` through ``write(temporary path)`` in the same folder, then move it into place."""
    tmp = path.with_name(f".{path.name}~tmp~{HOST}~{os.getpid()}~{uuid.uuid4().hex[:8]}{suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(err, OSError):
            raise as_generation_error(err, path) from err
        raise


def remove_stale_temps(folders: Iterable[Path]) -> int:
    """Delete temporary files left in ``folders`` by killed processes of this host; return how many."""
    removed = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            match = _TEMP.match(entry.name)
            if match and match["host"] == HOST and not pid_alive(int(match["pid"])):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
    return removed


def check_writable(folder: Path) -> None:
    """Create ``folder`` and prove a file can be written there, or raise a GenerationError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GenerationError(f"Cannot create output folder {folder}: {err.strerror or err}. "
                              "Choose a writable output_path.") from None
    atomic_write(folder / ".write_probe", lambda p: p.write_bytes(b""))
    try:
        (folder / ".write_probe").unlink()
    except OSError:
        pass


def check_image_path(path: Path) -> Path:
    """An image file to write (a sample grid): an extension PIL writes, not a folder, in a writable folder."""
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        raise GenerationError(f"output_path {path} is a folder; name an image file, e.g. {path / 'samples.png'}.")
    writable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}
    if path.suffix.lower() not in writable:
        raise GenerationError(f"output_path {path} has no image extension PIL can write ({path.suffix or 'none'}); "
                              "use .png (or .jpg, .tif ...).")
    check_writable(path.parent)
    return path
