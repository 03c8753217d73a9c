"""A zoo model seen through medigan's eyes: its config in medigan's global.json shape.

medigan's verbs (find_matching_models_by_values, rank_models_by_performance, ...) run over these
configs, so zoo bundles are found and ranked next to medigan's own models. Which zoo field goes under which
medigan ``selection`` key comes from the field table (medigan_zoo/catalog/fields.py, ``medigan_keys``).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional

from medigan_zoo.catalog.fields import ZOO_BLOCK_FIELDS, ZooField
from medigan_zoo.catalog.metrics import unflatten_metrics
from medigan_zoo.query import vocabulary

#: medigan's ``selection`` keys in the order of its global.json; the ones no zoo field fills get these values
MEDIGAN_SELECTION_ORDER = (
    "performance", "use_cases", "organ", "modality", "vendors", "centres", "function", "condition", "dataset",
    "augmentations", "generates", "height", "width", "depth", "type", "license", "dataset_type",
    "privacy_preservation", "tags", "year",
)
MEDIGAN_ONLY_KEYS: Dict[str, Any] = {"vendors": [], "centres": [], "augmentations": [], "privacy_preservation": None}


def _performance(metrics: List[Mapping[str, Any]]) -> Dict[str, Any]:
    """Metric objects -> medigan's performance dict; "CLF.trained_on_fake.accuracy" nests; FID-like metrics with a
    sample count get medigan's ``<name>_no_images``."""
    perf = unflatten_metrics((str(m["name"]), m["value"]) for m in metrics)
    for metric in metrics:
        if metric.get("num_samples") and str(metric["name"]).upper().startswith("FID"):
            perf.setdefault(f"{metric['name']}_no_images", metric["num_samples"])
    return perf


def _condition_terms(condition: Mapping[str, Any]) -> List[str]:
    terms: List[str] = []
    for name, spec in condition.items():
        terms.append(name)
        terms.extend(str(v) for v in (spec.get("values") or {}).values())
    return terms


def _shape(zoo: Mapping[str, Any]) -> Dict[str, Any]:
    shape = [int(s) for s in zoo.get("spatial_shape") or []]
    height, width = (shape[-2], shape[-1]) if len(shape) >= 2 else (None, None)
    return {"height": height, "width": width, "depth": shape[0] if len(shape) == 3 else None}


def _year(zoo: Mapping[str, Any]) -> Dict[str, Any]:
    year = zoo.get("year")
    return {"year": str(year) if year is not None else None}


#: zoo field -> its medigan selection keys and values, where copying the value under its medigan key is not enough
_TO_MEDIGAN: Dict[str, Callable[[Mapping[str, Any]], Dict[str, Any]]] = {
    "metrics": lambda zoo: {"performance": _performance(list(zoo.get("metrics") or []))},
    "modality": lambda zoo: {"modality": vocabulary.modality_terms(list(zoo.get("modality") or []))},
    "condition": lambda zoo: {"condition": _condition_terms(zoo.get("condition") or {})},
    "spatial_shape": _shape,
    # medigan's depth holds the channels of its 2D models; the view keeps it for the depth of volumes
    "num_channels": lambda zoo: {},
    "year": _year,
}


def _copied(field: ZooField, zoo: Mapping[str, Any]) -> Dict[str, Any]:
    if field.is_list:
        return {field.medigan_keys[0]: list(zoo.get(field.name) or [])}
    return {field.medigan_keys[0]: zoo.get(field.name, "")}


def medigan_selection(zoo: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``selection`` block of a zoo block: every zoo field with a medigan key (catalog/fields.py) in medigan's
    key order, medigan's keys the zoo does not have empty."""
    values: Dict[str, Any] = {}
    for field in ZOO_BLOCK_FIELDS:
        if field.medigan_keys:
            values.update(_TO_MEDIGAN.get(field.name, lambda z, f=field: _copied(f, z))(zoo))
    order = list(MEDIGAN_SELECTION_ORDER) + [k for k in values if k not in MEDIGAN_SELECTION_ORDER]
    return {key: values[key] if key in values else MEDIGAN_ONLY_KEYS.get(key) for key in order}


def to_medigan_config(
    model_id: str,
    zoo: Mapping[str, Any],
    name: str,
    version: str,
    description: str,
    location: Optional[str] = None,
) -> Dict[str, Any]:
    """Build a medigan-shaped config (execution / selection / description) from a zoo block."""
    shape = [int(s) for s in zoo.get("spatial_shape") or []]
    return {
        "execution": {
            "package_name": model_id,
            "package_link": location or "",
            "model_name": zoo.get("architecture", ""),
            "extension": ".pt",
            "image_size": shape,
            "dependencies": [],
            "generate_method": {
                "name": "generate",
                "args": {"base": ["model_file", "num_samples", "output_path", "save_images"],
                         "custom": {k: spec.get("default") for k, spec in (zoo.get("condition") or {}).items()}},
            },
        },
        "selection": medigan_selection(zoo),
        "description": {
            "title": name,
            "provided_date": "",
            "trained_date": "",
            "provided_after_epoch": None,
            "version": version,
            "publication": None,
            "doi": [],
            "inputs": [f"{k}: {spec.get('description', '')}" for k, spec in (zoo.get("condition") or {}).items()],
            "comment": description,
        },
    }
