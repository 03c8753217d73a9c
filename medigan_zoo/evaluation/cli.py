"""``medigan-zoo evaluate MODEL_ID [options]``: the command-line side of ``evaluate_bundle``.

    medigan-zoo evaluate chest_xray_cdcgan --num_samples 2000 --seed 0
    medigan-zoo evaluate chest_xray_cdcgan --metrics fid,prdc --dry_run
    medigan-zoo evaluate chest_xray_cdcgan --num_samples 500 --force   # replace metrics measured with more samples
    medigan-zoo evaluate chest_xray_cdcgan --feature_extractor my_radimagenet.ts --norm_intensity imagenet \\
        --norm_size 224 --name_suffix @radimagenet
    medigan-zoo evaluate chest_xray_ddpm --num_inference_steps 10 --dry_run  # a sampling option of the bundle

Flags that are not evaluation options are the bundle's own sampling options (its zoo block's ``options``, as for
``generate``); the bundle checks them and names what it declares when one is unknown.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

from medigan_zoo.core.errors import MetricOverwriteError, ZooError

#: option -> default (flags mirror evaluate_bundle's parameters; norm_* build the Normalization overrides)
OPTIONS: Dict[str, Any] = {
    "num_samples": 2000, "seed": 0, "metrics": "all", "reference_split": "test", "train_split": "train",
    "data_dir": None, "feature_extractor": None, "feature_weights": None, "norm_size": None,
    "norm_resize_mode": None, "norm_channels": None, "norm_intensity": None, "norm_slices_3d": None, "k": 5,
    "batch_size": 256, "device": "cpu", "downstream_samples": None, "classifier_epochs": 10,
    "realism_max_per_class": None, "name_suffix": "", "dry_run": False, "force": False, "json": False,
    "num_threads": 1, "quiet": False,
}


def evaluate_command(generators, model_id: str, **kwargs: Any) -> None:
    """Evaluate ``model_id`` (resolved by ``generators``), print the table, write unless ``dry_run``.

    Stored metrics measured with more samples are not replaced without ``force``: the table (or JSON) of this run
    is printed, then MetricOverwriteError (one line, exit 2) says which metrics and both sample counts.
    """
    from medigan_zoo.evaluation.evaluate import build_command, evaluate_bundle

    opts = {**OPTIONS, **{k: v for k, v in kwargs.items() if k in OPTIONS}}
    resolved = generators.index.resolve_id(model_id)
    sampling = {k: v for k, v in kwargs.items() if k not in OPTIONS}
    declared = set((generators.index.get(resolved).zoo or {}).get("options") or {}) if sampling else set()
    unknown = sorted(set(sampling) - declared)
    if unknown:
        raise ZooError(f"evaluate got unknown option(s) {', '.join('--' + u for u in unknown)}; options: "
                       f"{', '.join('--' + o for o in OPTIONS)}"
                       + (f"; sampling options of {resolved}: {', '.join('--' + o for o in sorted(declared))}"
                          if declared else f"; {resolved} declares no sampling options") + ".")
    bundle_dir = generators.bundle_dir(resolved)
    metrics = opts["metrics"]
    if isinstance(metrics, (list, tuple)):
        metrics = ",".join(map(str, metrics))
    norm = {key[5:]: opts[key] for key in ("norm_size", "norm_resize_mode", "norm_channels", "norm_intensity",
                                           "norm_slices_3d") if opts[key] is not None}
    extractor = opts["feature_extractor"]
    known = getattr(generators.index, "feature_extractors", {}) or {}
    if extractor is not None and str(extractor) in known and known[str(extractor)].bundle_dir is not None:
        extractor_arg = str(known[str(extractor)].bundle_dir)
    else:
        extractor_arg = extractor
    recorded = {k: v for k, v in kwargs.items() if k not in ("dry_run", "force", "json", "quiet", "device",
                                                             "batch_size", "num_threads", "data_dir")}
    recorded.setdefault("num_samples", opts["num_samples"])
    recorded.setdefault("seed", opts["seed"])
    try:
        report = evaluate_bundle(
            bundle_dir, metrics=metrics, num_samples=int(opts["num_samples"]), seed=int(opts["seed"]),
            reference_split=str(opts["reference_split"]), train_split=str(opts["train_split"]),
            data_dir=opts["data_dir"], feature_extractor=extractor_arg, feature_weights=opts["feature_weights"],
            normalization=norm or None, k=int(opts["k"]), batch_size=int(opts["batch_size"]), device=opts["device"],
            downstream_samples=opts["downstream_samples"], classifier_epochs=int(opts["classifier_epochs"]),
            realism_max_per_class=opts["realism_max_per_class"], name_suffix=str(opts["name_suffix"] or ""),
            write=not bool(opts["dry_run"]), command=build_command(resolved, recorded),
            num_threads=opts["num_threads"], model_id=resolved, force=bool(opts["force"]),
            trusted=getattr(generators, "trust_bundles", None), options=sampling or None,
            log=(lambda *a, **k: None) if opts["quiet"] or opts["json"] else print)
    except MetricOverwriteError as err:
        if err.report is not None:
            _print_report(err.report, bool(opts["json"]), bundle_dir, "not written: no file was changed")
        raise
    _print_report(report, bool(opts["json"]), bundle_dir, "dry run: no file was changed")


def _print_report(report: Any, as_json: bool, bundle_dir: Path, unwritten_note: str) -> None:
    """The report as JSON, or its table followed by where it was written (or ``unwritten_note``)."""
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
        return
    print(report.markdown())
    if report.written:
        print(f"\nwritten to {bundle_dir}/configs/metadata.json and {bundle_dir}/docs/README.md")
    else:
        print(f"\n{unwritten_note}")
