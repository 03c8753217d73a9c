"""The ``components`` metric group: connected foreground pieces of mask models' outputs vs real masks, counted on
what the model outputs; it runs only for models that output masks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import DATA_DIR, zoo_bundle

from medigan_zoo.evaluation.components import component_stats, count_pieces, is_mask_output
from medigan_zoo.evaluation.data import RealData
from medigan_zoo.evaluation.metrics_registry import EvaluationInputs, MetricContext, metric_group, run_metric_groups


def _volume(*boxes) -> torch.Tensor:
    vol = torch.zeros(1, 8, 8, 8)
    for z, y, x in boxes:
        vol[0, z, y, x] = 1.0
    return vol


def test_pieces_are_face_connected_and_an_empty_mask_has_none():
    one = _volume((slice(1, 3), slice(1, 4), 2))
    two = _volume((1, 1, 1), (5, 5, 5))
    diagonal = _volume((1, 1, 1), (2, 2, 2))  # touching at a corner only: two pieces under 6-connectivity
    empty = torch.zeros(1, 8, 8, 8)
    assert count_pieces(torch.stack([one, two, diagonal, empty])).tolist() == [1, 2, 2, 0]


def test_foreground_is_any_channel_at_or_above_the_threshold():
    masks = torch.zeros(1, 2, 6, 6)
    masks[0, 0, 0, 0] = 0.5
    masks[0, 1, 4, 4] = 1.0
    masks[0, 1, 2, 2] = 0.49
    assert count_pieces(masks).tolist() == [2]


def test_only_zero_one_images_are_mask_output():
    assert is_mask_output(torch.tensor([0.0, 1.0, 1.0]))
    assert not is_mask_output(torch.tensor([0.0, 0.5, 1.0]))
    assert not is_mask_output(torch.zeros(0))


def test_stats_average_over_condition_values_and_gap_is_relative():
    one, two = _volume((1, 1, 1)), _volume((1, 1, 1), (5, 5, 5))
    synthetic = torch.stack([two, two, one, one])  # class 0: 2 pieces each; class 1: 1 each
    real = torch.stack([one, one, one, two])  # class 0: 1, 1; class 1: 1, 2
    res = component_stats(synthetic, real, torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 1]))
    assert res["per_condition"]["0"] == {"pieces_synthetic": 2.0, "single_piece_synthetic": 0.0,
                                         "pieces_real": 1.0, "single_piece_real": 1.0}
    assert res["pieces_synthetic"] == 1.5 and res["pieces_real"] == 1.25
    assert res["single_piece_synthetic"] == 0.5 and res["single_piece_real"] == 0.75
    assert res["gap"] == pytest.approx(0.25 / 1.25)
    unlabelled = component_stats(synthetic, real)
    assert list(unlabelled["per_condition"]) == ["all"] and unlabelled["pieces_synthetic"] == 1.5
    assert math.isnan(component_stats(synthetic, torch.zeros(2, 1, 8, 8, 8))["gap"])


def _inputs(synthetic: torch.Tensor) -> EvaluationInputs:
    real = torch.stack([_volume((1, 1, 1)), _volume((2, 2, 2))])
    return EvaluationInputs(synthetic=synthetic, reference=RealData(real, None, "toy:test"))


def test_the_group_runs_on_masks_and_is_skipped_with_a_reason_for_intensity_images():
    group = metric_group("connected_components")
    ctx = MetricContext(seed=0, command="c")
    masks = torch.stack([_volume((1, 1, 1), (5, 5, 5))] * 3)
    entries = run_metric_groups(["components"], _inputs(masks), ctx)
    assert [(e["name"], e["value"]) for e in entries] == [
        ("components.synthetic", 2.0), ("components.real", 1.0), ("components_gap", 1.0)]
    assert entries[0]["single_piece"] == 0.0 and entries[1]["single_piece"] == 1.0
    assert [e["num_samples"] for e in entries] == [3, 2, 3]  # the real figure counts the real masks
    assert entries[2]["direction"] == "lower" and entries[2]["reference_split"] == "toy:test"
    soft = masks * 0.9
    assert run_metric_groups(["components"], _inputs(soft), ctx) == []
    assert "output masks only" in str(group.not_applicable(_inputs(soft)))


ADRENAL = DATA_DIR / "adrenalmnist3d.npz"


@pytest.mark.skipif(not ADRENAL.is_file(), reason=f"{ADRENAL} not found (../shared/data is absent)")
def test_evaluate_counts_the_real_test_masks_as_scipy_does_on_the_npz():
    """Oracle: the real side of the shipped 3D mask model's evaluation equals scipy's count on the raw npz."""
    from scipy import ndimage

    from medigan_zoo.evaluation.evaluate import evaluate_bundle

    report = evaluate_bundle(zoo_bundle("adrenal_ct_3dgan"), metrics="components", num_samples=32, seed=0,
                             write=False, log=lambda *a: None)
    data = np.load(ADRENAL)
    images, labels = data["test_images"], data["test_labels"].ravel()
    per_class = [np.mean([ndimage.label(m > 127)[1] for m in images[labels == c]]) for c in (0, 1)]
    values = report.values()
    assert values["components.real"] == pytest.approx(float(np.mean(per_class)), abs=1e-4)
    assert set(values) == {"components.synthetic", "components.real", "components_gap"}
    assert values["components.synthetic"] >= 1.0
