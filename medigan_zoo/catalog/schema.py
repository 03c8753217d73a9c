"""JSON Schema checks of zoo blocks and catalogs (schemas/ in the source tree, packaged in wheels)."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

from medigan_zoo.core.errors import MetadataError
from medigan_zoo.core.jsonio import json_path
from medigan_zoo.core.paths import schemas_root

ZOO_BLOCK_SCHEMA = "zoo_block.schema.json"
CATALOG_SCHEMA = "catalog.schema.json"


@functools.lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """A schema from schemas/ by file name."""
    return json.loads((schemas_root() / name).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def _validator(name: str):
    import jsonschema  # lazy: ~60 ms
    from referencing import Registry, Resource

    registry = Registry()
    for other in (ZOO_BLOCK_SCHEMA, CATALOG_SCHEMA):
        schema = load_schema(other)
        resource = Resource.from_contents(schema)
        registry = registry.with_resources([(other, resource), (schema["$id"], resource)])
    return jsonschema.Draft202012Validator(load_schema(name), registry=registry)


def schema_problems(
    data: Any, schema_name: str, prefix: Sequence[Union[str, int]] = ()
) -> List[Tuple[str, str]]:
    """Every violation as (JSON path, message), sorted by path."""
    problems = []
    for err in _validator(schema_name).iter_errors(data):
        problems.append((json_path(list(prefix) + list(err.absolute_path)), err.message))
    return sorted(problems)


def check_schema(
    data: Any, schema_name: str, file: Optional[Path], prefix: Sequence[Union[str, int]] = ()
) -> None:
    """Raise MetadataError naming the file and JSON path of the first violation."""
    problems = schema_problems(data, schema_name, prefix)
    if problems:
        path, message = problems[0]
        more = f" (+{len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise MetadataError(
            message + more, file=file, json_path=path,
            hint=f"see schemas/{schema_name}; run `medigan-zoo validate` for the full list",
        )
