"""``medigan-zoo tune``: an Optuna study over the hyperparameters a bundle's recipe declares, each trial a real
(short) training through ``train_bundle``, scored by the zoo's own evaluation on the validation split.

- **Search space**: ``training.hyperparameters.read_hyperparameters`` (the list ``medigan-zoo hyperparameters``
  shows), minus the ids fixed for every trial (``overrides``, ``max_epochs`` from ``epochs``), optionally narrowed
  to ``params``. float/int -> ``suggest_float``/``suggest_int`` (``log`` kept); categorical -> ``suggest_categorical``
  over the choices as JSON text (Optuna stores plain values only), decoded back.
- **Objective** (``OBJECTIVES``): ``fid_ratio`` (medigan's FID ratio, higher is better) or ``realism_auc`` (held-out
  AUC of a real-vs-synthetic classifier, lower is better), measured by ``evaluation.evaluate.evaluate_bundle`` on the
  data set's ``val`` split (``reference_split`` and, for realism, the classifier's real images), the study's
  direction taken from ``catalog.metrics.metric_direction``.
- **Pruning**: after every ``prune_every`` epochs the trainer's current generator is written into the trial's bundle
  and the same objective is measured with ``prune_samples`` samples; ``optuna_integration``'s
  ``PyTorchIgnitePruningHandler`` reports it at that epoch and raises ``TrialPruned`` when Optuna's
  ``MedianPruner`` (``n_startup_trials=2``, ``n_warmup_steps=1``) says so.
- **Tracking**: every trial is one MLflow run (``training.tracking``) named ``trial-<number>`` in the experiment
  ``tune-<study name>``: its parameters, losses, grids, objective and bundle; a pruned or failed trial's run ends
  FAILED with the reason as its ``failure`` tag. The trial's user attributes hold the run id and its bundle folder.
- **Resuming**: the study lives in ``storage`` (default ``sqlite:///<work>/study.db``) under ``study_name``
  (default ``<bundle>-<objective>``); running again with the same storage and name continues it, keeping every
  finished trial. ``n_trials`` is the number of finished (complete or pruned) trials the study should have: a run
  adds only the missing ones. Trials left RUNNING by a killed process are marked FAIL at the start.
- **Write-back** (``write=True``): the best trial's values become the recipe's defaults (the top-level values in
  ``configs/train.json``), ``metadata.json`` gets a patch version and a changelog entry naming the study, and the
  card (``docs/README.md``) a "Hyperparameter search" section with the study summary (replaced on the next tune).

Trials train into ``<work>/trials/trial_NNN`` (``work`` default: ``<bundle>/training_output/tune``, the scratch
folder ``package`` leaves out).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from medigan_zoo.catalog.metrics import metric_direction
from medigan_zoo.core.errors import ZooError
from medigan_zoo.training.hyperparameters import Hyperparameter, read_hyperparameters

PathLike = Union[str, Path]

#: --objective -> (metric group of the zoo's evaluation, metric name it writes)
OBJECTIVES: Dict[str, tuple] = {"fid_ratio": ("fid_ratio", "FID_ratio"), "realism_auc": ("realism", "realism_AUC")}
#: name prefix of the intermediate objective in the trainer's metrics (MONAI's MLFlowHandler logs it per epoch)
PRUNING_PREFIX = "pruning/"
#: the split every objective is measured on
VALIDATION_SPLIT = "val"
#: the card section tune writes (between these markers)
CARD_BEGIN, CARD_END = "<!-- medigan-zoo tune: begin -->", "<!-- medigan-zoo tune: end -->"


@dataclass
class TuneResult:
    """What ``tune`` did: the study, its best trial and where it was written."""

    study_name: str
    storage: str
    objective: str
    direction: str
    n_complete: int
    n_pruned: int
    n_failed: int
    best_number: Optional[int]
    best_value: Optional[float]
    best_params: Dict[str, Any]
    tracking_uri: Optional[str]
    written: bool
    defaults_changed: bool = False

    def lines(self) -> List[str]:
        out = [f"study {self.study_name} in {self.storage}: {self.n_complete} complete, {self.n_pruned} pruned, "
               f"{self.n_failed} failed; objective {self.objective} ({self.direction} is better) on the "
               f"{VALIDATION_SPLIT} split"]
        if self.best_number is not None:
            out.append(f"best trial {self.best_number}: {self.objective} {self.best_value:.4g} with "
                       + ", ".join(f"{k}={v}" for k, v in self.best_params.items()))
        if self.written and self.defaults_changed:
            out.append("best parameters written as the recipe's defaults (configs/train.json), changelog and card "
                       "updated")
        elif self.written:
            out.append("the recipe's defaults already are the best parameters; the card's study summary updated")
        if self.tracking_uri:
            out.append(f"trials tracked in MLflow: {self.tracking_uri} (experiment tune-{self.study_name})")
        return out


def check_objective(objective: str) -> str:
    name = str(objective).strip().lower()
    if name not in OBJECTIVES:
        raise ZooError(f"--objective {objective!r} is not known; use one of: {', '.join(OBJECTIVES)}.")
    return name


def search_space(bundle: PathLike, fixed: Mapping[str, Any], params: Optional[Sequence[str]] = None
                 ) -> List[Hyperparameter]:
    """The declared hyperparameters tune searches: not fixed, and among ``params`` when given (unknown names raise
    ZooError listing the declared ones)."""
    declared = read_hyperparameters(bundle)
    names = [h.name for h in declared]
    if params:
        unknown = [p for p in params if p not in names]
        if unknown:
            raise ZooError(f"--params: {', '.join(unknown)} not declared by {Path(bundle).name}'s recipe; declared: "
                           f"{', '.join(names) or 'none'} (`medigan-zoo hyperparameters {bundle}`).")
    space = [h for h in declared if h.name not in fixed and (not params or h.name in params)]
    if not space:
        raise ZooError(f"tune: nothing to search in {Path(bundle).name}: every declared hyperparameter is fixed or "
                       "left out; drop a fixed value or name one with --params.")
    return space


def suggest(trial: Any, space: Sequence[Hyperparameter]) -> Dict[str, Any]:
    """The trial's values for ``space`` (categorical choices go through JSON text and come back decoded)."""
    values: Dict[str, Any] = {}
    for h in space:
        if h.type == "float":
            values[h.name] = trial.suggest_float(h.name, float(h.low), float(h.high), log=h.log)  # type: ignore[arg-type]
        elif h.type == "int":
            values[h.name] = trial.suggest_int(h.name, int(h.low), int(h.high), log=h.log)  # type: ignore[arg-type]
        else:
            text = trial.suggest_categorical(h.name, [json.dumps(c) for c in h.choices or []])
            values[h.name] = json.loads(text)
    return values


def decode(space: Sequence[Hyperparameter], params: Mapping[str, Any]) -> Dict[str, Any]:
    """Optuna's stored params -> recipe values (categorical JSON text decoded)."""
    kinds = {h.name: h.type for h in space}
    return {k: json.loads(v) if kinds.get(k) == "categorical" else v for k, v in params.items()}


def measure(bundle: Path, objective: str, data_dir: Path, num_samples: int, trusted: Any,
            classifier_epochs: int = 3) -> float:
    """The objective of the bundle at ``bundle`` on the validation split (``evaluate_bundle``, nothing written)."""
    from medigan_zoo.evaluation.evaluate import evaluate_bundle

    group, name = OBJECTIVES[objective]
    report = evaluate_bundle(bundle, metrics=group, num_samples=int(num_samples), seed=0,
                             reference_split=VALIDATION_SPLIT, train_split=VALIDATION_SPLIT, data_dir=data_dir,
                             write=False, trusted=trusted, classifier_epochs=int(classifier_epochs),
                             log=lambda *a, **k: None)
    value = report.values().get(name)
    if not isinstance(value, (int, float)):
        raise ZooError(f"tune: the evaluation of {bundle} gave no {name}; check the data set's "
                       f"{VALIDATION_SPLIT} split.")
    return float(value)


class EpochPruning:
    """Ignite handler: every ``every`` epochs, the trainer's generator -> the trial bundle's ``models/model.pt``,
    the objective measured with fewer samples into ``trainer.state.metrics["pruning/<objective>"]`` (so MONAI's
    ``MLFlowHandler`` logs it at that epoch), then
    ``PyTorchIgnitePruningHandler`` reports it (and raises ``optuna.TrialPruned`` when the pruner says so)."""

    def __init__(self, trial: Any, objective: str, bundle: Path, measure_fn: Callable[[Path], float],
                 every: int = 1):
        self.trial, self.objective, self.bundle, self.measure_fn = trial, objective, bundle, measure_fn
        self.every = max(int(every), 1)
        self.name = f"{PRUNING_PREFIX}{objective}"  # apart from the final value (MLflow logs both)
        self.reported: List[tuple] = []

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events
        from optuna_integration import PyTorchIgnitePruningHandler

        self.pruner = PyTorchIgnitePruningHandler(self.trial, self.name, engine)
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self)
        engine.add_event_handler(Events.STARTED, self._attach_check)

    def _attach_check(self, engine: Any) -> None:
        """The pruning check runs after every handler attached before the run (MONAI's ``MLFlowHandler`` logs the
        epoch's value first, so a pruned trial's run keeps it)."""
        from ignite.engine import Events

        if not getattr(self, "_check_attached", False):
            self._check_attached = True
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self.pruner)

    def __call__(self, engine: Any) -> None:
        import torch

        network = getattr(engine, "g_network", None) or getattr(engine, "network")
        state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
        torch.save(state, self.bundle / "models" / "model.pt")
        value = self.measure_fn(self.bundle)
        engine.state.metrics[self.name] = value
        self.reported.append((engine.state.epoch, value))


def default_work_dir(bundle: Path) -> Path:
    from medigan_zoo.training.run import WORK_DIR

    return bundle / WORK_DIR / "tune"


def _fail_stale(study: Any) -> int:
    """Mark RUNNING trials (left by a killed process; one tune runs a study at a time) FAIL; return how many."""
    import optuna

    stale = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
    for t in stale:
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
    return len(stale)


def tune(bundle: PathLike, data: PathLike, n_trials: int = 10, *, storage: Optional[str] = None,
         study_name: Optional[str] = None, timeout: Optional[float] = None, objective: str = "fid_ratio",
         params: Optional[Sequence[str]] = None, epochs: Optional[int] = None,
         overrides: Optional[Mapping[str, Any]] = None, objective_samples: int = 256, prune_samples: int = 64,
         prune_every: int = 1, pruning: bool = True, classifier_epochs: int = 3, seed: int = 0,
         tracking: Optional[str] = "mlflow", tracking_uri: Optional[str] = None, work_dir: Optional[PathLike] = None,
         write: bool = True, trusted: Any = None, extra_handlers: Optional[Callable[[Any], List[Any]]] = None,
         progress: bool = False) -> TuneResult:
    """Run (or continue) the study of ``bundle`` on ``data`` until it has ``n_trials`` finished trials or
    ``timeout`` seconds pass (module docstring). ``extra_handlers(trial)`` adds handlers to a trial's training
    (tests use it to interrupt one)."""
    import optuna

    from medigan_zoo.catalog.trust import check_trusted
    from medigan_zoo.training.run import resolve_data
    from medigan_zoo.training.tracking import check_tracking, root_cause, train_tracked
    from medigan_zoo.training.tracking import tracking_uri as resolve_uri

    src = Path(bundle).expanduser().resolve()
    if not (src / "configs" / "train.json").is_file():
        raise ZooError(f"tune: {src} has no configs/train.json: nothing to train.")
    check_trusted(src, trusted)
    objective = check_objective(objective)
    kind = check_tracking(tracking)
    if int(n_trials) < 1:
        raise ZooError(f"tune: --n_trials must be at least 1, got {n_trials}.")
    npz = resolve_data(data)
    fixed: Dict[str, Any] = dict(overrides or {})
    if epochs is not None:
        fixed["max_epochs"] = int(epochs)
    space = search_space(src, fixed, params)
    metric = OBJECTIVES[objective][1]
    direction = metric_direction(metric)
    work = Path(work_dir).expanduser().resolve() if work_dir else default_work_dir(src)
    work.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{work / 'study.db'}"
    study_name = study_name or f"{src.name}-{objective}"
    uri = resolve_uri(work, tracking_uri) if kind else None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(study_name=study_name, storage=storage, load_if_exists=True,
                                    direction="maximize" if direction == "higher" else "minimize",
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    except ValueError as err:  # e.g. an existing study of the other direction
        raise ZooError(f"tune: cannot use study {study_name!r} in {storage}: {err}") from None
    if study.user_attrs.get("objective", objective) != objective:
        raise ZooError(f"tune: study {study_name!r} in {storage} measures {study.user_attrs['objective']}, not "
                       f"{objective}; pass another --study_name.")
    # a continued study must not replay the first run's draws: the sampler's seed moves on with the trials
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.get_trials(deepcopy=False)))
    study.set_user_attr("objective", objective)
    study.set_user_attr("bundle", src.name)
    _fail_stale(study)
    user_trusted = [] if trusted in (None, True, False) else (
        [trusted] if isinstance(trusted, (str, Path)) else list(trusted))

    def run_trial(trial: Any) -> float:
        values = suggest(trial, space)
        out = work / "trials" / f"trial_{trial.number:03d}"
        trust = [out, *user_trusted]
        trial.set_user_attr("bundle", str(out))
        handlers: List[Any] = list(extra_handlers(trial) if extra_handlers else [])
        if pruning:
            handlers.append(EpochPruning(trial, metric, out, lambda b: measure(
                b, objective, npz.parent, prune_samples, trust, classifier_epochs), every=prune_every))
        trackers: List[Any] = []
        try:
            result, _ = train_tracked(
                src, npz, out, tracking=kind, tracking_uri=uri, experiment=f"tune-{study_name}",
                run_name=f"trial-{trial.number}", tags={"study": study_name, "trial": str(trial.number)},
                extra_handlers=handlers, on_tracker=trackers.append, epochs=epochs, overrides={**fixed, **values},
                seed=seed, progress=progress, evaluate=False, trusted=trusted,
                after_training=lambda res: {metric: measure(res.bundle, objective, npz.parent, objective_samples,
                                                            trust, classifier_epochs)})
        except Exception as err:
            cause = root_cause(err)
            if isinstance(cause, optuna.TrialPruned):
                raise cause from None  # monai.bundle wrapped it: Optuna must see the pruning itself
            raise
        finally:
            if trackers and trackers[0].last_run_id:
                trial.set_user_attr("mlflow_run_id", trackers[0].last_run_id)
        return float(result.metrics[metric])

    def objective_fn(trial: Any) -> float:
        return run_trial(trial)

    done = _finished(study)
    missing = int(n_trials) - done
    if missing > 0:
        study.optimize(objective_fn, n_trials=missing, timeout=timeout, catch=())
    return _summarize(study, src, space, objective, metric, direction, storage, uri, write)


def _finished(study: Any) -> int:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state in states)


def _summarize(study: Any, src: Path, space: Sequence[Hyperparameter], objective: str, metric: str, direction: str,
               storage: str, uri: Optional[str], write: bool) -> TuneResult:
    import optuna

    trials = study.get_trials(deepcopy=False)
    count = {s: sum(1 for t in trials if t.state == s) for s in optuna.trial.TrialState}
    complete = count[optuna.trial.TrialState.COMPLETE]
    best = study.best_trial if complete else None
    best_params = decode(space, best.params) if best else {}
    written = changed = False
    if write and best is not None:
        changed = write_back(src, study, best, best_params, metric, direction)
        written = True
    return TuneResult(study.study_name, storage, metric, direction, complete,
                      count[optuna.trial.TrialState.PRUNED], count[optuna.trial.TrialState.FAIL],
                      best.number if best else None, float(best.value) if best else None, best_params, uri, written,
                      changed)


def _bump_patch(version: str) -> str:
    parts = (str(version or "0.0.0").split(".") + ["0", "0"])[:3]
    try:
        return f"{int(parts[0])}.{int(parts[1])}.{int(parts[2]) + 1}"
    except ValueError:
        return f"{version}.1"


def study_summary(study: Any, metric: str, direction: str, space_names: Sequence[str]) -> str:
    """The card section: the study, its best trial and a table of every trial (markdown, between the markers)."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    best = study.best_trial
    lines = [CARD_BEGIN, "## Hyperparameter search", "",
             f"`medigan-zoo tune` study `{study.study_name}` (Optuna {optuna.__version__}, TPE sampler, median "
             f"pruner): {len(trials)} trials, objective {metric} ({direction} is better) on the "
             f"{VALIDATION_SPLIT} split. Best trial {best.number}: {metric} {best.value:.4g}; its values are this "
             "recipe's defaults in configs/train.json.", "",
             "| trial | state | " + " | ".join(space_names) + f" | {metric} |",
             "|---|---|" + "---|" * len(space_names) + "---|"]
    for t in trials:
        cells = [str(t.params.get(n, "")) for n in space_names]
        value = f"{t.value:.4g}" if t.value is not None else ""
        lines.append(f"| {t.number} | {t.state.name.lower()} | " + " | ".join(cells) + f" | {value} |")
    lines.append(CARD_END)
    return "\n".join(lines)


def write_back(bundle: Path, study: Any, best: Any, best_params: Mapping[str, Any], metric: str,
               direction: str) -> bool:
    """Best values -> ``configs/train.json`` top-level ids with a patch version and changelog entry (when they
    change the defaults); the card section (always: it lists every trial). Returns whether the defaults changed."""
    train_path = bundle / "configs" / "train.json"
    config = json.loads(train_path.read_text(encoding="utf-8"))
    changed = any(config.get(name) != value for name, value in best_params.items())
    if changed:
        for name, value in best_params.items():
            config[name] = value
        train_path.write_text(json.dumps(config, indent=4) + "\n", encoding="utf-8")
        _changelog(bundle, study, best, best_params, metric)
    card = bundle / "docs" / "README.md"
    section = study_summary(study, metric, direction, list(best_params))
    text = card.read_text(encoding="utf-8") if card.is_file() else f"# {bundle.name}\n"
    pattern = re.compile(re.escape(CARD_BEGIN) + ".*?" + re.escape(CARD_END), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    return changed


def _changelog(bundle: Path, study: Any, best: Any, best_params: Mapping[str, Any], metric: str) -> None:
    """A patch version and its changelog entry naming the study (only when the defaults changed)."""
    meta_path = bundle / "configs" / "metadata.json"
    metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    version = _bump_patch(str(metadata.get("version", "0.0.0")))
    values = ", ".join(f"{k} {v}" for k, v in best_params.items())
    metadata["version"] = version
    metadata["changelog"] = {version: f"training defaults from `medigan-zoo tune` study {study.study_name} (best "
                                      f"of {len(study.trials)} trials, {metric} {best.value:.4g} on the "
                                      f"{VALIDATION_SPLIT} split, {time.strftime('%Y-%m-%d', time.gmtime())}): "
                                      f"{values}; the weights are unchanged",
                             **(metadata.get("changelog") or {})}
    meta_path.write_text(json.dumps(metadata, indent=4) + "\n", encoding="utf-8")
