"""The zoo block's fields, once: one row per field of ``"medigan_zoo"`` in a bundle's configs/metadata.json.

Everything that lists zoo fields is derived from ``ZOO_BLOCK_FIELDS``:

* the shipped-bundle check of ``medigan-zoo validate`` (``SHIPPED_FIELDS``) and ``ModelInfo``'s completeness list
  (``COMPLETE_FIELDS``, what ``info`` reports as missing),
* the search fields, their BM25F weights and filter kinds (``SEARCH_FIELDS``; docs/search.md),
* the medigan view of a zoo model and the medigan importer (``medigan_keys``: where the field lives in a medigan
  ``selection`` block; docs/medigan_compatibility.md),
* the placeholders of a foreign bundle's derived block (``unknown``).

tests/test_fields.py proves the table and schemas/zoo_block.schema.json agree (same fields, JSON types and
required fields). Adding a field: a schema property and a row here; a list of strings with a medigan key and a
search field needs nothing else. Pure Python, no imports beyond the standard library.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

__all__ = [
    "ALWAYS", "SHIPPED", "OPTIONAL", "EXACT", "TERMS", "MODALITY", "SearchField", "ZooField", "ZOO_BLOCK_FIELDS",
    "MODEL_SEARCH_FIELDS", "SEARCH_FIELDS", "REQUIRED_FIELDS", "SHIPPED_FIELDS", "COMPLETE_FIELDS",
    "field_named", "search_field_named",
]

# how much a field is required
ALWAYS = "always"  # every zoo block (the schema's "required")
SHIPPED = "shipped"  # zoo bundles must fill it (`medigan-zoo validate`); catalog entries may leave it out
OPTIONAL = "optional"

# how a search filter (``medigan-zoo search ... key=value``) compares values
EXACT = "exact"  # the normalized value must be equal (dims=3, license=CC-BY-4.0, shape=128x128)
TERMS = "terms"  # every term of the filter must be in one value, synonyms and broader terms included
MODALITY = "modality"  # a DICOM code or modality name; CR and DX (radiography) match each other


@dataclass(frozen=True)
class SearchField:
    """A field of the search index: its name (also the filter key), BM25F weight and filter kind."""

    name: str
    weight: float
    filter: str = TERMS
    description: str = ""


@dataclass(frozen=True)
class ZooField:
    """One field of the zoo block.

    Attributes:
        name: the key in the zoo block.
        json_types: JSON types the schema admits ("array", "object", "string", "integer", "null").
        required: ALWAYS, SHIPPED or OPTIONAL.
        medigan_keys: the ``selection`` keys of medigan's global.json that hold it (empty: medigan has no such key).
        search: the search fields made from it (empty: not searchable).
        unknown: its value when nothing is known (None: leave the field out).
        description: one line, for docs and error messages.
    """

    name: str
    json_types: Tuple[str, ...]
    required: str
    medigan_keys: Tuple[str, ...] = ()
    search: Tuple[SearchField, ...] = ()
    unknown: Any = None
    description: str = ""

    @property
    def is_list(self) -> bool:
        return self.json_types == ("array",)


def _search(name: str, weight: float, kind: str = TERMS, description: str = "") -> Tuple[SearchField, ...]:
    return (SearchField(name, weight, kind, description),)


#: The zoo block, in its canonical order (the order of search fields and of missing-field reports).
ZOO_BLOCK_FIELDS: Tuple[ZooField, ...] = (
    ZooField("role", ("string",), OPTIONAL,
             description="generator (default) or feature_extractor (used by evaluation, not listed as a generator)"),
    ZooField("alias", ("integer",), OPTIONAL,
             description="medigan-style numeric alias: model_id=101 resolves to this bundle (searched with the id)"),
    ZooField("modality", ("array",), ALWAYS, ("modality",),
             _search("modality", 3.0, MODALITY, "DICOM codes, their names and medigan's modality strings"),
             unknown=["OT"], description="DICOM modality codes (query/vocabulary.py)"),
    ZooField("anatomy", ("array",), ALWAYS, ("organ",), _search("anatomy", 2.5), unknown=[],
             description="body parts shown"),
    ZooField("generates", ("array",), ALWAYS, ("generates",), _search("generates", 2.5), unknown=[],
             description="what the images show"),
    ZooField("condition", ("object",), ALWAYS, ("condition",),
             _search("condition", 2.0, TERMS, "condition ids and the meanings of their values"), unknown={},
             description="condition id (an inference.json id) -> specification; {} for unconditional models"),
    ZooField("options", ("object",), OPTIONAL,
             description="sampling options (inference.json ids the zoo overrides, e.g. num_inference_steps)"),
    ZooField("inputs", ("array",), OPTIONAL,
             description="image inputs the model takes (name, kind image/mask, modality, spatial_shape, num_channels, "
                         "value_range, normalization, labels, optional); absent, or all optional and none given: it "
                         "generates from noise"),
    ZooField("outputs", ("array",), OPTIONAL,
             description="what each sample is made of (name, kind image/mask, num_channels, value_range, labels); "
                         "absent: one image"),
    ZooField("dataset", ("array",), SHIPPED, ("dataset",), _search("dataset", 3.0),
             description="training data sets"),
    ZooField("dataset_type", ("string",), SHIPPED, ("dataset_type",), _search("dataset_type", 1.0, EXACT),
             unknown="unknown", description="public, private or unknown"),
    ZooField("license", ("string",), ALWAYS, ("license",), _search("license", 2.0, EXACT), unknown="unknown",
             description="SPDX id of the weights' license (catalog/licenses.py)"),
    ZooField("architecture", ("string",), ALWAYS, ("type",), _search("architecture", 3.0), unknown="unknown",
             description="network / method, e.g. cDCGAN, DDPM"),
    ZooField("function", ("array",), SHIPPED, ("function",), _search("function", 1.0),
             description="what the model does, e.g. unconditional generation"),
    ZooField("use_cases", ("array",), SHIPPED, ("use_cases",), _search("use_cases", 1.5),
             description="downstream tasks the samples are meant for"),
    ZooField("tags", ("array",), SHIPPED, ("tags",), _search("tags", 1.5), description="free keywords"),
    ZooField("spatial_shape", ("array",), ALWAYS, ("height", "width", "depth"),
             (SearchField("shape", 3.0, EXACT, "128x128, 28x28x28"), SearchField("dims", 2.0, EXACT, "2 or 3")),
             description="[H, W] or [D, H, W], without channels (medigan: height, width and, for volumes, depth)"),
    ZooField("num_channels", ("integer",), SHIPPED, ("depth",),
             description="image channels (medigan writes them as the depth of its 2D models, 1 to 4)"),
    ZooField("year", ("integer", "null"), SHIPPED, ("year",), _search("year", 1.5, EXACT),
             description="year the model was published"),
    ZooField("metrics", ("array",), ALWAYS, ("performance",),
             _search("metrics", 1.0, TERMS, "metric names (CLF.trained_on_fake.accuracy)"), unknown=[],
             description="measured metric objects (medigan: the nested performance block)"),
)

#: Search fields that do not come from the zoo block: before the zoo fields ``id``, ``name``, ``description``;
#: after them ``keys`` (medigan selection keys with values, for medigan's ``are_keys_also_matched``).
MODEL_SEARCH_FIELDS: Tuple[SearchField, ...] = (
    SearchField("id", 3.0, EXACT, "model id and numeric alias"),
    SearchField("name", 2.0, TERMS, "title"),
    SearchField("description", 1.0, TERMS, "description"),
    SearchField("keys", 0.75, TERMS, "names of the medigan selection keys that have values"),
)

#: Every search field in index order: id, name, description, the zoo block's, keys.
SEARCH_FIELDS: Tuple[SearchField, ...] = (
    MODEL_SEARCH_FIELDS[:3] + tuple(s for f in ZOO_BLOCK_FIELDS for s in f.search) + MODEL_SEARCH_FIELDS[3:]
)
REQUIRED_FIELDS: Tuple[str, ...] = tuple(f.name for f in ZOO_BLOCK_FIELDS if f.required == ALWAYS)
SHIPPED_FIELDS: Tuple[str, ...] = tuple(f.name for f in ZOO_BLOCK_FIELDS if f.required == SHIPPED)
#: what a complete zoo block fills: the required and the shipped-bundle fields
COMPLETE_FIELDS: Tuple[str, ...] = tuple(f.name for f in ZOO_BLOCK_FIELDS if f.required != OPTIONAL)

_BY_NAME: Dict[str, ZooField] = {f.name: f for f in ZOO_BLOCK_FIELDS}
_SEARCH_BY_NAME: Dict[str, SearchField] = {s.name: s for s in SEARCH_FIELDS}


def field_named(name: str) -> Optional[ZooField]:
    """The row of zoo field ``name``, or None."""
    return _BY_NAME.get(name)


def search_field_named(name: str) -> Optional[SearchField]:
    """The search field ``name``, or None."""
    return _SEARCH_BY_NAME.get(name)
