"""The comparison tables show bootstrap intervals where a metric has one, and the anchors' published figures in a
separate row set labelled "reported by their authors with Inception features; not comparable"; the anchors'
figures equal medigan's metadata."""
from __future__ import annotations

import json
import sys

import pytest
from conftest import REPO

from medigan_zoo.catalog.anchors import ANCHOR_LABEL, ANCHORS
from medigan_zoo.catalog.metrics import metric_text

sys.path.insert(0, str(REPO / "scripts"))
import compare_models  # noqa: E402
import readme_model_table  # noqa: E402

REFERENCE = REPO.parent / "shared" / "reference" / "medigan_global.json"


def test_metric_text_shows_the_interval_when_there_is_one():
    assert metric_text({"value": 1.6951, "ci_low": 1.62, "ci_high": 1.913}, "{:.2f}") == "1.70 [1.62, 1.91]"
    assert metric_text({"value": 0.9}, "{:.3f}") == "0.900"
    assert metric_text(None) == metric_text({"value": "n/a"}) == "–"


def test_anchor_figures_equal_medigan_metadata():
    if not REFERENCE.is_file():
        pytest.skip(f"{REFERENCE} not present (the shared reference folder)")
    catalog = json.loads(REFERENCE.read_text())
    for anchor in ANCHORS:
        perf = catalog[anchor.id]["selection"]["performance"]
        assert (perf["FID"], perf["FID_ratio"], perf["FID_no_images"]) == \
            (anchor.fid, anchor.fid_ratio, anchor.fid_samples), anchor.id
        assert anchor.shape.startswith("x".join(map(str, catalog[anchor.id]["execution"]["image_size"][:2])))
    assert {a.fid_ratio for a in ANCHORS} == {0.497, 0.677}


def _row(metrics):
    return {"id": "m", "name": "m", "modality": "X", "dataset": "d", "architecture": "a", "shape": "28x28",
            "condition": "none", "ready": True, "metrics": {m["name"]: m for m in metrics}}


def test_comparison_page_shows_intervals_and_a_separate_anchor_row_set():
    text = compare_models.build_markdown([_row([
        {"name": "FID", "value": 1.7, "ci_low": 1.6, "ci_high": 1.9},
        {"name": "realism_cv_AUC", "value": 0.97, "ci_low": 0.95, "ci_high": 0.98}])], [])
    assert "| 1.70 [1.60, 1.90] |" in text and "| 0.970 [0.950, 0.980] |" in text
    metrics, anchors = text.split(f"### Anchors: {ANCHOR_LABEL}")
    assert "00001_DCGAN_MMG_CALC_ROI" not in metrics and "0.497" in anchors and "0.677" in anchors
    assert "Hardest to tell" not in text  # one model measured: nothing to pick
    two = compare_models.build_markdown([_row([{"name": "realism_cv_AUC", "value": 0.97}]),
                                         {**_row([{"name": "realism_cv_AUC", "value": 0.99}]), "id": "n"}], [])
    assert "(cross-validated realism AUC nearest 0.5):** `m` (realism_cv_AUC 0.970)" in two


def test_readme_quality_table_has_the_anchor_row_set():
    block = readme_model_table.table(REPO / "bundles")
    zoo, anchors = block.split(f"Anchors, {ANCHOR_LABEL}:")
    assert "| FID [95% CI] |" in zoo and "medigan 00001" not in zoo
    assert "| 67.60 | 0.497 | 1000 |" in anchors and "| 63.99 | 0.677 | 1000 |" in anchors


def test_model_card_table_shows_the_interval_and_its_resamples():
    from medigan_zoo.evaluation.report import metrics_markdown

    text = metrics_markdown([{"name": "KID", "value": 0.0123, "direction": "lower", "num_samples": 2000,
                              "ci_low": 0.01, "ci_high": 0.015, "num_resamples": 100, "command": "c"},
                             {"name": "FID_ratio", "value": 0.5, "direction": "higher", "command": "c"}])
    assert "| KID | 0.0123 [0.01, 0.015; 100 resamples] | lower | 2000 |" in text
    assert "| FID_ratio | 0.5 | higher |" in text
