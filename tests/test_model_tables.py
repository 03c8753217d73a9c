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


def test_comparison_page_is_up_to_date():
    """docs/model_comparison.md is what scripts/compare_models.py makes from the bundles and the baseline."""
    assert (REPO / "docs" / "model_comparison.md").read_text() == compare_models.page_text(REPO / "bundles"), \
        "docs/model_comparison.md is stale: run python scripts/compare_models.py and commit the result"


def test_fid_ratio_pick_is_not_excluded_by_the_test_split_size():
    """The FID ratio's sample count is half the real test split: a 78-image split must not hide a 0.8 ratio."""
    rows = [{**_row([{"name": "FID_ratio", "value": 0.8, "num_samples": 78}]), "id": "small_split"},
            {**_row([{"name": "FID_ratio", "value": 0.1, "num_samples": 1002}]), "id": "large_split"}]
    assert "(FID ratio nearest 1):** `small_split`" in compare_models.build_markdown(rows, [])
    rows = [{**_row([{"name": "realism_AUC", "value": 0.6, "num_samples": 119}]), "id": "few"},
            {**_row([{"name": "realism_AUC", "value": 0.9, "num_samples": 2000}]), "id": "many"},
            {**_row([{"name": "realism_AUC", "value": 0.95, "num_samples": 2000}]), "id": "more"}]
    assert "(realism AUC nearest 0.5):** `many`" in compare_models.build_markdown(rows, [])


def test_fid_pick_compares_models_of_one_data_set_at_one_shape_only():
    """FIDs of 28^3 and 64^3 AdrenalMNIST3D models use different real volumes: they are never ranked together."""
    fid = [{"name": "FID", "value": 1.0, "num_samples": 2000}]
    rows = [{**_row(fid), "id": "a28", "shape": "28x28x28"}, {**_row(fid), "id": "b28", "shape": "28x28x28"},
            {**_row([{**fid[0], "value": 0.5}]), "id": "c64", "shape": "64x64x64"}]
    rows[1]["metrics"]["FID"] = {**fid[0], "value": 0.9}
    text = compare_models.build_markdown(rows, [])
    assert "lowest FID among the 2 d 28x28x28 models):** `b28`" in text
    assert not [line for line in text.splitlines() if "Closest to the real" in line and "c64" in line]
    same_shape = compare_models.build_markdown(rows[:2], [])
    assert "lowest FID among the 2 d models):** `b28`" in same_shape


def _baseline():
    return {"label": "audit", "commit": "0123456789abcdef", "date": "2026-12-02",
            "models": {"old": {"version": "0.1.0", "dataset": "d", "metrics": {
                "FID_ratio": {"value": 0.1, "num_samples": 300}, "realism_AUC": {"value": 0.99, "num_samples": 2000}}}}}


def test_progress_section_shows_then_and_now_and_counts_targets():
    rows = [{**_row([{"name": "FID_ratio", "value": 0.45, "num_samples": 300},
                     {"name": "realism_AUC", "value": 0.93, "num_samples": 2000}]), "id": "old", "version": "0.2.0"},
            {**_row([{"name": "FID_ratio", "value": 0.2, "num_samples": 300},
                     {"name": "realism_AUC", "value": 0.7, "num_samples": 100}]), "id": "new", "version": "0.1.0"}]
    text = compare_models.build_markdown(rows, [], _baseline())
    progress = text.split("## Progress since the audit")[1].split("## How the figures")[0]
    assert "| `old` | 0.1.0 → 0.2.0 | 0.100 → 0.450 | 0.990 → 0.930 |" in progress
    assert "| `new` | new (0.1.0) | 0.200 | 0.700 |" in progress
    assert "| d | 0.100 (`old`) | 0.450 (`old`) | 0.990 (`old`) | 0.700 (`new`) |" in progress
    lines = {line.split(":")[0]: line for line in progress.splitlines() if line.startswith("- ")}
    assert lines["- realism_AUC <= 0.95 for every model"].startswith(
        "- realism_AUC <= 0.95 for every model: **met**, 2 of 2")
    best = lines["- realism_AUC <= 0.75 for the best model"]
    assert "`new` 0.700 (n=100)" in best and "**met**" in best and "0 of them on at least 1000" in best
    three = lines["- realism_AUC <= 0.85 for at least 3 models"]
    assert "**not met**, 1 of 2" in three and "Nearest miss: `old` 0.930." in three
    every = lines["- FID_ratio >= 0.4 for every model"]
    assert "**not met**, 1 of 2" in every and "Nearest miss: `new` 0.200." in every
    assert "## Progress" not in compare_models.build_markdown(rows, [])  # no baseline, no section


def test_targets_say_met_or_how_far_in_the_card():
    from medigan_zoo.catalog.targets import TARGETS, target_lines

    assert {t.metric for t in TARGETS} == {"realism_AUC", "FID_ratio"}
    lines = target_lines([{"name": "realism_AUC", "value": 0.96}, {"name": "FID_ratio", "value": 0.5},
                          {"name": "realism_cv_AUC", "value": 0.99}])
    assert "- realism_AUC 0.960 against <= 0.95 (every model): not met (0.010 away)" in lines
    assert "- FID_ratio 0.500 against >= 0.4 (every model): met" in lines
    assert "- FID_ratio 0.500 against >= 0.6 (the best model): not met (0.100 away)" in lines
    assert lines[-1].startswith("- realism_cv_AUC") and target_lines([{"name": "FID", "value": 1.0}]) == []


def test_every_card_metrics_block_is_rendered_from_the_stored_metrics():
    """Each bundle card's metrics block (table, command, targets) is what its metadata's metrics render to."""
    from medigan_zoo.evaluation.report import card_with_metrics, metrics_markdown

    for bundle in sorted(p for p in (REPO / "bundles").iterdir() if (p / "configs" / "metadata.json").is_file()):
        metrics = (json.loads((bundle / "configs" / "metadata.json").read_text()).get("medigan_zoo") or {}).get(
            "metrics") or []
        card = (bundle / "docs" / "README.md").read_text()
        assert card_with_metrics(card, metrics_markdown(metrics)) == card, \
            f"{bundle.name}: docs/README.md metrics block differs from configs/metadata.json; re-render it " \
            "(medigan_zoo.evaluation.report.write_card_metrics)"


def test_snapshot_freezes_the_metrics_of_a_commit(tmp_path):
    """scripts/snapshot_metrics.py reads metadata at a commit (not the work tree) and skips non-generators."""
    import subprocess

    import snapshot_metrics

    def write(bundle, role, value):
        meta = {"version": "0.1.0", "medigan_zoo": {"role": role, "dataset": ["D"],
                                                    "metrics": [{"name": "FID", "value": value, "num_samples": 9}]}}
        (tmp_path / "bundles" / bundle / "configs").mkdir(parents=True, exist_ok=True)
        (tmp_path / "bundles" / bundle / "configs" / "metadata.json").write_text(json.dumps(meta))

    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write("gen", "generator", 1.5)
    write("extractor", "feature_extractor", 0.0)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "one"], check=True)
    write("gen", "generator", 9.9)  # a later, uncommitted change must not leak into the snapshot
    snap = snapshot_metrics.snapshot(tmp_path, "HEAD")
    assert list(snap["models"]) == ["gen"]
    assert snap["models"]["gen"] == {"version": "0.1.0", "dataset": "D",
                                     "metrics": {"FID": {"value": 1.5, "num_samples": 9}}}
    with pytest.raises(SystemExit, match="no-such-commit"):
        snapshot_metrics.snapshot(tmp_path, "no-such-commit")


def test_stored_baseline_is_the_issue_14_audit():
    """The frozen baseline holds the figures issue #14 quotes (chest DDPM FID ratio 0.105, breast realism 0.90)."""
    base = compare_models.load_baseline()
    assert base is not None and base["commit"].startswith("e7ea0ae")
    models = base["models"]
    assert set(models) == {"adrenal_ct_3dgan", "brain_mri_cdcgan", "breast_ultrasound_wgangp", "chest_xray_cdcgan",
                           "chest_xray_ddpm", "retina_fundus_cdcgan"}
    assert round(models["chest_xray_ddpm"]["metrics"]["FID_ratio"]["value"], 3) == 0.105
    assert round(models["breast_ultrasound_wgangp"]["metrics"]["realism_AUC"]["value"], 2) == 0.90


def test_ceiling_column_and_out_of_reach_line(tmp_path):
    """The progress table shows the split's FID-ratio ceiling, and a target below the ceiling's reach is said so."""
    rows = [{**_row([{"name": "FID_ratio", "value": 0.2, "num_samples": 66}]), "id": "capped", "version": "0.1.0"},
            {**_row([{"name": "FID_ratio", "value": 0.3, "num_samples": 300}]), "id": "free", "version": "0.1.0",
             "dataset": "e"}]
    lines = compare_models.progress_section(rows, _baseline(), {("d", "28x28"): 0.21, ("e", "28x28"): 1.05})
    text = "\n".join(lines)
    assert "| `capped` | new (0.1.0) | 0.200 | – | – | – | 0.210 |" in text
    assert "| `free` | new (0.1.0) | 0.300 | – | – | – | 1.050 |" in text
    assert "Out of reach by construction" in text and "`capped` (0.210; the model 0.200)" in text
    assert "`free` (" not in text.split("Out of reach")[1]
    ceilings = compare_models.load_ceilings()
    assert ceilings[("CMU-1-Small-Region", "64x64")] < 0.1 and ceilings[("BreastMNIST", "28x28")] > 0.9
