"""A zoo model seen through medigan's eyes: its config in medigan's global.json shape.

medigan's verbs (find_matching_models_by_values, rank_models_by_performance, ...) run over these
configs, so zoo bundles are found and ranked next to medigan's own models.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from medigan_zoo.query import vocabulary


def _performance(metrics: List[Mapping[str, Any]]) -> Dict[str, Any]:
    """Metric objects -> medigan's performance dict; "CLF.trained_on_fake.accuracy" nests."""
    perf: Dict[str, Any] = {}
    for metric in metrics:
        parts = str(metric["name"]).split(".")
        node = perf
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):  # a scalar and a nested metric share a name: keep the scalar
                break
        else:
            node[parts[-1]] = metric["value"]
    for metric in metrics:
        if metric.get("num_samples") and str(metric["name"]).upper().startswith("FID"):
            perf.setdefault(f"{metric['name']}_no_images", metric["num_samples"])
    return perf


def _modality_terms(codes: List[str]) -> List[str]:
    terms: List[str] = []
    for code in codes:
        for term in [code, *vocabulary.modality_names(code)]:
            if term not in terms:
                terms.append(term)
    return terms


def _condition_terms(condition: Mapping[str, Any]) -> List[str]:
    terms: List[str] = []
    for name, spec in condition.items():
        terms.append(name)
        terms.extend(str(v) for v in (spec.get("values") or {}).values())
    return terms


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
    height, width = (shape[-2], shape[-1]) if len(shape) >= 2 else (None, None)
    depth = shape[0] if len(shape) == 3 else None
    year = zoo.get("year")
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
        "selection": {
            "performance": _performance(list(zoo.get("metrics") or [])),
            "use_cases": list(zoo.get("use_cases") or []),
            "organ": list(zoo.get("anatomy") or []),
            "modality": _modality_terms(list(zoo.get("modality") or [])),
            "vendors": [],
            "centres": [],
            "function": list(zoo.get("function") or []),
            "condition": _condition_terms(zoo.get("condition") or {}),
            "dataset": list(zoo.get("dataset") or []),
            "augmentations": [],
            "generates": list(zoo.get("generates") or []),
            "height": height,
            "width": width,
            "depth": depth,
            "type": zoo.get("architecture", ""),
            "license": zoo.get("license", ""),
            "dataset_type": zoo.get("dataset_type", ""),
            "privacy_preservation": None,
            "tags": list(zoo.get("tags") or []),
            "year": str(year) if year is not None else None,
        },
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
