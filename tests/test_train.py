"""``medigan-zoo train`` (medigan_zoo.training.run): a shipped recipe trained a few iterations through monai.bundle,
the finished output bundle, resume after a crash giving the same weights bit for bit, and the user errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import BUNDLES, DATA_DIR

from medigan_zoo.core.errors import ZooError
from medigan_zoo.training.run import train_bundle

CHEST = BUNDLES / "chest_xray_cdcgan"
PNEUMONIA = DATA_DIR / "pneumoniamnist.npz"
#: a few tiny iterations: 2 epochs x 2 iterations of 8 images drawn from the first 64 training images
TINY = {"epoch_length": 2, "batch_size": 8, "num_train": 64, "bn_batches": 2, "preview_every": 100}

needs_data = pytest.mark.skipif(not PNEUMONIA.is_file(), reason=f"{PNEUMONIA} not found (../shared/data is absent)")


class CrashAt:
    """An ignite handler that raises at one iteration (a killed run, as far as the checkpoints know)."""

    def __init__(self, iteration: int):
        self.iteration = iteration

    def attach(self, engine):
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED(once=self.iteration), self)

    def __call__(self, engine):
        raise RuntimeError("simulated crash")


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@needs_data
def test_a_crashed_run_resumed_equals_the_uninterrupted_run_bit_for_bit(tmp_path):
    common = dict(epochs=2, overrides=TINY, evaluate=False, progress=False, seed=3, trusted=[tmp_path])
    whole = train_bundle(CHEST, PNEUMONIA, tmp_path / "whole", finish=False, **common)
    with pytest.raises(RuntimeError) as crash:
        train_bundle(CHEST, PNEUMONIA, tmp_path / "crashed", extra_handlers=[CrashAt(3)], **common)
    assert "simulated crash" in repr(crash.value.__cause__ or crash.value)
    assert not (tmp_path / "crashed" / "training_output" / "model.pt").exists()
    with pytest.raises(ZooError, match="pass --resume"):
        train_bundle(CHEST, PNEUMONIA, tmp_path / "crashed", **common)
    resumed = train_bundle(CHEST, PNEUMONIA, tmp_path / "crashed", resume=True, **common)
    assert resumed.resumed_from == 2 and resumed.iterations == whole.iterations == 4
    a, b = _weights(whole.bundle / "training_output" / "model.pt"), _weights(resumed.bundle / "models" / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.losses == whole.losses
    # the shipped bundle is untouched; the copies carry a bumped version, a changelog entry and a training log
    shipped = json.loads((CHEST / "configs" / "metadata.json").read_text())
    meta = json.loads((resumed.bundle / "configs" / "metadata.json").read_text())
    assert meta["version"] == resumed.version != shipped["version"]
    assert "medigan-zoo train" in meta["changelog"][meta["version"]]
    log = resumed.log.read_text()
    assert "resumed at iteration 2" in log and "Iterations: 4" in log and PNEUMONIA.name in log
    assert (resumed.bundle / "models" / "model.ts").is_file() and (resumed.bundle / "docs" / "samples.png").is_file()


@needs_data
def test_user_errors_are_one_line(tmp_path):
    with pytest.raises(ZooError, match="finetune needs --output"):
        train_bundle(CHEST, PNEUMONIA, None, finetune=True)
    with pytest.raises(ZooError, match="outside"):
        train_bundle(CHEST, PNEUMONIA, tmp_path / "x", overrides={"g_learning_rate": 1.0})
    with pytest.raises(ZooError, match="are 28x28x3 but chest_xray_cdcgan makes 28x28 .* with that many channels"):
        train_bundle(CHEST, DATA_DIR / "retinamnist.npz", tmp_path / "y")
    with pytest.raises(ZooError, match="holds no interrupted training"):
        train_bundle(CHEST, PNEUMONIA, tmp_path / "z", resume=True)
    with pytest.raises(ZooError, match="expected a data set folder"):
        train_bundle(CHEST, tmp_path, tmp_path / "w")
    assert not any((tmp_path / n).exists() for n in ("x", "y", "z", "w"))


def _monai_bundle_run_training(bundle: Path, output_dir: Path, overrides: dict, epochs: int,
                               timeout: int = 600) -> None:
    """The card's command: ``python -m monai.bundle run training`` on the shipped bundle."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    configs = bundle / "configs"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(configs / "train.json"),
           "--meta_file", str(configs / "metadata.json"), "--logging_file", str(configs / "logging.conf"),
           "--bundle_root", str(bundle), "--data_path", str(PNEUMONIA), "--output_dir", str(output_dir),
           "--max_epochs", str(epochs)]
    for key, value in overrides.items():
        cmd += [f"--{key}", str(value)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]


@needs_data
def test_train_is_monai_bundle_run_training_weight_for_weight(tmp_path):
    """The same recipe, data, seed and overrides through `medigan-zoo train` and through the card's
    `python -m monai.bundle run training` give identical weights (the shelf and the pipeline are one code path)."""
    ours = train_bundle(CHEST, PNEUMONIA, tmp_path / "ours", epochs=2, overrides=TINY, evaluate=False, progress=False,
                        trusted=[tmp_path], finish=False)
    _monai_bundle_run_training(CHEST, tmp_path / "monai", TINY, epochs=2)
    a, b = _weights(ours.bundle / "training_output" / "model.pt"), _weights(tmp_path / "monai" / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@needs_data
def test_the_first_epoch_of_the_shipped_recipe_equals_monai_bundle_run_training(tmp_path):
    """chest_xray_cdcgan's recipe unchanged for its first epoch (50 iterations of 64 images); see
    docs/contributing_models.md ("The shelf and the pipeline are one code path")."""
    ours = train_bundle(CHEST, PNEUMONIA, tmp_path / "ours", epochs=1, evaluate=False, progress=False,
                        trusted=[tmp_path], finish=False)
    _monai_bundle_run_training(CHEST, tmp_path / "monai", {}, epochs=1, timeout=3600)
    a, b = _weights(ours.bundle / "training_output" / "model.pt"), _weights(tmp_path / "monai" / "model.pt")
    assert ours.iterations == 50 and all(torch.equal(a[k], b[k]) for k in a)
