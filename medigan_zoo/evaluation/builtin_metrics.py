"""The built-in metric groups, one registered block each, in run order (docs/evaluation.md, "What is measured").

To add a metric, add a block here (or in a module listed in ``metrics_registry.GROUP_MODULES``): name, needs,
the metric names it writes, and a compute function; tests/test_metric_groups.py runs it on tiny inputs.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from medigan_zoo.evaluation.bootstrap import DEFAULT_RESAMPLES, bootstrap_ci, ci_fields
from medigan_zoo.evaluation.fid import fid_from_features, fid_ratio, frechet_distance_eigh
from medigan_zoo.evaluation.metrics_registry import EvaluationInputs, MetricContext, register_metric_group
from medigan_zoo.evaluation.prdc import precision_recall_density_coverage

PIXEL_NORMALIZATION = "pixels in [0,1] at the model's resolution"
DOWNSTREAM_KEYS = tuple(f"CLF.{training}.{score}" for training in ("trained_on_real", "trained_on_fake",
                                                                   "trained_on_real_and_fake")
                        for score in ("accuracy", "AUROC")) + ("CLF_delta",)


def classifier_normalization(size: Optional[int], dims: int) -> str:
    """How the realism / downstream classifiers see the images (recorded with their metrics)."""
    interpolation = "bilinear" if dims == 2 else "trilinear"
    return f"[-1,1], resize to {'x'.join([str(size)] * dims)} (area when shrinking, else {interpolation})"


def memorization_distances(synthetic: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> Dict[str, float]:
    """Mean nearest-neighbour L2 distance (pixels) to the training images of the synthetic and of held-out real
    images, and their ratio (``medigan_zoo.evaluation.memorization``)."""
    from medigan_zoo.evaluation.memorization import memorization_report

    res = memorization_report(synthetic, train, test)
    return {"synthetic_to_train": res["nn_l2_synthetic_to_train"], "real_test_to_train": res["nn_l2_test_to_train"],
            "ratio": res["nn_l2_ratio"]}


@register_metric_group("fid", needs=("real_features", "synthetic_features"), keys=("FID",),
                       summary="Frechet distance of feature means/covariances, synthetic vs the real reference split")
def _fid(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    f_real, f_syn = inputs.features()
    ci = bootstrap_ci(frechet_distance_eigh, [f_syn, f_real], DEFAULT_RESAMPLES, ctx.seed + 101)
    return [ctx.entry("FID", fid_from_features(f_syn, f_real), num_samples=len(f_syn), **inputs.feature_fields(),
                      **ci_fields(ci), note="ci: percentile bootstrap, synthetic and real features resampled "
                                            "separately (resampling duplicates rows: the interval sits above the "
                                            "value; read it as the spread)")]


@register_metric_group("fid_ratio", needs=("real_features", "synthetic_features"), keys=("FID_ratio",),
                       summary="medigan's FID ratio FID(real_a, real_b) / FID(real_a, synthetic), equal sizes")
def _fid_ratio(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    f_real, f_syn = inputs.features()
    ratio, rr, rs = fid_ratio(f_real, f_syn, seed=ctx.seed)
    inputs.details.update(FID_real_a_vs_real_b=rr, FID_real_a_vs_synthetic=rs)
    m = min(len(f_real) // 2, len(f_syn))
    return [ctx.entry("FID_ratio", ratio, num_samples=m, **inputs.feature_fields(),
                      note=f"FID(real_a, real_b) / FID(real_a, synthetic) with real_a = half of {len(f_real)} "
                           f"real, real_b and synthetic {m} each; 1.0 = ideal; FID(real_a, real_b) = {rr:.4g}")]


@register_metric_group("prdc", needs=("real_features", "synthetic_features"),
                       keys=("precision", "recall", "density", "coverage"), aliases=("precision", "recall", "pr"),
                       summary="k-NN precision, recall, density and coverage of the features")
def _prdc(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    f_real, f_syn = inputs.features()
    prdc = precision_recall_density_coverage(f_real, f_syn, k=inputs.k)
    fields = inputs.feature_fields()
    return [ctx.entry(name, value, num_samples=len(f_syn), **fields, note=f"k={inputs.k} nearest neighbours")
            for name, value in prdc.items()]


@register_metric_group("realism", needs=("synthetic_images", "train_images", "classifier"), keys=("realism_AUC",),
                       summary="held-out AUC of a CNN trained to tell real training images from synthetic ones")
def _realism(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    from medigan_zoo.evaluation.realism import realism_auc

    assert inputs.train is not None
    res = realism_auc(inputs.train.images, inputs.synthetic, seed=ctx.seed, max_per_class=inputs.realism_max_per_class,
                      config=inputs.classifier)
    inputs.details["realism"] = res
    return [ctx.entry("realism_AUC", res["auc"], num_samples=res["n_train"] // 2 + res["n_test"] // 2,
                      feature_extractor="SmallCNN real-vs-synthetic classifier trained per run",
                      normalization=classifier_normalization(inputs.classifier.size, inputs.spatial_dims),
                      reference_split=inputs.train.name, **ci_fields(res),
                      note=f"held-out AUC on {res['n_test']} balanced images; 0.5 = indistinguishable; ci: percentile "
                           "bootstrap of the held-out scores (classifier not retrained)")]


@register_metric_group("downstream", needs=("train_images", "test_images", "labels", "classifier"),
                       keys=DOWNSTREAM_KEYS,
                       summary="a classifier trained on real, on synthetic, on both, tested on the real test split")
def _downstream(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    from medigan_zoo.evaluation.downstream import downstream_gain

    train, test = inputs.train, inputs.test
    assert train is not None and test is not None and inputs.labelled_synthetic is not None and inputs.num_classes
    assert train.labels is not None and test.labels is not None  # "labels" groups read labelled real splits
    images, labels = inputs.labelled_synthetic
    res = downstream_gain(train.images, train.labels, test.images, test.labels, images, labels, inputs.num_classes,
                          seed=ctx.seed, config=inputs.classifier)
    inputs.details["downstream"] = res
    norm = classifier_normalization(inputs.classifier.size, inputs.spatial_dims)
    return [ctx.entry(name, value, num_samples=len(images), feature_extractor="SmallCNN classifier trained per run",
                      normalization=norm, reference_split=test.name,
                      note=f"trained on {train.name} ({len(train)}) and/or {len(images)} synthetic; tested on "
                           f"{test.name}")
            for name, value in res.items()]


@register_metric_group("memorization", needs=("synthetic_images", "train_images", "test_images"),
                       keys=("NN_L2.synthetic_to_train", "NN_L2.real_test_to_train", "NN_L2_ratio"),
                       summary="mean pixel L2 distance to the nearest training image, synthetic vs held-out real")
def _memorization(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    train, test = inputs.train, inputs.test
    assert train is not None and test is not None
    res = memorization_distances(inputs.synthetic, train.images, test.images)
    inputs.details["memorization"] = res
    common = dict(normalization=PIXEL_NORMALIZATION, reference_split=train.name)
    return [
        ctx.entry("NN_L2.synthetic_to_train", res["synthetic_to_train"], num_samples=len(inputs.synthetic), **common,
                  note="mean L2 distance of each synthetic sample to its nearest training image"),
        ctx.entry("NN_L2.real_test_to_train", res["real_test_to_train"], num_samples=len(test), **common,
                  note=f"same for the held-out real images of {test.name} (reference)"),
        ctx.entry("NN_L2_ratio", res["ratio"], num_samples=len(inputs.synthetic), **common,
                  note="synthetic / real-test; well below 1 suggests copies of training images"),
    ]
