"""Text of the UI's pages: search result cards, metric tables, model cards (no torch, no gradio)."""
from __future__ import annotations

import html
import re
from typing import Any, List, Mapping, Optional, Sequence

from medigan_zoo.catalog.model_info import Metric, ModelInfo

#: metrics shown on the search cards and first in compare, when a model has them
MAIN_METRICS = ("FID", "precision", "recall", "realism_AUC")
METRIC_HEADERS = ["metric", "value", "better", "samples", "reference split", "feature extractor / how measured"]
_ARROW = {"lower": "lower ↓", "higher": "higher ↑"}


def format_value(value: Any) -> str:
    """A metric value for display: 4 significant digits, lists joined."""
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def shape_text(info: ModelInfo) -> str:
    shape = "x".join(map(str, info.spatial_shape)) or "?"
    channels = int(info.zoo.get("num_channels") or 1)
    return f"{shape}{' RGB' if channels == 3 else ''} ({info.dims or '?'}D)"


def main_metrics(info: ModelInfo) -> List[Metric]:
    return [m for m in (info.metric(name) for name in MAIN_METRICS) if m is not None]


def card_html(info: ModelInfo, thumbnail: Optional[str], score: Optional[float] = None) -> str:
    """One search result card: thumbnail (a data URI), id, name, modality, shape, license, main metrics."""
    esc = html.escape
    metrics = " · ".join(f"{esc(m.name)} {esc(format_value(m.value))} {'↓' if m.direction == 'lower' else '↑'}"
                         for m in main_metrics(info)) or "no measured metrics"
    img = (f'<img src="{thumbnail}" alt="samples of {esc(info.id)}" style="width:100%;image-rendering:pixelated;'
           'border-radius:4px"/>' if thumbnail else '<div style="padding:2em;text-align:center">no samples.png</div>')
    where = "" if info.available else " · catalog only (not on disk)"
    score_text = f" · score {score:.2f}" if score else ""
    return (f'<div class="zoo-card" data-model="{esc(info.id)}" style="border:1px solid #ccc;border-radius:8px;'
            f'padding:8px;width:260px;display:inline-block;vertical-align:top;margin:4px">{img}'
            f'<div style="font-weight:bold;margin-top:4px">{esc(info.id)}</div>'
            f'<div style="font-size:90%">{esc(info.name)}</div>'
            f'<div style="font-size:85%">{esc(", ".join(info.modality) or "?")} · {esc(shape_text(info))} · '
            f'{esc(info.license)}{esc(where)}{esc(score_text)}</div>'
            f'<div style="font-size:85%;margin-top:2px">{metrics}</div></div>')


def cards_html(cards: Sequence[str]) -> str:
    if not cards:
        return '<div class="zoo-cards">No model matches.</div>'
    return f'<div class="zoo-cards">{"".join(cards)}</div>'


def metric_rows(info: ModelInfo) -> List[List[str]]:
    """The metrics table of a model page: name, value, direction, samples, reference split, how measured."""
    rows = []
    for m in info.metrics:
        how = "; ".join(str(x) for x in (m.feature_extractor, m.normalization, m.extra.get("note")) if x)
        rows.append([m.name, format_value(m.value), _ARROW.get(m.direction, m.direction),
                     "" if m.num_samples is None else str(m.num_samples), m.reference_split or "", how])
    return rows


def compare_rows(infos: Sequence[ModelInfo]) -> List[List[str]]:
    """Metrics of several models side by side (main metrics first); the best value of each row is starred."""
    names: List[str] = list(MAIN_METRICS)
    for info in infos:
        names += [m.name for m in info.metrics if m.name not in names]
    rows = []
    for name in names:
        found = [info.metric(name) for info in infos]
        present = [m for m in found if m is not None and isinstance(m.value, (int, float))]
        if not any(m is not None for m in found):
            continue
        best = None
        if len(present) > 1:
            pick = min if present[0].direction == "lower" else max
            best = pick(m.value for m in present)
        direction = next(m.direction for m in found if m is not None)
        cells = [("" if m is None else format_value(m.value) + (" ★" if best is not None and m.value == best else ""))
                 for m in found]
        rows.append([name, _ARROW.get(direction, direction)] + cells)
    return rows


_IMAGE_LINE = re.compile(r"^\s*!\[[^\]]*\]\((?!https?:)[^)]*\)\s*$")


def readme_markdown(info: ModelInfo) -> str:
    """The model card (the bundle's docs/README.md) as markdown; local image links are dropped (the page shows the
    sample grid beside it). Catalog models without a bundle get their description."""
    readme = info.bundle_dir / "docs" / "README.md" if info.bundle_dir is not None else None
    if readme is None or not readme.is_file():
        return f"# {info.name} — `{info.id}`\n\n{info.description or 'No model card.'}"
    lines = readme.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(line for line in lines if not _IMAGE_LINE.match(line))


def condition_choices(values: Mapping[str, str]) -> List[tuple]:
    """Dropdown choices of a categorical condition: (label shown, value passed to the zoo)."""
    return [(f"{key}: {meaning}", key) for key, meaning in values.items()]
