"""Build docs/model_comparison.md: every shipped generator bundle with its evaluation metrics, and which model is
best for what.

    python scripts/compare_models.py                          # read the metrics already in the bundles
    python scripts/compare_models.py --evaluate --num_samples 2000 --seed 0   # (re-)evaluate first, then write
    python scripts/compare_models.py --output -               # print instead of writing

The metrics come from each bundle's configs/metadata.json ("medigan_zoo"."metrics"), written by
``medigan-zoo evaluate``. FID is only comparable between models of the same data set, measured with the same
feature extractor and normalization; the cross-data-set recommendations use the normalized figures (FID ratio,
realism AUC, precision/recall, downstream gain).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from medigan_zoo.catalog.anchors import ANCHOR_LABEL, ANCHORS  # noqa: E402 - after the sys.path line
from medigan_zoo.catalog.metrics import metric_direction, metric_text  # noqa: E402
from medigan_zoo.catalog.targets import SOURCE, TARGETS, QualityTarget  # noqa: E402

ARROWS = {"lower": "↓", "higher": "↑"}
COLUMNS = [  # (metric name, header, format); "{arrow}" becomes the metric's better direction (metric_direction)
    ("FID", "FID {arrow} [95% CI]", "{:.2f}"),
    ("KID", "KID {arrow} [95% CI]", "{:.4f}"),
    ("FID_planes", "2.5D FID {arrow} (3D)", "{:.2f}"),
    ("FID_ratio", "FID ratio {arrow} (1 = ideal)", "{:.3f}"),
    ("precision", "precision {arrow}", "{:.3f}"),
    ("recall", "recall {arrow}", "{:.3f}"),
    ("density", "density {arrow}", "{:.3f}"),
    ("coverage", "coverage {arrow}", "{:.3f}"),
    ("realism_AUC", "realism AUC (0.5 = ideal) [95% CI]", "{:.3f}"),
    ("realism_cv_AUC", "realism AUC, cross-validated CNN (0.5 = ideal) [95% CI]", "{:.3f}"),
    ("diversity_ratio", "diversity ratio (MS-SSIM, 1 = as varied as real)", "{:.3f}"),
    ("condition_fidelity_ratio", "condition fidelity {arrow} (synthetic / real accuracy)", "{:.3f}"),
    ("CLF.trained_on_real.accuracy", "acc real", "{:.3f}"),
    ("CLF.trained_on_fake.accuracy", "acc synthetic", "{:.3f}"),
    ("CLF.trained_on_real_and_fake.accuracy", "acc real+synthetic", "{:.3f}"),
    ("CLF_delta", "CLF delta {arrow}", "{:+.3f}"),
    ("NN_L2_ratio", "NN-L2 ratio (memorization, <1 = closer than real)", "{:.3f}"),
    ("membership_inference.AUC", "membership-inference AUC (0.5 = no leakage) [95% CI]", "{:.3f}"),
]


def header(name: str, label: str) -> str:
    """A column header, with the arrow of ``name``'s better direction where the label asks for one."""
    return label.format(arrow=ARROWS[metric_direction(name)])


def better_first(name: str):
    """Sort key that puts the better value of metric ``name`` first (its direction, from metric_direction)."""
    return (lambda v: v) if metric_direction(name) == "lower" else (lambda v: -v)


def generator_bundles(root: Path) -> List[Path]:
    """Shipped bundles that are generators with weights (feature extractors and unfinished bundles left out)."""
    out = []
    for bundle in sorted(p for p in root.iterdir() if (p / "configs" / "metadata.json").is_file()):
        meta = json.loads((bundle / "configs" / "metadata.json").read_text())
        zoo = meta.get("medigan_zoo") or {}
        if zoo.get("role", "generator") == "generator" and (bundle / "models" / "model.pt").is_file():
            out.append(bundle)
    return out


def read_row(bundle: Path) -> Dict[str, Any]:
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    zoo = meta.get("medigan_zoo") or {}
    metrics = {m["name"]: m for m in zoo.get("metrics") or [] if isinstance(m, dict) and "name" in m}
    return {
        "id": bundle.name, "name": meta.get("name", bundle.name), "modality": ",".join(zoo.get("modality") or []),
        "dataset": ", ".join(zoo.get("dataset") or []), "architecture": zoo.get("architecture", ""),
        "shape": "x".join(str(s) for s in zoo.get("spatial_shape") or []),
        "condition": ", ".join(zoo.get("condition") or {}) or "none", "metrics": metrics,
        "version": meta.get("version", "?"),
        "ready": (bundle / "docs" / "training_log.txt").is_file() and (bundle / "docs" / "samples.png").is_file(),
    }


def value(row: Dict[str, Any], name: str) -> Optional[float]:
    m = row["metrics"].get(name)
    v = m.get("value") if m else None
    return float(v) if isinstance(v, (int, float)) else None


def fmt(row: Dict[str, Any], name: str, pattern: str) -> str:
    """The metric's value, with its bootstrap interval where it has one (catalog.metrics.metric_text)."""
    return metric_text(row["metrics"].get(name), pattern)


def anchor_rows() -> List[str]:
    """The anchors' published figures (catalog.anchors), a separate row set with its label."""
    out = [f"### Anchors: {ANCHOR_LABEL}", "",
           "Published models a user compares with. Their FIDs use Inception v3 features on other data sets, "
           "resolutions and sample counts; the zoo's use medmnist_feature_extractor features: the two sets of "
           "figures cannot be compared number to number.", "",
           "| anchor | data set | shape | FID (Inception, authors) | FID ratio (authors) | samples | source |",
           "|---|---|---|---|---|---|---|"]
    out += [f"| {a.name} (`{a.id}`) | {a.dataset} | {a.shape} | {a.fid:.2f} | {a.fid_ratio:.3f} | {a.fid_samples} | "
            f"{a.source} |" for a in ANCHORS]
    return out


#: a "best model" pick compares only figures measured on at least this many samples (a realism AUC on 47 or 119
#: images has an interval too wide to rank against figures on 2,000)
MIN_PICK_SAMPLES = 1000


#: metrics whose sample count is set by the real test split, not by how many samples were generated (the FID
#: ratio compares two halves of the test split with as many synthetic images as one half holds): never "too few"
SPLIT_LIMITED = {"FID_ratio"}


def few_samples(row: Dict[str, Any], name: str) -> Optional[int]:
    """The sample count of the row's ``name`` metric when it is below MIN_PICK_SAMPLES (else None)."""
    n = (row["metrics"].get(name) or {}).get("num_samples")
    return int(n) if name not in SPLIT_LIMITED and isinstance(n, (int, float)) and n < MIN_PICK_SAMPLES else None


def pickable(row: Dict[str, Any], name: str) -> bool:
    """True when the row's ``name`` metric has a value not known to rest on fewer than MIN_PICK_SAMPLES samples."""
    return value(row, name) is not None and few_samples(row, name) is None


def best(rows: List[Dict[str, Any]], name: str, key) -> Optional[Dict[str, Any]]:
    have = [r for r in rows if value(r, name) is not None]
    return min(have, key=lambda r: key(value(r, name))) if have else None


def recommendations(rows: List[Dict[str, Any]]) -> List[str]:
    lines = []
    # FIDs compare only against the same real images: same data set at the same shape (AdrenalMNIST3D at 28^3 and
    # at 64^3 are two references)
    by_data = defaultdict(list)
    for r in rows:
        by_data[(r["dataset"], r["shape"])].append(r)
    shapes = defaultdict(set)
    for data, shape in by_data:
        shapes[data].add(shape)
    for (data, shape), group in sorted(by_data.items()):
        group = [r for r in group if pickable(r, "FID")]
        b = best(group, "FID", better_first("FID"))
        name = f"{data} {shape}" if len(shapes[data]) > 1 else data
        if b and len(group) > 1:
            lines.append(f"- **Closest to the real {name} images (lowest FID among the {len(group)} {name} models):** "
                         f"`{b['id']}` (FID {value(b, 'FID'):.2f}).")
    picks = [
        ("FID_ratio", lambda v: abs(1.0 - v), "Closest to real-vs-real variability (FID ratio nearest 1)", "{:.3f}"),
        ("realism_cv_AUC", lambda v: abs(v - 0.5),
         "Hardest to tell from real images (cross-validated realism AUC nearest 0.5)", "{:.3f}"),
        ("realism_AUC", lambda v: abs(v - 0.5), "Hardest to tell from real images by the single-split realism test "
         "(realism AUC nearest 0.5)", "{:.3f}"),
        ("precision", better_first("precision"), "Highest fidelity (precision: samples inside the real manifold)",
         "{:.3f}"),
        ("coverage", better_first("coverage"), "Best coverage of the real data's modes (coverage)", "{:.3f}"),
        ("recall", better_first("recall"), "Most diverse (recall)", "{:.3f}"),
        ("CLF_delta", better_first("CLF_delta"), "Best for data augmentation (largest accuracy gain when added to real "
                                    "training data)", "{:+.3f}"),
    ]
    for name, key, text, pattern in picks:
        eligible = [r for r in rows if pickable(r, name)]
        if len(eligible) < 2:  # a pick needs a comparison
            continue
        b = best(eligible, name, key)
        if b:
            lines.append(f"- **{text}:** `{b['id']}` ({name} {pattern.format(value(b, name))}).")
    flagged = [r for r in rows if (value(r, "NN_L2_ratio") or 2.0) < 0.9]
    if flagged:
        lines.append("- **Memorization warning** (samples closer to the training images than held-out real images "
                     "are, NN-L2 ratio < 0.9): " + ", ".join(f"`{r['id']}` ({value(r, 'NN_L2_ratio'):.2f})"
                                                             for r in flagged) + ".")
    elif any(value(r, "NN_L2_ratio") is not None for r in rows):
        lines.append("- No model's samples are closer to the training set than held-out real images are "
                     "(every NN-L2 ratio >= 0.9): no sign of memorization.")
    return lines


def provenance(rows: List[Dict[str, Any]]) -> List[str]:
    seen = []
    for r in rows:
        fid = r["metrics"].get("FID") or next(iter(r["metrics"].values()), None)
        if fid:
            seen.append(f"- `{r['id']}`: {fid.get('num_samples', '?')} samples, seed {fid.get('seed', '?')}, "
                        f"extractor {fid.get('feature_extractor', '?')}, normalization "
                        f"\"{fid.get('normalization', '?')}\", reference {fid.get('reference_split', '?')}; "
                        f"`{fid.get('command', '')}`")
    return seen


#: the baseline the progress section compares with (scripts/snapshot_metrics.py wrote it; absent: no section)
BASELINE = REPO / "docs" / "baselines" / "issue14_audit.json"
#: FID ratio of the real training images scored as if they were samples, per data set and image size
#: (benchmarks/fid_ratio_ceiling.py, benchmarks/README.md): the most a model can reach with that split
CEILING = REPO / "benchmarks" / "fid_ratio_ceiling.json"


def load_ceilings(path: Path = CEILING) -> Dict[tuple, float]:
    """(data set, shape) -> FID ratio ceiling, from the benchmark's JSON (empty when absent)."""
    if not path.is_file():
        return {}
    return {(r["dataset"], r["shape"]): float(r["FID_ratio_ceiling"]) for r in json.loads(path.read_text())}
#: metrics the progress table shows, then -> now (name, header, format)
PROGRESS_COLUMNS = [("FID_ratio", "FID ratio ↑", "{:.3f}"), ("realism_AUC", "realism AUC (0.5 ideal)", "{:.3f}"),
                    ("recall", "recall ↑", "{:.3f}"), ("coverage", "coverage ↑", "{:.3f}")]


def load_baseline(path: Path = BASELINE) -> Optional[Dict[str, Any]]:
    """The frozen metrics of the baseline commit, or None when there is no baseline file."""
    return json.loads(path.read_text()) if path.is_file() else None


def _then_now(then: Optional[float], now: Optional[float], pattern: str) -> str:
    def show(v: Optional[float]) -> str:
        return "–" if v is None else pattern.format(v)

    return show(now) if then is None else f"{show(then)} → {show(now)}"


def target_lines(rows: List[Dict[str, Any]], targets: Sequence[QualityTarget] = TARGETS) -> List[str]:
    """One line per target (catalog.targets): how many models meet it, which, and the nearest miss."""
    lines = []
    for t in targets:
        name = t.metric
        have = [r for r in rows if value(r, name) is not None]
        met = [r for r in have if t.met(value(r, name))]
        unmeasured = [r["id"] for r in rows if value(r, name) is None]
        ok = (len(met) == len(rows)) if t.need == "every" else len(met) >= int(t.need)
        who = ", ".join(f"`{r['id']}` {value(r, name):.3f}" + (
            f" (n={few_samples(r, name)})" if few_samples(r, name) else "") for r in met) or "none"
        line = (f"- {name} {t.met_when} {t.threshold:g} for {t.ask}: **{'met' if ok else 'not met'}**, "
                f"{len(met)} of {len(have)} measured ({who}).")
        small = [r for r in met if few_samples(r, name)]
        if ok and small:
            line += (f" {len(met) - len(small)} of them on at least {MIN_PICK_SAMPLES} samples: figures on fewer "
                     "(n=) have wide intervals.")
        missed = [r for r in have if r not in met]
        if not ok and missed:
            near = min(missed, key=lambda r: t.gap(value(r, name)))
            line += f" Nearest miss: `{near['id']}` {value(near, name):.3f}."
        if unmeasured:
            line += " Not measured: " + ", ".join(f"`{u}`" for u in unmeasured) + "."
        lines.append(line)
    return lines


def progress_section(rows: List[Dict[str, Any]], baseline: Optional[Dict[str, Any]],
                     ceilings: Optional[Dict[tuple, float]] = None) -> List[str]:
    """Then -> now per model against the baseline (same id), best per data set, and the targets' status."""
    if not baseline:
        return []
    old = baseline["models"]

    def then(mid: str, name: str) -> Optional[float]:
        return (old.get(mid, {}).get("metrics", {}).get(name) or {}).get("value")

    out = ["", f"## Progress since the {baseline['label']}", "",
           f"Baseline: the metrics stored in the bundles at commit `{baseline['commit'][:10]}` ({baseline['date']}), "
           "frozen in `docs/baselines/" + BASELINE.name + "` by `scripts/snapshot_metrics.py`. Figures were "
           "measured by the zoo's evaluation of their time: realism AUC then used 546-2,000 images per side "
           "(now 2,000 where the data allow), and `adrenal_ct_3dgan` 0.2.0 was measured on soft (non-binary) masks. "
           "New models have no baseline of their own; the data-set table compares the best model of each data set.",
           "", "| model | version | " + " | ".join(h for _, h, _ in PROGRESS_COLUMNS) +
           " | FID ratio ceiling of the split (training images) |",
           "|---|---|" + "---|" * len(PROGRESS_COLUMNS) + "---|"]
    ceilings = load_ceilings() if ceilings is None else ceilings
    for r in rows:
        was = old.get(r["id"])
        version = f"{was['version']} → {r['version']}" if was else f"new ({r['version']})"
        ceiling = ceilings.get((r["dataset"], r["shape"]))
        out.append(f"| `{r['id']}` | {version} | " + " | ".join(
            _then_now(then(r["id"], n) if was else None, value(r, n), p) for n, _, p in PROGRESS_COLUMNS) +
            f" | {'–' if ceiling is None else f'{ceiling:.3f}'} |")
    if ceilings:
        out += ["", "The ceiling column is the FID ratio the real training images get when scored as if they were "
                "the samples (`benchmarks/fid_ratio_ceiling.py`, benchmarks/README.md): a model that reproduced its "
                "training distribution exactly would score about that. Below 1 where the test split differs from the "
                "training split (one slide cut spatially, one held-out brain MRI patient of seven, PneumoniaMNIST's "
                "differently mixed test set); a model at its ceiling cannot gain FID ratio by being more realistic."]
    out += ["", "Best per data set (FID ratio: highest; realism AUC: nearest 0.5), baseline → now:", "",
            "| data set | FID ratio, baseline | FID ratio, now | realism AUC, baseline | realism AUC, now |",
            "|---|---|---|---|---|"]
    datasets = sorted({r["dataset"] for r in rows} | {m["dataset"] for m in old.values()})
    for data in datasets:
        cells = []
        for name, key in (("FID_ratio", lambda v: -v), ("realism_AUC", lambda v: abs(v - 0.5))):
            olds = [(mid, m["metrics"][name]["value"]) for mid, m in old.items()
                    if m["dataset"] == data and name in m["metrics"]]
            news = [(r["id"], value(r, name)) for r in rows if r["dataset"] == data and value(r, name) is not None]
            for pairs in (olds, news):
                b = min(pairs, key=lambda p: key(p[1])) if pairs else None
                cells.append(f"{b[1]:.3f} (`{b[0]}`)" if b else "–")
        out.append(f"| {data} | " + " | ".join(cells) + " |")
    out += ["", f"Targets of {SOURCE} (`medigan_zoo.catalog.targets`; goals: measured figures, met or not):", ""]
    out += target_lines(rows)
    floor = next(t.threshold for t in TARGETS if t.metric == "FID_ratio" and t.need == "every")
    capped = [r for r in rows if (ceilings.get((r["dataset"], r["shape"])) or 1.0) < floor and value(r, "FID_ratio")]
    if capped:
        shown = [f"`{r['id']}` ({ceilings[(r['dataset'], r['shape'])]:.3f}; the model {value(r, 'FID_ratio'):.3f})"
                 for r in capped]
        out.append(f"- Out of reach by construction: even the training images score an FID ratio below {floor:g} "
                   "against the test split of " + ", ".join(shown) + ".")
    return out


def build_markdown(rows: List[Dict[str, Any]], missing: List[str],
                   baseline: Optional[Dict[str, Any]] = None) -> str:
    out = ["# Model comparison", "",
           "Generated by `python scripts/compare_models.py` from the metrics in each bundle's "
           "`configs/metadata.json` (measured by `medigan-zoo evaluate`, see docs/evaluation.md). Do not edit by "
           "hand.", "",
           "FID values depend on the feature extractor and the normalization (Osuala et al., medigan, 2023): they "
           "are comparable only between models of the **same data set** measured the same way. The FID ratio "
           "(FID(real_a, real_b) / FID(real_a, synthetic)), realism AUC, precision/recall and the downstream "
           "gain are normalized and can be compared across data sets, with care.", "",
           "## Models", "",
           "| model | modality | data set | architecture | shape | condition |", "|---|---|---|---|---|---|"]
    out += [f"| `{r['id']}` | {r['modality']} | {r['dataset']} | {r['architecture']} | {r['shape']} | "
            f"{r['condition']} |" for r in rows]
    out += ["", "## Metrics", "", "| model | " + " | ".join(header(n, h) for n, h, _ in COLUMNS) + " |",
            "|---|" + "---|" * len(COLUMNS)]
    out += ["| `" + r["id"] + "` | " + " | ".join(fmt(r, n, p) for n, _, p in COLUMNS) + " |" for r in rows]
    out += ["", "– = not measured (downstream gain and condition fidelity need a class-conditional model, 2.5D FID a "
            "3D model). Brackets: 95 % bootstrap intervals (docs/evaluation.md); models whose intervals overlap "
            "are not told apart by that metric."]
    out += [""] + anchor_rows()
    out += ["", "## Which model for what", "",
            f"Picks compare figures measured on at least {MIN_PICK_SAMPLES} samples.", ""] + (
        recommendations(rows) or ["No metrics measured yet."])
    out += progress_section(rows, baseline)
    out += ["", "## How the figures were measured", ""] + (provenance(rows) or ["No metrics measured yet."])
    if missing:
        out += ["", "## Not evaluated yet", "", "Bundles still in training (no docs/training_log.txt and "
                "docs/samples.png, or no metrics): " + ", ".join(f"`{m}`" for m in missing) + "."]
    return "\n".join(out) + "\n"


def page_text(root: Path, baseline: Optional[Path] = BASELINE) -> str:
    """The comparison page for the bundles under ``root`` (what main writes to docs/model_comparison.md)."""
    rows = [read_row(b) for b in generator_bundles(root)]
    shown = [r for r in rows if r["metrics"]]
    pending = sorted({r["id"] for r in rows if not r["metrics"]} |
                     {p.name for p in root.iterdir() if (p / "configs").is_dir() and
                      p.name not in {r["id"] for r in rows} and
                      (json.loads((p / "configs" / "metadata.json").read_text()).get("medigan_zoo") or {})
                      .get("role", "generator") == "generator"} if root.is_dir() else set())
    return build_markdown(shown, pending, load_baseline(baseline) if baseline is not None else None)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", default=str(REPO / "bundles"), help="folder of bundles")
    parser.add_argument("--output", default=str(REPO / "docs" / "model_comparison.md"), help="'-' prints")
    parser.add_argument("--evaluate", action="store_true", help="run medigan_zoo.evaluation first (writes metrics)")
    parser.add_argument("--num_samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="bundle ids to (re-)evaluate (default: all ready ones)")
    args = parser.parse_args(argv)
    bundles = generator_bundles(Path(args.bundles))
    if args.evaluate:
        from medigan_zoo.evaluation import evaluate_bundle

        for bundle in bundles:
            row = read_row(bundle)
            if (args.only and bundle.name not in args.only) or not row["ready"]:
                continue
            command = f"medigan-zoo evaluate {bundle.name} --num_samples {args.num_samples} --seed {args.seed}"
            report = evaluate_bundle(bundle, num_samples=args.num_samples, seed=args.seed, command=command)
            print(f"{bundle.name}: {json.dumps(report.values())} ({report.timings['total']:.0f} s)", flush=True)
    text = page_text(Path(args.bundles))
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text)
        print(f"comparison page written to {args.output}")


if __name__ == "__main__":
    main()
