"""The metric-group registry: every registered group, run on tiny inputs, writes exactly the metric names it declares,
in order, and the same entries for the same seed; the registry refuses unknown needs and name clashes; shared
inputs are built once; docs/evaluation.md lists every group.

A new metric group is covered by ``test_group_writes_its_declared_keys_deterministically`` as soon as it is
registered (tiny_inputs provides every need of metrics_registry.NEEDS).
"""
from __future__ import annotations

import json

import pytest
import torch
from conftest import REPO

from medigan_zoo.core.errors import ZooError
from medigan_zoo.evaluation import metrics_registry
from medigan_zoo.evaluation.classifiers import TrainConfig
from medigan_zoo.evaluation.data import RealData
from medigan_zoo.evaluation.evaluate import ALL_METRICS, deterministic
from medigan_zoo.evaluation.features import FeatureExtractor, Normalization
from medigan_zoo.evaluation.metrics_registry import (
    NEEDS,
    EvaluationInputs,
    MetricContext,
    metric_group,
    metric_groups,
    parse_metrics,
    register_metric_group,
    run_metric_groups,
)

CONTRACT_FIELDS = ("name", "value", "direction", "num_samples", "normalization", "reference_split", "seed",
                   "zoo_version", "command")


def tiny_extractor() -> FeatureExtractor:
    """A real (small, seeded) convolutional extractor: 6 average-pooled channels."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU())
    return FeatureExtractor(module, "tiny-conv", Normalization(size=16))


def tiny_inputs(seed: int = 0, **overrides) -> EvaluationInputs:
    """Every need of NEEDS on 16 x 16 gray images: 24 reference, 32 train, 16 test, 24 synthetic, 16 labelled."""
    gen = torch.Generator().manual_seed(seed)

    def split(n: int, name: str) -> RealData:
        return RealData(torch.rand(n, 1, 16, 16, generator=gen), torch.arange(n) % 2, f"tiny:{name}")

    fields = dict(synthetic=torch.rand(24, 1, 16, 16, generator=gen) * 0.8, reference=split(24, "reference"),
                  train=split(32, "train"), test=split(16, "test"),
                  labelled_synthetic=(torch.rand(16, 1, 16, 16, generator=gen), torch.arange(16) % 2), num_classes=2,
                  extractor=tiny_extractor(), classifier=TrainConfig(epochs=1, size=16), k=3)
    fields.update(overrides)
    return EvaluationInputs(**fields)


def tiny_volume_inputs(seed: int = 0) -> EvaluationInputs:
    """tiny_inputs on 16^3 volumes (for groups that apply to 3D models only)."""
    gen = torch.Generator().manual_seed(seed)

    def split(n: int, name: str) -> RealData:
        return RealData(torch.rand(n, 1, 16, 16, 16, generator=gen), torch.arange(n) % 2, f"tiny3d:{name}")

    return tiny_inputs(seed, synthetic=torch.rand(24, 1, 16, 16, 16, generator=gen) * 0.8,
                       reference=split(24, "reference"), train=split(32, "train"), test=split(16, "test"),
                       labelled_synthetic=(torch.rand(16, 1, 16, 16, 16, generator=gen), torch.arange(16) % 2))


def as_masks(inputs: EvaluationInputs) -> EvaluationInputs:
    """The same inputs with synthetic and real images thresholded at 0.5 (what a mask model outputs)."""
    inputs.synthetic = (inputs.synthetic >= 0.5).float()
    for split in ("reference", "train", "test"):
        data = getattr(inputs, split)
        setattr(inputs, split, RealData((data.images >= 0.5).float(), data.labels, data.name))
    return inputs


def test_tiny_inputs_provide_every_need():
    assert tiny_inputs().available() == frozenset(NEEDS)


@pytest.mark.parametrize("name", [g.name for g in metric_groups()])
def test_group_writes_its_declared_keys_deterministically(name):
    group = metric_group(name)
    ctx = MetricContext(seed=0, command="test command", suffix="@tiny")
    runs = []
    for _ in range(2):
        inputs = tiny_inputs() if 2 in group.spatial_dims else tiny_volume_inputs()
        if group.masks_only:
            inputs = as_masks(inputs)
        with deterministic(0, num_threads=1):
            runs.append(run_metric_groups([name], inputs, ctx))
        assert name in inputs.timings
    first, second = runs
    assert [e["name"] for e in first] == [key + "@tiny" for key in group.keys]
    for entry in first:
        assert all(entry.get(f) is not None for f in CONTRACT_FIELDS), entry
        assert entry["direction"] in ("lower", "higher") and entry["seed"] == 0
    assert json.dumps(first) == json.dumps(second)  # same seed, same entries (NaN-safe comparison)


@pytest.mark.parametrize("name,key", [("fid", "FID"), ("kid", "KID"), ("realism", "realism_AUC"),
                                      ("realism_cv", "realism_cv_AUC"), ("membership", "membership_inference.AUC")])
def test_interval_metrics_store_their_bootstrap_interval(name, key):
    with deterministic(0, num_threads=1):
        entry = run_metric_groups([name], tiny_inputs(), MetricContext(seed=0, command="c"))[0]
    assert entry["name"] == key and entry["num_resamples"] > 1 and entry["ci_level"] == 0.95
    assert entry["ci_low"] <= entry["ci_high"]


def test_registry_refuses_unknown_needs_and_clashes(monkeypatch):
    monkeypatch.setattr(metrics_registry, "_REGISTRY", dict(metrics_registry._REGISTRY))
    with pytest.raises(ValueError, match="unknown need"):
        register_metric_group("x", needs=("pixels",), keys=("X",))
    with pytest.raises(ValueError, match="already used"):
        register_metric_group("fid", needs=(), keys=("FID_again",))
    with pytest.raises(ValueError, match="already used"):
        register_metric_group("fid_again", needs=(), keys=("FID",))
    with pytest.raises(ValueError, match="already used"):
        register_metric_group("pr_again", needs=(), keys=("P",), aliases=("pr",))


def test_a_new_group_is_one_block(monkeypatch):
    """Registering a block is all it takes: selectable by name, run after the built-in groups, inputs shared."""
    monkeypatch.setattr(metrics_registry, "_REGISTRY", dict(metrics_registry._REGISTRY))

    @register_metric_group("mean_gap", needs=("synthetic_images",), keys=("mean_intensity_gap",))
    def _mean_gap(inputs, ctx):
        gap = float((inputs.synthetic.mean() - inputs.reference.images.mean()).abs())
        return [ctx.entry("mean_intensity_gap", gap, num_samples=len(inputs.synthetic))]

    assert parse_metrics("mean_gap,fid") == ("fid", "mean_gap")
    assert parse_metrics("all")[-1] == "mean_gap"
    entries = run_metric_groups(parse_metrics("fid,mean_gap"), tiny_inputs(), MetricContext(seed=0, command="c"))
    assert [e["name"] for e in entries] == ["FID", "mean_intensity_gap"]
    assert entries[1]["value"] == pytest.approx(0.1, abs=0.05)  # synthetic is scaled by 0.8


def test_parse_metrics_aliases_order_and_errors():
    assert parse_metrics(None) == parse_metrics("all") == ALL_METRICS
    assert ALL_METRICS[:6] == ("fid", "fid_ratio", "prdc", "realism", "downstream", "memorization")
    assert parse_metrics("memorization, PR ,fid") == ("fid", "prdc", "memorization")
    assert parse_metrics(["recall"]) == ("prdc",)
    with pytest.raises(ZooError, match="Unknown metric group"):
        parse_metrics("fid,sharpness")
    with pytest.raises(ZooError, match=r"Unknown metric group\(s\) \['pr'\]"):  # run by name, not alias
        run_metric_groups(["pr"], tiny_inputs(), MetricContext(seed=0, command="c"))


def test_missing_input_is_a_user_error():
    inputs = tiny_inputs(train=None, test=None)
    with pytest.raises(ZooError, match="'memorization' needs test_images, train_images"):
        run_metric_groups(["memorization"], inputs, MetricContext(seed=0, command="c"))


def test_shared_inputs_are_built_once_and_only_when_needed():
    calls = {"extractor": 0, "test": 0}
    real_test = tiny_inputs().test

    def load(kind, value):
        def loader():
            calls[kind] += 1
            return value
        return loader

    inputs = tiny_inputs(extractor=None, test=None,
                         loaders={"extractor": load("extractor", tiny_extractor()), "test": load("test", real_test)})
    ctx = MetricContext(seed=0, command="c")
    run_metric_groups(["realism"], inputs, ctx)
    assert calls == {"extractor": 0, "test": 0}
    run_metric_groups(["fid", "prdc", "downstream", "memorization"], inputs, ctx)
    assert calls == {"extractor": 1, "test": 1} and "features" in inputs.timings


def test_docs_list_every_group_and_metric():
    text = (REPO / "docs" / "evaluation.md").read_text(encoding="utf-8")
    for group in metric_groups():
        assert f"`{group.name}`" in text, group.name
        for key in group.keys:
            assert f"`{key}`" in text, key
