"""The registry of metric groups: what ``evaluate_bundle`` and ``evaluate_images`` can measure.

A metric group is one registered block (``builtin_metrics.py`` holds the built-in ones)::

    @register_metric_group("fid", needs=("real_features", "synthetic_features"), keys=("FID",),
                           summary="Frechet distance of extractor features, synthetic vs real reference")
    def _fid(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
        f_real, f_syn = inputs.features()
        return [ctx.entry("FID", fid_from_features(f_syn, f_real), num_samples=len(f_syn), **inputs.feature_fields())]

It states its name (what ``--metrics`` takes), what it needs (names from :data:`NEEDS`), the metric names it
writes (``keys``, in the order it writes them) and a compute function. Selected groups run in registration order
(:func:`run_metric_groups`); before each one, :meth:`EvaluationInputs.prepare` builds what it needs and has not
been built yet (features, the real test split), so an input shared by several groups is computed once.

Invariants (tests/test_metric_groups.py runs every registered group on tiny inputs): a group writes exactly its
declared keys, in order; the same seed gives the same entries; every need is a name of :data:`NEEDS`; group names,
aliases and metric keys are unique across groups.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple, Union

import torch

from medigan_zoo.catalog.metrics import metric_direction
from medigan_zoo.core.errors import ZooError
from medigan_zoo.evaluation.classifiers import TrainConfig
from medigan_zoo.evaluation.data import RealData
from medigan_zoo.evaluation.features import FeatureExtractor
from medigan_zoo.evaluation.report import metric_entry

#: what a metric group can need -> what that is
NEEDS: Dict[str, str] = {
    "real_features": "extractor features of the real reference split (--reference_split)",
    "synthetic_features": "extractor features of the synthetic samples",
    "synthetic_images": "the synthetic samples, (N, C, *spatial) in [0, 1]",
    "train_images": "the real split the model was trained on (--train_split)",
    "test_images": "the real test split",
    "labels": "class labels of the real splits and of labelled synthetic samples (class-conditional models only)",
    "classifier": "a classifier trained per run (EvaluationInputs.classifier: --classifier_epochs, size)",
}
FEATURE_NEEDS = frozenset({"real_features", "synthetic_features"})
#: modules whose import registers metric groups (the built-in ones); add yours here
GROUP_MODULES: Tuple[str, ...] = ("medigan_zoo.evaluation.builtin_metrics", "medigan_zoo.evaluation.extended_metrics")


@dataclass
class MetricContext:
    """Fields shared by the metric objects of one run: seed, the command that reproduces it, a name suffix."""

    seed: int
    command: str
    suffix: str = ""

    def entry(self, name: str, value: Any, **fields: Any) -> Dict[str, Any]:
        """A metric object for ``name`` (+ suffix) with the run's seed and command."""
        return metric_entry(name + self.suffix, value, metric_direction(name), seed=self.seed, command=self.command,
                            **fields)


@dataclass
class EvaluationInputs:
    """Everything a metric group may read. Fields left None are built on first need from ``loaders`` (keys
    ``"extractor"``, ``"train"``, ``"test"``: zero-argument callables), so nothing is loaded that no selected
    group needs.

    Args:
        synthetic: the synthetic samples (N, C, *spatial) in [0, 1].
        reference: the real reference split (FID, PRDC compare against it).
        train, test: the real training / test splits (RealData; labels needed by "labels" groups).
        labelled_synthetic: (images, labels) of synthetic samples made with real class proportions ("labels").
        synthetic_labels: the requested condition value of each of ``synthetic`` (class-conditional models), or None.
        num_classes: classes of the model's class condition ("labels").
        extractor: the feature extractor ("real_features", "synthetic_features").
        classifier: training settings of classifier-based groups.
        k: nearest neighbours for PRDC.
        realism_max_per_class: cap on the images per side of the realism classifier.
        feature_batch_size: images per forward pass of the extractor.
        details: extra figures groups report (e.g. FID(real_a, real_b)); timings: seconds per step.
    """

    synthetic: torch.Tensor
    reference: RealData
    train: Optional[RealData] = None
    test: Optional[RealData] = None
    labelled_synthetic: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
    synthetic_labels: Optional[torch.Tensor] = None
    num_classes: Optional[int] = None
    extractor: Optional[FeatureExtractor] = None
    classifier: TrainConfig = field(default_factory=TrainConfig)
    k: int = 5
    realism_max_per_class: Optional[int] = None
    feature_batch_size: int = 500
    loaders: Dict[str, Callable[[], Any]] = field(default_factory=dict)
    details: Dict[str, Any] = field(default_factory=dict)
    timings: Dict[str, float] = field(default_factory=dict)
    _features: Optional[Tuple[torch.Tensor, torch.Tensor]] = field(default=None, repr=False)

    def available(self) -> FrozenSet[str]:
        """The needs these inputs can satisfy (now or through a loader)."""
        have = {"synthetic_images", "classifier"}
        if self.extractor is not None or self._features is not None or "extractor" in self.loaders:
            have |= FEATURE_NEEDS
        if self.train is not None or "train" in self.loaders:
            have.add("train_images")
        if self.test is not None or "test" in self.loaders:
            have.add("test_images")
        if self.labelled_synthetic is not None and self.num_classes:
            have.add("labels")
        return frozenset(have)

    def prepare(self, group: "MetricGroup") -> None:
        """Build what ``group`` needs and is not built yet (features, real splits), timing each step."""
        missing = sorted(set(group.needs) - self.available())
        if missing:
            raise ZooError(f"Metric group {group.name!r} needs {', '.join(missing)}, which this evaluation does not "
                           f"provide ({'; '.join(NEEDS[m] for m in missing)}).")
        if group.needs & FEATURE_NEEDS:
            self.features()
        for split in ("train", "test"):
            if f"{split}_images" in group.needs and getattr(self, split) is None:
                t0 = time.perf_counter()
                setattr(self, split, self.loaders[split]())
                self.timings[f"load_{split}"] = time.perf_counter() - t0

    def features(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """(real reference features, synthetic features), extracted once (real first)."""
        if self._features is None:
            if self.extractor is None:
                self.extractor = self.loaders["extractor"]()
            t0 = time.perf_counter()
            f_real = self.extractor(self.reference.images, self.feature_batch_size)
            f_syn = self.extractor(self.synthetic, self.feature_batch_size)
            self.timings["features"] = time.perf_counter() - t0
            self._features = (f_real, f_syn)
        return self._features

    def feature_fields(self) -> Dict[str, Any]:
        """Extractor name, normalization and reference split: what every feature-based metric records."""
        self.features()
        assert self.extractor is not None
        images = self.reference.images
        return dict(feature_extractor=self.extractor.name, reference_split=self.reference.name,
                    normalization=self.extractor.describe(tuple(images.shape[2:]), int(images.shape[1])))

    @property
    def spatial_dims(self) -> int:
        return int(self.synthetic.ndim - 2)


@dataclass(frozen=True)
class MetricGroup:
    """One registered metric group (see the module docstring)."""

    name: str
    needs: FrozenSet[str]
    keys: Tuple[str, ...]
    compute: Callable[[EvaluationInputs, MetricContext], List[Dict[str, Any]]]
    aliases: Tuple[str, ...] = ()
    summary: str = ""
    spatial_dims: Tuple[int, ...] = (2, 3)  # image dimensionalities the group applies to (others: not run)
    masks_only: bool = False  # run only on models that output masks (every synthetic value 0 or 1)

    def not_applicable(self, inputs: "EvaluationInputs") -> Optional[str]:
        """Why the group does not run on these inputs (their dimensionality; not masks, for a ``masks_only``
        group), or None when it does."""
        if inputs.spatial_dims not in self.spatial_dims:
            return f"for {'/'.join(map(str, self.spatial_dims))}D images only"
        if self.masks_only:
            from medigan_zoo.evaluation.components import is_mask_output

            if not is_mask_output(inputs.synthetic):
                return "for models that output masks only (the samples have values other than 0 and 1)"
        return None

    def applies_to(self, inputs: "EvaluationInputs") -> bool:
        """Whether the group runs on these inputs (see :meth:`not_applicable`)."""
        return self.not_applicable(inputs) is None


_REGISTRY: Dict[str, MetricGroup] = {}


def register_metric_group(name: str, needs: Iterable[str], keys: Sequence[str], aliases: Sequence[str] = (),
                          summary: str = "", spatial_dims: Sequence[int] = (2, 3), masks_only: bool = False
                          ) -> Callable:
    """Decorator registering ``compute(inputs, ctx) -> metric objects`` as metric group ``name`` (run only on
    images of ``spatial_dims`` dimensions: a 3D-only group is skipped for 2D models; a ``masks_only`` group only
    when every synthetic value is 0 or 1).

    Raises:
        ValueError: an unknown need, or a name / alias / key another group already uses.
    """
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:
        raise ValueError(f"metric group {name!r}: unknown need(s) {unknown}; known: {', '.join(NEEDS)}")
    taken_names = {n for g in _REGISTRY.values() for n in (g.name, *g.aliases)}
    taken_keys = {k for g in _REGISTRY.values() for k in g.keys}
    clash = sorted(({name, *aliases} & taken_names) | (set(keys) & taken_keys))
    if clash or len(set(keys)) != len(keys):
        raise ValueError(f"metric group {name!r}: {clash or list(keys)} already used (names, aliases and metric "
                         "keys must be unique)")

    def register(compute: Callable[[EvaluationInputs, MetricContext], List[Dict[str, Any]]]) -> Callable:
        _REGISTRY[name] = MetricGroup(name, frozenset(needs), tuple(keys), compute, tuple(aliases), summary,
                                      tuple(int(d) for d in spatial_dims), bool(masks_only))
        return compute

    return register


def metric_groups() -> Tuple[MetricGroup, ...]:
    """Every registered group, in registration (= run) order."""
    for module in GROUP_MODULES:
        importlib.import_module(module)
    return tuple(_REGISTRY.values())


def metric_group(name: str) -> MetricGroup:
    """The group called ``name`` (or one of its aliases)."""
    for group in metric_groups():
        if name == group.name or name in group.aliases:
            return group
    raise ZooError(f"Unknown metric group {name!r}; choose from {', '.join(g.name for g in metric_groups())}.")


def parse_metrics(metrics: Union[None, str, Sequence[str]]) -> Tuple[str, ...]:
    """``"all"``, a comma list or a sequence of group names or aliases -> group names in run order."""
    groups = metric_groups()
    if metrics is None or metrics == "all":
        return tuple(g.name for g in groups)
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if str(m).strip()]
    alias = {a: g.name for g in groups for a in g.aliases}
    names = [alias.get(n, n) for n in names]
    unknown = sorted(set(names) - {g.name for g in groups})
    if unknown:
        raise ZooError(f"Unknown metric group(s) {unknown}; choose from {', '.join(g.name for g in groups)} or 'all'.")
    return tuple(g.name for g in groups if g.name in names)


def run_metric_groups(names: Sequence[str], inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    """Run the groups ``names`` in run order; their metric objects, in that order (timings in ``inputs``). Groups
    that do not apply to the inputs (``MetricGroup.applies_to``: the images' dimensionality, masks) are skipped."""
    unknown = sorted(set(names) - {g.name for g in metric_groups()})
    if unknown:
        raise ZooError(f"Unknown metric group(s) {unknown}; choose from {', '.join(g.name for g in metric_groups())}.")
    entries: List[Dict[str, Any]] = []
    for group in metric_groups():
        if group.name not in names or not group.applies_to(inputs):
            continue
        inputs.prepare(group)
        t0 = time.perf_counter()
        entries += group.compute(inputs, ctx)
        inputs.timings[group.name] = time.perf_counter() - t0
    return entries

