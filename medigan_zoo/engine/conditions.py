"""Check user conditions and sampling options against a model's zoo block; give every sample index its condition."""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from medigan_zoo.catalog.model_info import ConditionSpec, OptionSpec
from medigan_zoo.core.errors import GenerationError

Condition = Dict[str, Any]


@dataclass(frozen=True)
class ConditionPlan:
    """The conditions of a run: sample ``i`` gets ``combos[i % len(combos)]``.

    A single value applies to every sample; a list of values is cycled (``[0, 1]``: even indices 0, odd 1), so
    a run is split evenly whatever ``num_samples`` is, and sample ``i``'s condition never depends on it.
    Several lists are combined as their cartesian product, cycled the same way.
    """

    specs: Tuple[ConditionSpec, ...] = ()
    combos: Tuple[Tuple[Tuple[str, Any], ...], ...] = ((),)

    def at(self, index: int) -> Condition:
        return dict(self.combos[index % len(self.combos)])

    @property
    def names(self) -> List[str]:
        return [s.name for s in self.specs]

    def to_json(self) -> List[Condition]:
        """The cycled list of condition dicts (written into the manifest header)."""
        return [dict(c) for c in self.combos]

    def folder(self, condition: Condition) -> str:
        """Sub-folder of ``condition`` when splitting by condition, e.g. ``class_label_1``."""
        parts = [f"{name}_{_safe(condition[name])}" for name in self.names if name in condition]
        return "/".join(parts)

    def tensors(self, conditions: Sequence[Condition], device: Any) -> Dict[str, Any]:
        """Batch the conditions of some samples as the sampler takes them: name -> (B,) tensor (lists for text)."""
        import torch

        out: Dict[str, Any] = {}
        for spec in self.specs:
            values = [c[spec.name] for c in conditions]
            if spec.type == "continuous":
                out[spec.name] = torch.tensor(values, dtype=torch.float32, device=device)
            elif spec.type == "categorical" and all(isinstance(v, int) for v in values):
                out[spec.name] = torch.tensor(values, dtype=torch.long, device=device)
            else:
                out[spec.name] = list(values)
        return out


def _safe(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(value)) or "_"


def _describe(spec: ConditionSpec) -> str:
    if spec.type == "categorical" and spec.values:
        return f"{spec.name} ({', '.join(f'{k} {v}' for k, v in spec.values.items())})"
    return f"{spec.name} ({spec.type})"


def _canonical(spec: ConditionSpec, value: Any, model: str) -> Any:
    """``value`` as the sampler takes it; raise listing the valid values when the model cannot take it."""
    if spec.type == "categorical":
        if not spec.values:
            return value
        text = str(value).strip()
        if isinstance(value, float) and value.is_integer():
            text = str(int(value))
        key = text if text in spec.values else next(
            (k for k, meaning in spec.values.items() if str(meaning).lower() == text.lower()), None)
        if key is None or isinstance(value, bool):
            valid = ", ".join(f"{k} ({m})" for k, m in spec.values.items())
            raise GenerationError(f"Model {model!r} does not take {spec.name}={value!r}. Valid values: {valid}.")
        return int(key) if re.fullmatch(r"-?\d+", key) else key
    if spec.type == "continuous":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise GenerationError(f"Condition {spec.name} of model {model!r} is a number, got {value!r}.") from None
        low = -float("inf") if spec.minimum is None else float(spec.minimum)
        high = float("inf") if spec.maximum is None else float(spec.maximum)
        if not low <= number <= high:
            raise GenerationError(f"Condition {spec.name} of model {model!r} takes a number from "
                                  f"{spec.minimum if spec.minimum is not None else '-inf'} to "
                                  f"{spec.maximum if spec.maximum is not None else 'inf'}, got {value!r}.")
        return number
    if spec.type == "text":
        return str(value)
    raise GenerationError(f"Condition {spec.name} of model {model!r} is of type {spec.type!r}, which the generation "
                          "engine does not support yet (categorical, continuous and text are supported).")


def resolve_conditions(specs: Sequence[ConditionSpec], given: Optional[Mapping[str, Any]],
                       model: str) -> ConditionPlan:
    """Validate ``given`` (name -> value or list of values) against ``specs`` and build the run's plan.

    Unknown names, values outside a categorical condition's values, and missing conditions without a default
    raise GenerationError listing what the model takes.
    """
    given = dict(given or {})
    by_name = {s.name: s for s in specs}
    takes = ", ".join(_describe(s) for s in specs) or "no conditions"
    for name in given:
        if name not in by_name:
            raise GenerationError(f"Model {model!r} takes no condition {name!r}; it takes {takes}.")
    choices: List[List[Tuple[str, Any]]] = []
    for spec in specs:
        if spec.name in given:
            raw = given[spec.name]
            values = list(raw) if isinstance(raw, (list, tuple)) else [raw]
            if not values:
                raise GenerationError(f"Condition {spec.name} of model {model!r} got an empty list of values.")
        elif spec.default is not None:
            values = [spec.default]
        else:
            raise GenerationError(f"Model {model!r} needs the condition {_describe(spec)}; pass it, e.g. "
                                  f"conditions={{{spec.name!r}: ...}}.")
        canon = [_canonical(spec, v, model) for v in values]
        choices.append([(spec.name, v) for v in canon])
    return ConditionPlan(specs=tuple(specs), combos=tuple(itertools.product(*choices)))


def _describe_option(spec: OptionSpec) -> str:
    bounds = ""
    if spec.choices:
        bounds = f", one of {list(spec.choices)}"
    elif spec.minimum is not None or spec.maximum is not None:
        bounds = f", {'' if spec.minimum is None else spec.minimum} .. {'' if spec.maximum is None else spec.maximum}"
    return f"{spec.name} ({spec.type}{bounds}, default {spec.default!r})"


def _option_value(spec: OptionSpec, value: Any, model: str) -> Any:
    """``value`` converted to the option's type and checked against its bounds / choices."""
    def fail(why: str) -> GenerationError:
        return GenerationError(f"Option {spec.name}={value!r} of model {model!r} {why}; it takes "
                               f"{_describe_option(spec)}.")

    text = str(value).strip()
    if spec.type == "boolean":
        if isinstance(value, bool):
            out: Any = value
        elif text.lower() in ("true", "1", "yes"):
            out = True
        elif text.lower() in ("false", "0", "no"):
            out = False
        else:
            raise fail("is not a boolean")
    elif spec.type == "integer":
        try:
            number = float(text)
        except ValueError:
            raise fail("is not an integer") from None
        if isinstance(value, bool) or not number.is_integer():
            raise fail("is not an integer")
        out = int(number)
    elif spec.type == "number":
        try:
            out = float(text)
        except ValueError:
            raise fail("is not a number") from None
        if isinstance(value, bool) or out != out:
            raise fail("is not a number")
    else:
        if text[:1] in ("$", "@", "%"):
            raise fail("looks like a MONAI config expression or reference, which options may not be")
        out = text
    if spec.choices and out not in spec.choices:
        raise fail("is not an allowed value")
    if spec.minimum is not None and out < spec.minimum:
        raise fail(f"is below the minimum {spec.minimum}")
    if spec.maximum is not None and out > spec.maximum:
        raise fail(f"is above the maximum {spec.maximum}")
    return out


def resolve_options(specs: Sequence[OptionSpec], given: Optional[Mapping[str, Any]], model: str) -> Dict[str, Any]:
    """Every sampling option of the model with its value for this run (given, else the default), type-checked.

    Unknown names and values of the wrong type or out of bounds raise GenerationError listing what the model takes.
    """
    given = dict(given or {})
    by_name = {s.name: s for s in specs}
    for name in given:
        if name not in by_name:
            takes = ", ".join(_describe_option(s) for s in specs) or "no sampling options"
            raise GenerationError(f"Model {model!r} has no sampling option {name!r}; it takes {takes}.")
    return {s.name: _option_value(s, given[s.name], model) if s.name in given else s.default for s in specs}


def split_conditions_and_options(info: Any, values: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Split keyword arguments (``class_label=1, num_inference_steps=20``) into (conditions, options) by the
    model's names; a name that is neither raises GenerationError listing both."""
    options = {s.name for s in info.options}
    conditions = {s.name for s in info.conditions}
    unknown = [k for k in values if k not in options | conditions]
    if unknown:
        takes = ", ".join(_describe(s) for s in info.conditions) or "none"
        opts = ", ".join(_describe_option(s) for s in info.options) or "none"
        raise GenerationError(f"Model {info.id!r} takes no condition or sampling option {unknown[0]!r}. "
                              f"Conditions: {takes}. Sampling options: {opts}.")
    return ({k: v for k, v in values.items() if k in conditions}, {k: v for k, v in values.items() if k in options})
