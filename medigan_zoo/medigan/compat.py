"""medigan's selection verbs with medigan 1.0.0's exact results, over a precomputed index.

``MediganSelector`` answers ``find_matching_models_by_values``, ``rank_models_by_performance``,
``get_models_by_key_value_pair`` and the other ``ModelSelector``/``ConfigManager`` verbs of medigan 1.0.0
with the same ids, order and result shapes (checked against medigan itself by tests/test_medigan_parity.py).
Instead of medigan's recursive walk over every config per query, ``__init__`` flattens each model's
``selection`` block once into inverted indexes (search string -> models) and per-metric rankings, so a query
costs a few set operations (about 1 ms on 10,000 models, see benchmarks/README.md).

Where medigan contradicts its own docstrings, or crashes, this module follows the docstring; every such case
is listed in docs/medigan_compatibility.md. No torch or monai here: this runs on the search path.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from itertools import chain
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

from medigan_zoo.catalog.metrics import DIRECTIONS as _DIRECTIONS
from medigan_zoo.catalog.metrics import metric_direction as _metric_direction
from medigan_zoo.catalog.metrics import walk_metric_tree
from medigan_zoo.core.errors import (
    ConfigKeyNotFoundError,
    InvalidQueryError,
    MetadataError,
    MetricNotFoundError,
    ModelNotFoundError,
)

__all__ = [
    "MediganSelector", "ModelMatchCandidate", "MatchedEntry", "metric_direction", "InvalidQueryError",
    "ConfigKeyNotFoundError", "MODEL_ID",
]

#: medigan's name of the id field in result dicts
MODEL_ID = "model_id"
ModelId = Union[str, int]

# ---------------------------------------------------------------------------------------------------------
# metric direction
# ---------------------------------------------------------------------------------------------------------

def metric_direction(name: str, overrides: Optional[Mapping[str, str]] = None) -> str:
    """``"lower"`` or ``"higher"``: which values of metric ``name`` are better.

    ``overrides`` (metric name -> direction, e.g. from zoo bundles) win, matched exactly, then ignoring case.
    Otherwise the one rule of ``medigan_zoo.catalog.metrics.metric_direction`` decides (FID lower, SSIM higher,
    ``turing_test.*`` lower, ``NN_L2.*`` higher, unknown names "lower", medigan's default ascending order).
    """
    text = str(name)
    if overrides:
        found = overrides.get(text)
        if found is None:
            low = text.lower()
            found = next((v for k, v in overrides.items() if str(k).lower() == low), None)
        if found is not None:
            direction = str(found).lower()
            if direction not in _DIRECTIONS:
                raise InvalidQueryError(f"Direction {found!r} of metric {text!r} must be 'lower' or 'higher'.")
            return direction
    return _metric_direction(text)


# ---------------------------------------------------------------------------------------------------------
# medigan's result objects
# ---------------------------------------------------------------------------------------------------------


class MatchedEntry:
    """One key-value pair of a model's selection config that matched a search value (as in medigan)."""

    __slots__ = ("key", "value", "matching_element")

    def __init__(self, key: str, value: Any, matching_element: Optional[str] = None):
        self.key = key
        self.value = value
        self.matching_element = str(value) if matching_element is None else matching_element

    def __str__(self) -> str:
        return json.dumps({"key": self.key, "value": self.value, "matching_element": self.matching_element})

    def __repr__(self) -> str:
        return f"MatchedEntry(key={self.key}, value={self.value}, matching_element={self.matching_element})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MatchedEntry) and (self.key, self.value, self.matching_element) == (
            other.key, other.value, other.matching_element)

    __hash__ = None  # type: ignore[assignment]


class _Query:
    """What one find_matching_models_by_values call shares with all its candidates."""

    __slots__ = ("selector", "target_values", "target_set", "operator", "is_case_sensitive", "are_keys_also_matched")

    def __init__(self, selector: "MediganSelector", target_values: list, target_set: Set[str], operator: str,
                 is_case_sensitive: bool, are_keys_also_matched: bool):
        self.selector = selector
        self.target_values = target_values
        self.target_set = target_set
        self.operator = operator
        self.is_case_sensitive = is_case_sensitive
        self.are_keys_also_matched = are_keys_also_matched


class ModelMatchCandidate:
    """A model that matched a ``find_matching_models_by_values`` query (medigan's class, same attributes).

    ``matched_entries`` (the ``MatchedEntry`` list, in medigan's order) is computed on first access, so a
    query returning thousands of models stays cheap.
    """

    __slots__ = ("model_id", "_query", "_index", "_entries", "_is_match")
    _entries: List[MatchedEntry]  # set on first access of matched_entries
    _is_match: bool  # set only by the is_match setter

    def __init__(self, query: _Query, index: int, model_id: str):
        # only three assignments: a query may return thousands of candidates
        self.model_id = model_id
        self._query = query
        self._index = index

    @property
    def is_match(self) -> bool:
        try:
            return self._is_match
        except AttributeError:
            return True  # every returned candidate matched

    @is_match.setter
    def is_match(self, value: bool) -> None:
        self._is_match = value

    # medigan's attributes
    @property
    def target_values(self) -> list:
        return self._query.target_values

    @property
    def target_values_operator(self) -> str:
        return self._query.operator

    @property
    def is_case_sensitive(self) -> bool:
        return self._query.is_case_sensitive

    @property
    def are_keys_also_matched(self) -> bool:
        return self._query.are_keys_also_matched

    @property
    def matched_entries(self) -> List[MatchedEntry]:
        try:
            return self._entries
        except AttributeError:
            q = self._query
            self._entries = q.selector._matched_entries(self._index, q.target_set, q.is_case_sensitive,
                                                        q.are_keys_also_matched)
            return self._entries

    # medigan's methods
    def add_matched_entry(self, matched_entry: MatchedEntry) -> None:
        self.matched_entries.append(matched_entry)

    def get_all_matching_elements(self) -> list:
        return [entry.matching_element for entry in self.matched_entries]

    def check_if_is_match(self) -> bool:
        """Re-evaluate the operator over ``matched_entries`` (medigan's rule)."""
        found = set(self.get_all_matching_elements())
        op = self.target_values_operator
        if not found:
            self.is_match = False
        elif op == "OR":
            self.is_match = True
        elif op == "AND":
            self.is_match = all(elem in found for elem in self.target_values)
        else:  # XOR
            self.is_match = len(found.intersection(t for t in self.target_values if isinstance(t, str))) == 1
        return self.is_match

    def to_dict(self) -> Dict[str, Any]:
        """The dict medigan's ``str()`` serializes."""
        return {
            "model_id": self.model_id,
            "is_match": self.is_match,
            "target_values": self.target_values,
            "operator": self.target_values_operator,
            "are_keys_also_matched": self.are_keys_also_matched,
            "is_case_sensitive": self.is_case_sensitive,
            "matched_entries": {
                str(i): {"key": e.key, "value": e.value, "matching_element": e.matching_element}
                for i, e in enumerate(self.matched_entries)
            },
        }

    def __str__(self) -> str:
        return json.dumps(self.to_dict())

    def __repr__(self) -> str:
        return (f"ModelMatchCandidate(model_id={self.model_id}, is_match={self.is_match}, "
                f"operator: {self.target_values_operator}, target_values={self.target_values})")

    def __len__(self) -> int:
        return len(self.matched_entries)

    def __getitem__(self, idx: int) -> MatchedEntry:
        return self.matched_entries[idx]


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------

_MISSING = object()


def _copy(value: Any) -> Any:
    """Copy of a JSON-like value (results never alias the index)."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _walk(selection: Mapping[str, Any]) -> Iterator[Tuple[bool, str, Any]]:
    """medigan's ``recursive_search_for_values`` order: (is_key, key, value) for every key and every leaf.

    A key comes before its value; dicts are entered; list items are leaves (a dict inside a list is
    compared as ``str(dict)``, as medigan does).
    """
    for key, value in selection.items():
        yield True, key, key
        if isinstance(value, dict):
            yield from _walk(value)
        elif isinstance(value, list):
            for item in value:
                yield False, key, item
        else:
            yield False, key, value


def _deep_get(base: Any, parts: Sequence[str]) -> Any:
    """medigan's ``Utils.deep_get``: ``_MISSING`` where medigan raises KeyError, None where it returns None."""
    for part in parts:
        if isinstance(base, dict):
            if part not in base:
                return _MISSING
            base = base[part]
        elif isinstance(base, (list, tuple, str, int, float, bool)) or base is None:
            return None  # medigan: TypeError -> None
        else:
            try:
                base = base[part]
            except KeyError:
                return _MISSING
            except (TypeError, IndexError):
                return None
    return base


def metric_number(value: Any) -> Optional[float]:
    """The number a metric value ranks by: numbers and numeric strings; None when it cannot be ranked."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


def _rank_value(value: Any, ascending: bool) -> Optional[Tuple[float, Any]]:
    """(sort number, reported value); a list gives its smallest item when ascending, else its largest (medigan)."""
    if isinstance(value, list):
        numbers = [(n, v) for n, v in ((metric_number(v), v) for v in value) if n is not None]
        if not numbers or len(numbers) != len(value):
            return None
        chosen = (min if ascending else max)(numbers, key=lambda nv: nv[0])
        return chosen[0], chosen[1]
    number = metric_number(value)
    return None if number is None else (number, value)


def _normalize_order(order: Optional[str]) -> Optional[str]:
    if order is None:
        return None
    text = str(order).strip().lower()
    if text not in ("asc", "desc"):
        raise InvalidQueryError(f"order must be 'asc' or 'desc' (or None for the metric's direction), not {order!r}.")
    return text


# ---------------------------------------------------------------------------------------------------------
# the selector
# ---------------------------------------------------------------------------------------------------------


class MediganSelector:
    """medigan 1.0.0's ``ModelSelector`` (+ ``ConfigManager.get_config_by_id``) over an indexed catalog.

    Args:
        configs: model id -> config in medigan's global.json shape (``execution``/``selection``/``description``),
            in catalog order (results list models in this order, as medigan does). The configs are indexed
            once; do not mutate them afterwards (results are copies, so mutating results is safe).
        directions: metric name -> "lower"/"higher", overriding ``metric_direction``'s rules (zoo bundles
            declare the direction of each metric). Used by ``rank_models_by_performance(order=None)``.
    """

    def __init__(self, configs: Mapping[str, Mapping[str, Any]], directions: Optional[Mapping[str, str]] = None):
        self.model_ids: List[str] = [str(k) for k in configs]
        self._configs: List[Mapping[str, Any]] = list(configs.values())
        self._pos: Dict[str, int] = {}
        self._prefix5: Dict[str, str] = {}
        self._lower: Dict[str, str] = {}
        self._selections: List[Mapping[str, Any]] = []
        self._directions: Dict[str, str] = {}
        for name, direction in (directions or {}).items():
            if str(direction).lower() not in _DIRECTIONS:
                raise InvalidQueryError(f"Direction {direction!r} of metric {name!r} must be 'lower' or 'higher'.")
            self._directions[str(name)] = str(direction).lower()

        # inverted indexes: search string -> sorted tuple of model positions
        val_ci: Dict[str, List[int]] = {}
        val_cs: Dict[str, List[int]] = {}
        key_ci: Dict[str, List[int]] = {}
        key_cs: Dict[str, List[int]] = {}
        # performance paths: path -> [(position, value)] where medigan's deep_get reaches a non-None value
        self._perf: Dict[Tuple[str, ...], List[Tuple[int, Any]]] = {}
        str_cache: Dict[Any, str] = {}

        for m, (model_id, config) in enumerate(zip(self.model_ids, self._configs)):
            if model_id in self._pos:
                raise MetadataError(f"duplicate model id {model_id!r}", json_path=f"$[{model_id!r}]")
            self._pos[model_id] = m
            self._prefix5.setdefault(model_id[:5], model_id)
            self._lower.setdefault(model_id.lower(), model_id)
            if not isinstance(config, Mapping):
                raise MetadataError(f"the config of {model_id!r} is a {type(config).__name__}, not an object",
                                    json_path=f"$[{model_id!r}]")
            selection = config.get("selection")
            if selection is None:
                selection = {}
            if not isinstance(selection, Mapping):
                raise MetadataError(f"'selection' of {model_id!r} is a {type(selection).__name__}, not an object",
                                    json_path=f"$[{model_id!r}].selection")
            self._selections.append(selection)

            vals_cs: Set[str] = set()
            keys_cs: Set[str] = set()
            for is_key, _key, value in _walk(selection):
                if is_key:
                    keys_cs.add(str(value))
                elif isinstance(value, str):
                    vals_cs.add(value)
                else:
                    # cache by (type, value): 1, 1.0 and True are equal keys but print differently
                    try:
                        text = str_cache[(type(value), value)]
                    except KeyError:
                        text = str_cache[(type(value), value)] = str(value)
                    except TypeError:  # unhashable: a dict or list inside a list
                        text = str(value)
                    vals_cs.add(text)
            for text in vals_cs:
                val_cs.setdefault(text, []).append(m)
            for text in {t.lower() for t in vals_cs}:
                val_ci.setdefault(text, []).append(m)
            for text in keys_cs:
                key_cs.setdefault(text, []).append(m)
            for text in {t.lower() for t in keys_cs}:
                key_ci.setdefault(text, []).append(m)

            performance = selection.get("performance", _MISSING)
            if performance is not _MISSING:
                for path, value in walk_metric_tree(performance, branches=True):
                    rows = self._perf.setdefault(path, [])
                    if value is not None:
                        rows.append((m, value))

        self._val_index = {False: {k: tuple(v) for k, v in val_ci.items()},
                           True: {k: tuple(v) for k, v in val_cs.items()}}
        self._key_index = {False: {k: tuple(v) for k, v in key_ci.items()},
                           True: {k: tuple(v) for k, v in key_cs.items()}}
        self._rankings: Dict[Tuple[Tuple[str, ...], bool], List[Tuple[int, Any]]] = {}
        self._plain: Dict[Tuple[str, ...], bool] = {}
        self._path_cache: Dict[Tuple[str, ...], List[Tuple[int, Any]]] = {}

    def __len__(self) -> int:
        return len(self.model_ids)

    def __repr__(self) -> str:
        return f"MediganSelector({len(self.model_ids)} models)"

    # --- ids -----------------------------------------------------------------------------------------------
    def resolve_model_id(self, model_id: ModelId) -> str:
        """The full id of ``model_id``: an id, medigan's short id (5, "5", "00005"), or a case variant."""
        if isinstance(model_id, str) and model_id in self._pos:
            return model_id
        text = str(model_id).strip()
        if text in self._pos:
            return text
        if 0 < len(text) <= 5:  # medigan's ConfigManager.match_model_id
            found = self._prefix5.get(text.rjust(5, "0"))
            if found is not None:
                return found
        found = self._lower.get(text.lower())
        if found is not None:
            return found
        raise ModelNotFoundError(model_id, self.model_ids)

    def _resolve_many(self, model_ids: Optional[Sequence[ModelId]]) -> Optional[Set[int]]:
        if model_ids is None:
            return None
        if isinstance(model_ids, (str, int)):
            model_ids = [model_ids]
        return {self._pos[self.resolve_model_id(m)] for m in model_ids}

    # --- ConfigManager -------------------------------------------------------------------------------------
    def get_config_by_id(self, model_id: ModelId, config_key: Optional[str] = None) -> Any:
        """The config of ``model_id``, or its part below the dotted ``config_key`` ("selection.performance.FID")."""
        mid = self.resolve_model_id(model_id)
        node: Any = self._configs[self._pos[mid]]
        if config_key is not None:
            for key in str(config_key).split("."):
                if not isinstance(node, Mapping) or key not in node:
                    available = list(node) if isinstance(node, Mapping) else []
                    raise ConfigKeyNotFoundError(config_key, mid, available)
                node = node[key]
        return _copy(node)

    # --- ModelSelector: selection configs ------------------------------------------------------------------
    def get_selection_criteria_by_id(self, model_id: ModelId, is_model_id_removed: bool = True) -> Dict[str, Any]:
        """The selection config of ``model_id``; with ``is_model_id_removed=False``: ``{"model_id", "selection"}``."""
        mid = self.resolve_model_id(model_id)
        selection = _copy(self._selections[self._pos[mid]])
        return selection if is_model_id_removed else {MODEL_ID: mid, "selection": selection}

    def get_selection_criteria_by_ids(self, model_ids: Optional[Sequence[ModelId]] = None,
                                      are_model_ids_removed: bool = True) -> List[Dict[str, Any]]:
        """Selection configs of ``model_ids`` (all models when None), in catalog order, as medigan."""
        wanted = self._resolve_many(model_ids)
        out = []
        for m, mid in enumerate(self.model_ids):
            if wanted is None or m in wanted:
                selection = _copy(self._selections[m])
                out.append(selection if are_model_ids_removed else {MODEL_ID: mid, "selection": selection})
        return out

    def get_selection_keys(self, model_id: Optional[ModelId] = None) -> List[str]:
        """First-level selection keys of ``model_id``, or of all models (first-seen order)."""
        if model_id is not None:
            return list(self._selections[self._pos[self.resolve_model_id(model_id)]])
        keys: Dict[str, None] = {}
        for selection in self._selections:
            for key in selection:
                keys.setdefault(key, None)
        return list(keys)

    def _path_values(self, parts: Tuple[str, ...]) -> List[Tuple[int, Any]]:
        """(position, value) of every model where medigan's deep_get(selection, key) returns without KeyError."""
        rows = self._path_cache.get(parts)
        if rows is None:
            rows = []
            for m, selection in enumerate(self._selections):
                value = _deep_get(selection, parts)
                if value is not _MISSING:
                    rows.append((m, value))
            if len(self._path_cache) > 512:
                self._path_cache.clear()
            self._path_cache[parts] = rows
        return rows

    def get_selection_values_for_key(self, key: str, model_id: Optional[ModelId] = None) -> List[Any]:
        """Values of the dotted selection ``key``: ``[value]`` for ``model_id``, else one per model.

        Models without the key give None (medigan raises KeyError); a key no model has raises
        ConfigKeyNotFoundError.
        """
        parts = tuple(str(key).split("."))
        if model_id is not None:
            mid = self.resolve_model_id(model_id)
            value = _deep_get(self._selections[self._pos[mid]], parts)
            if value is _MISSING:
                raise ConfigKeyNotFoundError(key, mid, self.get_selection_keys(mid))
            return [_copy(value)]
        rows = self._path_values(parts)
        if not rows:
            raise ConfigKeyNotFoundError(key, None, self.get_selection_keys())
        found = dict(rows)
        return [_copy(found.get(m)) for m in range(len(self.model_ids))]

    # --- ModelSelector: key-value search -------------------------------------------------------------------
    def get_models_by_key_value_pair(self, key1: str, value1: Any, is_case_sensitive: bool = False
                                     ) -> List[Dict[str, Any]]:
        """``[{"model_id": id, key1: value1}]`` for every model whose dotted ``key1`` equals ``value1``
        (or, for a list, contains it). medigan 1.0.0's quirk is kept: in case-insensitive mode, ``value1``
        is lower-cased in the results from the first model whose ``key1`` holds a list onwards."""
        value = value1
        out: List[Dict[str, Any]] = []
        for m, key_value in self._path_values(tuple(str(key1).split("."))):
            if key_value is None or isinstance(key_value, dict):
                continue
            match = False
            if isinstance(key_value, list):
                items = [str(v) for v in key_value]
                if not is_case_sensitive:
                    items = [s.lower() for s in items]
                    value = value.lower() if isinstance(value, str) else str(value).lower()
                match = str(value) in items
            else:
                text = str(key_value)
                match = text == str(value) or (not is_case_sensitive and text.lower() == str(value).lower())
            if match:
                out.append({MODEL_ID: self.model_ids[m], key1: value})
        return out

    # --- ModelSelector: value search -----------------------------------------------------------------------
    def find_matching_models_by_values(self, values: Sequence[Any], target_values_operator: str = "AND",
                                       are_keys_also_matched: bool = False, is_case_sensitive: bool = False
                                       ) -> List[ModelMatchCandidate]:
        """Models whose selection config holds the ``values`` (and keys, if ``are_keys_also_matched``).

        ``target_values_operator``: "AND" (every value found), "OR" (any), "XOR" (exactly one distinct value).
        Values match whole strings (``str(value)``; lower-cased unless ``is_case_sensitive``). Returns medigan's
        ``ModelMatchCandidate`` objects in catalog order.
        """
        if isinstance(values, (str, bytes)):
            values = [values]
        values = list(values) if values is not None else []
        if not values:
            raise InvalidQueryError(f"Please specify a list of values to search for. You specified: {values!r}.")
        operator = str(target_values_operator).strip().upper()
        if operator not in ("AND", "OR", "XOR"):
            raise InvalidQueryError(
                f"target_values_operator must be 'AND', 'OR' or 'XOR', not {target_values_operator!r}.")
        cs = bool(is_case_sensitive)
        targets = list(values) if cs else [str(v).lower() for v in values]
        target_set = {t for t in targets if isinstance(t, str)}
        vals = self._val_index[cs]
        keys = self._key_index[cs] if are_keys_also_matched else None

        postings: List[Sequence[int]] = []
        for target in target_set:
            hit: Sequence[int] = vals.get(target, ())
            if keys is not None:
                key_hit = keys.get(target)
                if key_hit:
                    hit = key_hit if not hit else sorted(set(hit).union(key_hit))
            postings.append(hit)

        if operator == "AND":
            # a non-string target (case-sensitive mode) can never be found, so AND fails
            if any(not isinstance(t, str) for t in targets) or not all(postings):
                positions: Sequence[int] = ()
            elif len(postings) == 1:
                positions = postings[0]
            else:
                postings.sort(key=len)
                positions = sorted(set(postings[0]).intersection(*postings[1:]))
        elif operator == "OR":
            nonempty = [p for p in postings if p]
            if any(len(p) == len(self.model_ids) for p in nonempty):
                positions = range(len(self.model_ids))  # one value is in every model
            else:
                positions = nonempty[0] if len(nonempty) == 1 else sorted(set().union(*nonempty))
        else:  # XOR: exactly one distinct target value found
            nonempty = [p for p in postings if p]
            if len(nonempty) == 1:
                positions = nonempty[0]
            else:
                counts = Counter(chain.from_iterable(nonempty))
                positions = sorted(m for m, n in counts.items() if n == 1)

        query = _Query(self, targets, target_set, operator, cs, bool(are_keys_also_matched))
        ids = self.model_ids
        return [ModelMatchCandidate(query, m, ids[m]) for m in positions]

    def _matched_entries(self, m: int, target_set: Set[str], cs: bool, keys: bool) -> List[MatchedEntry]:
        """medigan's MatchedEntry list of model ``m`` for one query (its recursive order)."""
        out: List[MatchedEntry] = []
        for is_key, key, value in _walk(self._selections[m]):
            if is_key:
                if keys:
                    text = str(value) if cs else str(value).lower()
                    if text in target_set:
                        out.append(MatchedEntry(key="key", value=value, matching_element=text))
                continue
            if cs:
                text = str(value)
                if text in target_set:
                    out.append(MatchedEntry(key=key, value=value, matching_element=text))
            else:
                text = str(value).lower()
                if text in target_set:
                    out.append(MatchedEntry(key=key, value=text, matching_element=text))
        return out

    # --- ModelSelector: ranking ----------------------------------------------------------------------------
    def metric_names(self, rankable_only: bool = True) -> List[str]:
        """Dotted performance metric names in the catalog (by default: those with a rankable value)."""
        names = []
        for path, rows in self._perf.items():
            if not rankable_only or any(_rank_value(v, True) is not None for _, v in rows):
                names.append(".".join(path))
        return names

    def metric_direction(self, metric: str) -> str:
        """Direction of ``metric`` with this selector's overrides."""
        return metric_direction(metric, self._directions)

    def _is_plain(self, parts: Tuple[str, ...]) -> bool:
        """True when every value of the metric is a number or a list of numbers (no strings, dicts, NaN)."""
        flag = self._plain.get(parts)
        if flag is None:
            def plain(v: Any) -> bool:
                return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
            flag = all(plain(v) or (isinstance(v, list) and v and all(plain(x) for x in v))
                       for _, v in self._perf[parts])
            self._plain[parts] = flag
        return flag

    def _ranking(self, parts: Tuple[str, ...], ascending: bool) -> List[Tuple[int, Any]]:
        """(position, value) of every model with a rankable value, best first; cached per metric and order."""
        key = (parts, ascending)
        ranking = self._rankings.get(key)
        if ranking is None:
            scored = []
            for m, value in self._perf[parts]:
                ranked = _rank_value(value, ascending)
                if ranked is not None:
                    scored.append((ranked[0], m, ranked[1]))
            # stable sort on the number only, as medigan's list.sort (reverse=True keeps ties in catalog order)
            scored.sort(key=lambda row: row[0], reverse=not ascending)
            ranking = [(m, value) for _, m, value in scored]
            self._rankings[key] = ranking
        return ranking

    def _medigan_ranking(self, parts: Tuple[str, ...], ascending: bool, wanted: Optional[Set[int]]
                         ) -> Optional[List[Tuple[int, Any]]]:
        """medigan's own ranking of raw values (strings compare as text, a lone dict is kept); None where
        medigan raises (TypeError comparing a str with a float, a dict with a dict; ValueError: min([]))."""
        rows = []
        try:
            for m, value in self._perf[parts]:
                if wanted is not None and m not in wanted:
                    continue
                if isinstance(value, list):
                    value = min(value) if ascending else max(value)
                rows.append((m, value))
            rows.sort(key=lambda row: row[1], reverse=not ascending)
        except (TypeError, ValueError):
            return None
        return rows

    def rank_models_by_performance(self, model_ids: Optional[Sequence[ModelId]] = None, metric: str = "SSIM",
                                   order: Optional[str] = None) -> List[Dict[str, Any]]:
        """``[{"model_id": id, metric: value}]`` sorted by the dotted performance ``metric``.

        ``order``: "asc"/"desc"; None sorts best first by the metric's direction (FID ascending, SSIM
        descending). A list-valued metric ranks by its smallest item when ascending, its largest when
        descending (medigan). Where medigan's own sort fails (strings mixed with numbers, several dicts), models
        are ranked by their numeric values (numeric strings as numbers) and the others are left out. An unknown
        metric raises MetricNotFoundError.
        """
        order = _normalize_order(order)
        parts = self._metric_parts(metric)
        return self._rank(parts, metric, order, self._resolve_many(model_ids))

    def _metric_parts(self, metric: str) -> Tuple[str, ...]:
        parts = tuple(str(metric).split("."))
        if parts not in self._perf:
            raise MetricNotFoundError(metric, self.metric_names())
        return parts

    def _rank(self, parts: Tuple[str, ...], metric: str, order: Optional[str],
              wanted: Optional[Set[int]]) -> List[Dict[str, Any]]:
        if wanted is not None and not wanted:
            return []
        if order is None:
            order = "asc" if self.metric_direction(metric) == "lower" else "desc"
        ascending = order == "asc"
        ids = self.model_ids
        if not self._is_plain(parts):
            # strings, dicts, NaN...: medigan's exact answer where it has one, else numbers only
            exact = self._medigan_ranking(parts, ascending, wanted)
            if exact is not None:
                return [{MODEL_ID: ids[m], metric: _copy(value)} for m, value in exact]
        ranking = self._ranking(parts, ascending)
        if wanted is None:
            return [{MODEL_ID: ids[m], metric: value} for m, value in ranking]
        return [{MODEL_ID: ids[m], metric: value} for m, value in ranking if m in wanted]

    def find_models_and_rank(self, values: Sequence[Any], target_values_operator: str = "AND",
                             are_keys_also_matched: bool = False, is_case_sensitive: bool = False,
                             metric: str = "SSIM", order: Optional[str] = None) -> List[Dict[str, Any]]:
        """``find_matching_models_by_values`` then ``rank_models_by_performance`` over the matches."""
        order = _normalize_order(order)
        parts = self._metric_parts(metric)
        matches = self.find_matching_models_by_values(values, target_values_operator, are_keys_also_matched,
                                                      is_case_sensitive)
        return self._rank(parts, metric, order, {c._index for c in matches})
