"""Metric groups that tell models apart (issue #14): KID with a bootstrap interval, diversity (MS-SSIM ratio), a
cross-validated realism test, condition fidelity, membership inference, 2.5D FID of 3D models, and the connected
pieces of mask models' outputs. One registered block each, run after the built-in groups (builtin_metrics.py);
docs/evaluation.md describes them.
"""
from __future__ import annotations

from typing import Any, Dict, List

from medigan_zoo.evaluation.bootstrap import DEFAULT_RESAMPLES, bootstrap_ci, ci_fields
from medigan_zoo.evaluation.builtin_metrics import PIXEL_NORMALIZATION, classifier_normalization
from medigan_zoo.evaluation.dedup import NEAR_COPY_RMSE, deduplicated
from medigan_zoo.evaluation.kid import kid_from_features
from medigan_zoo.evaluation.metrics_registry import EvaluationInputs, MetricContext, register_metric_group

KID_SUBSET = 1000
KID_SUBSETS = 10


@register_metric_group("kid", needs=("real_features", "synthetic_features"), keys=("KID",),
                       summary="unbiased kernel (cubic polynomial) MMD^2 of the features, with a bootstrap interval")
def _kid(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    f_real, f_syn = inputs.features()
    value = kid_from_features(f_syn, f_real, KID_SUBSET, KID_SUBSETS, ctx.seed)
    ci = bootstrap_ci(lambda s, r: kid_from_features(s, r, KID_SUBSET, 1, ctx.seed), [f_syn, f_real],
                      DEFAULT_RESAMPLES, ctx.seed + 102)
    m = min(KID_SUBSET, len(f_syn), len(f_real))
    return [ctx.entry("KID", value, num_samples=len(f_syn), **inputs.feature_fields(), **ci_fields(ci),
                      note=f"mean over {KID_SUBSETS} subsets of {m} per side; 0 = same distribution (can be "
                           "slightly negative); ci: percentile bootstrap")]


@register_metric_group("diversity", needs=("synthetic_images", "train_images"),
                       keys=("diversity.MS_SSIM_synthetic", "diversity.MS_SSIM_real", "diversity_ratio"),
                       aliases=("ms_ssim",),
                       summary="mean pairwise MS-SSIM of samples vs of real training images, per condition; "
                               "ratio of (1 - MS-SSIM)")
def _diversity(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    from medigan_zoo.evaluation.diversity import DEFAULT_PAIRS, describe_settings, diversity

    train = inputs.train
    assert train is not None
    labelled = inputs.synthetic_labels is not None and train.labels is not None
    res = diversity(inputs.synthetic, train.images, inputs.synthetic_labels if labelled else None,
                    train.labels if labelled else None, DEFAULT_PAIRS, ctx.seed)
    inputs.details["diversity"] = res
    per = {k: {n: round(v, 4) for n, v in d.items()} for k, d in res["per_condition"].items()}
    scope = f"per condition value ({', '.join(per)}), averaged" if labelled else "over all images"
    common = dict(num_samples=len(inputs.synthetic), normalization=describe_settings(inputs.synthetic.shape[2:]),
                  reference_split=train.name)
    return [
        ctx.entry("diversity.MS_SSIM_synthetic", res["ms_ssim_synthetic"], **common,
                  note=f"mean MS-SSIM of {DEFAULT_PAIRS} random sample pairs {scope}; lower = more varied"),
        ctx.entry("diversity.MS_SSIM_real", res["ms_ssim_real"], **common,
                  note=f"same for real training images (reference) {scope}"),
        ctx.entry("diversity_ratio", res["ratio"], **common, per_condition=per,
                  note="(1 - MS-SSIM synthetic) / (1 - MS-SSIM real); 1 = as varied as real images, < 1 = samples "
                       "more alike than real images (template-like)"),
    ]


@register_metric_group("realism_cv", needs=("synthetic_images", "train_images", "classifier"),
                       keys=("realism_cv_AUC",),
                       summary="cross-validated real-vs-synthetic CNN (3 folds, 2x width and epochs, shifts, native "
                               "resolution): the stronger realism test")
def _realism_cv(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    from medigan_zoo.evaluation.realism import StrongC2ST, realism_auc_cv

    assert inputs.train is not None
    strong = StrongC2ST()
    res = realism_auc_cv(inputs.train.images, inputs.synthetic, seed=ctx.seed,
                         max_per_class=inputs.realism_max_per_class, config=inputs.classifier, strong=strong)
    inputs.details["realism_cv"] = res
    seen = "native resolution, [-1,1]" if res["size"] is None else \
        classifier_normalization(res["size"], inputs.spatial_dims)
    return [ctx.entry("realism_cv_AUC", res["auc"], num_samples=res["n_scored"] // 2,
                      feature_extractor=f"SmallCNN (width {res['width']}) real-vs-synthetic, {strong.folds}-fold "
                                        "cross-validated, trained per run",
                      normalization=seen, reference_split=inputs.train.name, **ci_fields(res),
                      note=f"every one of {res['n_scored']} balanced images scored by the fold that did not train on "
                           f"it; {res['epochs']} epochs (Adam, one-cycle), flips and shifts of {strong.max_shift} px; "
                           "0.5 = indistinguishable; compare realism_AUC (single split, same samples)")]


@register_metric_group("condition_fidelity", needs=("train_images", "test_images", "labels", "classifier"),
                       keys=("condition_fidelity.accuracy_synthetic", "condition_fidelity.accuracy_real_test",
                             "condition_fidelity_ratio"),
                       summary="a classifier trained on real images recovers the requested condition of samples "
                               "(accuracy) vs of real test images")
def _condition_fidelity(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    from medigan_zoo.evaluation.condition_fidelity import condition_fidelity

    train, test = inputs.train, inputs.test
    assert train is not None and test is not None and inputs.labelled_synthetic is not None and inputs.num_classes
    assert train.labels is not None and test.labels is not None
    images, labels = inputs.labelled_synthetic
    res = condition_fidelity(train.images, train.labels, test.images, test.labels, images, labels,
                             inputs.num_classes, seed=ctx.seed, config=inputs.classifier)
    inputs.details["condition_fidelity"] = res
    common = dict(feature_extractor="SmallCNN classifier trained per run on " + train.name,
                  normalization=classifier_normalization(inputs.classifier.size, inputs.spatial_dims))
    return [
        ctx.entry("condition_fidelity.accuracy_synthetic", res["accuracy_synthetic"], num_samples=len(images),
                  reference_split=train.name, per_condition={k: round(v, 4) for k, v in res["per_condition"].items()},
                  **common, note="share of samples classified as the condition value they were generated with "
                                 "(per_condition: per requested value)"),
        ctx.entry("condition_fidelity.accuracy_real_test", res["accuracy_real_test"], num_samples=len(test),
                  reference_split=test.name, **common, note="same classifier on the real test split (the ceiling)"),
        ctx.entry("condition_fidelity_ratio", res["ratio"], num_samples=len(images), reference_split=test.name,
                  **common, note="accuracy on samples / accuracy on real test images; 1 = as recognisable as real"),
    ]


@register_metric_group("membership", needs=("synthetic_images", "train_images", "test_images"),
                       keys=("membership_inference.AUC",), aliases=("mia", "membership_inference"),
                       summary="distance-based membership-inference attack: training vs held-out real images by "
                               "their distance to the samples (AUC, 0.5 = no leakage)")
def _membership(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    from medigan_zoo.evaluation.membership import membership_inference

    train, test = inputs.train, inputs.test
    assert train is not None and test is not None
    held_out = deduplicated(test, train)
    res = membership_inference(inputs.synthetic, train.images, held_out.images, seed=ctx.seed,
                               num_resamples=DEFAULT_RESAMPLES)
    inputs.details["membership"] = res
    return [ctx.entry("membership_inference.AUC", res["auc"], num_samples=len(inputs.synthetic),
                      normalization=PIXEL_NORMALIZATION, reference_split=f"{train.name} vs {held_out.name}",
                      **ci_fields(res),
                      note=f"attack score: minus the L2 distance of a real image to its nearest sample; "
                           f"{res['members']} training images vs {res['non_members']} held-out ones (near copies of "
                           f"training images, RMSE < {NEAR_COPY_RMSE}, removed); 0.5 = no leakage")]


@register_metric_group("fid_planes", needs=("real_features", "synthetic_features"), keys=("FID_planes",),
                       aliases=("fid_2.5d",), spatial_dims=(3,),
                       summary="3D models: FID of the central axial, coronal and sagittal planes (2.5D, as MAISI), "
                               "their mean")
def _fid_planes(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    from medigan_zoo.evaluation.planes import plane_fids

    fields = inputs.feature_fields()
    assert inputs.extractor is not None
    res = plane_fids(inputs.reference.images, inputs.synthetic, inputs.extractor, inputs.feature_batch_size)
    inputs.details["fid_planes"] = res
    fields["normalization"] = "central plane per axis, 2D: " + inputs.extractor.describe(
        tuple(inputs.reference.images.shape[3:]), int(inputs.reference.images.shape[1]))
    return [ctx.entry("FID_planes", res["mean"], num_samples=len(inputs.synthetic), **fields,
                      planes={k: round(v, 6) for k, v in res.items() if k != "mean"},
                      note="mean of the FIDs of the central axial, coronal and sagittal planes (2.5D); compare "
                           "with FID (3 slices per axis, features concatenated)")]


@register_metric_group("components", needs=("synthetic_images",),
                       keys=("components.synthetic", "components.real", "components_gap"),
                       aliases=("connected_components",), masks_only=True,
                       summary="mask models: connected foreground pieces per mask, synthetic vs the real reference "
                               "split, per condition; relative gap")
def _components(inputs: EvaluationInputs, ctx: MetricContext) -> List[Dict[str, Any]]:
    from medigan_zoo.evaluation.components import CONNECTIVITY, THRESHOLD, component_stats

    ref = inputs.reference
    labelled = inputs.synthetic_labels is not None and ref.labels is not None
    res = component_stats(inputs.synthetic, ref.images, inputs.synthetic_labels if labelled else None,
                          ref.labels if labelled else None)
    inputs.details["components"] = res
    per = {k: {n: round(v, 4) for n, v in d.items()} for k, d in res["per_condition"].items()}
    scope = f"per condition value ({', '.join(per)}), averaged" if labelled else "over all masks"
    common = dict(reference_split=ref.name, normalization=f"foreground = any channel >= {THRESHOLD}; {CONNECTIVITY}")
    n_syn = len(inputs.synthetic)
    return [
        ctx.entry("components.synthetic", res["pieces_synthetic"], num_samples=n_syn, **common,
                  single_piece=round(res["single_piece_synthetic"], 4),
                  note=f"mean connected pieces per synthetic mask {scope}; single_piece: fraction of masks in one "
                       "piece"),
        ctx.entry("components.real", res["pieces_real"], num_samples=len(ref), **common,
                  single_piece=round(res["single_piece_real"], 4),
                  note=f"same for the real reference masks {scope}"),
        ctx.entry("components_gap", res["gap"], num_samples=n_syn, **common, per_condition=per,
                  note="|pieces synthetic - pieces real| / pieces real; 0 = as many pieces as real masks, 1 = twice "
                       "(or none); detached islands raise it"),
    ]
