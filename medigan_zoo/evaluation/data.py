"""Real reference data for evaluation: the shared data folder, MedMNIST splits, brain MRI slices and H&E tiles.

Images come back as float32 tensors ``(N, C, *spatial)`` in [0, 1] (uint8 / 255; brain MRI slices divided by
their series' 99.5th percentile and clipped), labels as int64 ``(N,)`` (or None).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from medigan_zoo.core.errors import ZooError
from medigan_zoo.core.paths import ENV_DATA, default_data_dir  # noqa: F401  (the one home of the data-folder rule)

#: brain MRI series type -> class index of the extractor's brain head (perfusion maps share one class)
BRAIN_SERIES_CLASSES: Dict[str, int] = {
    "T1pre_reg": 0, "T1post": 1, "dT1": 2, "FLAIR_reg": 3, "T2_reg": 4, "ADC_reg": 5,
    "nCBF_reg": 6, "nRCBV_reg": 6, "sRCBV_reg": 6,
}
BRAIN_CLASS_NAMES = ("T1pre", "T1post", "dT1", "FLAIR", "T2", "ADC", "perfusion")
#: patients held out of the brain MRI training split (patient-level split: slices of one patient stay together)
BRAIN_TEST_PATIENTS = ("PGBM-004", "PGBM-009")
BRAIN_FILE = "brain_mri_pgbm_128.npz"
#: the H&E slide region (tiled and split by medigan_zoo.training.pathology)
PATHOLOGY_FILE = "pathology_cmu_small_region.svs"

#: zoo "dataset" names (lower case, letters and digits only) -> npz file of the shared data folder
DATASET_FILES: Dict[str, str] = {
    "pneumoniamnist": "pneumoniamnist.npz",
    "breastmnist": "breastmnist.npz",
    "retinamnist": "retinamnist.npz",
    "dermamnist": "dermamnist.npz",
    "vesselmnist3d": "vesselmnist3d.npz",
    "adrenalmnist3d": "adrenalmnist3d.npz",
    "brainmripgbm": BRAIN_FILE,
    "braintumorprogression": BRAIN_FILE,
    "pgbm": BRAIN_FILE,
    "cmu1smallregion": PATHOLOGY_FILE,
}


def _require(path: Path) -> Path:
    if not path.is_file():
        raise ZooError(f"Real data file {path} not found. Pass --data_dir (or set {ENV_DATA}) to the folder holding "
                       "the shared data sets (see /work/shared/data/README.md for the expected files).")
    return path


@dataclass
class RealData:
    """Real images of one split: ``images`` (N, C, *spatial) float32 in [0, 1], ``labels`` (N,) int64 or None."""

    images: torch.Tensor
    labels: Optional[torch.Tensor]
    name: str  # e.g. "pneumoniamnist.npz:test"

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index: torch.Tensor) -> "RealData":
        return RealData(self.images[index], None if self.labels is None else self.labels[index], self.name)


def channels_first(images: np.ndarray, spatial_dims: int) -> np.ndarray:
    """(N, *spatial) -> (N, 1, *spatial); (N, *spatial, 3) RGB -> (N, 3, *spatial)."""
    if images.ndim == spatial_dims + 1:
        return images[:, None]
    if images.ndim == spatial_dims + 2 and images.shape[-1] in (3, 4):
        return np.moveaxis(images[..., :3], -1, 1)
    raise ZooError(f"Cannot read images of shape {images.shape} as {spatial_dims}D images.")


def load_medmnist(file: Union[str, Path], split: str, spatial_dims: Optional[int] = None) -> RealData:
    """One split (``train``/``val``/``test``, or several joined with ``+``) of a MedMNIST-style npz."""
    path = _require(Path(file))
    with np.load(path) as npz:
        parts_img: List[np.ndarray] = []
        parts_lab: List[Optional[np.ndarray]] = []
        for part in split.split("+"):
            key = f"{part}_images"
            if key not in npz.files:
                raise ZooError(f"{path} has no split {part!r} (keys: {', '.join(npz.files)}).")
            img = npz[key]
            dims = spatial_dims or (3 if "3d" in path.name.lower() else 2)
            parts_img.append(channels_first(img, dims))
            lab = npz.get(f"{part}_labels")
            parts_lab.append(None if lab is None else np.asarray(lab).reshape(len(img), -1)[:, 0])
    images = torch.from_numpy(np.concatenate(parts_img).astype(np.float32) / 255.0)
    known_labels = [lab for lab in parts_lab if lab is not None]
    labels = None if len(known_labels) != len(parts_lab) else torch.from_numpy(
        np.concatenate(known_labels).astype(np.int64))
    return RealData(images, labels, f"{path.name}:{split}")


def brain_series(data_dir: Path) -> List[Mapping[str, Any]]:
    """Series descriptions of the brain MRI file (its JSON sidecar)."""
    return json.loads(_require(data_dir / BRAIN_FILE.replace(".npz", ".json")).read_text())


def load_brain_slices(data_dir: Path, split: str = "train", size: Optional[int] = None,
                      min_mean: float = 0.02) -> RealData:
    """2D brain MRI slices (tumour masks excluded), class = series type (``BRAIN_CLASS_NAMES``).

    ``split``: "train" (patients not in BRAIN_TEST_PATIENTS), "test" (those), "all". Each series is divided by its
    99.5th percentile and clipped to [0, 1]; nearly black slices (mean < ``min_mean``) are dropped. ``size``
    resizes (area interpolation) from 128 to ``size``.
    """
    if split not in ("train", "test", "all"):
        raise ZooError(f"Brain MRI split must be train, test or all, got {split!r}.")
    series = brain_series(data_dir)
    images, labels = [], []
    with np.load(_require(data_dir / BRAIN_FILE)) as npz:
        for entry in series:
            cls = BRAIN_SERIES_CLASSES.get(entry["series"])
            held_out = entry["patient"] in BRAIN_TEST_PATIENTS
            if cls is None or (split == "train" and held_out) or (split == "test" and not held_out):
                continue
            vol = npz[entry["key"]].astype(np.float32)
            scale = float(np.percentile(vol, 99.5)) or 1.0
            vol = np.clip(vol / scale, 0.0, 1.0)
            keep = vol.mean(axis=(1, 2)) >= min_mean
            images.append(vol[keep])
            labels.append(np.full(int(keep.sum()), cls, dtype=np.int64))
    x = torch.from_numpy(np.concatenate(images))[:, None]
    if size is not None and size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="area")
    return RealData(x.contiguous(), torch.from_numpy(np.concatenate(labels)), f"{BRAIN_FILE}:{split}")


def load_brain_reference(data_dir: Path, split: str, size: Optional[int]) -> RealData:
    """Brain MRI slices prepared exactly as the zoo's brain generators were trained on them
    (``medigan_zoo.training.data.brain_mri_slices``: T1, T1post, T2, FLAIR; test patient PGBM-009), falling back to
    :func:`load_brain_slices` where that module is absent. Splits: train, test, all ("val" means test)."""
    split = {"val": "test"}.get(split, split)
    try:
        from medigan_zoo.training.data import brain_mri_slices
    except ImportError:
        return load_brain_slices(data_dir, split=split, size=size)
    images, labels = brain_mri_slices(_require(data_dir / BRAIN_FILE), size=size or 64, split=split)
    return RealData(torch.from_numpy(images), torch.from_numpy(labels), f"{BRAIN_FILE}:{split}")


def load_pathology_reference(data_dir: Path, split: str, size: Optional[int]) -> RealData:
    """64x64 H&E tissue tiles of the slide region as the zoo's pathology generators were trained on them
    (``medigan_zoo.training.pathology``: tissue filter, spatial split with a gap). Splits: train, test, all ("val"
    means test); ``size`` is the tile side (64 when None)."""
    from medigan_zoo.training.pathology import pathology_tiles

    split = {"val": "test"}.get(split, split)
    if split not in ("train", "test", "all"):
        raise ZooError(f"Pathology tile split must be train, test or all, got {split!r}.")
    tiles, _ = pathology_tiles(_require(data_dir / PATHOLOGY_FILE), split=split, tile=int(size or 64))
    return RealData(torch.from_numpy(tiles), None, f"{PATHOLOGY_FILE}:{split}")


#: shared data files that are not MedMNIST npz files -> their loader (data_dir, split, side or None)
SPECIAL_LOADERS: Dict[str, Callable[[Path, str, Optional[int]], RealData]] = {
    BRAIN_FILE: load_brain_reference,
    PATHOLOGY_FILE: load_pathology_reference,
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


#: the npz of a prepared data set folder (medigan_zoo.byod.prepare)
PREPARED_NPZ = "dataset.npz"


def dataset_file(names: Sequence[str], spatial_shape: Sequence[int] = ()) -> str:
    """The shared npz file of a bundle's zoo ``dataset`` list (the first name the zoo knows)."""
    for name in names:
        key = _key(str(name))
        for known, file in DATASET_FILES.items():
            if known in key:
                if file == "adrenalmnist3d.npz" and list(spatial_shape)[-1:] == [64]:
                    return "adrenalmnist3d_64.npz"
                if file == "vesselmnist3d.npz" and list(spatial_shape)[-1:] == [64]:
                    return "vesselmnist3d_64.npz"
                return file
    raise ZooError(f"No shared real data set is known for dataset {list(names)}; known: "
                   f"{', '.join(sorted(set(DATASET_FILES.values())))}. Evaluate with an explicit reference instead "
                   "(medigan_zoo.evaluation.evaluate_images).")


def load_reference(names: Sequence[str], split: str, data_dir: Optional[Union[str, Path]] = None,
                   spatial_shape: Sequence[int] = ()) -> RealData:
    """Real images of a bundle's training data set, resized to ``spatial_shape`` when that differs. A ``data_dir``
    holding ``dataset.npz`` (a data set made by ``medigan-zoo prepare``) is that data set, whatever the names."""
    root = default_data_dir(data_dir)
    file = PREPARED_NPZ if (root / PREPARED_NPZ).is_file() else dataset_file(names, spatial_shape)
    if file in SPECIAL_LOADERS:
        data = SPECIAL_LOADERS[file](root, split, int(spatial_shape[-1]) if spatial_shape else None)
    else:
        data = load_medmnist(root / file, split, spatial_dims=len(spatial_shape) or None)
    shape = tuple(int(s) for s in spatial_shape)
    if shape and tuple(data.images.shape[2:]) != shape:
        mode = "area" if data.images.shape[-1] > shape[-1] else ("trilinear" if len(shape) == 3 else "bilinear")
        data.images = torch.nn.functional.interpolate(data.images, size=shape, mode=mode).clamp(0, 1)
    return data


def split_sizes(file: Union[str, Path]) -> Tuple[int, ...]:
    """Numbers of train/val/test images of a MedMNIST npz (for docs and checks)."""
    with np.load(_require(Path(file))) as npz:
        return tuple(len(npz[f"{s}_images"]) for s in ("train", "val", "test") if f"{s}_images" in npz.files)
