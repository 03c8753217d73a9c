"""Data-parallel training (issue #15): ``torchrun --nproc_per_node 2 -m medigan_zoo train`` on gloo equals one
process with the same global batch, and only rank 0 writes.

The end-to-end test trains chest_xray_cdcgan for 4 iterations of a global batch of 16 (8 per rank) on a small
synthetic data set written by the test (random pixels, labelled synthetic in its file name), with the recipe's one
random augmentation (RandFlipd) turned off: each rank flips only its own images, from its own transform stream, so
with flips on the two runs differ by design (docs/contributing_models.md, "Beyond one machine").
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from conftest import REPO

from medigan_zoo.core.errors import ZooError
from medigan_zoo.training import ddp

ITERATIONS, GLOBAL_BATCH = 4, 16
OVERRIDES = {"batch_size": GLOBAL_BATCH, "epoch_length": ITERATIONS, "bn_batches": 2,
             "train_transforms#transforms#1#prob": 0.0}
#: measured on two hosts (docs/contributing_models.md): after 4 iterations the generator differs by 8.6e-6 on one and
#: 9.6e-4 (relative L2 2.2e-4) on the other, the discriminator by 1.7e-4 / 1.0e-3 (relative 2.5e-4), the losses by
#: 1e-4 / 2.6e-3. Float summation order differs between one and two processes; Adam (betas 0, 0.9) divides by each
#: weight's own gradient magnitude, so rounding noise in near-zero gradients moves a few weights by up to a few
#: learning rates, by how much depends on the CPU's kernels. The bounds sit between those figures and the same run
#: without gradient averaging (6.8e-3 generator, 1.1e-2 discriminator, losses up to 0.46) or one process on half
#: the batch (relative 2e-2): the relative L2 difference is the robust check, the max-abs bounds catch a few
#: weights gone astray.
GEN_MAX, DISC_MAX, REL = 3e-3, 5e-3, 2e-3
LOSS_TOL = 1e-2


# ------------------------------------------------------------------------------------------------ unit tests
def test_single_process_is_not_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert ddp.from_environment() is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert ddp.from_environment() is None and ddp.is_main() and ddp.active_world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ZooError, match="not a whole number"):
        ddp.from_environment()
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ZooError, match="RANK, MASTER_ADDR, MASTER_PORT unset: start data-parallel training with "
                                       "torchrun"):
        ddp.from_environment()


def test_the_batch_must_split_evenly():
    assert ddp.per_rank_batch(64, 4) == 16 and ddp.per_rank_batch(2, 2) == 1
    with pytest.raises(ZooError, match="batch_size 18 does not split evenly over 4 processes; pass --batch_size a "
                                       "multiple of 4"):
        ddp.per_rank_batch(18, 4)
    with pytest.raises(ZooError, match="batch_size 2 does not split evenly over 4"):
        ddp.per_rank_batch(2, 4)


def test_a_single_process_draws_as_before():
    torch.manual_seed(3)
    ours = ddp.draw(5, lambda m: torch.randn(m, 7))
    torch.manual_seed(3)
    assert torch.equal(ours, torch.randn(5, 7))


def test_sharded_sampler_splits_each_global_batch():
    """Per-rank batches of B/N from ShardedSampler over the same seeded sampler are, together, the global batches
    of B that one process draws, and the RNG ends where the single process's does."""
    from torch.utils.data import BatchSampler, RandomSampler

    data, world, batch = range(50), 4, 8
    torch.manual_seed(0)
    single = list(BatchSampler(RandomSampler(data, replacement=True, num_samples=40), batch, drop_last=True))
    after_single = torch.rand(1)
    shards = []
    for r in range(world):
        torch.manual_seed(0)
        sampler = ddp.ShardedSampler(RandomSampler(data, replacement=True, num_samples=40), world, r)
        assert isinstance(sampler, torch.utils.data.distributed.DistributedSampler) and len(sampler) == 10
        shards.append(list(BatchSampler(sampler, batch // world, drop_last=True)))
        assert torch.equal(torch.rand(1), after_single)
    assert [len(s) for s in shards] == [len(single)] * world
    for b, global_batch in enumerate(single):
        ranks = [shards[r][b] for r in range(world)]
        assert sorted(sum(ranks, [])) == sorted(global_batch)
        assert all(ranks[r] == global_batch[r::world] for r in range(world))  # the rows draw() keeps


# ------------------------------------------------------------------------------------------ torchrun, 2 ranks
def _synthetic_npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 64), ("val", 8), ("test", 8)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 1))
    np.savez(path, **arrays)
    return path


def _losses(run_log: Path) -> list:
    """Per-iteration losses from the checkpoint lines of training_output/run_log.txt (checkpoint_every 1)."""
    rows = {}
    for line in run_log.read_text().splitlines():
        match = re.search(r"checkpoint at iteration (\d+) .*; (.*)$", line)
        if match:
            values = match.group(2).split()
            rows[int(match.group(1))] = {k: float(v) for k, v in zip(values[::2], values[1::2])}
    return [rows[i] for i in sorted(rows)]


def _max_abs(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def _rel(a: dict, b: dict) -> float:
    keys = [k for k in a if a[k].is_floating_point()]
    diff = torch.cat([(a[k].double() - b[k].double()).flatten() for k in keys])
    return float(diff.norm() / torch.cat([a[k].double().flatten() for k in keys]).norm())


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")
def test_two_gloo_processes_equal_one_process_of_the_same_global_batch(tmp_path, one_thread):
    from medigan_zoo.core.paths import builtin_bundles_root
    from medigan_zoo.training.run import train_bundle

    bundle = builtin_bundles_root() / "chest_xray_cdcgan"
    data = _synthetic_npz(tmp_path / "synthetic_random_28x28.npz")
    out, logs = tmp_path / "ddp", tmp_path / "torchrun_logs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--log-dir", str(logs), "--redirects", "3", "-m", "medigan_zoo", "train", "chest_xray_cdcgan",
           "--data", str(data), "--output", str(out), "--epochs", "1", "--checkpoint_every", "1",
           "--evaluate", "False", "--progress", "False", "--device", "cpu",
           *[a for k, v in OVERRIDES.items() for a in (f"--{k}", str(v))]]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    outputs = {p.parent.name + "/" + p.name: p.read_text() for p in logs.rglob("*.log")}
    assert proc.returncode == 0, proc.stderr[-3000:] + "".join(v[-2000:] for v in outputs.values())

    # only rank 0 speaks and writes: rank 1 printed nothing, logged nothing; one run-log start line
    assert outputs["0/stdout.log"].count(f"trained {out} ") == 1, outputs["0/stdout.log"]
    assert outputs["1/stdout.log"] == "", outputs["1/stdout.log"]
    assert " - INFO - " not in outputs["1/stderr.log"], outputs["1/stderr.log"][-2000:]
    assert (out / "training_output" / "run_log.txt").read_text().count("start at iteration 0") == 1
    for name in ("models/model.pt", "models/model.ts", "docs/samples.png", "docs/training_log.txt"):
        assert (out / name).is_file(), name

    single = train_bundle(bundle, data, tmp_path / "single", epochs=1, overrides=OVERRIDES, checkpoint_every=1,
                          progress=False, device="cpu", finish=False)  # its weights: training_output/model.pt
    assert single.iterations == ITERATIONS

    # the loss curves (global-batch means on rank 0) match
    curve, reference = _losses(out / "training_output" / "run_log.txt"), _losses(single.checkpoint.parent /
                                                                                 "run_log.txt")
    assert len(curve) == len(reference) >= ITERATIONS
    for ours, theirs in zip(curve, reference):
        assert ours.keys() == theirs.keys() and all(abs(ours[k] - theirs[k]) <= LOSS_TOL for k in ours), (ours,
                                                                                                           theirs)
    # the weights match: shipped EMA generator, and the trained networks of the checkpoint
    shipped = torch.load(out / "models" / "model.pt"), torch.load(single.checkpoint.parent / "model.pt")
    assert _max_abs(*shipped) <= GEN_MAX and _rel(*shipped) <= REL
    ours_ckpt = torch.load(out / "training_output" / "checkpoint_latest.pt", weights_only=False)["objects"]
    theirs_ckpt = torch.load(single.checkpoint, weights_only=False)["objects"]
    assert ours_ckpt.keys() == theirs_ckpt.keys()
    for name, bound in (("generator", GEN_MAX), ("ema_generator", GEN_MAX), ("discriminator", DISC_MAX)):
        assert _max_abs(ours_ckpt[name], theirs_ckpt[name]) <= bound, name
        assert _rel(ours_ckpt[name], theirs_ckpt[name]) <= REL, name
