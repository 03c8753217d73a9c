"""Metric names: which direction is better, and the dotted-name <-> nested-tree mapping. Pure Python.

The one home of both rules: the medigan selector (``medigan.compat``), the medigan importer and config view, the
search index (``query.ranking``), the evaluation (``evaluation.evaluate``) and ``scripts/compare_models.py`` use
them. See docs/medigan_compatibility.md ("Metric directions").

* ``metric_direction(name)``: ``"lower"`` or ``"higher"`` is better, decided from the name alone.
* ``walk_metric_tree(tree)``: every (path, value) of a nested metrics dict (medigan's ``performance`` block);
  ``flatten_metrics`` gives ``{"CLF.trained_on_fake.accuracy": 0.8}``, ``unflatten_metrics`` builds the tree back.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, Mapping, Tuple

__all__ = ["DIRECTIONS", "metric_direction", "walk_metric_tree", "flatten_metrics", "unflatten_metrics",
           "metric_text"]

DIRECTIONS: Tuple[str, str] = ("lower", "higher")

_LOWER_NAMES = frozenset({
    "fid", "kid", "fvd", "fad", "mse", "nsme", "nmse", "mae", "rmse", "lpips", "loss", "dice_loss", "nll", "bpd",
    "hd", "hd95", "hausdorff", "asd", "assd", "error", "error_rate", "fpr", "fnr", "swd", "mmd", "emd",
    "wasserstein", "eer", "ece", "brier",
})
_HIGHER_NAMES = frozenset({
    "ssim", "ms_ssim", "ms-ssim", "psnr", "is", "inception_score", "accuracy", "acc", "balanced_accuracy", "auc",
    "auroc", "roc_auc", "auprc", "pr_auc", "ap", "map", "precision", "recall", "sensitivity", "specificity", "f1",
    "f1_score", "dice", "jaccard", "iou", "miou", "kappa", "mcc", "coverage", "density", "ppv", "npv", "tpr",
    "tnr", "r2", "ncc", "nmi",
})
_LOWER_PREFIXES = ("fid", "kid", "fvd", "fad", "lpips")
#: scores of someone telling synthetic from real (human readers, a realism classifier): lower = more realistic
_DETECTION_GROUPS = frozenset({"turing_test", "realism", "membership_inference"})
#: pairwise similarity among samples (MS-SSIM diversity): lower = more varied samples
_SIMILARITY_GROUPS = frozenset({"diversity"})
#: nearest-neighbour distances of samples to the training images (memorization, privacy): larger = less copying
_MEMORIZATION_GROUPS = frozenset({"nn_l1", "nn_l2", "nn_distance", "dcr"})


def metric_direction(name: str) -> str:
    """``"lower"`` or ``"higher"``: which values of metric ``name`` are better. Case-insensitive.

    Checked in this order:

    1. Memorization distances, ``NN_L2.*``/``NN_L2_ratio`` (also NN_L1, DCR): **higher**. They are nearest-neighbour
       distances from the samples to the training images (and the ratio to held-out real images' distances): the
       larger, the less the model copies its training data. ``NN_L2.real_test_to_train`` is the real-image
       reference of that comparison and follows the same rule.
    2. Detection scores, ``turing_test.*``, ``realism_AUC`` (``realism_cv_AUC``) and ``membership_inference.*``:
       **lower**. Readers (or a classifier) who cannot tell real from synthetic mean realistic images; an attacker
       who cannot tell training images from held-out ones means no leakage. Within-model similarity,
       ``diversity.*`` (pairwise MS-SSIM among samples): **lower** (more varied); ``diversity_ratio`` follows 3.
    3. The last dotted part (``CLF.trained_on_fake.accuracy`` -> accuracy): ``*_loss`` lower; ``*_ratio``,
       ``*_delta`` (FID_ratio, CLF_delta) higher; SSIM/PSNR/IS/accuracy/AUROC/dice/precision/coverage/... higher;
       FID/KID-like names (FID_RADIMAGENET), MSE/NSME and distances lower; then its first ``_``-separated word
       (``dice_tumor`` -> dice).
    4. Unknown names: "lower", medigan's default ascending order.
    """
    parts = str(name).lower().split(".")
    leaf = parts[-1]
    head = leaf.split("_")[0]  # dice_tumor -> dice, FID_RADIMAGENET -> fid
    first = parts[0]
    if first in _MEMORIZATION_GROUPS or any(first.startswith(g + "_") for g in _MEMORIZATION_GROUPS):
        return "higher"
    if first in _SIMILARITY_GROUPS and len(parts) > 1:
        return "lower"
    if first in _DETECTION_GROUPS and len(parts) > 1 and (leaf in _HIGHER_NAMES or head in _HIGHER_NAMES):
        return "lower"
    if len(parts) == 1 and head in _DETECTION_GROUPS and leaf.endswith("_auc"):
        return "lower"
    if leaf.endswith("_loss"):
        return "lower"
    if leaf.endswith(("_ratio", "_delta", "_no_images")):
        return "higher"
    if leaf in _HIGHER_NAMES:
        return "higher"
    if leaf in _LOWER_NAMES or leaf.startswith(_LOWER_PREFIXES):
        return "lower"
    if head in _HIGHER_NAMES:
        return "higher"
    if head in _LOWER_NAMES:
        return "lower"
    return "lower"


def metric_text(entry: Any, pattern: str = "{:.3g}") -> str:
    """A stored metric object as table text: its value with ``pattern``, followed by its bootstrap interval
    ``[ci_low, ci_high]`` when it has one (``"1.70 [1.62, 1.91]"``); ``"–"`` when there is no numeric value."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("value"), (int, float)) or \
            isinstance(entry.get("value"), bool):
        return "–"
    text = pattern.format(float(entry["value"]))
    low, high = entry.get("ci_low"), entry.get("ci_high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        text += f" [{pattern.format(float(low))}, {pattern.format(float(high))}]"
    return text


# --------------------------------------------------------------------------------------------------
# The metric tree: medigan's nested performance block <-> dotted metric names
# --------------------------------------------------------------------------------------------------
def walk_metric_tree(tree: Any, branches: bool = False, _prefix: Tuple[str, ...] = ()
                     ) -> Iterator[Tuple[Tuple[str, ...], Any]]:
    """Every ``(path, value)`` below a nested metrics dict, depth first in key order (keys as strings).

    Leaves are the non-dict values (numbers, lists, strings, None). With ``branches=True`` the nested dicts are
    yielded too, each before its children (medigan's ``deep_get`` reaches them as well). A non-dict ``tree``
    yields nothing.
    """
    if not isinstance(tree, Mapping):
        return
    for key, value in tree.items():
        path = _prefix + (str(key),)
        if isinstance(value, Mapping):
            if branches:
                yield path, value
            yield from walk_metric_tree(value, branches, path)
        else:
            yield path, value


def flatten_metrics(tree: Any) -> Dict[str, Any]:
    """``{"CLF": {"trained_on_fake": {"accuracy": 0.8}}, "FID": 12.3}`` -> dotted name -> leaf value."""
    return {".".join(path): value for path, value in walk_metric_tree(tree)}


def unflatten_metrics(items: Iterable[Tuple[str, Any]]) -> Dict[str, Any]:
    """(dotted name, value) pairs -> the nested tree; the inverse of ``flatten_metrics``.

    Where a plain metric and a nested one share a name (``CLF`` and ``CLF.accuracy``) the plain one is kept,
    whichever comes first; a name given twice keeps its last value.
    """
    tree: Dict[str, Any] = {}
    for name, value in items:
        parts = str(name).split(".")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return tree
