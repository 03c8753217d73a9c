"""The medigan-zoo CLI: commands, one-line user errors with exit 2, no torch/monai on the search path."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO
from zoo_fixtures import metadata, write_metadata_bundle


def run_cli(*args, env=None, cwd=None):
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "medigan_zoo", *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd or REPO, timeout=120)


@pytest.fixture
def toy_bundles(tmp_path):
    write_metadata_bundle(tmp_path, "breast_mg_toygan", metadata())
    return tmp_path


def test_list_and_info_json(toy_bundles):
    out = run_cli("list", "--json", "--bundle_dirs", toy_bundles, "--include_builtin", "False")
    assert out.returncode == 0, out.stderr
    assert [m["id"] for m in json.loads(out.stdout)] == ["breast_mg_toygan"]
    info = run_cli("info", "901", "--bundle_dirs", toy_bundles)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["id"] == "breast_mg_toygan"


def test_unknown_model_is_one_line_exit_2(toy_bundles):
    out = run_cli("info", "breast_mg_toygn", "--bundle_dirs", toy_bundles)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "breast_mg_toygan" in lines[0]


def test_unknown_metric_lists_present_metrics(toy_bundles):
    out = run_cli("rank", "--metric", "SSIMX", "--bundle_dirs", toy_bundles, "--include_builtin", "False")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "FID" in out.stderr


def test_malformed_catalog_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "cat.json"
    bad.write_text("{not json")
    out = run_cli("list", "--catalogs", bad)
    assert out.returncode == 2 and "cat.json" in out.stderr and "Traceback" not in out.stderr


def test_python_m_and_console_script_agree(toy_bundles):
    out = run_cli("search", "mammography", "modality=MG", "--bundle_dirs", toy_bundles, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["model_id"] == "breast_mg_toygan"


def test_unknown_filter_field_is_user_error(toy_bundles):
    out = run_cli("search", "mammography", "colour=red", "--bundle_dirs", toy_bundles)
    assert out.returncode == 2 and "Traceback" not in out.stderr
