"""Re-run the documented evaluation command on bundles/chest_xray_cdcgan and compare with stored figures.

The command (docs/evaluation.md) with a small sample count, so that the test stays under ~20 s:

    medigan-zoo evaluate chest_xray_cdcgan --num_samples 256 --seed 0 \
        --metrics fid,fid_ratio,prdc,realism,memorization --dry_run --json

REFERENCE holds what that command printed on the development VM (2 shared vCPUs, torch 2.13.0+cpu, 1 torch
thread: the command's default), for the weights with sha256 WEIGHTS_SHA256. Repeated runs there gave identical
numbers; with 2 threads only realism_AUC moved (by 0.0012). The tolerances allow for other CPUs / BLAS builds:
FID 1 % relative, FID ratio 0.01, precision/recall/density/coverage 0.02 (5 of 256 samples), realism AUC 0.03
(a CNN trained per run), nearest-neighbour distances 0.1 % relative.

If the bundle's weights are retrained, the test fails and says so: re-run the command and update REFERENCE and
WEIGHTS_SHA256 (the bundle's developers own the weights, the evaluation owner owns these figures).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from conftest import BUNDLES, DATA_DIR, REPO

BUNDLE = BUNDLES / "chest_xray_cdcgan"
COMMAND = ["evaluate", "chest_xray_cdcgan", "--num_samples", "256", "--seed", "0",
           "--metrics", "fid,fid_ratio,prdc,realism,memorization", "--dry_run", "--json"]
WEIGHTS_SHA256 = "903db29f20ab9ba4f644e26afa5a719e0a037d3e775201929880c75cc3506440"
REFERENCE = {
    "FID": 2.22455, "FID_ratio": 0.271881, "precision": 0.902344, "recall": 0.836538, "density": 0.796875,
    "coverage": 0.599359, "realism_AUC": 0.847656, "NN_L2.synthetic_to_train": 2.46944,
    "NN_L2.real_test_to_train": 2.22115, "NN_L2_ratio": 1.11178,
}
TOLERANCE = {  # name -> (relative, absolute)
    "FID": (0.01, 0.0), "FID_ratio": (0.0, 0.01), "precision": (0.0, 0.02), "recall": (0.0, 0.02),
    "density": (0.0, 0.02), "coverage": (0.0, 0.02), "realism_AUC": (0.0, 0.03),
    "NN_L2.synthetic_to_train": (1e-3, 0.0), "NN_L2.real_test_to_train": (1e-3, 0.0), "NN_L2_ratio": (1e-3, 0.0),
}


def test_documented_command_reproduces_the_reference_figures():
    if not (BUNDLE / "models" / "model.pt").is_file():
        pytest.skip(f"bundles/chest_xray_cdcgan is not in the repository ({BUNDLE})")
    if not (DATA_DIR / "pneumoniamnist.npz").is_file():
        pytest.skip(f"the shared medical data folder is absent ({DATA_DIR}); set MEDIGAN_ZOO_DATA to run this test")
    if not (BUNDLES / "medmnist_feature_extractor" / "models" / "model.pt").is_file():
        pytest.skip("bundles/medmnist_feature_extractor has no weights")
    sha = hashlib.sha256((BUNDLE / "models" / "model.pt").read_bytes()).hexdigest()
    assert sha == WEIGHTS_SHA256, ("bundles/chest_xray_cdcgan/models/model.pt changed since the reference figures "
                                   "were measured: re-run the command in this file's docstring and update "
                                   "REFERENCE and WEIGHTS_SHA256")
    before = (BUNDLE / "configs" / "metadata.json").read_bytes()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MEDIGAN_ZOO_DATA=str(DATA_DIR))
    out = subprocess.run([sys.executable, "-m", "medigan_zoo", *COMMAND], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    got = {m["name"]: m["value"] for m in report["metrics"]}
    assert set(got) == set(REFERENCE)
    for name, expected in REFERENCE.items():
        rel, abs_ = TOLERANCE[name]
        assert got[name] == pytest.approx(expected, rel=rel, abs=abs_), name
    fid = report["metrics"][0]
    assert fid["feature_extractor"] == "medmnist_feature_extractor@0.1.0"
    assert fid["normalization"] == "[0,1], gray->RGB, resize 28x28 -> 32x32 bilinear"
    assert fid["reference_split"] == "pneumoniamnist.npz:test" and fid["num_samples"] == 256
    assert not report["written"] and (BUNDLE / "configs" / "metadata.json").read_bytes() == before  # dry run
