"""Training data for the zoo's bundles: npz files -> MONAI Datasets (the data path is always a parameter).

* MedMNIST npz files (``{split}_images`` (N, H, W[, C]) uint8, ``{split}_labels``) -> records
  ``{"image": (C, H, W) float32 in [0, 1], <label_key>: int}``.
* :func:`class_balanced_weights`: per-record sampling weights that flatten a skewed class distribution (for a
  ``WeightedRandomSampler``), e.g. DermaMNIST where one class (nv) is 67 % of the images.
* The TCIA Brain-Tumor-Progression slices (``brain_mri_pgbm_128.npz`` + ``.json``) -> 2D slices of the
  T1 / T1post / T2 / FLAIR series, normalised per series, downsampled, near-empty slices dropped, with a
  patient-level train / test split.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, Path]

#: Brain MRI sequence classes: series type in the data set's JSON -> class index.
BRAIN_SEQUENCES: Dict[str, int] = {"T1pre_reg": 0, "T1post": 1, "T2_reg": 2, "FLAIR_reg": 3}
#: Class index -> name used in the bundle's condition.
BRAIN_SEQUENCE_NAMES: Dict[int, str] = {0: "T1", 1: "T1post", 2: "T2", 3: "FLAIR"}
#: Patients held out of training (the memorization check's real "test" images).
BRAIN_TEST_PATIENTS: Tuple[str, ...] = ("PGBM-009",)


def load_npz_split(data_path: PathLike, split: str = "train", num_items: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """MedMNIST split as (images (N, C, H, W) float32 in [0, 1], labels (N,) int64); ``num_items > 0`` keeps the
    first ones."""
    with np.load(data_path) as npz:
        key = f"{split}_images"
        if key not in npz:
            raise KeyError(f"{data_path} has no {key!r}; keys: {sorted(npz.keys())}")
        images = npz[key]
        labels = npz[f"{split}_labels"].reshape(-1).astype(np.int64)
    if num_items and num_items > 0:
        images, labels = images[:num_items], labels[:num_items]
    images = images.astype(np.float32) / 255.0
    images = images[:, None] if images.ndim == 3 else np.moveaxis(images, -1, 1)  # (N, C, H, W)
    return np.ascontiguousarray(images), labels


@dataclass(frozen=True)
class TrainSplit:
    """What an npz's training split holds, read without loading its images (:func:`read_train_split`)."""

    path: Path
    shape: Tuple[int, ...]  # of train_images: (N, H, W[, C]) or (N, D, H, W[, C])
    counts: Optional[Dict[int, int]]  # training images per label, sorted by label; None without train_labels

    @property
    def num_classes(self) -> int:
        """max label + 1 (0 without labels): the class embedding size the labels index."""
        return max(self.counts) + 1 if self.counts else 0


def _npy_shape(archive: zipfile.ZipFile, member: str) -> Tuple[int, ...]:
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return tuple(int(s) for s in header(f)[0])


def read_train_split(npz: PathLike) -> TrainSplit:
    """Shape of ``train_images`` (from the .npy header only) and label counts of an npz; the one home of that check
    for ``init --data`` and ``train --data`` (one-line ZooError without ``train_images``)."""
    from medigan_zoo.core.errors import ZooError

    path = Path(npz)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ZooError(f"--data {path}: not a readable npz archive ({exc}); prepare the data set with "
                       "`medigan-zoo prepare`.") from None
    with archive:
        members = {Path(n).stem: n for n in archive.namelist() if n.endswith(".npy")}
        if "train_images" not in members:
            raise ZooError(f"--data {path}: has no train_images array (keys: {', '.join(sorted(members))}); prepare "
                           "the data set with `medigan-zoo prepare`.")
        shape = _npy_shape(archive, members["train_images"])
    counts = None
    if "train_labels" in members:
        with np.load(path) as arrays:
            labels = arrays["train_labels"].reshape(-1).astype(np.int64)
        values, numbers = np.unique(labels, return_counts=True)
        counts = {int(v): int(n) for v, n in zip(values, numbers)}
    return TrainSplit(path=path, shape=shape, counts=counts)


def _records(images: np.ndarray, labels: np.ndarray, label_key: str) -> List[Dict[str, Any]]:
    return [{"image": img, label_key: int(lab)} for img, lab in zip(images, labels)]


def npz_records(data_path: PathLike, split: str = "train", label_key: str = "class_label",
                num_items: int = 0) -> List[Dict[str, Any]]:
    """Records ``{"image": (C, H, W) float32 in [0, 1], label_key: int}`` of a MedMNIST split."""
    images, labels = load_npz_split(data_path, split, num_items)
    return _records(images, labels, label_key)


def class_balanced_weights(records: Sequence[Mapping[str, Any]], label_key: str = "class_label",
                           power: float = 0.5) -> List[float]:
    """Per-record weights so that class ``c`` (``n_c`` records) is drawn with probability proportional to
    ``n_c ** power``: 1 follows the data, 0 draws every class equally often, 0.5 (square-root balancing) lifts rare
    classes without repeating their few images as often as full balancing would. Weights sum to 1.
    """
    if not 0.0 <= float(power) <= 1.0:
        raise ValueError(f"class_balanced_weights: power must be in [0, 1], got {power}")
    labels = [int(r[label_key]) for r in records]
    counts: Dict[int, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    raw = [float(counts[lab]) ** (float(power) - 1.0) for lab in labels]
    total = sum(raw)
    return [w / total for w in raw]


def npz_uint8_records(data_path: PathLike, split: str = "train", label_key: Optional[str] = None,
                      num_items: int = 0) -> List[Dict[str, Any]]:
    """Records ``{"image": (1, *spatial) float32 holding the raw 0..255 values[, label_key: int]}`` of a
    single-channel MedMNIST split, 2D or 3D (the recipe's ``ScaleIntensityRanged`` maps 0..255 to [-1, 1]).

    No label when ``label_key`` is None; ``num_items > 0`` keeps the first ones. The values are exactly those of
    the inline comprehension the WGAN-GP and DDPM recipes used before (``img[None].astype('float32')``), so
    retraining reproduces the shipped weights.
    """
    with np.load(data_path) as npz:
        key = f"{split}_images"
        if key not in npz:
            raise KeyError(f"{data_path} has no {key!r}; keys: {sorted(npz.keys())}")
        stop = num_items if num_items and num_items > 0 else None
        images = npz[key][:stop]
        labels = npz[f"{split}_labels"].reshape(-1)[:stop] if label_key is not None else None
    records: List[Dict[str, Any]] = [{"image": img[None].astype("float32")} for img in images]
    if labels is not None:
        assert label_key is not None  # labels are read only when there is a key to store them under
        for record, lab in zip(records, labels):
            record[label_key] = int(lab)
    return records


def npz_dataset(data_path: PathLike, split: str = "train", transform: Any = None, label_key: str = "class_label",
                num_items: int = 0, cache: bool = False):
    """A MONAI ``Dataset`` (``CacheDataset`` when ``cache``) over :func:`npz_records`."""
    from monai.data import CacheDataset, Dataset

    data = npz_records(data_path, split, label_key, num_items)
    if cache:
        return CacheDataset(data, transform=transform, progress=False)
    return Dataset(data, transform=transform)


def _area_downsample(volume: np.ndarray, size: int) -> np.ndarray:
    """(S, H, W) -> (S, size, size) by block averaging (H and W must be multiples of size)."""
    s, h, w = volume.shape
    if h % size or w % size:
        raise ValueError(f"cannot block-average {h}x{w} to {size}x{size}")
    fh, fw = h // size, w // size
    return volume.reshape(s, size, fh, size, fw).mean(axis=(2, 4))


def brain_mri_slices(data_path: PathLike, json_path: Optional[PathLike] = None, size: int = 64,
                     split: str = "train", test_patients: Sequence[str] = BRAIN_TEST_PATIENTS,
                     sequences: Mapping[str, int] = BRAIN_SEQUENCES, min_foreground: float = 0.2,
                     percentile: float = 99.5) -> Tuple[np.ndarray, np.ndarray]:
    """Brain MRI slices as (images (N, 1, size, size) float32 in [0, 1], sequence labels (N,) int64).

    Each series is divided by its own ``percentile`` intensity and clipped to [0, 1] (so slices of one series
    keep their relative brightness), block-averaged to ``size`` and slices whose fraction of pixels above 0.1
    is below ``min_foreground`` are dropped. Tumor masks and the other series types are not used.
    ``split``: "train" (patients not in ``test_patients``), "test" (those patients) or "all".
    """
    data_path = Path(data_path)
    json_path = Path(json_path) if json_path else data_path.with_suffix(".json")
    meta = json.loads(json_path.read_text())
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    images, labels = [], []
    with np.load(data_path) as npz:
        for series in meta:
            label = sequences.get(series["series"])
            if label is None:
                continue
            held_out = series["patient"] in test_patients
            if (split == "train" and held_out) or (split == "test" and not held_out):
                continue
            vol = npz[series["key"]].astype(np.float32)
            scale = float(np.percentile(vol, percentile)) or 1.0
            vol = np.clip(vol / scale, 0.0, 1.0)
            vol = _area_downsample(vol, size) if vol.shape[-1] != size else vol
            keep = (vol > 0.1).mean(axis=(1, 2)) >= min_foreground
            images.append(vol[keep])
            labels.append(np.full(int(keep.sum()), label, np.int64))
    if not images:
        raise ValueError(f"no slices selected from {data_path} (split={split!r})")
    return np.concatenate(images)[:, None].astype(np.float32), np.concatenate(labels)


def brain_mri_records(data_path: PathLike, json_path: Optional[PathLike] = None, size: int = 64,
                      split: str = "train", label_key: str = "sequence", num_items: int = 0,
                      **kwargs: Any) -> List[Dict[str, Any]]:
    """Records ``{"image": (1, size, size) float32 in [0, 1], label_key: int}`` of :func:`brain_mri_slices`."""
    images, labels = brain_mri_slices(data_path, json_path, size=size, split=split, **kwargs)
    if num_items and num_items > 0:
        idx = np.random.RandomState(0).permutation(len(images))[:num_items]  # a class-mixed subset
        images, labels = images[idx], labels[idx]
    return _records(images, labels, label_key)


def reference_images(data_path: PathLike, split: str, size: Optional[int] = None) -> np.ndarray:
    """Real images (N, C, H, W) in [0, 1] of a split, for any of the data sets above and the H&E slide (brain and
    H&E: ``size`` 64 when None)."""
    name = Path(data_path).name
    if name.startswith("brain_mri"):
        return brain_mri_slices(data_path, size=size or 64, split=split)[0]
    if name.endswith(".svs"):  # the H&E slide region: tissue tiles of the spatial split
        from medigan_zoo.training.pathology import pathology_tiles

        return pathology_tiles(data_path, split=split, tile=size or 64)[0]
    return load_npz_split(data_path, split)[0]
