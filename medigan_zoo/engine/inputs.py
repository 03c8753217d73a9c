"""Image inputs of a model (zoo block ``inputs``; docs/bundle_contract.md section 5): files -> checked, normalized
tensors, one per input, with where each came from.

:func:`read_inputs` reads everything before any work, so a wrong file (shape, channels, modality, values) is one
:class:`~medigan_zoo.core.errors.GenerationError` naming the file, what was expected and what to do; the zoo never
resizes. Readers: PNG/JPEG (Pillow), ``.npy`` (display order as stored), NIfTI (nibabel; MONAI's ``(x, y[, z])``
voxel order reversed into display order) and DICOM series (pydicom; slices sorted by ImagePositionPatient along the
slice normal, RescaleSlope/Intercept applied). Sample ``i`` of a run uses input ``i // samples_per_input``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from medigan_zoo.catalog.model_info import MASK, InputSpec, ModelInfo
from medigan_zoo.core.errors import GenerationError
from medigan_zoo.core.files import file_sha256

PathLike = Union[str, Path]
RASTER_EXTENSIONS = (".png", ".jpg", ".jpeg")
NIFTI_EXTENSIONS = (".nii", ".nii.gz")
#: what a folder of inputs may hold (a sub-folder of .dcm files is one DICOM series)
INPUT_EXTENSIONS = RASTER_EXTENSIONS + NIFTI_EXTENSIONS + (".npy", ".dcm")
#: upper percentile of the "percentile" normalization (MONAI ScaleIntensityRangePercentiles(0, 99.5, clip=True))
UPPER_PERCENTILE = 99.5
#: how far (in value-range units) a value read as is may lie outside the declared range
_RANGE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Geometry:
    """Where an input's pixels lie, for outputs that keep it: a NIfTI affine (MONAI's ``(x, y, z)`` order) and/or the
    DICOM attributes of the source slice (ImagePositionPatient, ImageOrientationPatient, PixelSpacing, ...)."""

    affine: Optional[Tuple[Tuple[float, ...], ...]] = None
    dicom: Mapping[str, Any] = field(default_factory=dict)
    spacing: Tuple[float, ...] = ()  # display order, mm


@dataclass(frozen=True)
class InputItem:
    """One input: (C, *spatial) float32 in display order, normalized per its spec, and its source file."""

    path: Path
    sha256: str
    slice: Optional[int]
    array: np.ndarray
    geometry: Geometry = field(default_factory=Geometry)

    def record(self) -> Dict[str, Any]:
        """What a manifest line says about it."""
        return {"path": str(self.path), "sha256": self.sha256, "slice": self.slice}


@dataclass
class InputSet:
    """The inputs of a run: for each declared input name the same number of items (paired by position)."""

    specs: List[InputSpec]
    items: Dict[str, List[InputItem]]
    samples_per_input: int = 1
    sources: Dict[str, str] = field(default_factory=dict)  # name -> the path the user gave

    def __len__(self) -> int:
        return len(next(iter(self.items.values()), []))

    @property
    def num_samples(self) -> int:
        return len(self) * self.samples_per_input

    def input_of(self, index: int) -> int:
        """The input sample ``index`` is made from."""
        return index // self.samples_per_input

    def batch(self, indices: Sequence[int]) -> Dict[str, Any]:
        """name -> (B, C, *spatial) float32 tensor of the inputs of samples ``indices``."""
        import torch

        return {name: torch.from_numpy(np.stack([items[self.input_of(i)].array for i in indices]))
                for name, items in self.items.items()}

    def record(self, index: int) -> Dict[str, Any]:
        """name -> {path, sha256, slice} of sample ``index``'s inputs (the manifest's ``inputs``)."""
        return {name: items[self.input_of(index)].record() for name, items in self.items.items()}

    def geometry(self, index: int) -> Geometry:
        """The geometry of sample ``index``'s first input (what its outputs keep)."""
        items = next(iter(self.items.values()))
        return items[self.input_of(index)].geometry

    def to_json(self) -> Dict[str, Any]:
        """The run header's description: per input its source, count and one digest over its items."""
        out: Dict[str, Any] = {}
        for name, items in self.items.items():
            digest = hashlib.sha256("".join(f"{i.sha256}:{i.slice}\n" for i in items).encode()).hexdigest()
            out[name] = {"source": self.sources.get(name, ""), "count": len(items), "sha256": digest}
        return {"inputs": out, "samples_per_input": self.samples_per_input}


# --- reading files ------------------------------------------------------------------------------

@dataclass
class _Raw:
    """A file's values before normalization: (C, *spatial) in display order, whether they are integers of a raster
    file (and its type's maximum), per-slice geometry, the DICOM modality."""

    array: np.ndarray
    path: Path
    integer_max: Optional[float] = None
    slice_geometry: List[Geometry] = field(default_factory=list)
    volume_geometry: Geometry = field(default_factory=Geometry)
    modality: Optional[str] = None
    slice_paths: List[Path] = field(default_factory=list)  # DICOM: the file of each slice


def _read_raster(path: Path) -> _Raw:
    from PIL import Image

    with Image.open(path) as opened:
        image: Any = opened
        if image.mode in ("P", "CMYK", "RGBA", "LA"):
            image = image.convert("RGB" if image.mode != "LA" else "L")
        arr = np.array(image)
    top = 65535.0 if arr.dtype == np.uint16 or arr.dtype == np.int32 and arr.max() > 255 else 255.0
    chw = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    return _Raw(chw.astype(np.float32), path, integer_max=top)


def _read_npy(path: Path, dims: int, channels: int) -> _Raw:
    arr = np.load(path, allow_pickle=False)
    if arr.ndim == dims:
        arr = arr[None]
    elif not (arr.ndim == dims + 1 and (dims == 3 or arr.shape[0] == channels)):
        if dims == 2 and arr.ndim == 3:  # (D, H, W): a stack of slices, one input each
            return _Raw(arr[:, None].astype(np.float32), path)
        raise GenerationError(f"Input {path} holds a {arr.ndim}-D array of shape {list(arr.shape)}; the model takes "
                              f"{dims}-D inputs with {channels} channel(s): save it as (H, W), (C, H, W) "
                              "or a (D, H, W) stack of slices.")
    return _Raw(arr.astype(np.float32), path)


def _read_nifti(path: Path) -> _Raw:
    import nibabel as nib

    image: Any = nib.load(str(path))
    data = np.asarray(image.dataobj, dtype=np.float32)
    affine = np.asarray(image.affine, dtype=float)
    zooms = tuple(float(z) for z in image.header.get_zooms()[:min(data.ndim, 3)])
    spatial = data if data.ndim <= 3 else np.moveaxis(data, -1, 0)  # (x, y, z, C) -> (C, x, y, z)
    if data.ndim <= 3:
        spatial = spatial[None]
    display = np.ascontiguousarray(np.transpose(spatial, (0,) + tuple(range(spatial.ndim - 1, 0, -1))))
    geometry = Geometry(affine=tuple(map(tuple, affine)), spacing=zooms[::-1])
    slices = []
    if display.ndim == 4:  # (C, z, y, x): slice k keeps the volume's affine moved to z = k
        for k in range(display.shape[1]):
            moved = affine @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, k], [0, 0, 0, 1]], dtype=float)
            slices.append(Geometry(affine=tuple(map(tuple, moved)), spacing=zooms[::-1][1:]))
    return _Raw(display, path, slice_geometry=slices, volume_geometry=geometry)


def _dicom_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".dcm")


def _read_dicom_series(files: Sequence[Path]) -> _Raw:
    """A DICOM series (or one file): slices sorted by ImagePositionPatient along the slice normal."""
    import pydicom

    datasets = []
    for path in files:
        try:
            datasets.append((path, pydicom.dcmread(str(path))))
        except Exception as err:  # noqa: BLE001 - pydicom raises many types for broken files
            raise GenerationError(f"Input {path} is not a readable DICOM file ({type(err).__name__}: {err}); "
                                  "remove it from the input folder.") from None

    def position(ds: Any) -> float:
        pos, ori = getattr(ds, "ImagePositionPatient", None), getattr(ds, "ImageOrientationPatient", None)
        if pos is None or ori is None:
            return float(getattr(ds, "InstanceNumber", 0) or 0)
        normal = np.cross(np.array(ori[:3], float), np.array(ori[3:], float))
        return float(np.dot(normal, np.array(pos, float)))

    datasets.sort(key=lambda pair: position(pair[1]))
    slices, geometry, paths = [], [], []
    modality = None
    for path, ds in datasets:
        try:
            pixels = ds.pixel_array.astype(np.float32)
        except Exception as err:  # noqa: BLE001 - missing pixel data or an unsupported transfer syntax
            raise GenerationError(f"Input {path} has no pixels pydicom can decode ({err}); "
                                  "convert it to uncompressed DICOM, NIfTI or PNG.") from None
        pixels = pixels * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
        frames = pixels if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1 else pixels[None]
        for frame in frames:
            slices.append(frame[None] if frame.ndim == 2 else np.moveaxis(frame, -1, 0))
            attrs = {k: getattr(ds, k) for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
                                                 "SliceThickness", "FrameOfReferenceUID", "StudyInstanceUID",
                                                 "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
                     if getattr(ds, k, None) is not None}
            spacing = tuple(float(v) for v in attrs.get("PixelSpacing", ()))
            geometry.append(Geometry(affine=_dicom_affine(attrs), dicom=_plain_dicom(attrs), spacing=spacing))
            paths.append(path)
        modality = modality or getattr(ds, "Modality", None)
    volume = np.stack(slices, axis=1)  # (C, D, H, W)
    return _Raw(volume, Path(files[0]).parent if len(files) > 1 else Path(files[0]), slice_geometry=geometry,
                modality=modality, slice_paths=paths)


def _dicom_affine(attrs: Mapping[str, Any]) -> Optional[Tuple[Tuple[float, ...], ...]]:
    """The NIfTI affine (RAS, MONAI's ``(x, y, z)`` = (column, row, slice) order) of one DICOM slice, from its
    ImagePositionPatient, ImageOrientationPatient and PixelSpacing (DICOM's LPS with x and y negated, as MONAI's
    readers and dcm2niix do); None when the slice does not say where it lies."""
    try:
        position = np.array([float(v) for v in attrs["ImagePositionPatient"]], dtype=float)
        orientation = np.array([float(v) for v in attrs["ImageOrientationPatient"]], dtype=float)
        row_spacing, column_spacing = (float(v) for v in attrs["PixelSpacing"])
    except (KeyError, TypeError, ValueError):
        return None
    if position.shape != (3,) or orientation.shape != (6,):
        return None
    along_row, along_column = orientation[:3], orientation[3:]  # direction of increasing column / row index
    normal = np.cross(along_row, along_column)
    thickness = float(attrs.get("SliceThickness") or 1.0)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = along_row * column_spacing, along_column * row_spacing, \
        normal * thickness
    affine[:3, 3] = position
    affine[:2] *= -1  # LPS -> RAS
    return tuple(map(tuple, affine.tolist()))


def _plain_dicom(attrs: Mapping[str, Any]) -> Dict[str, Any]:
    """DICOM attribute values as JSON-friendly Python values."""
    out: Dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            out[key] = [float(v) for v in value]
        elif type(value).__name__ in ("DSfloat", "DSdecimal", "IS"):
            out[key] = float(value)
        else:
            out[key] = str(value)
    return out


def _read_one(path: Path, dims: int, channels: int) -> _Raw:
    name = path.name.lower()
    if path.is_dir():
        files = _dicom_files(path)
        if not files:
            raise GenerationError(f"Input folder {path} holds no .dcm files; a DICOM series is a folder of .dcm files.")
        return _read_dicom_series(files)
    if name.endswith(RASTER_EXTENSIONS):
        return _read_raster(path)
    if name.endswith(".npy"):
        return _read_npy(path, dims, channels)
    if name.endswith(NIFTI_EXTENSIONS):
        return _read_nifti(path)
    if name.endswith(".dcm"):
        return _read_dicom_series([path])
    raise GenerationError(f"Input {path} is not a file the zoo reads as an input ({', '.join(INPUT_EXTENSIONS)}, or "
                          "a folder of .dcm files: one DICOM series).")


def input_files(path: PathLike) -> List[Path]:
    """The input sources under ``path``: the file itself, a DICOM series folder, or a folder's files in name order
    (each sub-folder of .dcm files one series). Raises GenerationError when there is nothing to read."""
    path = Path(path).expanduser().absolute()  # manifests record where each input came from
    if not path.exists():
        raise GenerationError(f"input_path {path} does not exist; give a file or a folder of PNG, NIfTI, npy or "
                              "DICOM files.")
    if path.is_file():
        return [path]
    if _dicom_files(path):
        return [path]
    found = [p for p in sorted(path.iterdir())
             if (p.is_file() and p.name.lower().endswith(INPUT_EXTENSIONS)) or (p.is_dir() and _dicom_files(p))]
    if not found:
        raise GenerationError(f"input_path {path} holds no input files ({', '.join(INPUT_EXTENSIONS)}, or folders of "
                              ".dcm files).")
    return found


# --- normalization and checks -------------------------------------------------------------------

def _normalize(values: np.ndarray, raw: _Raw, spec: InputSpec, where: str, reference: np.ndarray) -> np.ndarray:
    """``values`` (one input) into the spec's range; ``reference`` is the whole file (percentile of a volume)."""
    low, high = spec.value_range
    if spec.kind == MASK:
        return _labels(values, spec, where)
    mode = spec.normalization
    if mode == "minmax":
        lo, hi = float(values.min()), float(values.max())
        unit = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    elif mode == "percentile":
        lo, hi = float(reference.min()), float(np.percentile(reference, UPPER_PERCENTILE))
        unit = np.clip((values - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(values)
    elif raw.integer_max is not None:
        unit = values / raw.integer_max
    else:
        found_lo, found_hi = float(values.min()), float(values.max())
        tol = _RANGE_TOLERANCE * (high - low)
        if found_lo < low - tol or found_hi > high + tol:
            raise GenerationError(f"Input {where} has values in [{found_lo:g}, {found_hi:g}] but the model takes "
                                  f"{spec.name!r} in [{low:g}, {high:g}] as they are (normalization 'none'); scale "
                                  f"the file to [{low:g}, {high:g}] first.")
        return np.clip(values, low, high).astype(np.float32)
    return (low + unit * (high - low)).astype(np.float32)


def _labels(values: np.ndarray, spec: InputSpec, where: str) -> np.ndarray:
    allowed = set(spec.labels) or {0, 1}
    found = set(np.unique(np.rint(values)).astype(int).tolist())
    if not found <= allowed and found <= {0, 255} and allowed >= {0, 1}:
        values, found = values / 255.0, found - {255} | ({1} if 255 in found else set())
    if not found <= allowed:
        raise GenerationError(f"Mask input {where} holds the values {sorted(found)[:10]} but the model's {spec.name!r} "
                              f"labels are {sorted(allowed)} ({dict(spec.labels) or 'binary'}); save it as a label "
                              "map of those values.")
    return np.rint(values).astype(np.float32)


def _check_shape(array: np.ndarray, spec: InputSpec, where: str) -> None:
    channels, shape = array.shape[0], tuple(array.shape[1:])
    want = tuple(spec.spatial_shape)
    if want and shape != want:
        raise GenerationError(f"Input {where} is {'x'.join(map(str, shape))} but the model takes {spec.name!r} as "
                              f"{'x'.join(map(str, want))} (display order, rows x columns); resize or crop it to "
                              f"{list(want)} first (the zoo does not resize).")
    if channels != spec.num_channels:
        what = {1: "grayscale", 3: "RGB"}
        raise GenerationError(f"Input {where} has {channels} channel(s) but the model takes {spec.name!r} with "
                              f"{spec.num_channels} ({what.get(spec.num_channels, 'channels')}); convert it first.")


def _items(raw: _Raw, spec: InputSpec, dims: int) -> List[InputItem]:
    """A read file as inputs: one, or one per slice for a volume given to a 2D model."""
    if spec.modality and raw.modality and raw.modality != spec.modality:
        raise GenerationError(f"Input {raw.path} is a DICOM series of modality {raw.modality}, the model takes "
                              f"{spec.name!r} of modality {spec.modality}; give it {spec.modality} images.")
    array = raw.array
    if dims == 2 and array.ndim == 4:  # (C, D, H, W): one input per slice
        out = []
        unique_files = bool(raw.slice_paths) and len(set(raw.slice_paths)) == len(raw.slice_paths)
        digests: Dict[Path, str] = {}
        for k in range(array.shape[1]):
            values = np.ascontiguousarray(array[:, k])
            path = raw.slice_paths[k] if raw.slice_paths else raw.path
            slice_no = None if unique_files else k
            where = f"{path}" + (f" (slice {k})" if slice_no is not None else "")
            _check_shape(values, spec, where)
            if path not in digests:
                digests[path] = file_sha256(path)
            geo = raw.slice_geometry[k] if k < len(raw.slice_geometry) else Geometry()
            out.append(InputItem(path=path, sha256=digests[path], slice=slice_no,
                                 array=_normalize(values, raw, spec, where, array), geometry=geo))
        return out
    if array.ndim - 1 == dims:
        _check_shape(array, spec, str(raw.path))
        if raw.path.is_file():
            digest = file_sha256(raw.path)
        else:  # a DICOM series folder: one digest over its files' digests, in slice order
            digest = hashlib.sha256("".join(file_sha256(f) for f in raw.slice_paths).encode()).hexdigest()
        return [InputItem(path=raw.path, sha256=digest, slice=None,
                          array=_normalize(array, raw, spec, str(raw.path), array), geometry=raw.volume_geometry)]
    found = "x".join(map(str, array.shape[1:]))
    raise GenerationError(f"Input {raw.path} is {array.ndim - 1}-D ({found}) but the model takes {dims}-D "
                          f"{spec.name!r} of {list(spec.spatial_shape)}; give {dims}-D images.")


def read_input_path(path: PathLike, spec: InputSpec, dims: int) -> List[InputItem]:
    """Every input under ``path`` for ``spec`` (see :func:`input_files`), checked and normalized."""
    items: List[InputItem] = []
    for source in input_files(path):
        items += _items(_read_one(source, dims, spec.num_channels), spec, dims)
    return items


def read_inputs(info: ModelInfo, input_path: Any, samples_per_input: int = 1) -> InputSet:
    """The inputs of a run of model ``info``: ``input_path`` is a path (models with one input, or with one required
    input) or a mapping input name -> path; an ``optional`` input may be left out (the sampler then does without
    it). Everything is read and checked here, before any work.

    Raises:
        GenerationError: the model takes no inputs, a required input is not given (or an unknown one is), the
            inputs of several names differ in number, or a file is wrong (shape, channels, modality, values).
    """
    specs = info.inputs
    if not specs:
        raise GenerationError(f"Model {info.id!r} takes no image inputs (it generates from noise); leave input_path "
                              "out.")
    required = [s for s in specs if not s.optional]
    if isinstance(input_path, Mapping):
        given = {str(k): v for k, v in input_path.items() if v is not None}
    elif len(specs) == 1 or len(required) == 1:
        given = {(specs[0] if len(specs) == 1 else required[0]).name: input_path}
    else:
        names = ", ".join(s.name + (" (optional)" if s.optional else "") for s in specs)
        raise GenerationError(f"Model {info.id!r} takes the inputs {names}; give input_path as a mapping name -> "
                              "path, e.g. {" + ", ".join(f"'{s.name}': ..." for s in specs) + "}.")
    unknown = sorted(set(given) - {s.name for s in specs})
    missing = [s.name for s in required if s.name not in given]
    if unknown or missing or not given:
        why = f"{unknown} are not among them" if unknown else f"{missing} not given" if missing else "none given"
        raise GenerationError(f"Model {info.id!r} takes the inputs {[s.name for s in specs]}; {why}.")
    used = [s for s in specs if s.name in given]
    dims = len(specs[0].spatial_shape) or len(info.spatial_shape) or 2
    items = {s.name: read_input_path(given[s.name], s, len(s.spatial_shape) or dims) for s in used}
    counts = {name: len(v) for name, v in items.items()}
    if len(set(counts.values())) > 1:
        raise GenerationError(f"The inputs of model {info.id!r} differ in number ({counts}); inputs are paired by "
                              "their order, so give the same number of each.")
    return InputSet(specs=used, items=items, samples_per_input=samples_per_input,
                    sources={name: str(Path(str(given[name])).expanduser()) for name in given})
