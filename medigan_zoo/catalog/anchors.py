"""Anchor models: published figures of generators a user compares the zoo's models with, shown in a separate,
clearly labelled row set of the comparison tables (scripts/compare_models.py, scripts/readme_model_table.py).

Their FIDs were measured by their authors with Inception v3 features (ImageNet), on other data sets, resolutions
and sample counts than the zoo's (medmnist_feature_extractor features at the models' resolution): **reported by
their authors with Inception features; not comparable** with the zoo's figures. They say where published models
stand, nothing more. Source: medigan 1.0.0's model metadata (``global.json``; a copy in
``../shared/reference/medigan_global.json``, kept equal by tests/test_model_tables.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

ANCHOR_LABEL = "reported by their authors with Inception features; not comparable"


@dataclass(frozen=True)
class AnchorModel:
    """One published model and the figures its authors reported."""

    id: str
    name: str
    dataset: str
    shape: str
    fid: float
    fid_ratio: float
    fid_samples: int
    source: str


ANCHORS: Tuple[AnchorModel, ...] = (
    AnchorModel("00001_DCGAN_MMG_CALC_ROI", "medigan 00001: DCGAN, mammogram calcification ROIs", "INbreast",
                "128x128", 67.6, 0.497, 1000, "medigan global.json, selection.performance"),
    AnchorModel("00010_FASTGAN_POLYP_PATCHES_W_MASKS", "medigan 00010: FastGAN, polyp patches with masks "
                "(medigan's best FID ratio)", "HyperKvasir", "256x256 (RGB + mask)", 63.99, 0.677, 1000,
                "medigan global.json, selection.performance"),
)
