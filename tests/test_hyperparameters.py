"""Hyperparameter declarations of the training recipes (medigan_zoo.training.hyperparameters): every shipped
train.json declares a valid block whose defaults are its own values, the reader names file and JSON path of each
mistake, and the CLI prints the same list."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, shipped_bundles

from medigan_zoo.core.errors import MetadataError, ZooError
from medigan_zoo.training.hyperparameters import check_values, help_text, read_hyperparameters

BUNDLES = [b for b in shipped_bundles() if (b / "configs" / "train.json").is_file()]


@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_every_shipped_recipe_declares_its_tunable_hyperparameters(bundle):
    items = read_hyperparameters(bundle)
    config = json.loads((bundle / "configs" / "train.json").read_text())
    assert len(items) >= 4
    for item in items:
        assert item.default == config[item.name]  # the default is the recipe's own value
        assert item.contains(item.default)
    assert {"batch_size", "max_epochs"} <= {h.name for h in items}


def _bundle_with_block(tmp_path: Path, block) -> Path:
    bundle = tmp_path / "b"
    (bundle / "configs").mkdir(parents=True)
    config = {"learning_rate": 0.001, "betas": [0.0, 0.9], "n": 3, "hyperparameters": block}
    (bundle / "configs" / "train.json").write_text(json.dumps(config))
    return bundle


GOOD = {"description": "lr", "type": "float", "low": 1e-5, "high": 0.1, "log": True}


@pytest.mark.parametrize("block, path, words", [
    ({"lr": GOOD}, "$.hyperparameters.lr", "not a top-level id"),
    ({"learning_rate": {**GOOD, "step": 2}}, "$.hyperparameters.learning_rate.step", "unknown key 'step'"),
    ({"learning_rate": {**GOOD, "high": 1e-4}}, "$.learning_rate", "outside [1e-05, 0.0001]"),
    ({"learning_rate": {**GOOD, "type": "number"}}, "$.hyperparameters.learning_rate.type", "type must be"),
    ({"learning_rate": {**GOOD, "low": 0.0}}, "$.hyperparameters.learning_rate.low", "log range needs low > 0"),
    ({"n": {"description": "n", "type": "int", "low": 1.5, "high": 4}}, "$.hyperparameters.n.low", "whole number"),
    ({"betas": {"description": "b", "type": "categorical", "choices": [[0.5, 0.999]]}}, "$.betas", "outside"),
    ({"betas": {"description": "b", "type": "categorical"}}, "$.hyperparameters.betas.choices", "non-empty list"),
    ({"n": {"type": "int", "low": 1, "high": 4}}, "$.hyperparameters.n.description", "non-empty text"),
])
def test_mistakes_are_named_with_file_and_json_path(tmp_path, block, path, words):
    bundle = _bundle_with_block(tmp_path, block)
    with pytest.raises(MetadataError) as caught:
        read_hyperparameters(bundle)
    message = str(caught.value)
    assert str(bundle / "configs" / "train.json") in message and path in message and words in message
    assert "\n" not in message


def test_values_are_checked_against_the_ranges(tmp_path):
    items = read_hyperparameters(_bundle_with_block(tmp_path, {"learning_rate": GOOD}))
    assert check_values(items, {"learning_rate": 0.01}) == {"learning_rate": 0.01}
    with pytest.raises(ZooError, match="outside"):
        check_values(items, {"learning_rate": 1.0})
    with pytest.raises(ZooError, match="not a declared hyperparameter"):
        check_values(items, {"momentum": 0.9})


def test_a_recipe_without_a_block_declares_none(tmp_path):
    bundle = _bundle_with_block(tmp_path, {})
    assert read_hyperparameters(bundle) == []
    assert "declares no tunable" in help_text(bundle)


def test_cli_prints_the_table_and_json(tmp_path):
    bundle = REPO / "bundles" / "chest_xray_cdcgan"
    run = [sys.executable, "-m", "medigan_zoo", "hyperparameters"]
    table = subprocess.run(run + [str(bundle)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["name", "type", "default", "range", "description"]
    assert "g_learning_rate  float" in table.stdout
    as_json = subprocess.run(run + ["chest_xray_cdcgan", "--json"], cwd=REPO, capture_output=True, text=True,
                             timeout=60)
    rows = json.loads(as_json.stdout)
    assert [r["name"] for r in rows] == [h.name for h in read_hyperparameters(bundle)]
    broken = tmp_path / "broken"
    shutil.copytree(bundle / "configs", broken / "configs")
    config = json.loads((broken / "configs" / "train.json").read_text())
    config["hyperparameters"]["batch_size"]["high"] = 8
    (broken / "configs" / "train.json").write_text(json.dumps(config))
    bad = subprocess.run(run + [str(broken)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "$.batch_size" in bad.stderr and "train.json" in bad.stderr
