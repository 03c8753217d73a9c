"""Paired brain MRI slices of the TCIA Brain-Tumor-Progression data (``brain_mri_pgbm_128.npz`` + ``.json``).

The ``_reg`` series of one study (same patient and study date) are co-registered to that study's ``T1post``
series, and its ``Mask_Tumor`` series (binary tumor masks) lies in the same grid: every series of a study has the
same number of slices, sorted by z. So slice ``k`` of two series of one study forms a pair.

* :func:`brain_mri_translation_pairs`: (source, target) slices, e.g. ``T1pre_reg`` -> ``T2_reg``.
* :func:`brain_mri_tumor_pairs`: (image, tumor mask) slices, e.g. ``T1post`` + ``Mask_Tumor``.

Both split by patient: ``split="test"`` keeps only the ``test_patients`` (whole patients held out, all their
studies), ``"train"`` all others, ``"all"`` both. Images are divided by their series' ``percentile`` intensity and
clipped to [0, 1] (as :func:`medigan_zoo.training.data.brain_mri_slices`), block-averaged to ``size``; slices whose
source/image has less than ``min_foreground`` of its pixels above 0.1 are dropped (top and bottom of the head).
Masks are block-averaged and thresholded at 0.5.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from medigan_zoo.training.data import _area_downsample

PathLike = Union[str, Path]

#: Patients held out of the translation model's training (whole patients: 2 of the 7).
TRANSLATION_TEST_PATIENTS: Tuple[str, ...] = ("PGBM-006", "PGBM-009")
#: Patients held out of the tumor model's training (1 of the 4 patients that have tumor masks).
TUMOR_TEST_PATIENTS: Tuple[str, ...] = ("PGBM-008",)
SPLITS = ("train", "test", "all")


@dataclass(frozen=True)
class StudyPair:
    """Two series of one study (same patient and study date) that form slice pairs."""

    patient: str
    study_date: str
    source_key: str
    target_key: str


def _metadata(data_path: PathLike, json_path: Optional[PathLike]) -> List[Dict[str, Any]]:
    data_path = Path(data_path)
    path = Path(json_path) if json_path else data_path.with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the series metadata of {data_path.name} is missing (expected next to it)")
    return json.loads(path.read_text())


def study_pairs(meta: Sequence[Dict[str, Any]], source: str, target: str) -> List[StudyPair]:
    """The studies that have both a ``source`` and a ``target`` series, in the order of the metadata."""
    studies: Dict[Tuple[str, str], Dict[str, str]] = {}
    for series in meta:
        studies.setdefault((series["patient"], series["study_date"]), {})[series["series"]] = series["key"]
    return [StudyPair(patient, date, found[source], found[target])
            for (patient, date), found in studies.items() if source in found and target in found]


def _normalise(volume: np.ndarray, size: int, percentile: float) -> np.ndarray:
    vol = volume.astype(np.float32)
    scale = float(np.percentile(vol, percentile)) or 1.0
    vol = np.clip(vol / scale, 0.0, 1.0)
    return _area_downsample(vol, size) if vol.shape[-1] != size else vol


def _select(pairs: Sequence[StudyPair], split: str, test_patients: Sequence[str]) -> List[StudyPair]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "all":
        return list(pairs)
    held_out = set(test_patients)
    return [p for p in pairs if (p.patient in held_out) == (split == "test")]


def _paired_slices(data_path: PathLike, json_path: Optional[PathLike], source: str, target: str, size: int,
                   split: str, test_patients: Sequence[str], min_foreground: float, percentile: float,
                   target_is_mask: bool) -> Tuple[np.ndarray, np.ndarray, List[Tuple[str, str, int]]]:
    pairs = _select(study_pairs(_metadata(data_path, json_path), source, target), split, test_patients)
    if not pairs:
        raise ValueError(f"no study of {data_path} has both {source!r} and {target!r} (split={split!r}, "
                         f"test_patients={list(test_patients)})")
    sources, targets, index = [], [], []
    with np.load(data_path) as npz:
        for pair in pairs:
            src_raw, tgt_raw = npz[pair.source_key], npz[pair.target_key]
            if src_raw.shape != tgt_raw.shape:
                raise ValueError(f"series {pair.source_key} {src_raw.shape} and {pair.target_key} {tgt_raw.shape} "
                                 f"of {pair.patient} {pair.study_date} differ in shape: not a slice pair")
            src = _normalise(src_raw, size, percentile)
            if target_is_mask:
                tgt = _area_downsample((tgt_raw > 0).astype(np.float32), size) if size != tgt_raw.shape[-1] \
                    else (tgt_raw > 0).astype(np.float32)
                tgt = (tgt >= 0.5).astype(np.float32)
            else:
                tgt = _normalise(tgt_raw, size, percentile)
            keep = np.flatnonzero((src > 0.1).mean(axis=(1, 2)) >= min_foreground)
            sources.append(src[keep])
            targets.append(tgt[keep])
            index += [(pair.patient, pair.study_date, int(k)) for k in keep]
    return (np.concatenate(sources)[:, None].astype(np.float32), np.concatenate(targets)[:, None].astype(np.float32),
            index)


def brain_mri_translation_pairs(data_path: PathLike, json_path: Optional[PathLike] = None, size: int = 64,
                                split: str = "train", source: str = "T1pre_reg", target: str = "T2_reg",
                                test_patients: Sequence[str] = TRANSLATION_TEST_PATIENTS,
                                min_foreground: float = 0.2, percentile: float = 99.5
                                ) -> Tuple[np.ndarray, np.ndarray, List[Tuple[str, str, int]]]:
    """(source (N, 1, size, size), target (N, 1, size, size)) float32 in [0, 1] and each pair's
    (patient, study date, slice index)."""
    return _paired_slices(data_path, json_path, source, target, size, split, test_patients, min_foreground,
                          percentile, target_is_mask=False)


def brain_mri_tumor_pairs(data_path: PathLike, json_path: Optional[PathLike] = None, size: int = 64,
                          split: str = "train", image_series: str = "T1post",
                          test_patients: Sequence[str] = TUMOR_TEST_PATIENTS, min_foreground: float = 0.2,
                          percentile: float = 99.5) -> Tuple[np.ndarray, np.ndarray, List[Tuple[str, str, int]]]:
    """(image (N, 1, size, size) float32 in [0, 1], mask (N, 1, size, size) float32 in {0, 1}) of the studies
    that have a ``Mask_Tumor`` series, and each pair's (patient, study date, slice index)."""
    return _paired_slices(data_path, json_path, image_series, "Mask_Tumor", size, split, test_patients,
                          min_foreground, percentile, target_is_mask=True)


def pair_records(first: np.ndarray, second: np.ndarray, first_key: str, second_key: str) -> List[Dict[str, Any]]:
    """Records ``{first_key: (1, H, W), second_key: (1, H, W)}`` for a MONAI ``Dataset``."""
    return [{first_key: a, second_key: b} for a, b in zip(first, second)]


def translation_records(data_path: PathLike, size: int = 64, split: str = "train", source_key: str = "source",
                        target_key: str = "target", **kwargs: Any) -> List[Dict[str, Any]]:
    """Records of :func:`brain_mri_translation_pairs` (bundle recipes)."""
    src, tgt, _ = brain_mri_translation_pairs(data_path, size=size, split=split, **kwargs)
    return pair_records(src, tgt, source_key, target_key)


def tumor_records(data_path: PathLike, size: int = 64, split: str = "train", image_key: str = "image",
                  mask_key: str = "mask", **kwargs: Any) -> List[Dict[str, Any]]:
    """Records of :func:`brain_mri_tumor_pairs` (bundle recipes)."""
    img, mask, _ = brain_mri_tumor_pairs(data_path, size=size, split=split, **kwargs)
    return pair_records(img, mask, image_key, mask_key)
