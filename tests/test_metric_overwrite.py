"""``evaluate`` does not silently replace better-founded metrics (issue #10, section 2): a stored metric measured with
more samples than the new run is kept, nothing is written, and one line names the metric, both sample counts and
``--force``; with ``--force`` the new values are written. Tested on a copy of bundles/chest_xray_cdcgan in tmp.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLES, DATA_DIR, REPO

from medigan_zoo.core.errors import MetricOverwriteError
from medigan_zoo.evaluation.report import downgrades, metric_entry, write_results

SOURCE = BUNDLES / "chest_xray_cdcgan"


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    if not (SOURCE / "configs" / "metadata.json").is_file():
        pytest.skip(f"bundles/chest_xray_cdcgan is not in the repository ({SOURCE})")
    return Path(shutil.copytree(SOURCE, tmp_path / "bundles" / "chest_xray_cdcgan"))


def files(bundle: Path):
    return {p: p.read_bytes() for p in (bundle / "configs" / "metadata.json", bundle / "docs" / "README.md")}


def stored(bundle: Path):
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    return {m["name"]: m for m in meta["medigan_zoo"]["metrics"]}


def test_downgrades_compare_sample_counts():
    old = [{"name": "FID", "value": 2.0, "num_samples": 2000}, {"name": "SSIM", "value": 0.5},
           {"name": "recall", "value": 0.8, "num_samples": 100}]
    new = [{"name": "FID", "value": 3.0, "num_samples": 16}, {"name": "SSIM", "value": 0.6, "num_samples": 1},
           {"name": "recall", "value": 0.7, "num_samples": 100}, {"name": "density", "value": 1.0, "num_samples": 1}]
    assert downgrades(old, new) == [("FID", 2000, 16)]  # unknown stored count, equal counts, new names: allowed
    assert downgrades(old, [{"name": "FID", "value": 3.0}]) == []  # no new count: nothing to compare


def test_write_refuses_fewer_samples_unless_forced(bundle_copy):
    before = files(bundle_copy)
    assert stored(bundle_copy)["FID"]["num_samples"] == 2000
    entries = [metric_entry("FID", 9.5, "lower", num_samples=16), metric_entry("precision", 0.3, "higher",
                                                                              num_samples=16)]
    with pytest.raises(MetricOverwriteError) as err:
        write_results(bundle_copy, entries)
    message = str(err.value)
    assert "\n" not in message
    assert "FID (stored 2000 samples, this run 16)" in message and "precision (stored 2000" in message
    assert "--force" in message and str(bundle_copy / "configs" / "metadata.json") in message
    assert files(bundle_copy) == before  # nothing written, card included
    # a non-finite value is never written, so it replaces nothing and is no conflict
    write_results(bundle_copy, [metric_entry("FID", math.nan, "lower", num_samples=16)])
    assert stored(bundle_copy)["FID"]["num_samples"] == 2000
    write_results(bundle_copy, entries, force=True)
    after = stored(bundle_copy)
    assert after["FID"]["value"] == 9.5 and after["FID"]["num_samples"] == 16
    assert after["recall"]["num_samples"] == 2000  # others kept
    assert "| FID | 9.5 |" in (bundle_copy / "docs" / "README.md").read_text()


def test_cli_refuses_then_force_writes(bundle_copy):
    if not (DATA_DIR / "pneumoniamnist.npz").is_file():
        pytest.skip(f"the shared medical data folder is absent ({DATA_DIR}); set MEDIGAN_ZOO_DATA to run this test")
    if not (BUNDLES / "medmnist_feature_extractor" / "models" / "model.pt").is_file():
        pytest.skip("bundles/medmnist_feature_extractor has no weights")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MEDIGAN_ZOO_DATA=str(DATA_DIR))
    base = [sys.executable, "-m", "medigan_zoo", "--bundle_dirs", str(bundle_copy.parent), "--include_builtin",
            "False", "evaluate", "chest_xray_cdcgan", "--metrics", "fid", "--num_samples", "16"]
    before = files(bundle_copy)
    out = subprocess.run(base, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert lines[0].startswith("medigan-zoo: error: ") and "FID (stored 2000 samples, this run 16)" in lines[0]
    assert "--force" in lines[0]
    assert "| FID |" in out.stdout and "not written: no file was changed" in out.stdout  # the measurement is shown
    assert files(bundle_copy) == before
    out = subprocess.run(base + ["--force"], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    fid = stored(bundle_copy)["FID"]
    assert fid["num_samples"] == 16
    assert fid["command"] == "medigan-zoo evaluate chest_xray_cdcgan --metrics fid --num_samples 16 --seed 0"
    assert stored(bundle_copy)["precision"]["num_samples"] == 2000
