"""Evaluate a bundle against its real data: FID (+ ratio), precision/recall/density/coverage, realism AUC,
downstream gain, memorization; optionally write the results into the bundle.

    >>> from medigan_zoo.evaluation import evaluate_bundle
    >>> report = evaluate_bundle("bundles/chest_xray_cdcgan", num_samples=2000, seed=0, write=False)
    >>> print(report.markdown())

Sample ``i`` uses seed ``medigan_zoo.core.seeding.sample_seed(seed, i)``; class-conditional models get labels with the
class proportions of the real training split (same labels for a given seed); every classifier, split and
permutation is seeded from ``seed``, and torch runs with deterministic algorithms, so a run is repeatable.
"""
from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from medigan_zoo.core.errors import MetricOverwriteError, ZooError
from medigan_zoo.evaluation.builtin_metrics import PIXEL_NORMALIZATION, classifier_normalization, memorization_distances  # noqa: F401 - re-exported names
from medigan_zoo.evaluation.classifiers import TrainConfig
from medigan_zoo.evaluation.data import RealData, load_reference
from medigan_zoo.evaluation.extractor_kinds import DEFAULT_EXTRACTOR, load_feature_extractor
from medigan_zoo.evaluation.features import FeatureExtractor, Normalization
from medigan_zoo.evaluation.metrics_registry import (
    FEATURE_NEEDS,
    EvaluationInputs,
    MetricContext,
    metric_group,
    metric_groups,
    parse_metrics,
    run_metric_groups,
)
from medigan_zoo.evaluation.report import metrics_markdown, write_results

#: the registered metric groups in run order (metrics_registry / builtin_metrics.py)
ALL_METRICS: Tuple[str, ...] = tuple(g.name for g in metric_groups())
DEFAULT_NUM_SAMPLES = 2000
#: kept for callers of the old private name
_Context = MetricContext


@contextlib.contextmanager
def deterministic(seed: int, num_threads: Optional[int] = None) -> Iterator[None]:
    """Seed python, numpy and torch, use deterministic torch algorithms; restore everything afterwards."""
    was_det = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % (2 ** 32))
        torch.use_deterministic_algorithms(True, warn_only=True)
        if num_threads:
            torch.set_num_threads(int(num_threads))
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was_det, warn_only=was_warn)
            torch.set_num_threads(threads)
            random.setstate(py_state)
            np.random.set_state(np_state)


@dataclass
class EvaluationReport:
    """What one evaluation measured: metric objects, extra figures (details) and timings (seconds)."""

    model_id: str
    metrics: List[Dict[str, Any]]
    details: Dict[str, Any] = field(default_factory=dict)
    timings: Dict[str, float] = field(default_factory=dict)
    written: bool = False
    bundle_dir: Optional[Path] = None

    def values(self) -> Dict[str, Any]:
        """metric name -> value."""
        return {m["name"]: m["value"] for m in self.metrics}

    def markdown(self) -> str:
        return metrics_markdown(self.metrics)

    def as_dict(self) -> Dict[str, Any]:
        return {"model_id": self.model_id, "metrics": self.metrics, "details": self.details,
                "timings": self.timings, "written": self.written,
                "bundle_dir": str(self.bundle_dir) if self.bundle_dir else None}


# --- metrics on image tensors --------------------------------------------------------------------

def feature_metrics(real: torch.Tensor, synthetic: torch.Tensor, extractor: FeatureExtractor,
                    groups: Union[str, Sequence[str]], ctx: MetricContext, reference_split: str, k: int = 5,
                    batch_size: int = 500, details: Optional[Dict[str, Any]] = None,
                    timings: Optional[Dict[str, float]] = None) -> List[Dict[str, Any]]:
    """The feature-based groups among ``groups`` (FID, FID ratio, PRDC, ...) of ``synthetic`` against ``real``
    images (both in [0, 1]) as metric objects."""
    inputs = EvaluationInputs(synthetic=synthetic, reference=RealData(real, None, reference_split), extractor=extractor,
                              k=k, feature_batch_size=batch_size,
                              details={} if details is None else details, timings={} if timings is None else timings)
    names = [g for g in parse_metrics(groups) if metric_group(g).needs <= FEATURE_NEEDS]
    return run_metric_groups(names, inputs, ctx)


def evaluate_images(real: torch.Tensor, synthetic: torch.Tensor,
                    metrics: Union[None, str, Sequence[str]] = ("fid", "fid_ratio", "prdc", "realism"),
                    seed: int = 0, feature_extractor: Union[None, str, FeatureExtractor] = None,
                    feature_weights: Optional[Union[str, Path]] = None,
                    normalization: Optional[Union[Normalization, Mapping[str, Any]]] = None, k: int = 5,
                    reference_name: str = "user images", classifier_epochs: int = 10, device: str = "cpu",
                    command: str = "medigan_zoo.evaluation.evaluate_images(...)") -> EvaluationReport:
    """The metric groups that need no more than features, images and a classifier (FID, FID ratio, PRDC, realism
    AUC) of any ``synthetic`` images against any ``real`` images ((N, C, *spatial) in [0, 1], same shape; ``real``
    is both the reference and the realism classifier's real side), e.g. for a model that is not a bundle. Groups
    that need more (real test split, labels) are left out; nothing is written."""
    ctx = MetricContext(seed=int(seed), command=command)
    real_data = RealData(real, None, reference_name)
    inputs = EvaluationInputs(
        synthetic=synthetic, reference=real_data, train=real_data, k=k,
        classifier=TrainConfig(epochs=int(classifier_epochs), size=16 if real.ndim == 5 else 32),
        loaders={"extractor": lambda: load_feature_extractor(feature_extractor, device, normalization,
                                                             feature_weights)})
    available = inputs.available()
    names = [g for g in parse_metrics(metrics) if metric_group(g).needs <= available]
    with deterministic(int(seed)):
        entries = run_metric_groups(names, inputs, ctx)
    return EvaluationReport(model_id="(images)", metrics=entries, details=inputs.details, timings=inputs.timings)


# --- bundles --------------------------------------------------------------------------------------

def _class_condition(info, labels: Optional[torch.Tensor]) -> Optional[str]:
    """Name of the model's single categorical condition whose values are the real class labels (else None)."""
    if labels is None:
        return None
    cats = [c for c in info.conditions if c.type == "categorical" and c.values]
    if len(cats) != 1:
        return None
    try:
        values = {int(v) for v in cats[0].values}
    except ValueError:
        return None
    return cats[0].name if set(torch.unique(labels).tolist()) <= values else None


def generate_pool(sampler, count: int, seed: int, labels: Optional[torch.Tensor], condition: Optional[str],
                  batch_size: int = 256) -> torch.Tensor:
    """``count`` samples in [0, 1] (N, C, *spatial), sample i from ``sample_seed(seed, i)`` with label ``labels[i]``
    for ``condition`` (other conditions: their defaults), through the runtime's one sample loop."""
    from medigan_zoo.runtime.sample import condition_plan, sample_all

    given: Dict[str, List[int]] = {}
    if condition is not None:
        assert labels is not None, "generate_pool: a condition needs its labels"
        given = {condition: [int(v) for v in labels[:count].tolist()]}
    plan = condition_plan(sampler, given)
    return torch.cat([b.normalized() for b in sample_all(sampler, range(count), plan, seed, batch_size)])


def _match_channels(real: RealData, channels: int) -> RealData:
    c = real.images.shape[1]
    if c == channels:
        return real
    if channels == 1 and c == 3:
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, *([1] * (real.images.ndim - 2)))
        real.images = (real.images * w).sum(1, keepdim=True)
    elif channels == 3 and c == 1:
        real.images = real.images.expand(-1, 3, *real.images.shape[2:]).contiguous()
    return real


def _held_out(test: RealData, train: Optional[RealData]) -> RealData:
    """The real test split without its near copies of training images (``evaluation.dedup``, the one rule)."""
    from medigan_zoo.evaluation.dedup import deduplicated

    return deduplicated(test, train) if train is not None else test


def build_command(model_id: str, options: Mapping[str, Any]) -> str:
    """The ``medigan-zoo evaluate`` command line reproducing a run (options left at their defaults omitted)."""
    parts = [f"medigan-zoo evaluate {model_id}"]
    for key, value in options.items():
        if value is None or value is False:
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        parts.append(f"--{key}" if value is True else f"--{key} {value}")
    return " ".join(parts)


def evaluate_bundle(bundle: Union[str, Path], metrics: Union[None, str, Sequence[str]] = None,
                    num_samples: int = DEFAULT_NUM_SAMPLES, seed: int = 0, reference_split: str = "test",
                    train_split: str = "train", data_dir: Optional[Union[str, Path]] = None,
                    feature_extractor: Union[None, str, FeatureExtractor] = None,
                    feature_weights: Optional[Union[str, Path]] = None,
                    normalization: Optional[Union[Normalization, Mapping[str, Any]]] = None,
                    k: int = 5, batch_size: int = 256, device: Optional[str] = "cpu",
                    downstream_samples: Optional[int] = None, classifier_epochs: int = 10,
                    realism_max_per_class: Optional[int] = None, name_suffix: str = "",
                    write: bool = True, command: Optional[str] = None, num_threads: Optional[int] = 1,
                    model_id: Optional[str] = None, force: bool = False, log=print,
                    trusted: Any = None, options: Optional[Mapping[str, Any]] = None) -> EvaluationReport:
    """Evaluate the bundle at ``bundle`` (a folder) against the real data it was trained on.

    Args:
        metrics: groups to compute ("all" or names of registered metric groups, see builtin_metrics.py; groups that
            need labels, such as "downstream", run only for class-conditional models).
        num_samples: synthetic samples for FID / PRDC / realism / memorization.
        reference_split: real split FID and PRDC compare against (MedMNIST "train"/"val"/"test", "a+b" joins).
        train_split: real split the model was trained on (realism classifier, downstream training, memorization).
        data_dir: shared data folder (default $MEDIGAN_ZOO_DATA or ../shared/data beside the repo).
        feature_extractor: extractor bundle id/folder, TorchScript file, "torchvision:NAME" (+ feature_weights), or
            a FeatureExtractor; default the zoo's medmnist_feature_extractor.
        normalization: Normalization or dict of overrides of the extractor's own (size, resize_mode, channels,
            intensity, slices_3d).
        k: nearest neighbours for precision/recall/density/coverage.
        downstream_samples: synthetic training images of the downstream classifier (default: as many as the real
            training split).
        name_suffix: appended to every metric name (e.g. "@inception" to keep a second FID beside the default one).
        write: write the metrics into configs/metadata.json and docs/README.md (False = dry run).
        force: replace stored metrics even where they were measured with more samples than this run. Without it
            such a write raises MetricOverwriteError (one line naming each metric and both sample counts; nothing
            is written; the error's ``report`` holds this run's measurements).
        command: the command line recorded with each metric (default: the equivalent ``medigan-zoo evaluate``).
        num_threads: torch CPU threads during the run (default 1: fastest on a shared CPU, and the thread count
            the stored reference figures were measured with; None leaves it as is).
        options: sampling options declared in the bundle's zoo block (e.g. ``{"num_inference_steps": 10}`` for a
            diffusion model), checked like ``generate``'s; recorded in the command. None: the bundle's defaults.
    """
    from medigan_zoo.runtime.bundle import load_bundle_sampler

    groups = parse_metrics(metrics)
    bundle_dir = Path(bundle).expanduser().resolve()
    timings: Dict[str, float] = {}
    details: Dict[str, Any] = {}
    t_start = time.perf_counter()
    sampler = load_bundle_sampler(bundle_dir, device=device, trusted=trusted, options=dict(options or {}))
    info = sampler.info
    model_id = model_id or info.id
    if info.zoo.get("role") == "feature_extractor":
        raise ZooError(f"{model_id} is a feature extractor, not a generator; there is nothing to evaluate.")
    names = list(info.zoo.get("dataset") or [])
    shape = list(sampler.spatial_shape)
    options = {"num_samples": num_samples, "seed": seed, "metrics": ",".join(groups), **dict(options or {})}
    if reference_split != "test":
        options["reference_split"] = reference_split
    if train_split != "train":
        options["train_split"] = train_split
    if isinstance(feature_extractor, (str, Path)) and str(feature_extractor) != DEFAULT_EXTRACTOR:
        options["feature_extractor"] = str(feature_extractor)
    if feature_weights:
        options["feature_weights"] = str(feature_weights)
    if isinstance(normalization, Mapping):
        options.update({f"norm_{key}": v for key, v in normalization.items() if v is not None})
    if k != 5:
        options["k"] = k
    if downstream_samples:
        options["downstream_samples"] = downstream_samples
    if classifier_epochs != 10:
        options["classifier_epochs"] = classifier_epochs
    if realism_max_per_class:
        options["realism_max_per_class"] = realism_max_per_class
    if name_suffix:
        options["name_suffix"] = name_suffix
    ctx = MetricContext(seed=int(seed), command=command or build_command(model_id, options), suffix=name_suffix)

    selected = [metric_group(g) for g in groups]
    with deterministic(int(seed), num_threads):
        reference = _match_channels(load_reference(names, reference_split, data_dir, shape), sampler.num_channels)
        need_train = any("train_images" in g.needs for g in selected)
        train = _match_channels(load_reference(names, train_split, data_dir, shape), sampler.num_channels) \
            if need_train else None
        label_source = train if train is not None else reference
        condition = _class_condition(info, label_source.labels)
        if condition is None and any("labels" in g.needs for g in selected):
            log(f"{model_id}: no class condition matching the real labels, "
                f"{', '.join(g.name for g in selected if 'labels' in g.needs)} skipped")
            selected = [g for g in selected if "labels" not in g.needs]
        n_labelled = 0
        if any("labels" in g.needs for g in selected):
            assert train is not None
            n_labelled = int(downstream_samples or len(train))
        pool_size = max(int(num_samples), n_labelled)
        labels = None
        num_classes = None
        if condition is not None:
            from medigan_zoo.evaluation.downstream import labels_like

            assert label_source.labels is not None  # _class_condition found no condition without labels
            labels = labels_like(label_source.labels, pool_size, seed)
            num_classes = len(next(c for c in info.conditions if c.name == condition).values)
        t0 = time.perf_counter()
        pool = generate_pool(sampler, pool_size, int(seed), labels, condition, batch_size)
        timings["generate"] = time.perf_counter() - t0
        synthetic = pool[:num_samples]
        log(f"{model_id}: {pool_size} samples generated in {timings['generate']:.1f} s; reference "
            f"{reference.name} ({len(reference)} images)")
        inputs = EvaluationInputs(
            synthetic=synthetic, reference=reference, train=train,
            labelled_synthetic=(pool[:n_labelled], labels[:n_labelled]) if n_labelled and labels is not None else None,
            synthetic_labels=labels[:num_samples] if labels is not None else None,
            num_classes=num_classes, k=k,
            classifier=TrainConfig(epochs=int(classifier_epochs), size=16 if len(shape) == 3 else 32),
            realism_max_per_class=realism_max_per_class, details=details, timings=timings,
            loaders={"extractor": lambda: load_feature_extractor(feature_extractor, device or "cpu", normalization,
                                                                 feature_weights, trusted=trusted),
                     "test": lambda: _held_out(_match_channels(load_reference(names, "test", data_dir, shape),
                                                               sampler.num_channels), train)})
        for group in selected:
            reason = group.not_applicable(inputs)
            if reason:
                log(f"{model_id}: {group.name} skipped ({reason})")
        entries = run_metric_groups([g.name for g in selected], inputs, ctx)
    timings["total"] = time.perf_counter() - t_start
    report = EvaluationReport(model_id=model_id, metrics=entries, details=details, timings=timings,
                              bundle_dir=bundle_dir)
    if write:
        try:
            write_results(bundle_dir, entries, force=force)
        except MetricOverwriteError as err:
            err.report = report
            raise
        report.written = True
    return report
