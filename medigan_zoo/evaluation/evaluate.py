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

from medigan_zoo.core.errors import ZooError
from medigan_zoo.core.seeding import sample_seeds
from medigan_zoo.evaluation.classifiers import TrainConfig
from medigan_zoo.evaluation.data import RealData, load_reference
from medigan_zoo.evaluation.features import DEFAULT_EXTRACTOR, FeatureExtractor, Normalization, load_feature_extractor
from medigan_zoo.evaluation.fid import fid_from_features, fid_ratio
from medigan_zoo.evaluation.prdc import precision_recall_density_coverage
from medigan_zoo.evaluation.report import metric_entry, metrics_markdown, write_results

ALL_METRICS: Tuple[str, ...] = ("fid", "fid_ratio", "prdc", "realism", "downstream", "memorization")
DEFAULT_NUM_SAMPLES = 2000
def classifier_normalization(size: int, dims: int) -> str:
    """How the realism / downstream classifiers see the images (recorded with their metrics)."""
    return f"[-1,1], resize to {'x'.join([str(size)] * dims)} (area when shrinking, else {'bi' if dims == 2 else 'tri'}linear)"
PIXEL_NORMALIZATION = "pixels in [0,1] at the model's resolution"


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


def parse_metrics(metrics: Union[None, str, Sequence[str]]) -> Tuple[str, ...]:
    """``"all"``, a comma list or a sequence -> known metric groups in canonical order."""
    if metrics is None or metrics == "all":
        return ALL_METRICS
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if str(m).strip()]
    names = ["prdc" if n in ("precision", "recall", "pr") else n for n in names]
    unknown = sorted(set(names) - set(ALL_METRICS))
    if unknown:
        raise ZooError(f"Unknown metric group(s) {unknown}; choose from {', '.join(ALL_METRICS)} or 'all'.")
    return tuple(m for m in ALL_METRICS if m in names)


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

def memorization_distances(synthetic: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> Dict[str, float]:
    """Mean nearest-neighbour L2 distance (pixels) to the training images of the synthetic and of held-out real
    images, and their ratio (``medigan_zoo.evaluation.memorization``)."""
    from medigan_zoo.evaluation.memorization import memorization_report

    res = memorization_report(synthetic, train, test)
    return {"synthetic_to_train": res["nn_l2_synthetic_to_train"], "real_test_to_train": res["nn_l2_test_to_train"],
            "ratio": res["nn_l2_ratio"]}


def _direction(name: str) -> str:
    return "lower" if name.split(".")[0] in ("FID", "realism_AUC") else "higher"


@dataclass
class _Context:
    """Fields shared by the metric objects of one run."""

    seed: int
    command: str
    suffix: str = ""

    def entry(self, name: str, value: Any, **fields: Any) -> Dict[str, Any]:
        return metric_entry(name + self.suffix, value, _direction(name), seed=self.seed, command=self.command,
                            **fields)


def feature_metrics(real: torch.Tensor, synthetic: torch.Tensor, extractor: FeatureExtractor,
                    groups: Sequence[str], ctx: _Context, reference_split: str, k: int = 5,
                    batch_size: int = 500, details: Optional[Dict[str, Any]] = None,
                    timings: Optional[Dict[str, float]] = None) -> List[Dict[str, Any]]:
    """FID, FID ratio and PRDC of ``synthetic`` against ``real`` images (both in [0, 1]) as metric objects."""
    details = {} if details is None else details
    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    f_real = extractor(real, batch_size)
    f_syn = extractor(synthetic, batch_size)
    timings["features"] = time.perf_counter() - t0
    common = dict(feature_extractor=extractor.name, reference_split=reference_split,
                  normalization=extractor.describe(tuple(real.shape[2:]), int(real.shape[1])))
    out = []
    t0 = time.perf_counter()
    if "fid" in groups:
        out.append(ctx.entry("FID", fid_from_features(f_syn, f_real), num_samples=len(f_syn), **common))
    if "fid_ratio" in groups:
        ratio, rr, rs = fid_ratio(f_real, f_syn, seed=ctx.seed)
        details.update(FID_real_a_vs_real_b=rr, FID_real_a_vs_synthetic=rs)
        m = min(len(f_real) // 2, len(f_syn))
        out.append(ctx.entry("FID_ratio", ratio, num_samples=m, **common,
                             note=f"FID(real_a, real_b) / FID(real_a, synthetic) with real_a = half of {len(f_real)} "
                                  f"real, real_b and synthetic {m} each; 1.0 = ideal; FID(real_a, real_b) = {rr:.4g}"))
    timings["fid"] = time.perf_counter() - t0
    if "prdc" in groups:
        t0 = time.perf_counter()
        prdc = precision_recall_density_coverage(f_real, f_syn, k=k)
        for name, value in prdc.items():
            out.append(ctx.entry(name, value, num_samples=len(f_syn), **common, note=f"k={k} nearest neighbours"))
        timings["prdc"] = time.perf_counter() - t0
    return out


def evaluate_images(real: torch.Tensor, synthetic: torch.Tensor,
                    metrics: Union[None, str, Sequence[str]] = ("fid", "fid_ratio", "prdc", "realism"),
                    seed: int = 0, feature_extractor: Union[None, str, FeatureExtractor] = None,
                    feature_weights: Optional[Union[str, Path]] = None,
                    normalization: Optional[Union[Normalization, Mapping[str, Any]]] = None, k: int = 5,
                    reference_name: str = "user images", classifier_epochs: int = 10, device: str = "cpu",
                    command: str = "medigan_zoo.evaluation.evaluate_images(...)") -> EvaluationReport:
    """FID, FID ratio, PRDC and realism AUC of any ``synthetic`` images against any ``real`` images
    ((N, C, *spatial) in [0, 1], same shape), e.g. for a model that is not a bundle. Nothing is written."""
    groups = [g for g in parse_metrics(metrics) if g in ("fid", "fid_ratio", "prdc", "realism")]
    ctx = _Context(seed=int(seed), command=command)
    details: Dict[str, Any] = {}
    timings: Dict[str, float] = {}
    entries: List[Dict[str, Any]] = []
    with deterministic(int(seed)):
        if {"fid", "fid_ratio", "prdc"} & set(groups):
            extractor = load_feature_extractor(feature_extractor, device, normalization, feature_weights)
            entries += feature_metrics(real, synthetic, extractor, groups, ctx, reference_name, k=k, details=details,
                                       timings=timings)
        if "realism" in groups:
            from medigan_zoo.evaluation.realism import realism_auc

            size = 16 if real.ndim == 5 else 32
            res = realism_auc(real, synthetic, seed=int(seed), config=TrainConfig(epochs=int(classifier_epochs),
                                                                                   size=size))
            details["realism"] = res
            entries.append(ctx.entry("realism_AUC", res["auc"], num_samples=res["n_train"] // 2 + res["n_test"] // 2,
                                     feature_extractor="SmallCNN real-vs-synthetic classifier trained per run",
                                     normalization=classifier_normalization(size, real.ndim - 2),
                                     reference_split=reference_name))
    return EvaluationReport(model_id="(images)", metrics=entries, details=details, timings=timings)


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
    for ``condition`` (other conditions: their defaults)."""
    from medigan_zoo.engine.conditions import resolve_conditions

    plan = resolve_conditions([c for c in sampler.conditions if c.name != condition], None, sampler.model_id)
    out = []
    for start in range(0, count, batch_size):
        stop = min(count, start + batch_size)
        conds = plan.tensors([plan.at(i) for i in range(start, stop)], sampler.device) if plan.specs else {}
        if condition is not None:
            conds[condition] = labels[start:stop].to(sampler.device)
        images = sampler(sample_seeds(seed, start, stop), conds or None)["image"]
        images = sampler.normalized("image", images)
        if sampler.spatial_order == "monai":  # foreign bundles: MONAI's (x, y[, z]) -> rows, columns
            images = images.transpose(-1, -2)
        out.append(images)
    return torch.cat(out)


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
                    model_id: Optional[str] = None, log=print, trusted: Any = None) -> EvaluationReport:
    """Evaluate the bundle at ``bundle`` (a folder) against the real data it was trained on.

    Args:
        metrics: groups to compute ("all" or a subset of ALL_METRICS; "downstream" only for class-conditional models).
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
        command: the command line recorded with each metric (default: the equivalent ``medigan-zoo evaluate``).
        num_threads: torch CPU threads during the run (default 1: fastest on a shared CPU, and the thread count
            the stored reference figures were measured with; None leaves it as is).
    """
    from medigan_zoo.engine import load_bundle_sampler

    groups = parse_metrics(metrics)
    bundle_dir = Path(bundle).expanduser().resolve()
    timings: Dict[str, float] = {}
    details: Dict[str, Any] = {}
    t_start = time.perf_counter()
    sampler = load_bundle_sampler(bundle_dir, device=device, trusted=trusted)
    info = sampler.info
    model_id = model_id or info.id
    if info.zoo.get("role") == "feature_extractor":
        raise ZooError(f"{model_id} is a feature extractor, not a generator; there is nothing to evaluate.")
    names = list(info.zoo.get("dataset") or [])
    shape = list(sampler.spatial_shape)
    options = {"num_samples": num_samples, "seed": seed, "metrics": ",".join(groups)}
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
    ctx = _Context(seed=int(seed), command=command or build_command(model_id, options), suffix=name_suffix)

    with deterministic(int(seed), num_threads):
        reference = _match_channels(load_reference(names, reference_split, data_dir, shape), sampler.num_channels)
        need_train = bool({"realism", "downstream", "memorization"} & set(groups))
        train = _match_channels(load_reference(names, train_split, data_dir, shape), sampler.num_channels) \
            if need_train else None
        label_source = train if train is not None else reference
        condition = _class_condition(info, label_source.labels)
        if "downstream" in groups and condition is None:
            log(f"{model_id}: no class condition matching the real labels, downstream gain skipped")
            groups = tuple(g for g in groups if g != "downstream")
        n_down = 0
        if "downstream" in groups:
            n_down = int(downstream_samples or len(train))
        pool_size = max(int(num_samples), n_down)
        labels = None
        if condition is not None:
            from medigan_zoo.evaluation.downstream import labels_like

            labels = labels_like(label_source.labels, pool_size, seed)
        t0 = time.perf_counter()
        pool = generate_pool(sampler, pool_size, int(seed), labels, condition, batch_size)
        timings["generate"] = time.perf_counter() - t0
        synthetic = pool[:num_samples]
        log(f"{model_id}: {pool_size} samples generated in {timings['generate']:.1f} s; reference "
            f"{reference.name} ({len(reference)} images)")
        entries: List[Dict[str, Any]] = []
        if {"fid", "fid_ratio", "prdc"} & set(groups):
            extractor = load_feature_extractor(feature_extractor, device or "cpu", normalization, feature_weights,
                                               trusted=trusted)
            entries += feature_metrics(reference.images, synthetic, extractor, groups, ctx, reference.name, k=k,
                                       details=details, timings=timings)
        config = TrainConfig(epochs=int(classifier_epochs), size=16 if len(shape) == 3 else 32)
        clf_norm = classifier_normalization(config.size, len(shape))
        if "realism" in groups:
            from medigan_zoo.evaluation.realism import realism_auc

            t0 = time.perf_counter()
            res = realism_auc(train.images, synthetic, seed=int(seed), max_per_class=realism_max_per_class,
                              config=config)
            timings["realism"] = time.perf_counter() - t0
            details["realism"] = res
            entries.append(ctx.entry(
                "realism_AUC", res["auc"], num_samples=res["n_train"] // 2 + res["n_test"] // 2,
                feature_extractor="SmallCNN real-vs-synthetic classifier trained per run",
                normalization=clf_norm, reference_split=train.name,
                note=f"held-out AUC on {res['n_test']} balanced images; 0.5 = indistinguishable"))
        if "downstream" in groups:
            from medigan_zoo.evaluation.downstream import downstream_gain

            t0 = time.perf_counter()
            test = _match_channels(load_reference(names, "test", data_dir, shape), sampler.num_channels)
            num_classes = len(next(c for c in info.conditions if c.name == condition).values)
            res = downstream_gain(train.images, train.labels, test.images, test.labels, pool[:n_down],
                                  labels[:n_down], num_classes, seed=int(seed), config=config)
            timings["downstream"] = time.perf_counter() - t0
            details["downstream"] = res
            for name, value in res.items():
                entries.append(ctx.entry(
                    name, value, num_samples=n_down, feature_extractor="SmallCNN classifier trained per run",
                    normalization=clf_norm, reference_split=test.name,
                    note=f"trained on {train.name} ({len(train)}) and/or {n_down} synthetic; tested on {test.name}"))
        if "memorization" in groups:
            t0 = time.perf_counter()
            test = _match_channels(load_reference(names, "test", data_dir, shape), sampler.num_channels)
            res = memorization_distances(synthetic, train.images, test.images)
            timings["memorization"] = time.perf_counter() - t0
            details["memorization"] = res
            common = dict(normalization=PIXEL_NORMALIZATION, reference_split=train.name)
            entries.append(ctx.entry("NN_L2.synthetic_to_train", res["synthetic_to_train"],
                                     num_samples=len(synthetic), **common,
                                     note="mean L2 distance of each synthetic sample to its nearest training image"))
            entries.append(ctx.entry("NN_L2.real_test_to_train", res["real_test_to_train"], num_samples=len(test),
                                     **common, note=f"same for the held-out real images of {test.name} (reference)"))
            entries.append(ctx.entry("NN_L2_ratio", res["ratio"], num_samples=len(synthetic), **common,
                                     note="synthetic / real-test; well below 1 suggests copies of training images"))
    timings["total"] = time.perf_counter() - t_start
    report = EvaluationReport(model_id=model_id, metrics=entries, details=details, timings=timings,
                              bundle_dir=bundle_dir)
    if write:
        write_results(bundle_dir, entries)
        report.written = True
    return report
