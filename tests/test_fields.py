"""The zoo-block field table (medigan_zoo/catalog/fields.py) agrees with the schema, and every field list is
derived from it: validate, ModelInfo, search, the medigan view, the medigan importer, foreign bundles."""
from __future__ import annotations

import json

import pytest
from conftest import REPO
from zoo_fixtures import ZOO_BLOCK, metadata, write_metadata_bundle

from medigan_zoo.catalog import fields as F
from medigan_zoo.catalog.bundle_reader import derive_zoo_block
from medigan_zoo.catalog.index import ZooIndex
from medigan_zoo.catalog.model_info import ZOO_FIELDS
from medigan_zoo.medigan.config_view import MEDIGAN_ONLY_KEYS, to_medigan_config
from medigan_zoo.medigan.importer import convert_entry
from medigan_zoo.query.ranking import _EXACT_FILTERS, FIELD_WEIGHTS, FIELDS, fields_from_medigan_config
from medigan_zoo.runtime.validate import BUNDLE_ZOO_FIELDS

SCHEMA = json.loads((REPO / "schemas" / "zoo_block.schema.json").read_text(encoding="utf-8"))


def _schema_types(prop: dict) -> set:
    """The JSON types a schema property admits (enums by their values' types, $refs resolved)."""
    if "$ref" in prop:
        prop = SCHEMA["$defs"][prop["$ref"].rsplit("/", 1)[-1]]
    if "type" in prop:
        return set(prop["type"] if isinstance(prop["type"], list) else [prop["type"]])
    names = {str: "string", int: "integer", bool: "boolean", float: "number", type(None): "null"}
    return {names[type(v)] for v in prop["enum"]}


def test_table_and_schema_have_the_same_fields():
    assert [f.name for f in F.ZOO_BLOCK_FIELDS] and len({f.name for f in F.ZOO_BLOCK_FIELDS}) == len(F.ZOO_BLOCK_FIELDS)
    assert {f.name for f in F.ZOO_BLOCK_FIELDS} == set(SCHEMA["properties"])
    assert SCHEMA["additionalProperties"] is False  # so a field missing from the table cannot slip in


@pytest.mark.parametrize("field", F.ZOO_BLOCK_FIELDS, ids=lambda f: f.name)
def test_table_row_agrees_with_its_schema_property(field):
    assert set(field.json_types) == _schema_types(SCHEMA["properties"][field.name])
    assert (field.required == F.ALWAYS) == (field.name in SCHEMA["required"])
    assert field.required in (F.ALWAYS, F.SHIPPED, F.OPTIONAL)
    assert field.description
    for search in field.search:
        assert search.weight > 0 and search.filter in (F.EXACT, F.TERMS, F.MODALITY)


def test_unknown_placeholders_pass_the_schema():
    from medigan_zoo.catalog.schema import ZOO_BLOCK_SCHEMA, schema_problems

    block = {f.name: f.unknown for f in F.ZOO_BLOCK_FIELDS if f.unknown is not None}
    block["spatial_shape"] = [8, 8]  # the one required field without a placeholder: it cannot be guessed
    assert set(F.REQUIRED_FIELDS) <= set(block)
    assert schema_problems(block, ZOO_BLOCK_SCHEMA) == []


def test_field_lists_are_derived_from_the_table():
    assert ZOO_FIELDS == F.COMPLETE_FIELDS == tuple(f.name for f in F.ZOO_BLOCK_FIELDS if f.required != F.OPTIONAL)
    assert set(BUNDLE_ZOO_FIELDS) == {f.name for f in F.ZOO_BLOCK_FIELDS if f.required == F.SHIPPED}
    assert set(BUNDLE_ZOO_FIELDS).isdisjoint(SCHEMA["required"])  # validate checks what the schema does not
    assert FIELDS == tuple(s.name for s in F.SEARCH_FIELDS)
    assert FIELDS[:3] == ("id", "name", "description") and FIELDS[-1] == "keys"
    assert FIELD_WEIGHTS == {s.name: s.weight for s in F.SEARCH_FIELDS}
    assert _EXACT_FILTERS == {"id", "license", "dims", "year", "dataset_type", "shape"}


def test_every_searchable_field_is_indexed_from_zoo_blocks_and_medigan_configs(tmp_path):
    write_metadata_bundle(tmp_path, "breast_mg_toygan", metadata())
    info = ZooIndex(bundle_dirs=[tmp_path], include_builtin=False).get("breast_mg_toygan")
    from medigan_zoo.catalog.index import search_fields

    from_zoo = search_fields(info)
    from_view = fields_from_medigan_config(info.id, info.medigan_config)
    assert set(from_view) == set(FIELDS)
    for field in F.ZOO_BLOCK_FIELDS:
        for search in field.search:
            if field.name in ZOO_BLOCK:
                assert from_zoo.get(search.name), (field.name, search.name)
                assert from_view[search.name], (field.name, search.name)  # the medigan view carries it too
    assert from_zoo["shape"] == ["x".join(map(str, ZOO_BLOCK["spatial_shape"]))]


def test_medigan_view_fills_every_medigan_key_of_the_table():
    view = to_medigan_config("m", ZOO_BLOCK, "M", "1.0.0", "d")["selection"]
    keys = {k for f in F.ZOO_BLOCK_FIELDS for k in f.medigan_keys}
    assert keys | set(MEDIGAN_ONLY_KEYS) == set(view)
    assert list(view)[:4] == ["performance", "use_cases", "organ", "modality"]  # medigan's own key order
    assert view["organ"] == ZOO_BLOCK["anatomy"] and view["type"] == ZOO_BLOCK["architecture"]


def test_a_new_list_field_flows_through_the_importer(monkeypatch):
    """A plain list field is one table row: the importer copies it from its medigan key without new code."""
    extra = F.ZooField("vendors", ("array",), F.OPTIONAL, ("vendors",), description="scanner vendors")
    monkeypatch.setattr("medigan_zoo.medigan.importer.ZOO_BLOCK_FIELDS", F.ZOO_BLOCK_FIELDS + (extra,))
    entry = {"execution": {"package_link": "https://example.org/m.zip", "image_size": [64, 64]},
             "selection": {"modality": ["CT"], "vendors": ["Siemens", "GE", "GE"], "license": "MIT License"}}
    zoo = convert_entry("00042_TEST", entry)["zoo"]
    assert zoo["vendors"] == ["Siemens", "GE"]
    assert zoo["license"] == "MIT" and zoo["modality"] == ["CT"] and zoo["alias"] == 42
    assert set(zoo) <= {f.name for f in F.ZOO_BLOCK_FIELDS} | {"vendors"}


def test_importer_fills_every_field_medigan_has_a_key_for():
    entry = {"execution": {"package_link": "https://example.org/m.zip", "image_size": [64, 64, 3]},
             "selection": {"modality": ["CT"], "organ": ["lung"], "generates": ["nodules"], "condition": ["size"],
                           "dataset": ["LIDC"], "dataset_type": "public", "license": "MIT", "type": "DCGAN",
                           "function": ["generation"], "use_cases": ["detection"], "tags": ["t"], "year": "2022",
                           "height": 64, "width": 64, "performance": {"FID": 3.0}}}
    zoo = convert_entry("m", entry)["zoo"]
    assert set(zoo) == {f.name for f in F.ZOO_BLOCK_FIELDS if f.medigan_keys}
    assert list(zoo) == [f.name for f in F.ZOO_BLOCK_FIELDS if f.name in zoo]  # in table order


def test_foreign_bundle_block_uses_the_table_placeholders(tmp_path):
    zoo, missing = derive_zoo_block({"name": "x", "task": ""}, tmp_path)
    assert zoo == {f.name: f.unknown for f in F.ZOO_BLOCK_FIELDS if f.required == F.ALWAYS and f.unknown is not None}
    assert zoo["modality"] is not F.field_named("modality").unknown  # a copy: the table cannot be mutated
    assert set(missing) == set(F.COMPLETE_FIELDS) - {"condition"}
    assert list(missing) == [f for f in F.COMPLETE_FIELDS if f in missing]


def test_bundle_contract_lists_the_table_fields():
    text = (REPO / "docs" / "bundle_contract.md").read_text(encoding="utf-8")
    block = text.split('Plus exactly one namespaced block, `"medigan_zoo"`', 1)[1].split("A condition entry", 1)[0]
    documented = [line.split("`")[1] for line in block.splitlines() if line.startswith("| `")]
    assert set(documented) == {f.name for f in F.ZOO_BLOCK_FIELDS}
    for name in F.REQUIRED_FIELDS + F.SHIPPED_FIELDS:
        assert f"`{name}`" in block.split("| key |", 1)[0], name  # the required lists above the table
