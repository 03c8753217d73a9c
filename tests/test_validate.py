"""`medigan-zoo validate`: every shipped bundle passes (statically and with --run); broken bundles report file,
JSON path and a fix. Weights are only checked with run=True (building the network evaluates the config)."""
from __future__ import annotations

import json
import shutil

import pytest
from conftest import shipped_bundles, shipped_generators
from test_cli import run_cli

from medigan_zoo.runtime.validate import validate_bundle


def errors(bundle, run=False):
    return [p for p in validate_bundle(bundle, run=run) if p.severity == "error"]


@pytest.mark.parametrize("bundle", shipped_bundles(), ids=lambda p: p.name)
def test_shipped_bundle_is_valid(bundle):
    assert errors(bundle) == []
    assert errors(bundle, run=True) == []


def test_foreign_bundle_reports_what_the_zoo_contract_needs(mednist_gan):
    problems = errors(mednist_gan)
    where = {(p.file, p.json_path) for p in problems}
    assert ("configs/metadata.json", "$.medigan_zoo") in where
    assert ("configs/inference.json", "$.seed") in where and ("configs/inference.json", "$.sampler") in where
    assert ("docs/README.md", "") in where
    assert all(p.hint for p in problems)
    out = run_cli("validate", mednist_gan)
    assert out.returncode == 1 and "INVALID" in out.stdout and "Traceback" not in out.stderr


@pytest.fixture
def bundle_copy(tmp_path):
    valid = [b for b in shipped_generators() if (b / "models" / "model.pt").is_file() and not errors(b)]
    if not valid:
        pytest.skip("no valid shipped bundle to copy yet")
    return shutil.copytree(valid[0], tmp_path / valid[0].name)


def _edit_metadata(bundle, change):
    path = bundle / "configs" / "metadata.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def test_version_missing_from_changelog(bundle_copy):
    _edit_metadata(bundle_copy, lambda m: m.update(version="9.9.9"))
    assert any(p.json_path == "$.changelog" and "9.9.9" in p.message for p in errors(bundle_copy))


def test_schema_violation_has_json_path(bundle_copy):
    _edit_metadata(bundle_copy, lambda m: m["medigan_zoo"].update(modality=["XRAY"]))
    assert any(p.json_path == "$.medigan_zoo.modality[0]" for p in errors(bundle_copy))


def test_weights_that_do_not_load_safely(bundle_copy):
    import torch

    torch.save({"model": object()}, bundle_copy / "models" / "model.pt")  # needs pickle: weights_only refuses
    assert not any(p.file == "models/model.pt" for p in errors(bundle_copy))  # static: weights are not loaded
    assert any(p.file == "models/model.pt" and "weights_only" in p.message for p in errors(bundle_copy, run=True))


def test_weights_that_do_not_fit_the_network(bundle_copy):
    import torch

    torch.save({"not_a_layer.weight": torch.zeros(1)}, bundle_copy / "models" / "model.pt")
    found = [p for p in errors(bundle_copy, run=True) if p.file == "models/model.pt"]
    assert found and "do not fit the network" in found[0].message and "not_a_layer.weight" in found[0].message


def test_run_checks_the_weights_ckpt_path_names(bundle_copy):
    """validate --run loads the file ckpt_path names, as generation does, not always models/model.pt."""
    path = bundle_copy / "configs" / "inference.json"
    config = json.loads(path.read_text())
    config["ckpt_path"] = "$@bundle_root + '/models/other.pt'"
    path.write_text(json.dumps(config))
    found = [p for p in errors(bundle_copy, run=True) if p.file == "models/other.pt"]
    assert found and "not found" in found[0].message


def test_missing_files_and_broken_json(bundle_copy):
    (bundle_copy / "LICENSE").unlink()
    (bundle_copy / "configs" / "inference.json").write_text("{")
    found = {(p.file, p.json_path) for p in errors(bundle_copy)}
    assert ("LICENSE", "") in found and ("configs/inference.json", "$") in found


def test_missing_standard_id(bundle_copy):
    path = bundle_copy / "configs" / "inference.json"
    config = json.loads(path.read_text())
    config.pop("seed", None)
    path.write_text(json.dumps(config))
    assert any(p.json_path == "$.seed" for p in errors(bundle_copy))
