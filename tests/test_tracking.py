"""``--tracking mlflow``: a real (tiny) training of a shipped recipe through ``train_bundle`` with MONAI's
``MLFlowHandler``, checked through MLflow's own client: parameters (the recipe's hyperparameters with this run's
values), per-iteration losses, sample grids and the bundle as artifacts, final metrics, status. The default store
lies under the output folder (never the working directory); a failing training ends its run FAILED; the slow test
does the same against a real ``mlflow server`` on 127.0.0.1 (a random port, a temporary backend store) through
``MLFLOW_TRACKING_URI`` and the CLI."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import BUNDLES, DATA_DIR, require

from medigan_zoo.training.tracking import check_tracking, root_cause, run_params, scalar_outputs, train_tracked

BUNDLE = BUNDLES / "chest_xray_cdcgan"
#: a tiny run: 2 epochs of 2 iterations of 8 images, a grid every epoch
TINY = {"epoch_length": 2, "batch_size": 8, "preview_every": 1, "bn_batches": 1, "num_train": 64}
EPOCHS = 2


def _data() -> Path:
    return require(DATA_DIR / "pneumoniamnist.npz", "PneumoniaMNIST (../shared/data)")


def _artifacts(client, run_id: str, path: str = "") -> list:
    out = []
    for item in client.list_artifacts(run_id, path or None):
        out.extend(_artifacts(client, run_id, item.path) if item.is_dir else [item.path])
    return out


def _check_run(client, run_id: str, data: Path) -> None:
    """What every tracked tiny training logs (module docstring)."""
    from medigan_zoo.training.hyperparameters import read_hyperparameters

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    for h in read_hyperparameters(BUNDLE):
        expected = {**TINY, "max_epochs": EPOCHS}.get(h.name, h.default)
        assert params[h.name] == str(expected), h.name
    assert params["num_train"] == "64" and params["seed"] == "0" and params["data"] == str(data)
    assert run.data.tags["bundle"] == BUNDLE.name and run.data.tags["data"] == str(data)
    steps = EPOCHS * TINY["epoch_length"]
    for loss in ("g_loss", "d_loss"):
        history = client.get_metric_history(run_id, loss)
        assert [m.step for m in history] == list(range(1, steps + 1)), loss
    assert run.data.metrics["iterations"] == steps and run.data.metrics["FID"] > 0
    files = _artifacts(client, run_id)
    assert [f for f in files if f.startswith("samples/")] == [f"samples/samples_epoch_{e:03d}.png"
                                                               for e in range(1, EPOCHS + 1)]
    assert {"bundle/configs/metadata.json", "bundle/configs/train.json", "bundle/models/model.pt",
            "bundle/models/model.ts", "bundle/docs/samples.png", "bundle/docs/training_log.txt",
            "bundle/LICENSE"} <= set(files)
    assert not any("training_output" in f or f.endswith("mlruns.db") for f in files)


def _train(tmp: Path, data: Path, **kwargs):
    return train_tracked(BUNDLE, data, tmp / "trained", epochs=EPOCHS, overrides=dict(TINY), progress=False,
                         evaluate=True, evaluate_samples=64, evaluate_metrics="fid", **kwargs)


def test_helpers():
    assert check_tracking(None) is None and check_tracking("MLflow") == "mlflow"
    with pytest.raises(Exception, match="--tracking 'wandb' is not a tracker; use one of: mlflow"):
        check_tracking("wandb")
    assert scalar_outputs([{"g_loss": 1.5, "image": [1, 2], "bad": float("nan"), "flag": True}]) == {"g_loss": 1.5}
    assert run_params({"lr": 1e-4, "betas": [0.0, 0.9]}, {"lr": 2e-4}) == {"lr": "0.0002", "betas": "[0.0, 0.9]"}


def test_tracked_training_default_store_under_the_output(tmp_path, monkeypatch):
    import mlflow

    data = _data()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result, run_id = _train(tmp_path, data)
    assert list(cwd.iterdir()) == []  # nothing in the working directory
    store = result.bundle / "training_output" / "mlruns.db"
    assert store.is_file() and (result.bundle / "training_output" / "mlruns").is_dir()
    client = mlflow.MlflowClient(f"sqlite:///{store}")
    _check_run(client, run_id, data)
    assert client.get_run(run_id).data.metrics["FID"] == pytest.approx(result.metrics["FID"])


@pytest.mark.slow  # a second tiny training; the tracking path itself is covered by the test above
def test_failing_training_ends_its_run_failed(tmp_path, monkeypatch):
    import mlflow
    from ignite.engine import Events

    data = _data()
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    class Crash:
        def attach(self, engine):
            engine.add_event_handler(Events.ITERATION_COMPLETED(once=3), self.crash)

        def crash(self, engine):
            raise RuntimeError("disk full (test)")

    with pytest.raises(RuntimeError) as raised:
        _train(tmp_path, data, extra_handlers=[Crash()])
    assert str(root_cause(raised.value)) == "disk full (test)"  # monai.bundle wraps what the trainer raised
    client = mlflow.MlflowClient(uri)
    run, = client.search_runs([client.get_experiment_by_name(BUNDLE.name).experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["failure"] == "RuntimeError: disk full (test)"
    # the crash handler runs before the tracker's (registered first): iterations 1 and 2 were logged
    assert [m.step for m in client.get_metric_history(run.info.run_id, "g_loss")] == [1, 2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1 at a random port with a temporary SQLite backend and artifact root;
    stopped at the end."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen([str(mlflow_cli), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{root / 'backend.db'}",
                             "--artifacts-destination", str(root / "artifacts")],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 600  # slow to start on a loaded machine (its database migrations)
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
                time.sleep(1)
        yield url, root
    finally:  # the server's own process group (it runs uvicorn as a child): stop both
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.mark.slow
def test_tracked_training_against_a_real_mlflow_server(tmp_path, monkeypatch, mlflow_server, capsys):
    import mlflow

    from medigan_zoo.cli import main

    url, root = mlflow_server
    data = _data()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    args = ["train", str(BUNDLE), "--data", str(data), "--output", str(tmp_path / "trained"), "--epochs", str(EPOCHS),
            "--evaluate_samples", "64", "--evaluate_metrics", "fid", "--progress", "False", "--tracking", "mlflow"]
    for key, value in TINY.items():
        args += [f"--{key}", str(value)]
    main(args)
    out = capsys.readouterr().out
    run_id = out.split("mlflow run: ", 1)[1].split()[0]
    client = mlflow.MlflowClient(url)
    _check_run(client, run_id, data)
    assert client.get_run(run_id).info.experiment_id == client.get_experiment_by_name(BUNDLE.name).experiment_id
    assert not (tmp_path / "trained" / "training_output" / "mlruns.db").exists()  # all went to the server
    stored = [p for p in (root / "artifacts").rglob("*") if p.is_file()]
    assert any(p.name == "model.ts" for p in stored) and any(p.name == "samples_epoch_002.png" for p in stored)
    shutil.rmtree(tmp_path / "trained")
    assert os.environ["MLFLOW_TRACKING_URI"] == url
