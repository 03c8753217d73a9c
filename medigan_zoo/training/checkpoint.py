"""Time-based full-state checkpoints for long CPU trainings that may be killed, and their resume.

:class:`TimedCheckpoint` is a bundle handler for an ignite engine (MONAI's ``GanTrainer``): every
``interval_s`` seconds of wall time (checked after each iteration) and when the run completes it writes
``output_dir/checkpoint_latest.pt`` atomically (temporary file + rename) with the state dicts of
``objects`` (generator, discriminator, EMA generator, optimizers, ...), the parameter schedulers of its
``handlers`` (EMA momentum warm-up), the random states of its ``dataset``'s random transforms, the engine's
iteration and epoch, the torch / numpy / Python RNG states and the cumulative wall and CPU time of the run over
all resumes. At each save it also writes a preview grid (``preview``: a callable taking the engine, e.g.
:class:`medigan_zoo.training.gan.SampleGridSaver`) and appends one line to ``output_dir/run_log.txt``.

:meth:`TimedCheckpoint.resume` loads such a file into the same objects and sets the engine's iteration and
epoch, so ``trainer.run()`` continues where the checkpoint was written instead of restarting.
"""
from __future__ import annotations

import logging
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint_latest.pt"
RUN_LOG_NAME = "run_log.txt"


def rng_states() -> Dict[str, Any]:
    """The torch (CPU and, when present, CUDA), numpy and Python RNG states."""
    states: Dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                              "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def handler_schedulers(handlers: Sequence[Any]) -> Dict[str, Any]:
    """``"handler<i>.<attribute>"`` -> each ignite parameter scheduler the ``handlers`` hold, e.g. ``EMAHandler``'s
    momentum warm-up. Such a scheduler exists only once its handler is attached to the engine and counts its own
    calls, so a resumed run must restore it or the warm-up starts again."""
    from ignite.handlers.param_scheduler import BaseParamScheduler

    found: Dict[str, Any] = {}
    for index, handler in enumerate(handlers):
        for attribute, value in sorted(vars(handler).items()) if hasattr(handler, "__dict__") else []:
            if isinstance(value, BaseParamScheduler):
                found[f"handler{index}.{attribute}"] = value
    return found


def _random_transforms(dataset: Any) -> List[Any]:
    """MONAI random transforms (``.R`` RandomState) of a dataset's transform tree, in a fixed order."""
    found: List[Any] = []
    seen: set = set()

    def walk(node: Any, depth: int = 0) -> None:
        if node is None or id(node) in seen or depth > 6:
            return
        seen.add(id(node))
        if isinstance(getattr(node, "R", None), np.random.RandomState):
            found.append(node)
        for child in getattr(node, "transforms", None) or []:
            walk(child, depth + 1)
        for value in vars(node).values() if hasattr(node, "__dict__") else []:
            if hasattr(value, "R") or hasattr(value, "transforms"):
                walk(value, depth + 1)

    walk(getattr(dataset, "transform", None))
    return found


class TransformRNG:
    """The random states of a data set's random transforms as one checkpointable object (their draws are not in
    the global RNGs, so an exact resume must restore them too)."""

    def __init__(self, dataset: Any):
        self.transforms = _random_transforms(dataset)

    def state_dict(self) -> Dict[str, Any]:
        return {"states": [t.R.get_state() for t in self.transforms]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        states = list(state["states"])
        if len(states) != len(self.transforms):
            raise ValueError(f"checkpoint holds {len(states)} transform random states, the recipe has "
                             f"{len(self.transforms)}")
        for transform, saved in zip(self.transforms, states):
            transform.R.set_state(saved)


def _is_scalar(value: Any) -> bool:
    """A float, int or one-element tensor (a loss), not a batch of images (``SupervisedTrainer``'s output has both)."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class TimedCheckpoint:
    """Save the full training state every ``interval_s`` seconds and at the end; resume from it.

    Args:
        objects: name -> object with ``state_dict`` / ``load_state_dict`` (modules, optimizers).
        output_dir: folder of ``checkpoint_latest.pt``, ``run_log.txt`` and the preview grids.
        interval_s: seconds of wall time between checkpoints.
        preview: optional callable ``preview(engine)`` run at every save (writes a sample grid).
        max_run_s: when > 0, after this many seconds of wall time of this process's run, save and end the run
            gracefully (``engine.terminate()``), so a session with a hard stop still finishes with a checkpoint
            and the recipe's final steps; a later ``resume`` continues to ``max_epochs``. 0: no limit.
        max_iterations: when > 0, save and end the run the same way once the training (over all resumes) has
            done this many iterations: the speed-independent stop that reproduces a run ``max_run_s`` ended (its
            run log names the iteration). 0: no limit.
        every_n_iterations: when > 0, also save after every this many iterations (``float('inf')`` as
            ``interval_s`` then saves by iteration count only).
        write: False for the ranks other than 0 of a data-parallel run: they only :meth:`resume` (no run-log
            lines); attach it on rank 0 only.
        handlers: training handlers whose parameter schedulers are saved and restored too
            (:func:`handler_schedulers`; e.g. the recipe's ``EMAHandler``, whose momentum warm-up is created when
            it attaches).
        dataset: the training data set, whose random transforms' states (:class:`TransformRNG`, not in the global
            RNGs) are saved and restored too, so a resumed run augments as the uninterrupted one would.
    """

    def __init__(self, objects: Mapping[str, Any], output_dir: Union[str, Path], interval_s: float = 300.0,
                 preview: Optional[Callable[[Any], None]] = None, max_run_s: float = 0.0,
                 every_n_iterations: int = 0, write: bool = True, handlers: Sequence[Any] = (),
                 dataset: Any = None, max_iterations: int = 0):
        self.objects = dict(objects)
        self.max_iterations = int(max_iterations)
        self.handlers = list(handlers)
        self.transform_rng = TransformRNG(dataset) if dataset is not None else None
        self.write = bool(write)
        self.every_n_iterations = int(every_n_iterations)
        self.max_run_s = float(max_run_s)
        self.output_dir = Path(output_dir)
        self.interval_s = float(interval_s)
        self.preview = preview
        self.prior_wall_s = 0.0  # time spent in earlier runs of this training (set by resume)
        self.prior_cpu_s = 0.0
        self._start_wall = time.perf_counter()
        self._start_cpu = time.process_time()
        self._last_save = time.perf_counter()

    @property
    def path(self) -> Path:
        return self.output_dir / CHECKPOINT_NAME

    def wall_s(self) -> float:
        """Wall time of the whole training so far, over all resumes."""
        return self.prior_wall_s + time.perf_counter() - self._start_wall

    def cpu_s(self) -> float:
        """CPU time (``time.process_time``) of the whole training so far, over all resumes."""
        return self.prior_cpu_s + time.process_time() - self._start_cpu

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._maybe_save)
        engine.add_event_handler(Events.COMPLETED, self.save)

    def _log(self, line: str) -> None:
        if not self.write:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / RUN_LOG_NAME, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC  {line}\n")
        logger.info(line)

    def _started(self, engine: Any) -> None:
        self._start_wall, self._start_cpu = time.perf_counter(), time.process_time()
        self._last_save = self._start_wall
        self._log(f"start at iteration {engine.state.iteration} (epoch {engine.state.epoch}), "
                  f"pid {os.getpid()}, torch threads {torch.get_num_threads()}, command: "
                  + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))

    def _maybe_save(self, engine: Any) -> None:
        if self.max_run_s > 0 and time.perf_counter() - self._start_wall >= self.max_run_s:
            self._log(f"max_run_s={self.max_run_s:.0f} reached at iteration {engine.state.iteration}: "
                      "saving and ending this run (resume_from continues it)")
            engine.terminate()  # COMPLETED fires and saves
            return
        if 0 < self.max_iterations <= engine.state.iteration:
            self._log(f"max_iterations={self.max_iterations} reached: saving and ending this run")
            engine.terminate()
            return
        due = self.every_n_iterations > 0 and engine.state.iteration % self.every_n_iterations == 0
        if due or time.perf_counter() - self._last_save >= self.interval_s:
            self.save(engine)

    def save(self, engine: Any) -> Path:
        """Write the checkpoint (atomically), the preview grid and a run-log line."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        iteration, wall_s, cpu_s = int(engine.state.iteration), self.wall_s(), self.cpu_s()
        state = {
            "objects": {name: obj.state_dict() for name, obj in self.objects.items()},
            "schedulers": {name: obj.state_dict() for name, obj in handler_schedulers(self.handlers).items()},
            "transform_rng": self.transform_rng.state_dict() if self.transform_rng is not None else None,
            "iteration": iteration,
            "epoch": int(engine.state.epoch),
            "rng": rng_states(),
            "wall_s": wall_s,
            "cpu_s": cpu_s,
        }
        tmp = self.path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)
        self._last_save = time.perf_counter()
        if self.preview is not None:
            self.preview(engine)
        output = getattr(engine.state, "output", None)
        losses = " ".join(f"{k} {float(v):.4f}" for k, v in output.items() if _is_scalar(v)) \
            if isinstance(output, dict) else ""
        self._log(f"checkpoint at iteration {iteration} (epoch {state['epoch']}): "
                  f"wall {wall_s:.0f} s, CPU {cpu_s:.0f} s, {wall_s / max(1, iteration):.3f} s/it; {losses}")
        return self.path

    def resume(self, path: Union[str, Path], engine: Any) -> int:
        """Load ``path`` into the objects, the RNGs and the engine state; returns the iteration resumed from."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"resume_from={path}: no such checkpoint; the training writes "
                                    f"{CHECKPOINT_NAME} into its output_dir")
        state = torch.load(path, map_location="cpu", weights_only=False)
        missing = sorted(set(self.objects) - set(state["objects"]))
        if missing:
            raise KeyError(f"checkpoint {path} lacks {missing}; it has {sorted(state['objects'])}")
        for name, obj in self.objects.items():
            obj.load_state_dict(state["objects"][name])
        saved_schedulers = state.get("schedulers", {})
        for name, scheduler in handler_schedulers(self.handlers).items():
            if name in saved_schedulers:
                scheduler.load_state_dict(saved_schedulers[name])
            else:
                logger.warning("checkpoint %s has no state for the scheduler %s (written before schedulers were "
                               "saved): it starts again from its first step", path, name)
        if self.transform_rng is not None and self.transform_rng.transforms:
            if state.get("transform_rng") is not None:
                self.transform_rng.load_state_dict(state["transform_rng"])
            else:
                logger.warning("checkpoint %s has no random-transform states (written before they were saved): the "
                               "resumed run augments differently from an uninterrupted one", path)
        set_rng_states(state["rng"])
        engine.state.iteration = int(state["iteration"])
        # completed epochs: ignite increments the epoch when it (re)enters the loop and finishes a partial epoch
        epoch_length = getattr(engine.state, "epoch_length", None)
        engine.state.epoch = int(state["iteration"]) // int(epoch_length) if epoch_length else int(state["epoch"])
        self.prior_wall_s, self.prior_cpu_s = float(state["wall_s"]), float(state["cpu_s"])
        self._log(f"resumed from {path} at iteration {state['iteration']} (epoch {state['epoch']}), "
                  f"earlier wall {self.prior_wall_s:.0f} s, CPU {self.prior_cpu_s:.0f} s")
        return int(state["iteration"])
