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
PathLike = Union[str, os.PathLike]


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
    ``finish`` (or ``fail``)."""

    def __init__(self, output: PathLike, *, experiment: str, run_name: Optional[str] = None,
                 params: Optional[Mapping[str, Any]] = None, tags: Optional[Mapping[str, str]] = None,
                 uri: Optional[str] = None, samples_dir: Optional[PathLike] = None, iteration_every: int = 1):
        from monai.handlers import MLFlowHandler

        self.output = Path(output).expanduser().resolve()
        self.uri = tracking_uri(self.output, uri)
        self.samples_dir = Path(samples_dir) if samples_dir is not None else self.output
        self.tags = dict(tags or {})
        every = max(int(iteration_every), 1)
        self.handler = MLFlowHandler(
            tracking_uri=self.uri, experiment_name=experiment, run_name=run_name,
            experiment_param=dict(params or {}), output_transform=scalar_outputs,
            iteration_log=True if every == 1 else (lambda engine, iteration: iteration % every == 0),
            epoch_log=True, close_on_complete=False)
        self._tags = _RunTags(self)
        self._samples = SampleArtifacts(self.samples_dir, lambda p: self.log_artifact(p, "samples"))

    @property
    def client(self):
        return self.handler.client

    @property
    def run_id(self) -> Optional[str]:
        """The run's id once the trainer has started (``None`` before)."""
        run = self.handler.cur_run
        return None if run is None else run.info.run_id

    def _require_run(self) -> str:
        if self.run_id is None:  # finish without a started trainer: open the run now
            self.handler.start(_NoState())
        assert self.run_id is not None
        return self.run_id

    def log_artifact(self, path: Path, artifact_path: Optional[str] = None) -> None:
        self.client.log_artifact(self._require_run(), str(path), artifact_path)

    def handlers(self) -> List[Any]:
        """MONAI's ``MLFlowHandler`` (which also sets the run's tags at start) and the sample-grid artifact
        logger, for ``extra_handlers``."""
        return [self.handler, self._tags, self._samples]

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> None:
        """Log the finite numbers of ``metrics`` (nested dicts become dotted names)."""
        from medigan_zoo.catalog.metrics import flatten_metrics

        flat = {k: float(v) for k, v in flatten_metrics(dict(metrics)).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        if flat:
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


class _RunTags:
    """Sets the tracker's tags on its run when the trainer starts (after ``MLFlowHandler.start``)."""

    def __init__(self, tracker: MlflowTracker):
        self.tracker = tracker

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Any = None) -> None:
        run_id = self.tracker.run_id
        for key, value in self.tracker.tags.items():
            self.tracker.client.set_tag(run_id, key, str(value))


class _NoState:
    """A stand-in engine for ``MLFlowHandler.start`` when no trainer ran (its default parameters are then None)."""

    class state:  # noqa: N801 - the attribute ignite engines have
        pass
