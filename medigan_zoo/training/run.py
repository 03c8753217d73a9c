"""``medigan-zoo train`` / ``finetune``: run a bundle's own ``configs/train.json`` through ``monai.bundle`` on a data
set and turn the result into a finished bundle.

There is no second training loop: :func:`train_bundle` builds MONAI's ``ConfigWorkflow`` from the bundle's
``train.json`` (run id ``training``, as ``python -m monai.bundle run training`` does) with config overrides (data path,
output folder, seed, epochs, hyperparameters), then only adds ignite handlers to the trainer the config builds:

* a checkpoint of the full training state (the objects of the recipe's ``CheckpointSaver``, the RNGs including
  those of the random transforms) every ``checkpoint_every`` iterations (default: one epoch) and at the end, into
  ``<output>/training_output/checkpoint_latest.pt`` (:class:`medigan_zoo.training.checkpoint.TimedCheckpoint`);
  ``resume=True`` loads it and continues. Resuming from a checkpoint taken at an epoch boundary gives the same
  weights, bit for bit on CPU, as the uninterrupted run (tests/test_train.py); from a checkpoint inside an epoch the
  run continues with a fresh data-loader iterator (ignite restarts the epoch's data), so its remaining minibatches
  of that epoch differ from the uninterrupted run's;
* a tqdm progress bar with the losses (``progress``), the last losses, and the caller's ``extra_handlers`` (ignite
  handler objects with ``attach(engine)``, or MONAI handler config dicts appended to the recipe's handler list:
  ``MLFlowHandler``, ``optuna_integration``'s ``PyTorchIgnitePruningHandler``, ...).

The recipe's own last steps write ``training_output/model.pt``; then the output bundle gets ``models/model.pt``,
``models/model.ts`` (:mod:`medigan_zoo.runtime.export`), ``docs/samples.png`` (:mod:`medigan_zoo.engine.visualize`),
``docs/training_log.txt`` (command, data and its sha256, overrides, iterations, wall and CPU time, losses, the
checkpoint log), a bumped version with a changelog entry in ``metadata.json``, and, unless ``evaluate=False``, the
metrics of :func:`medigan_zoo.evaluation.evaluate.evaluate_bundle` in its metadata and card.

Under ``torchrun`` with several processes, :mod:`medigan_zoo.training.ddp` makes the engine data-parallel (DDP,
sharded sampler, global-batch draws and batch norm); rank 0 alone copies the bundle, logs, checkpoints and does
everything after training, while the others wait at a barrier; every rank resumes from the checkpoint.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from medigan_zoo.core.errors import ZooError
from medigan_zoo.training.hyperparameters import check_values, read_hyperparameters

PathLike = Union[str, Path]
logger = logging.getLogger(__name__)

#: the training run id of every zoo recipe (``python -m monai.bundle run training``)
RUN_ID = "training"
#: scratch folder of a run inside the output bundle (``package`` leaves it out)
WORK_DIR = "training_output"
LOG_FILE = "docs/training_log.txt"
#: ids the recipe's checkpoint saver may use for its objects when it has no ``CheckpointSaver`` handler
_FALLBACK_OBJECTS = ("network", "optimizer", "lr_scheduler", "discriminator", "critic", "d_optimizer",
                     "g_optimizer", "critic_optimizer", "ema_model")


@dataclass
class TrainResult:
    """What :func:`train_bundle` produced."""

    bundle: Path  #: the output bundle folder
    iterations: int  #: engine iterations done (over all resumes)
    epochs: int
    wall_s: float  #: wall time of the training over all resumes (s)
    cpu_s: float  #: CPU time (process_time) over all resumes (s)
    losses: Dict[str, float]  #: the last iteration's losses
    log: Path  #: docs/training_log.txt
    version: str  #: the output bundle's new version
    checkpoint: Optional[Path] = None
    metrics: Dict[str, Any] = field(default_factory=dict)  #: name -> value of the evaluation (empty: not run)
    resumed_from: int = 0  #: iteration the run resumed from (0: a fresh run)

    def lines(self) -> List[str]:
        losses = ", ".join(f"{k} {v:.4f}" for k, v in self.losses.items())
        out = [f"trained {self.bundle} (version {self.version}): {self.iterations} iterations, {self.epochs} epochs"
               + (f" (resumed at {self.resumed_from})" if self.resumed_from else ""),
               f"wall {self.wall_s:.1f} s, CPU {self.cpu_s:.1f} s; last losses: {losses or 'none'}",
               f"weights: {self.bundle / 'models' / 'model.pt'}, {self.bundle / 'models' / 'model.ts'}",
               f"training log: {self.log}"]
        if self.metrics:
            out.append("metrics: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in self.metrics.items()))
        return out


# --------------------------------------------------------------------------------------------- data and options
def resolve_data(data: PathLike) -> Path:
    """The npz a recipe reads: a prepared data set folder (``medigan-zoo prepare``: its ``dataset.npz``) or an npz
    file in the MedMNIST layout."""
    path = Path(data).expanduser().resolve()
    if path.is_dir():
        path = path / "dataset.npz"
    if path.suffix != ".npz" or not path.is_file():
        raise ZooError(f"--data {data}: expected a data set folder made by `medigan-zoo prepare` (with dataset.npz) "
                       "or a MedMNIST-layout .npz file; none found there.")
    return path


def check_data_fits(bundle: Path, npz: Path) -> None:
    """The data set's image size, channels and classes must be those the bundle makes (one line otherwise)."""
    from medigan_zoo.training.data import read_train_split

    zoo = _metadata(bundle).get("medigan_zoo") or {}
    split = read_train_split(npz)
    shape, classes = split.shape, split.num_classes
    want = [int(s) for s in zoo.get("spatial_shape") or []]
    channels = int(zoo.get("num_channels", 1))
    have_channels = shape[-1] if len(shape) == len(want) + 2 else 1
    have = list(shape[1:1 + len(want)]) if want else []
    if want and (have != want or have_channels != channels):
        raise ZooError(f"--data {npz}: images are {'x'.join(map(str, shape[1:]))} but {bundle.name} makes "
                       f"{'x'.join(map(str, want))} with {channels} channel(s); prepare the data with --size "
                       f"{want[-1]}{'' if have_channels == channels else ' from images with that many channels'} "
                       "or train a bundle that makes this size.")
    condition = zoo.get("condition") or {}
    if classes and condition:
        spec = next(iter(condition.values()))
        values = spec.get("values") or {}
        known = len(values) if isinstance(values, Mapping) else len(values or [])
        if known and classes > known:
            raise ZooError(f"--data {npz}: labels go up to {classes - 1} but {bundle.name} knows {known} classes; "
                           "use a bundle with as many classes.")


def _metadata(bundle: Path) -> Dict[str, Any]:
    return json.loads((bundle / "configs" / "metadata.json").read_text())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_bundle(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(WORK_DIR, "__pycache__", "*.pyc", ".medigan_zoo_*"))


def _prepare_output(src: Path, output: Optional[PathLike], resume: bool, finetune: bool,
                    write: bool = True) -> Path:
    """The output bundle folder, after checking it suits ``resume`` / ``finetune``; ``write`` copies ``src`` there
    when it is new (False: the checks only, as the ranks other than 0 of a data-parallel run do)."""
    if output is None:
        if finetune:
            raise ZooError("finetune needs --output NEW_BUNDLE, a new folder (the shipped weights stay as they are).")
        out = src
    else:
        out = Path(output).expanduser().resolve()
        if out == src:
            pass
        elif out.exists() and any(out.iterdir()):
            if not resume:
                raise ZooError(f"--output {out} exists and is not empty; pass --resume to continue its interrupted "
                               "training, or a new folder.")
        else:
            if resume:
                raise ZooError(f"--resume: {out} holds no interrupted training; run without --resume.")
            if write:
                if out.exists():
                    out.rmdir()
                _copy_bundle(src, out)
    checkpoint = out / WORK_DIR / "checkpoint_latest.pt"
    if resume and not checkpoint.is_file():
        raise ZooError(f"--resume: no checkpoint {checkpoint}; the run to continue was not started with this output.")
    if not resume and checkpoint.is_file():
        raise ZooError(f"{checkpoint} exists from an earlier run; pass --resume to continue it, or remove "
                       f"{out / WORK_DIR} to start again.")
    return out


# ------------------------------------------------------------------------------------------------ ignite pieces
def scalar_losses(output: Any) -> Dict[str, float]:
    """The scalar entries of an engine output (a dict of floats for the GAN steps; SupervisedTrainer's dict holds
    ``loss`` as a 0-d tensor beside the batch tensors)."""
    if not isinstance(output, Mapping):
        return {}
    out: Dict[str, float] = {}
    for key, value in output.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(key)] = float(value)
        elif hasattr(value, "numel") and value.numel() == 1 and not getattr(value, "requires_grad", False):
            out[str(key)] = float(value.item())
        elif hasattr(value, "numel") and value.numel() == 1:
            out[str(key)] = float(value.detach().item())
    return out


def _saved_objects(parser: Any) -> Dict[str, Any]:
    """What the recipe's ``CheckpointSaver`` saves (its ``save_dict``), else the recipe's usual ids; plus the state
    of every parameter scheduler its handlers attached (e.g. ``EMAHandler``'s momentum warm-up, which counts its own
    calls: without it a resumed run would restart the warm-up)."""
    from medigan_zoo.training.checkpoint import handler_schedulers

    list_id = _handler_list_id(parser)
    handlers = parser.get_parsed_content(list_id) if list_id and list_id in parser else []
    objects: Dict[str, Any] = {}
    for handler in handlers:
        save_dict = getattr(handler, "save_dict", None)
        if isinstance(save_dict, Mapping) and save_dict and not objects:
            objects = dict(save_dict)
    if not objects:
        objects = {name: parser.get_parsed_content(name) for name in _FALLBACK_OBJECTS if name in parser}
    objects.update(handler_schedulers(handlers))
    return objects


class _LastLosses:
    def __init__(self) -> None:
        self.losses: Dict[str, float] = {}

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Any) -> None:
        self.losses = scalar_losses(engine.state.output)


def _progress_bar(engine: Any) -> None:
    from ignite.handlers import ProgressBar

    ProgressBar(persist=True, file=sys.stderr).attach(engine, output_transform=scalar_losses)


def _handler_list_id(parser: Any) -> Optional[str]:
    """The config id of the trainer's handler list (``handlers`` for the zoo's recipes)."""
    value = parser["trainer"].get("train_handlers") if isinstance(parser["trainer"], dict) else None
    if isinstance(value, str) and value.startswith("@"):
        return value[1:]
    if isinstance(value, list):
        return "trainer::train_handlers"
    return None


# ---------------------------------------------------------------------------------------------------- the run
def _bump(version: str) -> str:
    parts = (str(version or "0.0.0").split(".") + ["0", "0"])[:3]
    try:
        major, minor = int(parts[0]), int(parts[1])
    except ValueError:
        return f"{version}.1"
    return f"{major}.{minor + 1}.0"


@contextlib.contextmanager
def _quiet_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _build_workflow(out: Path, overrides: Mapping[str, Any], dict_handlers: Sequence[Mapping[str, Any]]):
    from monai.bundle import ConfigWorkflow

    configs = out / "configs"
    logging_file = configs / "logging.conf"
    workflow = ConfigWorkflow(config_file=str(configs / "train.json"), meta_file=str(configs / "metadata.json"),
                              logging_file=str(logging_file) if logging_file.is_file() else False,
                              run_id=RUN_ID, **dict(overrides))
    if dict_handlers:
        list_id = _handler_list_id(workflow.parser)
        if list_id is None:
            raise ZooError(f"{configs / 'train.json'}: its trainer has no train_handlers list to add handlers to.")
        workflow.parser[list_id] = list(workflow.parser[list_id]) + [dict(h) for h in dict_handlers]
    return workflow


def train_bundle(bundle: PathLike, data: PathLike, output: Optional[PathLike] = None, *,
                 epochs: Optional[int] = None, overrides: Optional[Mapping[str, Any]] = None, resume: bool = False,
                 finetune: bool = False, seed: int = 0, extra_handlers: Optional[Sequence[Any]] = None,
                 progress: bool = True, checkpoint_every: Optional[int] = None,
                 checkpoint_seconds: float = 0.0, evaluate: bool = True, evaluate_samples: int = 500,
                 evaluate_metrics: str = "fid,prdc,realism", device: Optional[str] = None,
                 trusted: Any = None, command: Optional[str] = None, finish: bool = True) -> TrainResult:
    """Train ``bundle`` (a folder) on ``data`` with its own ``configs/train.json``; returns what was produced.

    Args:
        output: the new bundle folder (a copy of ``bundle`` is trained there); None trains ``bundle`` in place.
        epochs: ``max_epochs`` of the recipe (None: the recipe's).
        overrides: further config ids (declared hyperparameters are checked against their ranges).
        resume: continue the interrupted run in ``output`` from its last checkpoint.
        finetune: start from ``bundle``'s shipped weights (``models/model.pt`` into the generator) into ``output``.
        seed: the recipe's ``seed``.
        extra_handlers: ignite handler objects (``attach(engine)``) or MONAI handler config dicts.
        progress: a tqdm bar with the losses.
        checkpoint_every: iterations between checkpoints (None: one epoch); ``checkpoint_seconds`` adds a timer.
        evaluate: measure the new bundle with the zoo's ``evaluate`` (``evaluate_metrics``, ``evaluate_samples``)
            against the data set's test split and write the metrics into its metadata and card.
        device: torch device for training (None: the recipe's choice).
        trusted: folders whose config code the user trusts (the bundle must be trusted: medigan_zoo.catalog.trust).
        command: the command line recorded in the training log (default: this process's argv).
        finish: False stops once the recipe has written ``training_output/model.pt`` (no weights copied into the
            bundle, no export, grid, log, version bump or evaluation: e.g. a tuning trial that measures by itself).
    """
    from medigan_zoo.catalog.trust import check_trusted

    src = Path(bundle).expanduser().resolve()
    if not (src / "configs" / "train.json").is_file():
        raise ZooError(f"{src} has no configs/train.json: nothing to train (create a bundle with `medigan-zoo init`).")
    check_trusted(src, trusted)
    npz = resolve_data(data)
    check_data_fits(src, npz)
    values = dict(overrides or {})
    hyper = read_hyperparameters(src)
    check_values(hyper, {k: v for k, v in values.items() if k in {h.name for h in hyper}})
    from medigan_zoo.training import ddp

    dist = ddp.from_environment(device)  # None for one process; under torchrun: this rank (gloo / nccl)
    if dist is not None:
        device = dist.device
    if dist is None:
        out = _prepare_output(src, output, resume, finetune)
    else:  # every rank checks --output (and stops alike on a wrong one) before rank 0 copies the bundle there
        out = _prepare_output(src, output, resume, finetune, write=False)
        ddp.barrier()
        if dist.main:
            _prepare_output(src, output, resume, finetune)
        ddp.barrier()  # the others only read what rank 0 copied
    if dist is not None and not dist.main:
        logging.disable(logging.INFO)  # rank 0 logs
    work = out / WORK_DIR
    trust = [out] + ([] if trusted in (None, True, False) else
                     ([trusted] if isinstance(trusted, (str, Path)) else list(trusted)))
    pairs: Dict[str, Any] = {"bundle_root": str(out), "data_path": str(npz), "output_dir": str(work), "seed": int(seed),
                             **values}
    if epochs is not None:
        pairs["max_epochs"] = int(epochs)
    if device is not None:
        pairs["device"] = f"$torch.device('{device}')"
    dict_handlers = [h for h in (extra_handlers or []) if isinstance(h, Mapping)]
    object_handlers = [h for h in (extra_handlers or []) if not isinstance(h, Mapping)]
    from medigan_zoo.runtime.imports import bundle_on_sys_path

    with bundle_on_sys_path(out), _quiet_warnings():
        workflow = _build_workflow(out, pairs, dict_handlers)
        workflow.initialize()
        parser = workflow.parser
        trainer = parser.get_parsed_content("trainer")
        if finetune and not resume:
            _load_shipped_weights(src, parser)
        if dist is not None:
            ddp.distribute(trainer, dist)
        main = dist is None or dist.main
        result = _run(workflow, trainer, out, work, resume=resume, progress=progress and main,
                      checkpoint_every=checkpoint_every, checkpoint_seconds=checkpoint_seconds,
                      object_handlers=object_handlers if main else [], main=main)
    if not finish or not main:
        ddp.barrier()  # under torchrun: the ranks other than 0 wait here for rank 0's export and evaluation
        return TrainResult(bundle=out, iterations=int(result["iterations"]), epochs=int(result["epochs"]),
                           wall_s=float(result["wall_s"]), cpu_s=float(result["cpu_s"]), losses=dict(result["losses"]),
                           log=work / "run_log.txt", version=str(_metadata(out).get("version", "")),
                           checkpoint=Path(result["checkpoint"]), resumed_from=int(result["resumed_from"]))
    finished = _finish(src, out, npz, result, pairs, finetune=finetune, evaluate=evaluate,
                       evaluate_samples=evaluate_samples, evaluate_metrics=evaluate_metrics, trusted=trust,
                       command=command, seed=seed)
    ddp.barrier()
    return finished


def _load_shipped_weights(src: Path, parser: Any) -> None:
    """finetune: the shipped ``models/model.pt`` into the recipe's generator (``network``) and, when the recipe
    averages it, its EMA copy."""
    from medigan_zoo.runtime.weights import load_weights

    weights = src / "models" / "model.pt"
    if not weights.is_file():
        raise ZooError(f"finetune: {weights} is missing; train the bundle first (`medigan-zoo train`).")
    network = parser.get_parsed_content("network")
    network.load_state_dict(load_weights(weights))
    if "ema_model" in parser:
        parser.get_parsed_content("ema_model").load_state_dict(network.state_dict())


def _run(workflow: Any, trainer: Any, out: Path, work: Path, *, resume: bool, progress: bool,
         checkpoint_every: Optional[int], checkpoint_seconds: float, object_handlers: Sequence[Any],
         main: bool = True) -> Dict[str, Any]:
    from medigan_zoo.training.checkpoint import CHECKPOINT_NAME, TimedCheckpoint, TransformRNG

    parser = workflow.parser
    objects = _saved_objects(parser)
    dataset = getattr(getattr(trainer, "data_loader", None), "dataset", None)
    objects["transform_rng"] = TransformRNG(dataset)
    epoch_length = trainer.state.epoch_length or len(trainer.data_loader)
    every = int(checkpoint_every) if checkpoint_every else int(epoch_length)
    checkpoint = TimedCheckpoint(objects, work, interval_s=checkpoint_seconds if checkpoint_seconds > 0 else
                                 float("inf"), every_n_iterations=every, write=main)
    if main:  # under torchrun only rank 0 writes checkpoints; every rank resumes from them
        checkpoint.attach(trainer)
    last = _LastLosses()
    last.attach(trainer)
    if progress:
        _progress_bar(trainer)
    for handler in object_handlers:
        handler.attach(trainer)
    resumed_from = checkpoint.resume(work / CHECKPOINT_NAME, trainer) if resume else 0
    workflow.run()
    workflow.finalize()
    return {"iterations": int(trainer.state.iteration), "epochs": int(trainer.state.epoch),
            "wall_s": checkpoint.wall_s(), "cpu_s": checkpoint.cpu_s(), "losses": dict(last.losses),
            "checkpoint": work / CHECKPOINT_NAME, "resumed_from": resumed_from}


def _finish(src: Path, out: Path, npz: Path, run: Mapping[str, Any], pairs: Mapping[str, Any], *, finetune: bool,
            evaluate: bool, evaluate_samples: int, evaluate_metrics: str, trusted: Any, command: Optional[str],
            seed: int) -> TrainResult:
    from medigan_zoo.runtime.export import export_torchscript

    work = out / WORK_DIR
    weights = work / "model.pt"
    if not weights.is_file():
        raise ZooError(f"the recipe finished without writing {weights}; its 'training' steps must save the weights "
                       "there (save_state_dict(..., @output_dir + '/model.pt')).")
    (out / "models").mkdir(exist_ok=True)
    shutil.copyfile(weights, out / "models" / "model.pt")
    metadata = _metadata(out)
    old_version = str(metadata.get("version", "0.0.0"))
    version = _bump(old_version)
    what = (f"fine-tuned from {src.name} {_metadata(src).get('version', '')}" if finetune else "trained")
    metadata["version"] = version
    metadata["changelog"] = {version: f"{what} with `medigan-zoo train` on {npz.name} ({npz.parent.name}, sha256 "
                                      f"{_sha256(npz)[:16]}): {run['iterations']} iterations, seed {seed}",
                             **(metadata.get("changelog") or {})}
    (out / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=4) + "\n")
    export_torchscript(out, trusted=trusted)
    from medigan_zoo.engine.visualize import write_sample_grid

    write_sample_grid(out, out / "docs" / "samples.png", num_per_row=8, seed=0, device="cpu", trusted=trusted)
    log = _write_log(out, src, npz, run, pairs, version, command, finetune)
    metrics: Dict[str, Any] = {}
    if evaluate:
        from medigan_zoo.evaluation.evaluate import evaluate_bundle

        data_dir = npz.parent
        report = evaluate_bundle(out, metrics=evaluate_metrics, num_samples=int(evaluate_samples), seed=0,
                                 data_dir=data_dir, write=True, force=True, trusted=trusted, log=lambda *a, **k: None)
        metrics = report.values()
    return TrainResult(bundle=out, iterations=int(run["iterations"]), epochs=int(run["epochs"]),
                       wall_s=float(run["wall_s"]), cpu_s=float(run["cpu_s"]), losses=dict(run["losses"]), log=log,
                       version=version, checkpoint=Path(run["checkpoint"]), metrics=metrics,
                       resumed_from=int(run["resumed_from"]))


def _write_log(out: Path, src: Path, npz: Path, run: Mapping[str, Any], pairs: Mapping[str, Any], version: str,
               command: Optional[str], finetune: bool) -> Path:
    import monai
    import torch

    from medigan_zoo.core.version import __version__ as zoo_version
    from medigan_zoo.training.checkpoint import RUN_LOG_NAME

    cmd = command or " ".join([Path(sys.executable).name, *sys.argv])
    run_log = out / WORK_DIR / RUN_LOG_NAME
    losses = ", ".join(f"{k} {v:.4f}" for k, v in run["losses"].items()) or "none"
    text = [f"# Training log of {out.name} {version} (the run that produced models/model.pt)", "",
            f"Command: {cmd}", f"Recipe: {out / 'configs' / 'train.json'} through monai.bundle ConfigWorkflow, run id "
            f"'{RUN_ID}'" + (f"; fine-tuned from {src} (its models/model.pt)" if finetune else ""),
            f"Data: {npz} (sha256 {_sha256(npz)})",
            "Overrides: " + json.dumps({k: v for k, v in pairs.items() if k != "bundle_root"}, default=str),
            f"Versions: medigan_zoo {zoo_version}, torch {torch.__version__}, MONAI {monai.__version__}, "
            f"torch threads {torch.get_num_threads()}, pid {os.getpid()}, finished "
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
            f"Iterations: {run['iterations']} ({run['epochs']} epochs)" +
            (f", resumed at iteration {run['resumed_from']}" if run["resumed_from"] else ""),
            f"Wall time: {run['wall_s']:.1f} s; CPU time: {run['cpu_s']:.1f} s (over all resumes)",
            f"Final losses (last iteration): {losses}", "", "----- checkpoint log -----"]
    if run_log.is_file():
        text.append(run_log.read_text().rstrip())
    path = out / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text) + "\n")
    return path
