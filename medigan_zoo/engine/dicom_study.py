"""A request's samples as one synthetic DICOM study that a PACS or a viewer accepts, plus DICOM SEG for masks.

One study per call of :func:`write_study`, with fresh UIDs. 2D models: one series, one instance per sample. 3D models:
one series per sample (a series is one volume), one instance per slice with Image Position / Orientation (Patient),
Pixel Spacing, Slice Thickness and Spacing Between Slices from the model's spacing, so DICOM readers (SimpleITK /
GDCM, dcm2niix) rebuild the volume with the model's geometry. Every instance (and every SEG) says it is synthetic:
Synthetic Data (0008,001C) = YES, Patient Name ``SYNTHETIC``, Patient ID ``SYNTHETIC-...``, and a Series
Description naming model, version and seed.

The IOD follows the model's modality (zoo block ``modality``, first value): CT Image for CT, MR Image for MR (Scanning
Sequence ``RM``, research mode: no acquisition parameters are invented), Secondary Capture otherwise and for RGB
images. Grayscale pixels are stored as 16-bit integers spanning the model's value range; Rescale Slope / Intercept
give the model's values back (Rescale Type ``US``: a generator's values are not calibrated Hounsfield units) and
Window Center / Width show that whole range. The MR Image IOD has no Modality LUT, so MR instances carry no rescale
(the window spans the stored values; the manifest header keeps the value range). RGB images are 8-bit. The files
are written into ``folder`` (the caller makes it a staging folder that is renamed when the request succeeds, so no
partial study is ever visible) with a manifest next to them (``engine.manifest``: ``manifest.json`` +
``manifest.jsonl``).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from medigan_zoo.core.errors import GenerationError
from medigan_zoo.core.version import __version__
from medigan_zoo.engine import formats
from medigan_zoo.engine.manifest import LOCK, ManifestPart, ensure_header, file_fields, merge

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
#: rows are along patient x, columns along patient y; slices follow +z (their normal)
ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
DICOM_FOLDER = "dicom"
SEG_FOLDER = "seg"


@dataclass(frozen=True)
class StudySpec:
    """What the study says about the model and the request (from the loaded bundle and the request)."""

    model_id: str
    model_name: str
    version: str
    weights_sha256: str
    modality: str
    spacing: Tuple[float, ...]  # mm per spatial axis, display order ([D,] H, W)
    value_range: Tuple[float, float]
    seed: int
    options: Mapping[str, Any] = field(default_factory=dict)
    request: Mapping[str, Any] = field(default_factory=dict)  # recorded in the manifest header

    @classmethod
    def of(cls, sampler: Any, seed: int, request: Optional[Mapping[str, Any]] = None) -> "StudySpec":
        """The spec of a loaded :class:`~medigan_zoo.runtime.sampler.BundleSampler` for base ``seed``."""
        return cls(model_id=sampler.model_id, model_name=sampler.name, version=sampler.version,
                   weights_sha256=sampler.weights_sha256, modality=(sampler.info.modality or ["OT"])[0],
                   spacing=tuple(sampler.spacing), value_range=tuple(sampler.value_range), seed=seed,
                   options=dict(sampler.options), request=dict(request or {}))

    def series_description(self, index: Optional[int] = None) -> str:
        text = f"SYNTHETIC {self.model_id} v{self.version} seed {self.seed}"
        return (text if index is None else f"{text} sample {index}")[:64]


@dataclass
class StudyResult:
    """What :func:`write_study` wrote: the folder, the study UID, one series UID per series, every file."""

    folder: Path
    study_uid: str
    series_uids: List[str]
    files: List[Path]
    manifest: Path
    datasets: List[List[Any]] = field(default_factory=list)  # per series, in instance order (headers only)


def sop_class_for(modality: str, channels: int) -> str:
    """The IOD of a model's images: CT Image, MR Image, else Secondary Capture (and for any RGB image)."""
    if channels == 1 and modality == "CT":
        return CT_IMAGE
    if channels == 1 and modality == "MR":
        return MR_IMAGE
    return SECONDARY_CAPTURE


def _ds(value: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    return str(format_number_as_ds(float(value)))


def stored_pixels(image: np.ndarray, value_range: Tuple[float, float]) -> Tuple[np.ndarray, float, float]:
    """``image`` (C, *spatial) in the model's value range as stored integers, channel-last for RGB: grayscale ->
    uint16 spanning [low, high] (returns slope, intercept so that ``stored * slope + intercept`` is the model's
    value); RGB -> uint8 (slope 1, intercept 0)."""
    low, high = float(value_range[0]), float(value_range[1])
    normalized = np.clip((np.asarray(image, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    if image.shape[0] == 3:
        return np.round(np.moveaxis(normalized, 0, -1) * 255.0).astype(np.uint8), 1.0, 0.0
    if image.shape[0] != 1:
        raise GenerationError(f"A DICOM study holds 1- or 3-channel images; the model makes {image.shape[0]} "
                              "channels. Use output_format npy or nii.gz.")
    return np.round(normalized[0] * 65535.0).astype(np.uint16), (high - low) / 65535.0, low


def _instance(spec: StudySpec, sop_class: str, study: Mapping[str, str], series_uid: str, frame_uid: str,
              pixels: np.ndarray, slope: float, intercept: float, number: int, index: int, seed: int,
              condition: Mapping[str, Any], z: Optional[float], series_number: int, volume: bool) -> Any:
    """One instance (a 2D image, or slice ``z`` of a volume)."""
    info = formats.SampleInfo(index=index, seed=seed, condition=condition, model_id=spec.model_id,
                              model_name=spec.model_name, version=spec.version, weights_sha256=spec.weights_sha256,
                              zoo_version=__version__, bit_depth=16 if pixels.dtype == np.uint16 else 8,
                              spacing=spec.spacing, modality=spec.modality,
                              dicom_uids={"study": study["uid"], "series": series_uid}, options=spec.options)
    ds = formats.synthetic_dicom(sop_class, info)
    ds.PatientName = f"SYNTHETIC^{spec.model_id}"[:64]
    ds.PatientID = study["patient_id"]
    ds.StudyDate, ds.StudyTime = study["date"], study["time"]
    ds.SeriesDate, ds.SeriesTime = study["date"], study["time"]
    ds.StudyID = study["id"]
    ds.StudyDescription = f"SYNTHETIC {spec.model_id} v{spec.version}"[:64]
    ds.SeriesDescription = spec.series_description(index if volume else None)
    ds.SeriesNumber = series_number
    ds.InstanceNumber = number
    ds.ImageType = ["DERIVED", "SECONDARY"] + (["AXIAL"] if sop_class == CT_IMAGE else
                                               ["OTHER"] if sop_class == MR_IMAGE else [])
    rows, cols = pixels.shape[:2]
    ds.Rows, ds.Columns = rows, cols
    rgb = pixels.ndim == 3
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    bits = 8 if pixels.dtype == np.uint8 else 16
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    row_mm, col_mm = (spec.spacing[-2], spec.spacing[-1]) if len(spec.spacing) >= 2 else (1.0, 1.0)
    ds.PixelSpacing = [_ds(row_mm), _ds(col_mm)]
    ds.Laterality = ""  # unknown: a generator does not say which side a paired organ is
    if sop_class == SECONDARY_CAPTURE:
        ds.ConversionType = "SYN"
    else:  # Frame of Reference and Image Plane modules (CT and MR IODs)
        thickness = spec.spacing[0] if volume and len(spec.spacing) == 3 else 1.0
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.ImageOrientationPatient = [_ds(v) for v in ORIENTATION]
        ds.ImagePositionPatient = [_ds(0.0), _ds(0.0), _ds(z or 0.0)]
        ds.SliceLocation = _ds(z or 0.0)
        ds.SliceThickness = _ds(thickness)
        del ds.PatientOrientation  # the orientation is given by Image Orientation (Patient)
        ds.PatientPosition = ""  # no patient was positioned
    if sop_class == CT_IMAGE:
        ds.KVP = ""
        ds.AcquisitionNumber = ""
    if sop_class == MR_IMAGE:
        ds.ScanningSequence = "RM"  # research mode: a generator has no acquisition to describe
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D" if volume else "2D"
        ds.RepetitionTime = ""
        ds.EchoTime = ""
        ds.EchoTrainLength = ""
        if volume and len(spec.spacing) == 3:
            ds.SpacingBetweenSlices = _ds(spec.spacing[0])
    if not rgb:
        low, high = spec.value_range
        if sop_class == MR_IMAGE:  # the MR Image IOD has no Modality LUT: the window spans the stored values
            low, high = 0.0, 65535.0
        else:
            ds.RescaleSlope, ds.RescaleIntercept = _ds(slope), _ds(intercept)
            ds.RescaleType = "US"  # not Hounsfield units: the model's own value range
        ds.WindowCenter, ds.WindowWidth = _ds((low + high) / 2.0), _ds(high - low)
        ds.VOILUTFunction = "LINEAR"
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def _study_identity() -> Dict[str, str]:
    from pydicom.uid import generate_uid

    uid = generate_uid()
    now = time.gmtime()
    tag = hashlib.sha256(uid.encode()).hexdigest()[:12].upper()
    return {"uid": uid, "patient_id": f"SYNTHETIC-{tag}", "id": f"SYN{tag[:8]}",
            "date": time.strftime("%Y%m%d", now), "time": time.strftime("%H%M%S", now)}


def _header(spec: StudySpec, study: Mapping[str, str], sop_class: str, series_uids: Sequence[str],
            samples: Sequence[np.ndarray], conditions: Any) -> Dict[str, Any]:
    return {
        "synthetic": True,
        "note": "Every file in this folder is SYNTHETIC, made by a generative model; none shows a real patient.",
        "kind": "dicom_study", "model_id": spec.model_id, "bundle_name": spec.model_name, "version": spec.version,
        "weights_sha256": spec.weights_sha256, "zoo_version": __version__, "seed": spec.seed,
        "sample_seed": "medigan_zoo.core.seeding.sample_seed(seed, index)", "output_format": "dcm",
        "conditions": conditions, "options": dict(spec.options), "modality": spec.modality,
        "sop_class_uid": sop_class, "spatial_shape": list(samples[0].shape[1:]) if samples else [],
        "spacing": list(spec.spacing), "value_range": list(spec.value_range),
        "dicom": {"study": study["uid"], "patient_id": study["patient_id"], "series": list(series_uids)},
        "request": dict(spec.request), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_study(folder: Path, samples: Sequence[np.ndarray], seeds: Sequence[int],
                conditions: Sequence[Mapping[str, Any]], spec: StudySpec, indices: Optional[Sequence[int]] = None,
                conditions_plan: Any = None) -> StudyResult:
    """Write ``samples`` (each (C, *spatial) float in the model's value range) as one study under
    ``folder/dicom/`` with ``manifest.json``/``manifest.jsonl`` in ``folder``; return what was written.

    2D: ``dicom/series_1/sample_<i>.dcm``, one series. 3D: ``dicom/sample_<i>/slice_<k>.dcm``, a series per sample.
    """
    from pydicom import dcmwrite
    from pydicom.uid import generate_uid

    if not samples:
        raise GenerationError("A study needs at least one sample.")
    indices = list(indices) if indices is not None else list(range(len(samples)))
    dims = samples[0].ndim - 1
    channels = int(samples[0].shape[0])
    if dims not in (2, 3):
        raise GenerationError(f"A DICOM study holds 2D images or 3D volumes; the model makes {dims}-D arrays.")
    sop_class = sop_class_for(spec.modality, channels)
    folder.mkdir(parents=True, exist_ok=True)
    study = _study_identity()
    volume = dims == 3
    series_uids = [str(generate_uid()) for _ in (samples if volume else [None])]
    frame_uids = [generate_uid() for _ in series_uids]
    files: List[Path] = []
    per_series: List[List[Any]] = [[] for _ in series_uids]
    records: List[Dict[str, Any]] = []
    ensure_header(folder, _header(spec, study, sop_class, series_uids, samples, conditions_plan))
    for n, (sample, seed, condition, index) in enumerate(zip(samples, seeds, conditions, indices)):
        pixels, slope, intercept = stored_pixels(np.asarray(sample), spec.value_range)
        series = n if volume else 0
        rec: Dict[str, Any] = {"index": index, "seed": seed, "condition": dict(condition),
                               "series_instance_uid": series_uids[series], "model_id": spec.model_id,
                               "version": spec.version, "weights_sha256": spec.weights_sha256,
                               "zoo_version": __version__, "synthetic": True}
        if volume:
            step = spec.spacing[0] if len(spec.spacing) == 3 else 1.0
            relatives = []
            for k in range(pixels.shape[0]):
                ds = _instance(spec, sop_class, study, series_uids[series], frame_uids[series], pixels[k], slope,
                               intercept, k + 1, index, seed, condition, k * step, n + 1, True)
                relative = f"{DICOM_FOLDER}/sample_{index:06d}/slice_{k + 1:04d}.dcm"
                relatives.append(relative)
                per_series[series].append(_write(dcmwrite, folder / relative, ds, files))
            rec["series_folder"] = f"{DICOM_FOLDER}/sample_{index:06d}"
            rec["files"] = [file_fields(folder, "file", r) for r in relatives]
        else:
            ds = _instance(spec, sop_class, study, series_uids[0], frame_uids[0], pixels, slope, intercept, n + 1,
                           index, seed, condition, None, 1, False)
            relative = f"{DICOM_FOLDER}/series_1/sample_{index:06d}.dcm"
            per_series[0].append(_write(dcmwrite, folder / relative, ds, files))
            rec.update(file_fields(folder, "file", relative))
            rec["sop_instance_uid"] = str(ds.SOPInstanceUID)
        records.append(rec)
    part = ManifestPart(folder)
    try:
        part.append(records)
    finally:
        part.close()
    manifest, _ = merge(folder, own_part=part.path)
    (folder / LOCK).unlink(missing_ok=True)  # the study folder is this call's alone: no lock to keep
    return StudyResult(folder=folder, study_uid=study["uid"], series_uids=series_uids, files=files,
                       manifest=manifest, datasets=per_series)


def _write(dcmwrite: Any, path: Path, ds: Any, files: List[Path]) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    formats.atomic_write(path, lambda tmp: dcmwrite(str(tmp), ds, enforce_file_format=True), suffix=".dcm")
    files.append(path)
    del ds.PixelData  # the headers stay for SEG references; the pixels are on disk
    return ds


def read_series(folder: Path) -> List[Any]:
    """The instances of one series folder, sorted by Instance Number (pixels included)."""
    import pydicom

    datasets = [pydicom.dcmread(str(p)) for p in sorted(Path(folder).glob("*.dcm"))]
    return sorted(datasets, key=lambda ds: int(ds.InstanceNumber))


def segmentation_dataset(source: Sequence[Any], mask: np.ndarray, label_names: Sequence[str], *,
                         model_id: str = "", version: str = "", series_number: int = 100) -> Any:
    """A DICOM SEG (highdicom, binary) of ``mask`` that references the synthetic ``source`` series.

    ``source``: the series' datasets (read back with pixels, e.g. :func:`read_series`), one per slice (a 2D image:
    one). ``mask``: (slices, rows, columns) or (rows, columns) integer label map (0 background, ``k`` the segment
    ``label_names[k - 1]``) or booleans (one label). The SEG is marked synthetic like its source.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    if not label_names:
        raise GenerationError("A DICOM SEG needs at least one label name.")
    source = sorted(source, key=lambda ds: int(ds.InstanceNumber))
    labels = np.asarray(mask)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if labels.shape != (len(source), int(source[0].Rows), int(source[0].Columns)):
        raise GenerationError(f"The mask has shape {tuple(np.asarray(mask).shape)} but the series has "
                              f"{len(source)} slice(s) of {source[0].Rows}x{source[0].Columns}.")
    if int(labels.max(initial=0)) > len(label_names) or int(labels.min(initial=0)) < 0:
        raise GenerationError(f"The mask holds labels up to {int(labels.max())}; {len(label_names)} label name(s) "
                              "were given.")
    algorithm = hd.AlgorithmIdentificationSequence(name=f"medigan_zoo {model_id}"[:64] or "medigan_zoo",
                                                   family=codes.cid7162.ArtificialIntelligence,
                                                   version=version or __version__)
    segments = [hd.seg.SegmentDescription(segment_number=k + 1, segment_label=str(name)[:64],
                                          segmented_property_category=codes.cid7150.Tissue,
                                          segmented_property_type=codes.cid7150.Tissue,
                                          algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                                          algorithm_identification=algorithm)
                for k, name in enumerate(label_names)]
    # pixel measures stated in full (highdicom's reader needs Slice Thickness, which a 2D Secondary Capture source
    # lacks); a source without Pixel Spacing is on the zoo's unit grid (1 mm, the ModelInfo spacing default)
    first = source[0]
    measures = hd.PixelMeasuresSequence(
        pixel_spacing=[float(v) for v in first.get("PixelSpacing", [1.0, 1.0])],
        slice_thickness=float(first.get("SliceThickness", None) or 1.0))
    seg = hd.seg.Segmentation(
        source_images=list(source), pixel_array=labels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        pixel_measures=measures,
        segment_descriptions=segments, series_instance_uid=generate_uid(), series_number=series_number,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="medigan_zoo",
        manufacturer_model_name=(model_id or "medigan_zoo")[:64], software_versions=__version__,
        device_serial_number="SYNTHETIC", omit_empty_frames=False,
        content_description=f"SYNTHETIC mask of {model_id}"[:64], content_label="SYNTHETIC")
    seg.SyntheticData = "YES"
    seg.SeriesDescription = f"SYNTHETIC SEG {model_id} v{version}"[:64]
    return seg


def seg_from_label_map(source: Sequence[Any], mask: np.ndarray, label_names: Mapping[int, str]) -> Any:
    """The engine's DICOM SEG hook (``formats.SegWriter``): a label map whose values are ``label_names``' keys
    (0 = background, left out) as a SEG referencing ``source``; segments numbered in the order of the values."""
    named = {int(value): str(name) for value, name in label_names.items() if int(value) != 0}
    labels = np.asarray(mask)
    ordered = np.zeros(labels.shape, dtype=np.uint8)
    for number, value in enumerate(sorted(named), start=1):
        ordered[labels == value] = number
    first = source[0] if source else None
    return segmentation_dataset(source, ordered, [named[v] for v in sorted(named)] or ["mask"],
                                model_id=str(getattr(first, "ManufacturerModelName", "") or ""))


def write_segmentation(folder: Path, source: Sequence[Any], mask: np.ndarray, label_names: Sequence[str],
                       name: str = "seg.dcm", **kwargs: Any) -> Path:
    """:func:`segmentation_dataset` written atomically to ``folder/seg/<name>``; returns the path."""
    seg = segmentation_dataset(source, mask, label_names, **kwargs)
    path = folder / SEG_FOLDER / name
    path.parent.mkdir(parents=True, exist_ok=True)
    formats.atomic_write(path, lambda tmp: seg.save_as(str(tmp), enforce_file_format=True), suffix=".dcm")
    return path
