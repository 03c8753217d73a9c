"""Ranked free-text search over model metadata (BM25F over an inverted index, synonym-aware).

Pure Python (no torch, monai or numpy): the CLI's ``search`` must answer in well under a second.

    >>> index = SearchIndex([(model_id, fields_from_medigan_config(model_id, cfg)) for model_id, cfg in ...])
    >>> index.search("mammography 128x128 dcgan", filters={"modality": "MG", "dims": "2"})

See docs/search.md for tokenization, synonyms, ranking and filters.
"""
from __future__ import annotations

import bisect
import functools
import heapq
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

from medigan_zoo.catalog.fields import EXACT, SEARCH_FIELDS, ZOO_BLOCK_FIELDS
from medigan_zoo.catalog.licenses import license_key
from medigan_zoo.catalog.metrics import walk_metric_tree
from medigan_zoo.core.errors import ZooError
from medigan_zoo.query import vocabulary

__all__ = ["SearchHit", "SearchIndex", "FIELDS", "FIELD_WEIGHTS", "parse_filters", "fields_from_medigan_config",
           "fields_from_zoo_block"]

#: Search field names in index order and their BM25F weights (identity and controlled fields weigh most, prose
#: least): derived from the field table, medigan_zoo/catalog/fields.py.
FIELDS: Tuple[str, ...] = tuple(f.name for f in SEARCH_FIELDS)
FIELD_WEIGHTS: Dict[str, float] = {f.name: f.weight for f in SEARCH_FIELDS}
_B = {"description": 0.75, "name": 0.5}  # BM25 length normalization per field (others: _B_DEFAULT)
_B_DEFAULT = 0.3
_K1 = 1.2
_PREFIX_MIN = 4  # query words of 4+ letters unknown to the index match indexed terms they begin
_PREFIX_WEIGHT = 0.5
_PREFIX_MAX = 30

#: fields kept for filters only (never searched as text, so "yes" or "MIT" in a query does not match them):
#: ``runnable`` (yes, no, unknown: ModelInfo.runs) and the licenses of a model's code, weights and training data
FILTER_ONLY_FIELDS: Tuple[str, ...] = ("runnable", "code_license", "weights_license", "data_license")
_LICENSE_FILTERS = {"license", "code_license", "weights_license", "data_license"}
_EXACT_FILTERS = {f.name for f in SEARCH_FIELDS if f.filter == EXACT}
_RUNNABLE_VALUES = {"yes": "yes", "true": "yes", "1": "yes", "runnable": "yes", "no": "no", "false": "no", "0": "no",
                    "unknown": "unknown"}
_FILTER_ALIASES = {
    "organ": "anatomy", "organs": "anatomy", "body_part": "anatomy", "type": "architecture", "arch": "architecture",
    "model_type": "architecture", "method": "architecture", "modalities": "modality", "model_id": "id",
    "dim": "dims", "ndim": "dims", "dimension": "dims", "dimensions": "dims", "size": "shape",
    "image_size": "shape", "spatial_shape": "shape", "use_case": "use_cases", "usecase": "use_cases",
    "task": "use_cases", "tag": "tags", "metric": "metrics", "datasets": "dataset", "data": "dataset",
    "conditions": "condition", "functions": "function", "key": "keys", "title": "name",
}
_RADIOGRAPHY = {"CR", "DX"}


@dataclass(frozen=True)
class SearchHit:
    """One search result: the model, its relevance score and, per field, the query terms found there."""

    model_id: str
    score: float
    matched: Dict[str, Tuple[str, ...]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------------
def _filter_field(key: str, valid: Sequence[str] = FIELDS + FILTER_ONLY_FIELDS) -> str:
    """Canonical filter field for ``key`` (case, dashes and aliases tolerated) or ZooError."""
    norm = str(key).strip().lower().replace("-", "_").replace(" ", "_")
    norm = _FILTER_ALIASES.get(norm, norm)
    if norm in valid:
        return norm
    raise ZooError(f"Unknown search filter field {key!r}. Valid filter fields: {', '.join(valid)} "
                   f"(also: organ=, type=, size=). Example: `medigan-zoo search mammography modality=MG dims=2`.")


def parse_filters(args: Sequence[str]) -> Dict[str, str]:
    """``["modality=MG", "dims=2"]`` -> ``{"modality": "MG", "dims": "2"}``.

    Keys are checked and canonicalized (``organ=`` -> ``anatomy``); a repeated key means any of its values
    (``modality=MG modality=CT`` -> ``"MG,CT"``). Words without ``=`` or with an empty side raise ZooError.
    """
    filters: Dict[str, str] = {}
    for arg in args:
        text = str(arg)
        key, sep, value = text.partition("=")
        value = value.strip().strip("'\"").strip()
        if not sep or not key.strip() or not value:
            raise ZooError(f"Bad search filter {text!r}: filters are written key=value, e.g. modality=MG or dims=3.")
        name = _filter_field(key)
        if name == "runnable":
            bad = [v for v in value.split(",") if v.strip().lower() not in _RUNNABLE_VALUES]
            if bad:
                raise ZooError(f"Bad search filter {text!r}: runnable takes yes, no or unknown (a catalog model not "
                               "downloaded yet).")
        if name == "dims":
            bad = [v for v in value.split(",") if not _DIMS_VALUE.match(v.strip())]
            if bad:
                raise ZooError(f"Bad search filter {text!r}: dims takes a number of spatial dimensions, e.g. dims=2 "
                               "or dims=3 (also 2d, 3D, dims=2,3).")
        filters[name] = f"{filters[name]},{value}" if name in filters else value
    return filters


_DIMS_VALUE = re.compile(r"^\d{1,2}\s*[dD]?$")


def check_limit(limit: Any, minimum: int = 0) -> Optional[int]:
    """``limit`` as an int >= ``minimum`` (None: no limit); integral floats (fire's ``1e3``) are accepted, anything
    else (text, negative numbers, booleans) raises ZooError."""
    if limit is None:
        return None
    try:
        ok = not isinstance(limit, bool) and float(limit).is_integer() and int(float(limit)) >= minimum
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ZooError(f"limit must be a whole number >= {minimum}, got {limit!r}.")
    return int(float(limit))


@functools.lru_cache(maxsize=1 << 14)
def _exact_norm(field_name: str, value: str) -> str:
    text = vocabulary.normalize(value)
    if field_name == "dims":
        return text.replace(" ", "").rstrip("d")
    if field_name in _LICENSE_FILTERS:
        return license_key(value)
    if field_name == "runnable":
        return _RUNNABLE_VALUES.get(text.strip(), text.strip())
    if field_name == "id":
        return str(value).strip().lower()
    return text


def _modality_filter_codes(value: str) -> Set[str]:
    codes: Set[str] = set()
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        code = vocabulary.canonical_modality(part)
        if code is None:
            raise ZooError(f"Unknown modality {part!r} in filter modality={value}. Use a DICOM code "
                           f"({', '.join(vocabulary.MODALITY_CODES)}) or a name such as mammography, MRI, x-ray.")
        codes.add(code)
    return _with_radiography(codes)


def _with_radiography(codes: Set[str]) -> Set[str]:
    """CR and DX (computed and digital radiography) stand for each other in modality filters."""
    return codes | _RADIOGRAPHY if codes & _RADIOGRAPHY else codes


# --------------------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------------------
class SearchIndex:
    """Inverted index over model metadata fields, built once; ``search`` ranks models with BM25F.

    Args:
        entries: ``(model_id, fields)`` pairs; ``fields`` maps a field name (see ``FIELDS``; other names are
            indexed with weight 1) to a string or a list of strings.
    """

    def __init__(self, entries: Iterable[Tuple[str, Mapping[str, Union[str, Sequence[str]]]]]):
        self._ids: List[str] = []
        self._values: List[Dict[str, Tuple[str, ...]]] = []
        field_names: List[str] = list(FIELDS)
        doc_tfs: List[Dict[str, Dict[str, int]]] = []  # doc -> field -> term -> tf
        doc_lens: List[Dict[str, int]] = []
        total_len: Dict[str, int] = {}
        for model_id, fields in entries:
            values: Dict[str, Tuple[str, ...]] = {}
            tfs: Dict[str, Dict[str, int]] = {}
            lens: Dict[str, int] = {}
            for name, raw in (fields or {}).items():
                if name not in field_names:
                    field_names.append(name)
                vals = _as_strings(raw)
                values[name] = vals
                if name in FILTER_ONLY_FIELDS:
                    continue
                terms: Dict[str, int] = {}
                count = 0
                for value in vals:
                    if name == "dims" and value.strip().isdigit():
                        value = value.strip() + "d"
                    for term in vocabulary.analyze(value, broader=True):
                        terms[term] = terms.get(term, 0) + 1
                        count += 1
                if terms:
                    tfs[name] = terms
                    lens[name] = count
                    total_len[name] = total_len.get(name, 0) + count
            self._ids.append(str(model_id))
            self._values.append(values)
            doc_tfs.append(tfs)
            doc_lens.append(lens)
        self.fields: Tuple[str, ...] = tuple(field_names)
        self._field_bit = {name: 1 << i for i, name in enumerate(self.fields)}
        n_docs = len(self._ids)
        avg = {name: total / n_docs for name, total in total_len.items()} if n_docs else {}
        # postings: term -> {doc: BM25F score of the term};
        # field bits (which fields hold the term) are only read for the hits returned.
        weighted: Dict[str, Dict[int, float]] = {}
        self._bits: Dict[str, Dict[int, int]] = {}
        for doc, tfs in enumerate(doc_tfs):
            for name, terms in tfs.items():
                b = _B.get(name, _B_DEFAULT)
                norm = FIELD_WEIGHTS.get(name, 1.0) / (1.0 - b + b * doc_lens[doc][name] / avg[name])
                bit = self._field_bit[name]
                for term, tf in terms.items():
                    post = weighted.setdefault(term, {})
                    post[doc] = post.get(doc, 0.0) + tf * norm
                    bits = self._bits.setdefault(term, {})
                    bits[doc] = bits.get(doc, 0) | bit
        self._postings: Dict[str, Dict[int, float]] = {}  # term -> {doc: idf * saturated tf}
        for term, post in weighted.items():
            idf = math.log(1.0 + (n_docs - len(post) + 0.5) / (len(post) + 0.5))
            self._postings[term] = {doc: idf * tfw * (_K1 + 1.0) / (tfw + _K1) for doc, tfw in post.items()}
        self._vocab = sorted(self._postings)
        self._id_rank = [0] * n_docs
        for rank, doc in enumerate(sorted(range(n_docs), key=self._ids.__getitem__)):
            self._id_rank[doc] = rank
        #: 1 for models the zoo cannot run (runnable "no"): ranked after the others whatever their score
        self._demoted = [1 if values.get("runnable") == ("no",) else 0 for values in self._values]
        self._filter_cache: Dict[Tuple[str, str], Set[int]] = {}
        self._doc_codes: Optional[List[Set[str]]] = None

    def __len__(self) -> int:
        return len(self._ids)

    # --- query ---------------------------------------------------------------------------------
    def search(self, query: Union[str, Sequence[str]], filters: Optional[Mapping[str, str]] = None,
               limit: Optional[int] = None) -> List[SearchHit]:
        """Models matching at least one query term, best first (ties by id), within ``filters``; models the zoo
        cannot run (``runnable`` "no") come after all the others.

        Args:
            query: free text ("mammography 128x128 dcgan") or a list of terms (medigan's ``values``).
            filters: exact constraints, field -> value: ``modality=MG`` (code or name), ``dims=3``,
                ``license=CC-BY-4.0``, ``architecture=dcgan``, ``anatomy=chest``, ``dataset=inbreast``,
                ``runnable=yes``, ``weights_license=``/``code_license=``/``data_license=``;
                comma-separated values mean any of them. An unknown field raises ZooError.
            limit: return at most this many hits.
        """
        limit = check_limit(limit)
        allowed = self._apply_filters(filters) if filters else None
        clauses = self._clauses(query)
        if not clauses:
            if allowed is None:
                return []
            ordered = sorted(allowed, key=lambda d: (self._demoted[d], self._ids[d]))
            hits = [SearchHit(self._ids[d], 0.0, {}) for d in ordered]
            return hits[:limit] if limit is not None else hits

        n_docs = len(self._ids)
        acc = [0.0] * n_docs  # summed clause scores
        cnt = [0] * n_docs  # clauses matched
        touched: Set[int] = set()
        used: List[Tuple[str, Tuple[str, ...]]] = []  # (surface, indexed terms it matched)
        for surface, terms in clauses:
            indexed = [t for t in terms if t in self._postings]
            prefixed = [w for t in terms if t not in self._postings for w in self._prefix_terms(t)]
            used.append((surface, tuple(indexed + prefixed)))
            if len(indexed) == 1 and not prefixed and allowed is None:  # the common case: one plain term
                post = self._postings[indexed[0]]
                for doc, score in post.items():
                    acc[doc] += score
                    cnt[doc] += 1
                touched.update(post)
                continue
            clause: Dict[int, float] = {}
            for term in indexed:
                post = self._postings[term]
                for doc in (post.keys() & allowed if allowed is not None else post):
                    clause[doc] = clause.get(doc, 0.0) + post[doc]
            for word in prefixed:  # prefix fallback: the best of the indexed words the query word begins
                post = self._postings[word]
                for doc in (post.keys() & allowed if allowed is not None else post):
                    score = _PREFIX_WEIGHT * post[doc]
                    if score > clause.get(doc, 0.0):
                        clause[doc] = score
            for doc, score in clause.items():
                acc[doc] += score
                cnt[doc] += 1
            touched.update(clause)

        # coordination: a model's summed score is scaled by the share of query clauses it matches;
        # ties (equal floats: same contributions summed in the same order) go by model id
        n_clauses = len(clauses)
        rank = self._id_rank
        demoted = self._demoted
        ranked = [(demoted[d], -acc[d] * cnt[d], rank[d], d) for d in touched]
        if limit is not None:
            ranked = heapq.nsmallest(limit, ranked)
        else:
            ranked.sort()
        return [SearchHit(self._ids[doc], round(-neg / n_clauses, 4), self._matched(doc, used))
                for _, neg, _, doc in ranked]

    def _prefix_terms(self, term: str) -> List[str]:
        if len(term) < _PREFIX_MIN or not term.isalpha():
            return []
        out: List[str] = []
        i = bisect.bisect_left(self._vocab, term)
        while i < len(self._vocab) and self._vocab[i].startswith(term) and len(out) < _PREFIX_MAX:
            out.append(self._vocab[i])
            i += 1
        return out

    @staticmethod
    def _clauses(query: Union[str, Sequence[str]]) -> List[Tuple[str, Tuple[str, ...]]]:
        parts = [query] if isinstance(query, str) else [str(q) for q in (query or [])]
        clauses: List[Tuple[str, Tuple[str, ...]]] = []
        seen: Set[Tuple[str, ...]] = set()
        for part in parts:
            for surface, terms in vocabulary.analyze_groups(part):
                if terms not in seen:
                    seen.add(terms)
                    clauses.append((surface, terms))
        return clauses

    def _matched(self, doc: int, used: List[Tuple[str, Tuple[str, ...]]]) -> Dict[str, Tuple[str, ...]]:
        per_clause = []
        for surface, indexed in used:
            bits = 0
            for term in indexed:
                bits |= self._bits[term].get(doc, 0)
            per_clause.append((bits, surface))
        out: Dict[str, Tuple[str, ...]] = {}
        for name in self.fields:
            bit = self._field_bit[name]
            words = tuple(surface for bits, surface in per_clause if bits & bit)
            if words:
                out[name] = words
        return out

    # --- filters -------------------------------------------------------------------------------
    def _apply_filters(self, filters: Mapping[str, str]) -> Set[int]:
        allowed: Optional[Set[int]] = None
        for key, value in filters.items():
            name = _filter_field(key, self.fields)
            docs = self._filter_docs(name, str(value))
            allowed = set(docs) if allowed is None else allowed & docs
        return allowed if allowed is not None else set(range(len(self._ids)))

    def _filter_docs(self, name: str, value: str) -> Set[int]:
        cache_key = (name, value)
        if cache_key in self._filter_cache:
            return self._filter_cache[cache_key]
        docs: Set[int] = set()
        if name == "modality":
            wanted = _modality_filter_codes(value)
            for doc, codes in enumerate(self._modality_codes()):
                if codes & wanted:
                    docs.add(doc)
        else:
            options = [v.strip() for v in value.split(",") if v.strip()]
            if name in _EXACT_FILTERS or name in FILTER_ONLY_FIELDS:  # filter-only fields compare exactly
                wanted_exact = {_exact_norm(name, v) for v in options}
                for doc, values in enumerate(self._values):
                    if any(_exact_norm(name, v) in wanted_exact for v in values.get(name, ())):
                        docs.add(doc)
            else:
                wanted_terms = [set(vocabulary.analyze(v)) for v in options]
                wanted_terms = [w for w in wanted_terms if w]
                for doc, values in enumerate(self._values):
                    for v in values.get(name, ()):
                        have = set(vocabulary.analyze(v, broader=True))
                        if any(w <= have for w in wanted_terms):
                            docs.add(doc)
                            break
        self._filter_cache[cache_key] = docs
        return docs

    def _modality_codes(self) -> List[Set[str]]:
        if self._doc_codes is None:
            self._doc_codes = []
            seen: Dict[Tuple[str, ...], Set[str]] = {}
            for values in self._values:
                key = values.get("modality", ())
                if key not in seen:
                    seen[key] = _with_radiography(set(vocabulary.modality_codes(key)))
                self._doc_codes.append(seen[key])
        return self._doc_codes


def _as_strings(raw: Any) -> Tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, (str, int, float)):
        return (str(raw),) if str(raw).strip() else ()
    if isinstance(raw, Mapping):
        return tuple(str(k) for k in raw)
    return tuple(str(v) for v in raw if v is not None and str(v).strip())


# --------------------------------------------------------------------------------------------------
# Search fields from a medigan config or a zoo block (one extractor per field of catalog/fields.py)
# --------------------------------------------------------------------------------------------------
def _metric_names(performance: Any) -> List[str]:
    """Dotted names of the performance entries with a value (the ``*_no_images`` sample counts left out)."""
    return [".".join(path) for path, value in walk_metric_tree(performance)
            if value not in (None, "", [], {}) and not path[-1].endswith("_no_images")]


def _non_empty(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_non_empty(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(v not in (None, "") for v in value)
    return value not in (None, "")


def _int(value: Any) -> Optional[int]:
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _strings(value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):  # a zoo-style condition dict: names and value labels
        out = []
        for name, spec in value.items():
            out.append(str(name))
            if isinstance(spec, Mapping):
                out += [str(v) for v in (spec.get("values") or {}).values()]
        return out
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)] if str(value).strip() else []


def _shape_fields(shape: Sequence[int]) -> Dict[str, List[str]]:
    return {"shape": ["x".join(str(s) for s in shape)], "dims": [str(len(shape))]} if shape else \
        {"shape": [], "dims": []}


def _medigan_shape(selection: Mapping[str, Any]) -> Dict[str, List[str]]:
    """``HxW`` (or ``DxHxW`` when ``depth`` > 4: medigan uses ``depth`` for channels, 1 to 4) and dims."""
    height, width, depth = (_int(selection.get(k)) for k in ("height", "width", "depth"))
    if not (height and width):
        return _shape_fields([])
    return _shape_fields([depth, height, width] if depth and depth > 4 else [height, width])


#: zoo field -> its search fields from a medigan ``selection`` block, where reading its medigan key as strings
#: is not enough
_FROM_MEDIGAN = {
    "modality": lambda sel: {"modality": vocabulary.modality_terms(_strings(sel.get("modality")))},
    "spatial_shape": _medigan_shape,
    "metrics": lambda sel: {"metrics": _metric_names(sel.get("performance"))},
}
#: zoo field -> its search fields from its value in a zoo block, where its value as strings is not enough
_FROM_ZOO = {
    "modality": lambda value: {"modality": vocabulary.modality_terms(_strings(value))},
    "spatial_shape": lambda value: _shape_fields([int(s) for s in value or []]),
    "metrics": lambda value: {"metrics": [str(m["name"]) for m in value or [] if isinstance(m, Mapping)]},
}


def fields_from_medigan_config(model_id: str, config: Mapping[str, Any]) -> Dict[str, List[str]]:
    """Search fields of one medigan global.json entry (``execution``/``selection``/``description``).

    Each searchable zoo field reads its medigan key (catalog/fields.py: anatomy = ``organ``, architecture =
    ``type``, ...). modality = the entry's modality strings + their DICOM codes + the codes' names; shape = ``HxW``
    (or ``DxHxW`` when ``depth`` > 4: medigan uses ``depth`` for channels, 1 to 4); dims = "2"/"3"; metrics = names
    of performance entries with a value (``CLF.trained_on_real.accuracy``); keys = names of the selection keys
    with non-empty values.
    """
    config = config or {}
    sel = config.get("selection") or {}
    desc = config.get("description") or {}
    fields: Dict[str, List[str]] = {
        "id": [str(model_id)],
        "name": _strings(desc.get("title")),
        "description": _strings(desc.get("comment")),
    }
    for zoo_field in ZOO_BLOCK_FIELDS:
        if zoo_field.search and zoo_field.medigan_keys:
            if zoo_field.name in _FROM_MEDIGAN:
                fields.update(_FROM_MEDIGAN[zoo_field.name](sel))
            else:
                fields[zoo_field.search[0].name] = _strings(sel.get(zoo_field.medigan_keys[0]))
    fields["keys"] = [key for key, value in sel.items() if _non_empty(value)]
    return fields


def fields_from_zoo_block(model_id: str, name: str, description: str, zoo: Mapping[str, Any]
                          ) -> Dict[str, List[str]]:
    """Search fields of a zoo model: its id (and numeric alias), name, description and its zoo block's fields.

    A field the block leaves out is searched as its ``unknown`` value (license "unknown"); empty values are
    dropped.
    """
    alias = zoo.get("alias")
    fields: Dict[str, List[str]] = {
        "id": [str(model_id)] + ([str(int(alias))] if alias is not None else []),
        "name": [str(name)],
        "description": [str(description)],
    }
    for zoo_field in ZOO_BLOCK_FIELDS:
        if not zoo_field.search:
            continue
        value = zoo.get(zoo_field.name)
        if value is None:
            value = zoo_field.unknown
        if zoo_field.name in _FROM_ZOO:
            fields.update(_FROM_ZOO[zoo_field.name](value))
        else:
            fields[zoo_field.search[0].name] = _strings(value)
    return {k: [v for v in vals if v] for k, vals in fields.items()}
