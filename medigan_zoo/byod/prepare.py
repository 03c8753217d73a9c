"""``medigan-zoo prepare``: a folder or zip of PNG/JPEG/DICOM/NIfTI images becomes a data set the zoo's recipes read.

The output folder holds ``dataset.npz`` in the MedMNIST layout (``{split}_images`` uint8 (N, H, W) or (N, H, W, 3),
``{split}_labels`` int64 (N, 1), for train/val/test; :func:`medigan_zoo.training.data.load_npz_split` reads it) and
``dataset.json``: provenance (source, zoo version, command), options, label names, counts per split and label, the
source file and frame of every npz row, the sha256 of every source file, and every file or frame that was skipped
with the reason. Invariants (tests/test_prepare.py):

- no source file disappears silently: each one is either used (its rows are in ``splits``) or in ``skipped``;
- no patient is in two splits (:mod:`medigan_zoo.byod.split`);
- the output folder is complete or absent: it is written in a temporary folder beside it, then renamed; an existing
  non-empty output is refused.

Classes: the ``label`` column of ``--labels`` when given; otherwise one folder per class (:func:`folder_classes`:
by default when every image lies exactly one folder below the source's root, ``--class_folders True/False`` to
say); otherwise a single class ``all``. Patients: the ``patient_id`` column of
``--labels``, else a DICOM file's PatientID; a file without one is its own group (a NIfTI volume's slices stay
together).
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from medigan_zoo.byod.readers import PERCENTILES, UnreadableFile, decode
from medigan_zoo.byod.sources import list_source, sha256_bytes
from medigan_zoo.byod.split import SPLITS, check_fractions, split_by_group
from medigan_zoo.core.arguments import check_int
from medigan_zoo.core.errors import ZooError
from medigan_zoo.core.version import __version__

DATASET_FORMAT = "medigan_zoo.dataset/1"
NPZ_NAME, JSON_NAME = "dataset.npz", "dataset.json"
#: the normalisation rule of each reader, as written into dataset.json (medigan_zoo/byod/readers.py)
NORMALISATION = {
    "photo": "PNG/JPEG: value / maximum of the stored type (255 for 8-bit, 65535 for 16-bit)",
    "dicom": ("DICOM: stored value x RescaleSlope + RescaleIntercept, then the file's first window "
              "[center - width/2, center + width/2] -> [0, 1], else its {}th..{}th percentiles -> [0, 1]; "
              "MONOCHROME1 inverted").format(*PERCENTILES),
    "nifti": "NIfTI: the volume's {}th..{}th percentiles -> [0, 1]; one image per slice of the last axis".format(
        *PERCENTILES),
}
PathLike = Union[str, os.PathLike]
#: suffixes never read as images when deciding whether the folders are classes (they are still tried and reported)
NOT_IMAGES = frozenset({".txt", ".csv", ".json", ".md", ".pdf", ".xml", ".html", ".py", ".yaml", ".yml"})


@dataclass
class _Row:
    file: str
    frame: int
    image: np.ndarray  # (size, size, C) float32 in [0, 1]
    label: str
    patient: Optional[str]
    group: str


@dataclass
class PrepareResult:
    """What ``prepare`` wrote: the output folder, its dataset.json content, and the skipped (file, reason) pairs."""

    output: Path
    dataset: Dict[str, Any]
    skipped: List[Dict[str, str]] = field(default_factory=list)

    def lines(self) -> List[str]:
        """The report printed by the CLI: counts per split, label names, then each skipped file and why."""
        d = self.dataset
        counts = ", ".join(f"{s} {d['counts'][s]['total']}" for s in SPLITS)
        out = [f"dataset written to {self.output}: {counts} images of {d['image']['size'][0]}x"
               f"{d['image']['size'][1]}x{d['image']['channels']}; labels {', '.join(d['label_names'])}; "
               f"split by {d['split_by']}"]
        out += [f"note: {note}" for note in d.get("notes", [])]
        out += [f"skipped {s['file']}: {s['reason']}" for s in self.skipped]
        if self.skipped:
            out.append(f"{len(self.skipped)} skipped (listed in {self.output / JSON_NAME} under 'skipped')")
        return out


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) -> (size, size, C): resize so the shorter side is ``size`` (Pillow bilinear, antialiased when
    shrinking), then crop the centre."""
    from PIL import Image

    h, w = image.shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    if (new_h, new_w) != (h, w):
        channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32)).resize(
            (new_w, new_h), Image.Resampling.BILINEAR)) for c in range(image.shape[-1])]
        image = np.stack(channels, axis=-1)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return np.clip(image[top:top + size, left:left + size], 0.0, 1.0).astype(np.float32)


def _read_labels_csv(path: Path) -> Tuple[Dict[str, Dict[str, str]], bool, bool]:
    """{posix file: row}, has a label column, has a patient_id column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ZooError(f"prepare: cannot read --labels {path}: {err}.") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if "file" not in columns:
        raise ZooError(f"prepare: --labels {path} needs a 'file' column (path relative to SRC) and a 'label' and/or "
                       f"'patient_id' column; its header is {', '.join(columns) or 'empty'}.")
    if "label" not in columns and "patient_id" not in columns:
        raise ZooError(f"prepare: --labels {path} has neither a 'label' nor a 'patient_id' column.")
    rows: Dict[str, Dict[str, str]] = {}
    for n, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        name = PurePosixPath(row["file"].replace("\\", "/")).as_posix()
        if name in rows:
            raise ZooError(f"prepare: --labels {path} line {n}: {row['file']!r} is listed twice.")
        rows[name] = row
    return rows, "label" in columns, "patient_id" in columns


def _check_output(output: Path) -> None:
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ZooError(f"prepare: the output {output} exists and is not empty; choose a new folder (prepare never "
                       "overwrites a data set).")


def _sort_labels(names: List[str]) -> List[str]:
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def folder_classes(names: List[str], class_folders: Optional[bool] = None) -> Dict[str, Optional[str]]:
    """{file: class} from folders: the first folder below the folder all files share (a zip's wrapping folder is
    not a class). ``class_folders`` None (auto): classes only when every image file lies exactly one folder below
    that root (``normal/001.png``); a DICOM tree (``patient/study/series/file``) is not read as classes. True: the
    first folder below the root, None for a file at the root (reported); False: no classes ({}).
    Files that are not images by their name (``NOT_IMAGES`` suffixes, hidden files) do not count."""
    if class_folders is False:
        return {}
    images = [n for n in names if PurePosixPath(n).suffix.lower() not in NOT_IMAGES
              and not any(part.startswith(".") for part in PurePosixPath(n).parts)]
    parents = [PurePosixPath(n).parts[:-1] for n in images]
    common = 0
    while parents and all(len(p) > common and p[common] == parents[0][common] for p in parents):
        common += 1
    if class_folders is None and not (images and all(len(p) == common + 1 for p in parents)):
        return {}
    return {n: (p[common] if len(p) > common else None) for n, p in zip(images, parents)}


def prepare(src: PathLike, output: PathLike, size: int = 64, labels: Optional[PathLike] = None, val: float = 0.1,
            test: float = 0.1, seed: int = 0, min_per_class: int = 10, class_folders: Optional[bool] = None,
            command: Optional[str] = None) -> PrepareResult:
    """Turn the images of ``src`` (folder or zip) into ``output``/dataset.npz + dataset.json (module docstring).

    Raises ZooError (one line) for bad arguments, an existing non-empty ``output``, or when no image is usable.
    """
    size = check_int("size", size, 1)
    seed = check_int("seed", seed, 0)
    min_per_class = check_int("min_per_class", min_per_class, 1)
    check_fractions(val, test)
    src, output = Path(src).expanduser().resolve(), Path(output).expanduser().resolve()
    _check_output(output)
    csv_rows, csv_label, csv_patient = (_read_labels_csv(Path(labels).expanduser()) if labels
                                        else ({}, False, False))
    kind, files, zip_skipped = list_source(src)
    skipped = [{"file": name, "reason": reason} for name, reason in zip_skipped]
    sources: List[Dict[str, Any]] = []
    labels_path = Path(labels).expanduser().resolve() if labels else None
    classes = {} if csv_label else folder_classes([f.name for f in files], class_folders)

    rows: List[_Row] = []
    channels_of: Dict[str, int] = {}
    for source in files:
        if labels_path and kind == "folder" and src / source.name == labels_path:
            continue  # the labels file itself, when it sits in the source folder
        try:
            data = source.read()
        except OSError as err:
            skipped.append({"file": source.name, "reason": f"cannot be read ({err.strerror or err})"})
            continue
        sources.append({"file": source.name, "sha256": sha256_bytes(data), "bytes": len(data)})
        entry = csv_rows.get(source.name)
        if csv_rows and entry is None:
            skipped.append({"file": source.name, "reason": f"not listed in --labels {labels}"})
            continue
        if csv_label and not (entry or {}).get("label"):
            skipped.append({"file": source.name, "reason": f"has no label in --labels {labels}"})
            continue
        try:
            decoded = decode(source.name, data)
        except UnreadableFile as err:
            skipped.append({"file": source.name, "reason": str(err)})
            continue
        channel_counts = {img.shape[-1] for img in decoded.images}
        if not decoded.images or len(channel_counts) != 1:
            skipped.append({"file": source.name, "reason": "holds no image or frames with different channel counts"})
            continue
        channels_of[source.name] = channel_counts.pop()
        label = entry["label"] if csv_label and entry else classes.get(source.name, "all")
        if label is None:
            skipped.append({"file": source.name, "reason": "is not in a class folder (--class_folders True)"})
            continue
        patient = ((entry or {}).get("patient_id") or None) if csv_patient else None
        patient = patient or decoded.patient
        group = f"patient:{patient}" if patient else f"file:{source.name}"
        rows += [_Row(source.name, k, fit(img, size), label, patient, group) for k, img in enumerate(decoded.images)]
    for name in sorted(set(csv_rows) - {s["file"] for s in sources}):
        skipped.append({"file": name, "reason": f"listed in --labels {labels} but not found in {src}"})

    rows = _drop_minority_channels(rows, channels_of, skipped)
    rows = _drop_small_classes(rows, min_per_class, skipped)
    if not rows:
        reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped[:3])
        raise ZooError(f"prepare: no usable image in {src} ({len(skipped)} skipped, e.g. {reasons or 'no files'}).")

    label_names = _sort_labels(sorted({r.label for r in rows}))
    index = {name: i for i, name in enumerate(label_names)}
    assignment = split_by_group([r.group for r in rows], val, test, seed)
    channels = rows[0].image.shape[-1]
    arrays: Dict[str, Any] = {}  # name -> array (numpy's stubs type **kwargs of savez as its options)
    split_rows: Dict[str, List[Dict[str, Any]]] = {}
    counts: Dict[str, Dict[str, Any]] = {}
    for split in SPLITS:
        chosen = [r for r, s in zip(rows, assignment) if s == split]
        stack = (np.stack([r.image for r in chosen]) if chosen else np.zeros((0, size, size, channels), np.float32))
        images = np.round(stack * 255.0).astype(np.uint8)
        arrays[f"{split}_images"] = images[..., 0] if channels == 1 else images
        arrays[f"{split}_labels"] = np.array([[index[r.label]] for r in chosen], np.int64).reshape(-1, 1)
        split_rows[split] = [{"file": r.file, "frame": r.frame, "label": index[r.label], "patient": r.patient}
                             for r in chosen]
        per_label = Counter(r.label for r in chosen)
        counts[split] = {"total": len(chosen), "per_label": {n: per_label.get(n, 0) for n in label_names},
                         "patients": sorted({r.patient for r in chosen if r.patient})}
    groups = len({r.group for r in rows})
    notes = [f"the {split} split is empty although --{split} is {fraction}: the {groups} group(s) (a patient, or a "
             f"file when no patient is known) could not be divided further; the training split keeps at least one"
             for split, fraction in (("val", val), ("test", test)) if fraction > 0 and not counts[split]["total"]]
    known = sum(1 for r in rows if r.patient)
    split_by = ("patient" if known == len(rows) else "file" if known == 0 else "patient where known, else file")
    modalities = sorted({_modality(s["file"]) for s in sources if s["file"] in channels_of})
    dataset = {
        "format": DATASET_FORMAT,
        "provenance": {"source": str(src), "source_kind": kind,
                       "labels_csv": str(labels_path) if labels_path else None,
                       "labels_csv_sha256": sha256_bytes(labels_path.read_bytes()) if labels_path else None,
                       "zoo_version": __version__,
                       "command": command or _python_call(src, output, size, labels, val, test, seed, min_per_class),
                       "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "options": {"size": size, "val": val, "test": test, "seed": seed, "min_per_class": min_per_class,
                    "class_folders": class_folders},
        "labels_from": "labels_csv" if csv_label else "class_folders" if classes else "none (one class 'all')",
        "image": {"size": [size, size], "channels": channels, "dtype": "uint8", "value_range": [0, 255],
                  "resize": "shorter side to size (Pillow bilinear, antialiased), centre crop",
                  "normalisation": {m: NORMALISATION[m] for m in modalities}},
        "npz": NPZ_NAME,
        "label_names": label_names,
        "split_by": split_by,
        "counts": counts,
        "notes": notes,
        "splits": split_rows,
        "sources": sources,
        "skipped": skipped,
    }
    _write_atomically(output, arrays, dataset)
    return PrepareResult(output, dataset, skipped)


def _modality(name: str) -> str:
    low = name.lower()
    return "photo" if low.endswith((".png", ".jpg", ".jpeg")) else "nifti" if ".nii" in low else "dicom"


def _drop_minority_channels(rows: List[_Row], channels_of: Dict[str, int],
                            skipped: List[Dict[str, str]]) -> List[_Row]:
    """Keep the files with the most common channel count (ties: the fewer channels); report the others."""
    if not channels_of:
        return rows
    tally = Counter(channels_of.values())
    keep = min(tally, key=lambda c: (-tally[c], c))
    for name, count in sorted(channels_of.items()):
        if count != keep:
            skipped.append({"file": name, "reason": f"has {count} channel(s); the data set has {keep} (the count of "
                                                    f"most files); convert it or remove it"})
    return [r for r in rows if channels_of[r.file] == keep]


def _drop_small_classes(rows: List[_Row], min_per_class: int, skipped: List[Dict[str, str]]) -> List[_Row]:
    """Drop the classes with fewer than ``min_per_class`` images; report each of their files."""
    per_class = Counter(r.label for r in rows)
    small = {label for label, n in per_class.items() if n < min_per_class}
    for label in sorted(small):
        for name in sorted({r.file for r in rows if r.label == label}):
            skipped.append({"file": name, "reason": f"class {label!r} has {per_class[label]} image(s), fewer than "
                                                    f"--min_per_class {min_per_class}"})
    return [r for r in rows if r.label not in small]


def _python_call(src: Path, output: Path, size: int, labels: Optional[PathLike], val: float, test: float, seed: int,
                 min_per_class: int) -> str:
    return (f"medigan_zoo.byod.prepare.prepare({str(src)!r}, {str(output)!r}, size={size}, labels="
            f"{str(labels) if labels else None!r}, val={val}, test={test}, seed={seed}, min_per_class={min_per_class})")


def _write_atomically(output: Path, arrays: Dict[str, Any], dataset: Dict[str, Any]) -> None:
    """Write into a temporary folder beside ``output``, then rename it into place (complete or absent)."""
    import json

    parent = output.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=parent))
    except OSError as err:
        raise ZooError(f"prepare: cannot create {parent}: {err.strerror or err}.") from None
    try:
        with open(staging / NPZ_NAME, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        dataset["npz_sha256"] = sha256_bytes((staging / NPZ_NAME).read_bytes())
        (staging / JSON_NAME).write_text(json.dumps(dataset, indent=2) + "\n", encoding="utf-8")
        _check_output(output)
        if output.exists():
            output.rmdir()  # an empty folder the user created beforehand
        staging.rename(output)
    except OSError as err:
        raise ZooError(f"prepare: cannot write {output}: {err.strerror or err}.") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
