"""medigan_zoo.evaluation: measure generators against real data (docs/evaluation.md).

    >>> from medigan_zoo.evaluation import evaluate_bundle
    >>> report = evaluate_bundle("bundles/chest_xray_cdcgan", num_samples=2000, seed=0, write=False)

Names are imported lazily, so importing this package (e.g. for ``memorization``) does not load every module.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "evaluate_bundle": "evaluate", "evaluate_images": "evaluate", "EvaluationReport": "evaluate",
    "ALL_METRICS": "evaluate", "deterministic": "evaluate", "generate_pool": "evaluate",
    "feature_metrics": "evaluate", "memorization_distances": "builtin_metrics",
    "parse_metrics": "metrics_registry", "register_metric_group": "metrics_registry",
    "metric_groups": "metrics_registry", "metric_group": "metrics_registry", "MetricGroup": "metrics_registry",
    "EvaluationInputs": "metrics_registry", "MetricContext": "metrics_registry",
    "fid_from_features": "fid", "fid_ratio": "fid", "frechet_distance_eigh": "fid",
    "precision_recall_density_coverage": "prdc",
    "FeatureExtractor": "features", "Normalization": "features", "load_feature_extractor": "extractor_kinds",
    "register_extractor_kind": "extractor_kinds", "registered_extractor_kinds": "extractor_kinds",
    "ExtractorKind": "extractor_kinds",
    "prepare_classifier_data": "realism", "realism_auc": "realism", "ClassifierData": "realism",
    "downstream_gain": "downstream", "labels_like": "downstream",
    "roc_auc": "classifiers", "fit_classifier": "classifiers", "TrainConfig": "classifiers",
    "load_reference": "data", "default_data_dir": "data", "RealData": "data",
    "write_results": "report", "metric_entry": "report", "merge_metrics": "report", "card_with_metrics": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medigan_zoo.evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
