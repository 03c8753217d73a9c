"""Experiment tracking for ``train``/``finetune``/``tune`` (``--tracking mlflow``), on MONAI's own ``MLFlowHandler``.

``MlflowTracker`` holds one MLflow run of one training:

- ``handlers()``: what ``train_bundle(..., extra_handlers=...)`` appends to the trainer: MONAI's ``MLFlowHandler``
  (the run's parameters at ``STARTED``: the recipe's hyperparameters with their values in this training, plus the
  overrides, ``max_epochs`` and ``epoch_length``; every scalar of the trainer's output, e.g. ``g_loss``/``d_loss``,
  per iteration) and ``SampleArtifacts`` (each new ``samples_*.png`` grid the recipe writes, as an artifact under
  ``samples/``, at every epoch's end).
- ``finish(bundle, metrics)``: after the new bundle is written: its final metrics (``evaluate``'s numbers), the
  bundle's files (those ``package`` would zip) as artifacts under ``bundle/``, status FINISHED. ``fail(err)``
  marks the run FAILED (a crashed or pruned trial keeps what it logged).

Where runs go (``tracking_uri``): ``MLFLOW_TRACKING_URI`` when set (any MLflow server or store), else the URI given,
else ``sqlite:///<output>/mlruns.db`` with artifacts in ``<output>/mlruns`` -- inside the training's output folder,
never the working directory. MLflow 3.13+ refuses its plain-folder file store (``./mlruns``) and MONAI's handler
uses a SQLite file beside an ``mlruns`` artifact folder instead; this is that layout, one per output folder.
``mlflow ui --backend-store-uri sqlite:///<output>/mlruns.db`` shows it.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Union

from medigan_zoo.core.errors import ZooError

#: values of ``--tracking``
TRACKERS = ("mlflow",)
#: file names of the recipes' sample grids (``training.gan.SampleGridSaver``) logged as artifacts
SAMPLE_PATTERN = "samples_*.png"
#: MLflow's longest parameter value
MAX_PARAM_CHARS = 6000
PathLike = Union[str, Path]


def check_tracking(tracking: Optional[str]) -> Optional[str]:
    """``None`` (no tracking) or a name in ``TRACKERS``; anything else raises ZooError naming the choices."""
    if tracking is None or tracking is False:
        return None
    name = str(tracking).strip().lower()
    if name not in TRACKERS:
        raise ZooError(f"--tracking {tracking!r} is not a tracker; use one of: {', '.join(TRACKERS)}.")
    return name


def tracking_uri(output: PathLike, uri: Optional[str] = None) -> str:
    """Where the run goes: ``MLFLOW_TRACKING_URI``, else ``uri``, else ``sqlite:///<output>/mlruns.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    if uri:
        return str(uri)
    folder = Path(output).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlruns.db'}"


def scalar_outputs(output: Any) -> Dict[str, float]:
    """The finite scalars of a trainer's iteration output (a dict of floats/0-d tensors, or a decollated list of
    such dicts: its first item); ``{}`` for anything else (nothing is logged then)."""
    if isinstance(output, (list, tuple)) and output:
        output = output[0]
    if not isinstance(output, Mapping):
        return {}
    found = {}
    for key, value in output.items():
        if hasattr(value, "numel") and value.numel() == 1:
            value = value.detach().item()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            found[str(key)] = float(value)
    return found


def run_params(hyperparameters: Mapping[str, Any], overrides: Optional[Mapping[str, Any]] = None
               ) -> Dict[str, str]:
    """The parameters logged for a run: every hyperparameter's value in this training (an override wins over the
    recipe's default) and every other override, as text (cut at MLflow's limit)."""
    values: Dict[str, Any] = dict(hyperparameters)
    values.update(overrides or {})
    return {str(k): str(v)[:MAX_PARAM_CHARS] for k, v in values.items()}


def root_cause(err: BaseException) -> BaseException:
    """The innermost ``__cause__`` of ``err`` (``monai.bundle`` raises ``RuntimeError("Failed to evaluate ...")``
    from whatever the trainer raised)."""
    seen = {id(err)}
    while err.__cause__ is not None and id(err.__cause__) not in seen:
        err = err.__cause__
        seen.add(id(err))
    return err


def describe(err: BaseException) -> str:
    """``Type: first line`` of ``err``'s root cause."""
    cause = root_cause(err)
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class SampleArtifacts:
    """Ignite handler: at each epoch's end (after the recipe's own grid saver) and at completion, log the
    ``SAMPLE_PATTERN`` files of ``folder`` not logged yet (or rewritten since) to the run as ``samples/<name>``."""

    def __init__(self, folder: PathLike, log: Callable[[Path], None], pattern: str = SAMPLE_PATTERN):
        self.folder, self.log, self.pattern = Path(folder), log, pattern
        self._seen: Set[tuple] = set()

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Any = None) -> None:
        for path in sorted(self.folder.glob(self.pattern)):
            key = (path.name, path.stat().st_mtime_ns, path.stat().st_size)
            if key not in self._seen:
                self._seen.add(key)
                self.log(path)


class MlflowTracker:
    """One MLflow run of one training (module docstring). Construct, pass ``handlers()`` to the trainer, then call
    ``finish`` (or ``fail``).

    The store is opened when the handlers are attached to the trainer (so ``train_bundle`` has prepared the output
    folder by then), or by ``open()``; ``store_dir`` is where the default SQLite store goes.
    """

    def __init__(self, store_dir: PathLike, *, experiment: str, run_name: Optional[str] = None,
                 params: Optional[Mapping[str, Any]] = None, tags: Optional[Mapping[str, str]] = None,
                 uri: Optional[str] = None, samples_dir: Optional[PathLike] = None, iteration_every: int = 1):
        self.store_dir = Path(store_dir).expanduser().resolve()
        self.experiment, self.run_name, self.given_uri = experiment, run_name, uri
        self.params = dict(params or {})
        self.tags = dict(tags or {})
        self.samples_dir = Path(samples_dir) if samples_dir is not None else self.store_dir
        self.iteration_every = max(int(iteration_every), 1)
        self.uri: Optional[str] = None
        self.handler: Any = None
        self.last_run_id: Optional[str] = None  #: the run's id, kept after it ended
        self._samples = SampleArtifacts(self.samples_dir, lambda p: self.log_artifact(p, "samples"))

    def open(self) -> Any:
        """MONAI's ``MLFlowHandler`` for this run (made on first use; the store is reached then)."""
        if self.handler is None:
            from monai.handlers import MLFlowHandler

            every = self.iteration_every
            self.uri = tracking_uri(self.store_dir, self.given_uri)
            self.handler = MLFlowHandler(
                tracking_uri=self.uri, experiment_name=self.experiment, run_name=self.run_name,
                experiment_param=self.params, output_transform=scalar_outputs,
                iteration_log=True if every == 1 else (lambda engine, iteration: iteration % every == 0),
                epoch_log=True, close_on_complete=False)
        return self.handler

    @property
    def client(self):
        return self.open().client

    @property
    def run_id(self) -> Optional[str]:
        """The run's id once the trainer has started (``None`` before)."""
        run = None if self.handler is None else self.handler.cur_run
        return None if run is None else run.info.run_id

    def _require_run(self) -> str:
        if self.run_id is None:  # no trainer started (yet): open the run now
            self.open().start(_NoState())
            self._set_tags()
        assert self.run_id is not None
        return self.run_id

    def _set_tags(self, engine: Any = None) -> None:
        self.last_run_id = self.run_id
        for key, value in self.tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def log_artifact(self, path: Path, artifact_path: Optional[str] = None) -> None:
        self.client.log_artifact(self._require_run(), str(path), artifact_path)

    def attach(self, engine: Any) -> None:
        """Attach MONAI's ``MLFlowHandler``, the run tags (at ``STARTED``) and the sample-grid artifact logger."""
        from ignite.engine import Events

        self.open().attach(engine)
        engine.add_event_handler(Events.STARTED, self._set_tags)
        self._samples.attach(engine)

    def handlers(self) -> List[Any]:
        """The handler objects for ``train_bundle(..., extra_handlers=...)`` (one: this tracker)."""
        return [self]

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> None:
        """Log the finite numbers of ``metrics`` (nested dicts become dotted names)."""
        from medigan_zoo.catalog.metrics import flatten_metrics

        flat = {k: float(v) for k, v in flatten_metrics(dict(metrics)).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        if flat:
            self._require_run()
            self.handler._log_metrics(flat, step=step)  # MONAI's own batch call

    def finish(self, bundle: Optional[PathLike] = None, metrics: Optional[Mapping[str, Any]] = None) -> str:
        """Log ``metrics`` and the bundle's files (artifacts ``bundle/...``), end the run FINISHED; return its id."""
        from medigan_zoo.byod.package import bundle_files

        run_id = self._require_run()
        if metrics:
            self.log_metrics(metrics)
        if bundle is not None:
            root = Path(bundle)
            for path in bundle_files(root):
                parent = path.relative_to(root).parent.as_posix()
                self.log_artifact(path, "bundle" if parent == "." else f"bundle/{parent}")
        self._samples()  # grids written after the last epoch (e.g. by the recipe's final step)
        self.handler.close()
        return run_id

    def fail(self, reason: str = "") -> None:
        """End the run FAILED (``reason`` as the tag ``failure``), keeping what it logged."""
        if self.run_id is None:
            return
        if reason:
            self.client.set_tag(self.run_id, "failure", reason[:MAX_PARAM_CHARS])
        self.client.set_terminated(self.run_id, "FAILED")
        self.handler.cur_run = None
        self.handler.close()


class _NoState:
    """A stand-in engine for ``MLFlowHandler.start`` when no trainer ran (its default parameters are then None)."""

    class state:  # noqa: N801 - the attribute ignite engines have
        pass


def train_tracked(bundle: PathLike, data: PathLike, output: Optional[PathLike] = None, *,
                  tracking: Optional[str] = "mlflow", tracking_uri: Optional[str] = None,
                  experiment: Optional[str] = None, run_name: Optional[str] = None,
                  tags: Optional[Mapping[str, str]] = None, extra_handlers: Optional[List[Any]] = None,
                  on_tracker: Optional[Callable[["MlflowTracker"], None]] = None,
                  after_training: Optional[Callable[[Any], Mapping[str, float]]] = None, **train_kwargs: Any):
    """``train_bundle`` with the run tracked (``tracking="mlflow"``; None: untracked, same as ``train_bundle``).

    The run is named ``run_name`` (default: the output folder's name) in the experiment ``experiment`` (default:
    the bundle's folder name); its parameters are ``run_params`` of the recipe's hyperparameters and the overrides
    (``max_epochs`` from ``epochs``; ``seed`` and ``data`` too); tags: bundle, data, ``resumed`` when resuming. The
    default store is ``<output>/training_output/mlruns.db`` (the training's scratch folder, which ``package``
    leaves out). A failing training ends the run FAILED with the error as its ``failure`` tag and re-raises.
    ``on_tracker`` sees the tracker before training starts (``tune`` reads its run id); ``after_training(result)``
    returns further final metrics (``tune``'s objective), merged into ``result.metrics`` and logged with them.
    Returns ``(TrainResult, run id or None)``.
    """
    from medigan_zoo.training.hyperparameters import read_hyperparameters
    from medigan_zoo.training.run import WORK_DIR, train_bundle

    kind = check_tracking(tracking)
    handlers = list(extra_handlers or [])
    if kind is None:
        result = train_bundle(bundle, data, output, extra_handlers=handlers, **train_kwargs)
        if after_training is not None:
            result.metrics.update(after_training(result))
        return result, None
    src = Path(bundle).expanduser().resolve()
    out = Path(output).expanduser().resolve() if output is not None else src
    overrides = dict(train_kwargs.get("overrides") or {})
    if train_kwargs.get("epochs") is not None:
        overrides["max_epochs"] = int(train_kwargs["epochs"])
    values = {h.name: h.default for h in read_hyperparameters(src)}
    params = run_params(values, {**overrides, "seed": train_kwargs.get("seed", 0), "data": str(data)})
    run_tags = {"bundle": src.name, "data": str(data), **({"resumed": "true"} if train_kwargs.get("resume") else {}),
                **dict(tags or {})}
    tracker = MlflowTracker(out / WORK_DIR, experiment=experiment or src.name, run_name=run_name or out.name,
                            params=params, tags=run_tags, uri=tracking_uri)
    if on_tracker is not None:
        on_tracker(tracker)
    try:
        result = train_bundle(src, data, output, extra_handlers=handlers + tracker.handlers(), **train_kwargs)
        if after_training is not None:
            result.metrics.update(after_training(result))
    except BaseException as err:
        if tracker.handler is not None:
            tracker.fail(describe(err))
        raise
    metrics = dict(result.metrics)
    metrics.update({"iterations": result.iterations, "wall_s": result.wall_s})
    return result, tracker.finish(result.bundle, metrics)
