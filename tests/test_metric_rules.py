"""The one home of metric rules (medigan_zoo/catalog/metrics.py): which direction is better, and dotted metric
names <-> medigan's nested performance block. Everyone who ranks, records or prints a metric uses them."""
from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import REPO, shipped_bundles

from medigan_zoo.catalog.metrics import flatten_metrics, metric_direction, unflatten_metrics, walk_metric_tree

#: every metric name `medigan-zoo evaluate` writes, with the direction recorded for it
EVALUATION_METRICS = {
    "FID": "lower", "FID_ratio": "higher", "precision": "higher", "recall": "higher", "density": "higher",
    "coverage": "higher", "realism_AUC": "lower", "CLF.trained_on_real.accuracy": "higher",
    "CLF.trained_on_fake.accuracy": "higher", "CLF.trained_on_real_and_fake.accuracy": "higher",
    "CLF_delta": "higher", "NN_L2.synthetic_to_train": "higher", "NN_L2.real_test_to_train": "higher",
    "NN_L2_ratio": "higher",
}


@pytest.mark.parametrize("name,direction", sorted(EVALUATION_METRICS.items()))
def test_evaluation_metric_directions(name, direction):
    assert metric_direction(name) == direction
    assert metric_direction(name.upper()) == direction  # case-insensitive


def test_memorization_distances_are_higher_better():
    """A larger nearest-neighbour distance to the training images means less copying (medigan's compat rule used
    to call NN_L2.* lower-better, the evaluation higher-better: one rule now)."""
    for name in ("NN_L2.synthetic_to_train", "NN_L2_ratio", "NN_L1.synthetic_to_train", "DCR"):
        assert metric_direction(name) == "higher", name
    assert metric_direction("SEG.trained_on_fake.hausdorff") == "lower"  # other distances stay lower-better


def test_shipped_bundles_record_the_rule():
    checked = 0
    for bundle in shipped_bundles():
        zoo = json.loads((bundle / "configs" / "metadata.json").read_text(encoding="utf-8")).get("medigan_zoo", {})
        for metric in zoo.get("metrics") or []:
            assert metric["direction"] == metric_direction(metric["name"]), (bundle.name, metric["name"])
            checked += 1
    if not checked:
        pytest.skip("no shipped bundle has measured metrics yet")


def test_evaluation_records_the_rule():
    pytest.importorskip("torch")
    from medigan_zoo.evaluation.evaluate import _Context

    ctx = _Context(seed=0, command="test", suffix="@x")
    for name, direction in EVALUATION_METRICS.items():
        entry = ctx.entry(name, 1.0)
        assert entry["name"] == name + "@x" and entry["direction"] == direction


def test_compare_models_headers_use_the_rule():
    spec = importlib.util.spec_from_file_location("compare_models", REPO / "scripts" / "compare_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.header("FID", "FID {arrow}") == "FID ↓"
    assert module.header("CLF_delta", "CLF delta {arrow}") == "CLF delta ↑"
    assert sorted([3.0, 1.0, 2.0], key=module.better_first("FID")) == [1.0, 2.0, 3.0]
    assert sorted([3.0, 1.0, 2.0], key=module.better_first("coverage")) == [3.0, 2.0, 1.0]


def test_selector_overrides_then_the_rule():
    from medigan_zoo.medigan.compat import metric_direction as selector_direction

    assert selector_direction("NN_L2.synthetic_to_train") == "higher"
    assert selector_direction("NN_L2.synthetic_to_train", {"nn_l2.synthetic_to_train": "lower"}) == "lower"


PERFORMANCE = {
    "SSIM": 0.5, "FID": 67.6, "FID_no_images": 1000,
    "turing_test": {"AUC": [0.56, 0.45], "number_radiologists": 2},
    "CLF": {"trained_on_fake": {"accuracy": 0.8, "f1": None}, "trained_on_real": {}},
}


def test_walk_leaves_and_branches_depth_first():
    leaves = list(walk_metric_tree(PERFORMANCE))
    assert [p for p, _ in leaves] == [("SSIM",), ("FID",), ("FID_no_images",), ("turing_test", "AUC"),
                                       ("turing_test", "number_radiologists"), ("CLF", "trained_on_fake", "accuracy"),
                                       ("CLF", "trained_on_fake", "f1")]
    with_branches = [p for p, _ in walk_metric_tree(PERFORMANCE, branches=True)]
    assert with_branches.index(("CLF",)) < with_branches.index(("CLF", "trained_on_fake")) < \
        with_branches.index(("CLF", "trained_on_fake", "accuracy"))
    assert ("CLF", "trained_on_real") in with_branches  # an empty block is still a path medigan can reach
    assert list(walk_metric_tree("not done")) == [] and list(walk_metric_tree(None)) == []


def test_flatten_and_back():
    flat = flatten_metrics(PERFORMANCE)
    assert flat["CLF.trained_on_fake.accuracy"] == 0.8 and flat["turing_test.AUC"] == [0.56, 0.45]
    tree = unflatten_metrics(flat.items())
    assert flatten_metrics(tree) == flat
    assert tree["CLF"]["trained_on_fake"] == {"accuracy": 0.8, "f1": None}


def test_unflatten_keeps_the_plain_metric_on_a_name_clash():
    assert unflatten_metrics([("CLF", 1.0), ("CLF.accuracy", 0.5)]) == {"CLF": 1.0}
    assert unflatten_metrics([("CLF.accuracy", 0.5), ("CLF", 1.0)]) == {"CLF": 1.0}
    assert unflatten_metrics([("FID", 1.0), ("FID", 2.0)]) == {"FID": 2.0}
