"""TimedCheckpoint keeps what lives outside the networks, optimizers and global RNGs: the parameter schedulers of
the handlers (EMAHandler's momentum warm-up, created when it attaches) and the random states of the data set's
MONAI random transforms. Without them a resumed run restarts the warm-up and augments differently."""
from __future__ import annotations

import logging

import torch
from ignite.engine import Engine
from ignite.handlers import EMAHandler
from monai.data import Dataset
from monai.transforms import Compose, RandFlipd, RandRotate90d

from medigan_zoo.training.checkpoint import TimedCheckpoint, TransformRNG, handler_schedulers


def _setup(output_dir, seed: int):
    torch.manual_seed(seed)
    net = torch.nn.Linear(2, 2)
    ema = EMAHandler(net, momentum=0.01, momentum_warmup=0.1, warmup_iters=100)
    transforms = Compose([RandFlipd("image", prob=0.5), RandRotate90d("image", prob=0.5)]).set_random_state(seed)
    dataset = Dataset([{"image": torch.rand(1, 4, 4)} for _ in range(4)], transform=transforms)
    engine = Engine(lambda e, b: dataset[e.state.iteration % 4])
    ema.attach(engine)
    checkpoint = TimedCheckpoint({"net": net}, output_dir, interval_s=1e9, handlers=[ema], dataset=dataset)
    checkpoint.attach(engine)
    return engine, checkpoint, ema, dataset


def test_resume_restores_handler_schedulers_and_transform_states(tmp_path):
    engine, _, ema, dataset = _setup(tmp_path, seed=0)
    engine.run([0] * 3, max_epochs=1)  # 3 iterations: 3 EMA warm-up steps, 3 draws of each random transform
    warmup_index = ema.momentum_scheduler.event_index
    states = TransformRNG(dataset).state_dict()["states"]
    assert warmup_index == 3

    fresh, checkpoint, fresh_ema, fresh_dataset = _setup(tmp_path, seed=1)
    fresh.state.epoch_length = 3
    assert checkpoint.resume(tmp_path / "checkpoint_latest.pt", fresh) == 3
    assert list(handler_schedulers([fresh_ema])) == ["handler0.momentum_scheduler"]
    assert fresh_ema.momentum_scheduler.event_index == warmup_index, "the EMA warm-up must continue, not restart"
    for restored, saved in zip(TransformRNG(fresh_dataset).state_dict()["states"], states):
        assert restored[0] == saved[0] and (restored[1] == saved[1]).all() and restored[2:] == saved[2:]


def test_an_older_checkpoint_without_them_resumes_with_a_warning(tmp_path, caplog):
    engine, _, _, _ = _setup(tmp_path, seed=0)
    engine.run([0] * 2, max_epochs=1)
    state = torch.load(tmp_path / "checkpoint_latest.pt", weights_only=False)
    del state["schedulers"], state["transform_rng"]
    torch.save(state, tmp_path / "old.pt")
    fresh, checkpoint, _, _ = _setup(tmp_path / "b", seed=1)
    with caplog.at_level(logging.WARNING, logger="medigan_zoo.training.checkpoint"):
        assert checkpoint.resume(tmp_path / "old.pt", fresh) == 2
    assert "momentum_scheduler" in caplog.text and "random-transform states" in caplog.text


def test_max_iterations_ends_the_run_at_that_iteration_over_resumes(tmp_path):
    engine, checkpoint, _, _ = _setup(tmp_path, seed=0)
    checkpoint.max_iterations = 5
    engine.run([0] * 4, max_epochs=3)  # 12 planned; stops after 5 with a checkpoint
    assert engine.state.iteration == 5
    assert torch.load(tmp_path / "checkpoint_latest.pt", weights_only=False)["iteration"] == 5
    assert "max_iterations=5 reached" in (tmp_path / "run_log.txt").read_text()

    fresh, resumed, _, _ = _setup(tmp_path, seed=1)
    resumed.max_iterations = 7  # a resumed run counts the iterations before it
    fresh.state.epoch_length = 4
    resumed.resume(tmp_path / "checkpoint_latest.pt", fresh)
    fresh.run([0] * 4, max_epochs=3)
    assert fresh.state.iteration == 7
