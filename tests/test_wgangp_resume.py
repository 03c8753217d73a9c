"""The ``wgangp_train`` recipe (breast_ultrasound_wgangp, adrenal_ct_3dgan, adrenal_ct_3dgan64) keeps its full state
in ``TimedCheckpoint`` and continues a stopped run through ``monai.bundle`` with ``--resume_from``: a run stopped
after one epoch and resumed writes the same model.pt, bit for bit, as the same run done in one go (2D, and the 3D
adrenal recipe, whose override of the `training` list must keep the resume step)."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLES, DATA_DIR, REPO

#: bundle -> its training data (2D, and 3D: the adrenal recipes override the `training` list)
RECIPES = {"breast_ultrasound_wgangp": "breastmnist.npz", "adrenal_ct_3dgan": "adrenalmnist3d.npz"}
#: a few tiny iterations: epochs of 2 generator iterations, 2 critic updates each, on the first 32 training images
TINY = ["--epoch_length", "2", "--batch_size", "4", "--n_critic", "2", "--num_train", "32", "--num_threads", "1"]


def _train(name: str, output_dir: Path, max_epochs: int, *extra: str) -> None:
    bundle = BUNDLES / name
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training",
           "--config_file", str(bundle / "configs" / "train.json"),
           "--meta_file", str(bundle / "configs" / "metadata.json"), "--bundle_root", str(bundle),
           "--data_path", str(DATA_DIR / RECIPES[name]), "--output_dir", str(output_dir),
           "--max_epochs", str(max_epochs), *TINY, *extra]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_stopped_wgangp_run_resumed_writes_the_uninterrupted_weights(tmp_path, name):
    if not (DATA_DIR / RECIPES[name]).is_file():
        pytest.skip(f"{DATA_DIR / RECIPES[name]} not found (../shared/data is absent)")
    _train(name, tmp_path / "straight", 2)
    _train(name, tmp_path / "stopped", 1)
    assert (tmp_path / "stopped" / "checkpoint_latest.pt").is_file()
    _train(name, tmp_path / "stopped", 2, "--resume_from", str(tmp_path / "stopped" / "checkpoint_latest.pt"))
    log = (tmp_path / "stopped" / "run_log.txt").read_text()
    assert "resumed from" in log and "iteration 4" in log, log
    assert _sha(tmp_path / "stopped" / "model.pt") == _sha(tmp_path / "straight" / "model.pt")
