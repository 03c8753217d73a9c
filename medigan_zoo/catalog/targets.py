"""The zoo's quality targets for generators (issue #14): the one home of their thresholds. Pure Python.

A target is a threshold on one stored metric that ``every`` generator should meet, or that at least ``need``
generators should meet (``need=1``: the best one). Targets are goals: a model that misses one stays in the zoo with
the distance stated. Two places show them, both generated from the bundles' stored metrics:

* each model card's metrics block (``evaluation.report.metrics_markdown`` -> :func:`target_lines`): per target,
  met or not and by how much;
* ``docs/model_comparison.md`` (``scripts/compare_models.py``): how many models meet each target.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Union

__all__ = ["QualityTarget", "TARGETS", "SOURCE", "target_lines"]

#: where the targets were set
SOURCE = "issue #14"


@dataclass(frozen=True)
class QualityTarget:
    """``metric`` ``met_when`` ``threshold`` (e.g. realism_AUC <= 0.95), asked of ``need`` models ("every" or a
    count: 1 means the best model)."""

    metric: str
    threshold: float
    met_when: str  # "<=" or ">="
    need: Union[str, int]

    def met(self, value: float) -> bool:
        """True when ``value`` meets the threshold."""
        return value <= self.threshold if self.met_when == "<=" else value >= self.threshold

    def gap(self, value: float) -> float:
        """How far ``value`` is from meeting the threshold (0.0 when it meets it)."""
        return 0.0 if self.met(value) else abs(value - self.threshold)

    @property
    def ask(self) -> str:
        """Who is asked to meet it, in words: "every model", "the best model", "at least 3 models"."""
        if self.need == "every":
            return "every model"
        return "the best model" if self.need == 1 else f"at least {self.need} models"


TARGETS = (
    QualityTarget("realism_AUC", 0.95, "<=", "every"),
    QualityTarget("realism_AUC", 0.85, "<=", 3),
    QualityTarget("realism_AUC", 0.75, "<=", 1),
    QualityTarget("FID_ratio", 0.4, ">=", "every"),
    QualityTarget("FID_ratio", 0.6, ">=", 1),
)


def _value(entries: Sequence[Mapping[str, Any]], name: str) -> Optional[float]:
    for m in entries:
        if m.get("name") == name and isinstance(m.get("value"), (int, float)):
            return float(m["value"])
    return None


def target_lines(entries: Sequence[Mapping[str, Any]]) -> List[str]:
    """Markdown bullet lines: this model's stored figure against each target whose metric it has (none: [])."""
    lines = []
    for t in TARGETS:
        v = _value(entries, t.metric)
        if v is None:
            continue
        verdict = "met" if t.met(v) else f"not met ({t.gap(v):.3f} away)"
        lines.append(f"- {t.metric} {v:.3f} against {t.met_when} {t.threshold:g} ({t.ask}): {verdict}")
    if lines and _value(entries, "realism_cv_AUC") is not None:
        lines.append(f"- realism_cv_AUC (the stronger, cross-validated test; no target set): "
                     f"{_value(entries, 'realism_cv_AUC'):.3f}")
    return lines
