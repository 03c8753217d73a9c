"""The tunable hyperparameters a bundle's recipe declares, read from its own ``configs/train.json``.

A recipe names them in a top-level ``"hyperparameters"`` block (plain JSON: ``monai.bundle`` parses it like any
other id and nothing refers to it)::

    "hyperparameters": {
        "g_learning_rate": {"description": "Adam learning rate of the generator",
                            "type": "float", "low": 1e-05, "high": 0.01, "log": true},
        "betas": {"description": "Adam betas", "type": "categorical", "choices": [[0.0, 0.9], [0.5, 0.999]]}
    }

Each name is a top-level id of the same ``train.json``; its current value there is the default (so the block
never repeats a value and cannot disagree with the recipe). ``type`` is ``float`` or ``int`` (with ``low``,
``high`` and optional ``log``) or ``categorical`` (with ``choices``). :func:`read_hyperparameters` checks all of
it and says what is wrong at which JSON path; ``medigan-zoo hyperparameters BUNDLE``, ``train --help`` and
``tune`` show and search the same list. Torch-free.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from medigan_zoo.core.errors import MetadataError, ZooError
from medigan_zoo.core.jsonio import json_path, load_json

PathLike = Union[str, Path]

#: the block's id in train.json
BLOCK = "hyperparameters"
TYPES = ("float", "int", "categorical")
#: keys an entry may have, per type (``description`` and ``type`` always)
_KEYS = {"float": {"low", "high", "log"}, "int": {"low", "high", "log"}, "categorical": {"choices"}}


@dataclass
class Hyperparameter:
    """One tunable id of a recipe: its meaning, type, default (the value in train.json) and range."""

    name: str
    description: str
    type: str  # noqa: A003 - the block's own key
    default: Any
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    choices: Optional[List[Any]] = None

    def range_text(self) -> str:
        """``[low, high]`` (with ``log``) or the choices, as shown in tables."""
        if self.type == "categorical":
            return " | ".join(str(c) for c in (self.choices or []))
        return f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is of this type and inside the range (or one of the choices)."""
        if self.type == "categorical":
            return value in (self.choices or [])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.type == "int" and not isinstance(value, int):
            return False
        assert self.low is not None and self.high is not None  # checked by read_hyperparameters
        return self.low <= value <= self.high

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def train_config_path(bundle_dir: PathLike) -> Path:
    return Path(bundle_dir) / "configs" / "train.json"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _entry(name: str, spec: Any, config: Mapping[str, Any], path: Path) -> Hyperparameter:
    where = [BLOCK, name]
    if not isinstance(spec, dict):
        raise MetadataError("expected an object with description and type", path, json_path(where))
    if name not in config or name == BLOCK:
        raise MetadataError(f"{name!r} is not a top-level id of this train.json", path, json_path(where),
                            "a hyperparameter names an id whose value is its default")
    kind = spec.get("type")
    if kind not in TYPES:
        raise MetadataError(f"type must be one of {', '.join(TYPES)}, got {kind!r}", path, json_path(where + ["type"]))
    unknown = sorted(set(spec) - {"description", "type"} - _KEYS[kind])
    if unknown:
        raise MetadataError(f"unknown key {unknown[0]!r} for type {kind}; allowed: description, type, "
                            + ", ".join(sorted(_KEYS[kind])), path, json_path(where + [unknown[0]]))
    description = spec.get("description")
    if not isinstance(description, str) or not description.strip():
        raise MetadataError("description must be a non-empty text", path, json_path(where + ["description"]))
    default = config[name]
    item = Hyperparameter(name=name, description=description, type=kind, default=default)
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise MetadataError("choices must be a non-empty list", path, json_path(where + ["choices"]))
        item.choices = choices
    else:
        for key in ("low", "high"):
            if not _number(spec.get(key)) or (kind == "int" and not isinstance(spec.get(key), int)):
                raise MetadataError(f"{key} must be {'a whole number' if kind == 'int' else 'a number'}, "
                                    f"got {spec.get(key)!r}", path, json_path(where + [key]))
        item.low, item.high = spec["low"], spec["high"]
        if item.low > item.high:
            raise MetadataError(f"low {item.low} is above high {item.high}", path, json_path(where + ["low"]))
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise MetadataError(f"log must be true or false, got {log!r}", path, json_path(where + ["log"]))
        if log and item.low <= 0:
            raise MetadataError("a log range needs low > 0", path, json_path(where + ["low"]))
        item.log = log
    if not item.contains(default):
        raise MetadataError(f"the default {default!r} (the value of id {name!r}) is outside {item.range_text()} "
                            f"or not of type {kind}", path, json_path([name]),
                            f"widen the range at {json_path(where)} or change the default")
    return item


def read_hyperparameters(bundle_dir: PathLike) -> List[Hyperparameter]:
    """The hyperparameters ``configs/train.json`` of ``bundle_dir`` declares, in their order (empty list when it
    declares none). Raises MetadataError (file and JSON path) for an unknown id or key, a bad type or range, or a
    default outside its range."""
    path = train_config_path(bundle_dir)
    if not path.is_file():
        raise ZooError(f"{path} not found: {bundle_dir} has no training recipe (configs/train.json).")
    config = load_json(path, "training config")
    if not isinstance(config, dict):
        raise MetadataError("expected a JSON object", path, "$")
    block = config.get(BLOCK, {})
    if not isinstance(block, dict):
        raise MetadataError("expected an object name -> {description, type, ...}", path, json_path([BLOCK]))
    return [_entry(name, spec, config, path) for name, spec in block.items()]


def check_values(hyperparameters: Sequence[Hyperparameter], values: Mapping[str, Any]) -> Dict[str, Any]:
    """``values`` (name -> value) checked against the declared ranges; returns them as config overrides. A name
    that is not declared or a value outside its range raises ZooError."""
    declared = {h.name: h for h in hyperparameters}
    for name, value in values.items():
        if name not in declared:
            raise ZooError(f"{name!r} is not a declared hyperparameter; declared: {', '.join(declared) or 'none'}.")
        if not declared[name].contains(value):
            raise ZooError(f"hyperparameter {name}={value!r} is outside {declared[name].range_text()} "
                           f"(type {declared[name].type}).")
    return dict(values)


def table_rows(hyperparameters: Sequence[Hyperparameter]) -> List[List[str]]:
    """Rows name, type, default, range, description (what the CLI prints)."""
    return [[h.name, h.type, str(h.default), h.range_text(), h.description] for h in hyperparameters]


def help_text(bundle_dir: PathLike) -> str:
    """The tunable list as text lines (``train --help`` for one bundle)."""
    rows = table_rows(read_hyperparameters(bundle_dir))
    if not rows:
        return f"{bundle_dir} declares no tunable hyperparameters."
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  --{r[0].ljust(width)}  {r[1]}, default {r[2]}, range {r[3]}: {r[4]}" for r in rows)
