"""Write evaluation results into a bundle: configs/metadata.json ("medigan_zoo"."metrics") and the model card.

Metric objects follow docs/bundle_contract.md (name, value, direction, num_samples, feature_extractor,
normalization, reference_split, seed, zoo_version, command). A new result replaces the earlier entries of the same
name, except that a stored metric measured with more samples than the new one is kept and the write refused
(nothing written) unless ``force``: a 16-sample FID must not silently replace a 2000-sample one. The model card
(docs/README.md) gets the table of all metrics between the markers ``<!-- metrics:start -->`` and
``<!-- metrics:end -->`` under its "## Metrics" heading; text outside the markers is kept as written.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from medigan_zoo.catalog.model_info import ZOO_KEY
from medigan_zoo.catalog.targets import SOURCE, target_lines
from medigan_zoo.core.errors import MetadataError, MetricOverwriteError
from medigan_zoo.core.jsonio import load_json
from medigan_zoo.core.version import __version__

MARK_START = "<!-- metrics:start -->"
MARK_END = "<!-- metrics:end -->"
HEADING = "## Metrics"
_FIELD_ORDER = ("name", "value", "direction", "num_samples", "feature_extractor", "normalization", "reference_split",
                "condition", "seed", "zoo_version", "command", "note")


def _round(value: Any, digits: int = 6) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, (list, tuple)):
        return [_round(v, digits) for v in value]
    return value


def _finite(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_finite(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_entry(name: str, value: Any, direction: str, **fields: Any) -> Dict[str, Any]:
    """A metric object with the contract's keys in a stable order (``zoo_version`` filled in, None fields dropped)."""
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
    data = {"name": name, "value": _round(value), "direction": direction, "zoo_version": __version__, **fields}
    ordered = {k: data[k] for k in _FIELD_ORDER if data.get(k) is not None}
    ordered.update({k: v for k, v in data.items() if k not in ordered and v is not None})
    return ordered


def merge_metrics(existing: Iterable[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """``existing`` with every entry named like one of ``new`` replaced (at its first position), others appended."""
    new_by_name = {m["name"]: dict(m) for m in new}
    out: List[Dict[str, Any]] = []
    placed = set()
    for entry in existing:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if name in new_by_name:
            if name not in placed:
                out.append(new_by_name[name])
                placed.add(name)
            continue
        out.append(dict(entry))
    out += [m for name, m in new_by_name.items() if name not in placed]
    return out


def _sample_count(entry: Mapping[str, Any]) -> Optional[int]:
    count = entry.get("num_samples") if isinstance(entry, Mapping) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def downgrades(existing: Iterable[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> List[Tuple[str, int, int]]:
    """(name, stored num_samples, new num_samples) of every stored metric that an entry of ``new`` would replace
    although the stored one was measured with more samples. Entries without a sample count are never downgrades."""
    stored: Dict[str, int] = {}
    for entry in existing:
        count = _sample_count(entry)
        if count is not None and isinstance(entry.get("name"), str):
            stored[entry["name"]] = max(count, stored.get(entry["name"], 0))
    out = []
    for entry in new:
        count = _sample_count(entry)
        if count is not None and stored.get(entry["name"], 0) > count:
            out.append((str(entry["name"]), stored[entry["name"]], count))
    return out


def downgrade_message(path: Path, found: Sequence[Tuple[str, int, int]]) -> str:
    """One line naming each metric, its stored and new sample count, and the flag that allows replacing them."""
    listed = ", ".join(f"{name} (stored {old} samples, this run {new})" for name, old, new in found[:4])
    more = f" and {len(found) - 4} more" if len(found) > 4 else ""
    return (f"{path}: refusing to replace metrics measured with more samples: {listed}{more}; nothing was written. "
            "Pass --force (Python: force=True) to replace them, or --dry_run to only measure.")


def _indent_of(text: str) -> int:
    match = re.search(r"\n( +)\S", text)
    return len(match.group(1)) if match else 4


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_metadata_metrics(bundle_dir: Path, entries: Sequence[Mapping[str, Any]],
                           force: bool = False) -> List[Dict[str, Any]]:
    """Merge ``entries`` into configs/metadata.json; returns the bundle's full metrics list after the merge.

    Raises:
        MetricOverwriteError: (unless ``force``) an entry would replace a stored metric measured with more samples;
            the file is left as it was.
    """
    path = Path(bundle_dir) / "configs" / "metadata.json"
    text = path.read_text(encoding="utf-8")
    meta = load_json(path, "bundle metadata")
    zoo = meta.get(ZOO_KEY)
    if not isinstance(zoo, dict):
        raise MetadataError("has no medigan_zoo block to write metrics into", file=path, json_path=f"$.{ZOO_KEY}",
                            hint="add the zoo block (docs/bundle_contract.md section 2)")
    finite = [e for e in entries if _finite(e.get("value"))]
    found = downgrades(zoo.get("metrics") or [], finite)
    if found and not force:
        raise MetricOverwriteError(downgrade_message(path, found))
    zoo["metrics"] = merge_metrics(zoo.get("metrics") or [], finite)
    _atomic_write(path, json.dumps(meta, indent=_indent_of(text), ensure_ascii=False) + "\n")
    return zoo["metrics"]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value).replace("|", "\\|") if value is not None else ""


def metrics_markdown(entries: Sequence[Mapping[str, Any]]) -> str:
    """The markdown table of metric objects (plus the command(s) that measured them)."""
    if not entries:
        return "No metrics measured yet."
    header = "| metric | value | better | samples | feature extractor | normalization | reference | seed |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for m in entries:
        value = _cell(m.get("value"))
        if _finite(m.get("ci_low")) and _finite(m.get("ci_high")):  # the interval, with what it was computed from
            basis = (f"{m['num_runs']} runs" if m.get("num_runs") is not None
                     else f"{m.get('num_resamples', '?')} resamples")
            value += f" [{_cell(m['ci_low'])}, {_cell(m['ci_high'])}; {basis}]"
        lines.append("| " + " | ".join([_cell(m.get("name")), value] + [_cell(m.get(k)) for k in (
            "direction", "num_samples", "feature_extractor", "normalization", "reference_split", "seed")]) + " |")
    commands = list(dict.fromkeys(str(m["command"]) for m in entries if m.get("command")))
    versions = sorted({str(m["zoo_version"]) for m in entries if m.get("zoo_version")})
    lines.append("")
    if versions:
        lines.append(f"Measured with medigan_zoo {', '.join(versions)}; reproduce with:")
    else:
        lines.append("Reproduce with:")
    lines += ["", "```"] + commands + ["```"]
    targets = target_lines(entries)
    if targets:
        lines += ["", f"Against the zoo's quality targets ({SOURCE}; goals, see docs/model_comparison.md for "
                      "how many models meet each):", ""] + targets
    return "\n".join(lines)


def card_with_metrics(card: str, table: str) -> str:
    """``card`` with ``table`` between the metrics markers (markers added under "## Metrics", or a new section)."""
    block = f"{MARK_START}\n{table}\n{MARK_END}"
    if MARK_START in card and MARK_END in card and card.index(MARK_START) < card.index(MARK_END):
        before, rest = card.split(MARK_START, 1)
        _, after = rest.split(MARK_END, 1)
        return before + block + after
    match = re.search(r"^##\s+Metrics\b[^\n]*\n", card, flags=re.MULTILINE | re.IGNORECASE)
    if match:
        return card[:match.end()] + "\n" + block + "\n" + card[match.end():]
    sep = "" if card.endswith("\n\n") else ("\n" if card.endswith("\n") else "\n\n")
    return f"{card}{sep}{HEADING}\n\n{block}\n"


def write_card_metrics(bundle_dir: Path, entries: Sequence[Mapping[str, Any]]) -> Optional[Path]:
    """Rewrite the metrics block of docs/README.md (created if the bundle has no card)."""
    path = Path(bundle_dir) / "docs" / "README.md"
    card = path.read_text(encoding="utf-8") if path.is_file() else f"# {Path(bundle_dir).name}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, card_with_metrics(card, metrics_markdown(entries)))
    return path


def write_results(bundle_dir: Path, entries: Sequence[Mapping[str, Any]], force: bool = False) -> List[Dict[str, Any]]:
    """Metadata then card; returns the bundle's metrics list after the merge. Refuses (MetricOverwriteError, nothing
    written) to replace metrics measured with more samples unless ``force``."""
    merged = write_metadata_metrics(bundle_dir, entries, force)
    write_card_metrics(bundle_dir, merged)
    return merged
