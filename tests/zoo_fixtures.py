"""Small on-disk fixtures: zoo-style bundle metadata and catalogs written into tmp folders."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, Optional

ZOO_BLOCK: Dict[str, Any] = {
    "alias": 901,
    "modality": ["MG"],
    "anatomy": ["breast"],
    "generates": ["mass", "region of interest"],
    "condition": {"class_label": {"type": "categorical", "values": {"0": "benign", "1": "malignant"}, "default": 0}},
    "dataset": ["TOYSET"],
    "dataset_type": "public",
    "license": "CC-BY-4.0",
    "spatial_shape": [32, 32],
    "num_channels": 1,
    "architecture": "cDCGAN",
    "function": ["noise to image", "conditional generation"],
    "use_cases": ["classification"],
    "tags": ["toy"],
    "year": 2026,
    "metrics": [{"name": "FID", "value": 20.0, "direction": "lower", "num_samples": 100}],
}


def metadata(name: str = "Toy mammo GAN", zoo: Optional[Dict[str, Any]] = None, **changes: Any) -> Dict[str, Any]:
    meta = {
        "version": "0.1.0",
        "changelog": {"0.1.0": "first"},
        "monai_version": "1.6.1",
        "pytorch_version": "2.13.0",
        "numpy_version": "2.0",
        "optional_packages_version": {},
        "name": name,
        "task": "Generate toy mammography ROIs",
        "description": "A toy bundle used in tests",
        "authors": "tests",
        "copyright": "tests",
        "intended_use": "tests only",
        "data_source": "none",
        "data_type": "numpy",
        "network_data_format": {"inputs": {}, "outputs": {"pred": {"type": "image", "num_channels": 1,
                                                                   "spatial_shape": [32, 32], "dtype": "float32",
                                                                   "value_range": [0, 1]}}},
        "medigan_zoo": copy.deepcopy(ZOO_BLOCK if zoo is None else zoo),
    }
    meta.update(changes)
    return meta


def write_metadata_bundle(root: Path, name: str, meta: Dict[str, Any]) -> Path:
    """A bundle folder with configs/metadata.json only (enough for indexing, not for running)."""
    bundle = root / name
    (bundle / "configs").mkdir(parents=True, exist_ok=True)
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta, indent=2))
    return bundle


def write_catalog(path: Path, models: list, name: str = "test-catalog") -> Path:
    path.write_text(json.dumps({"catalog_format": "medigan_zoo.catalog/1", "name": name, "models": models}))
    return path
