"""Catalog files: models the zoo knows about without their bundle on disk."""
from __future__ import annotations

from pathlib import Path
from typing import List

from medigan_zoo.catalog.model_info import ModelInfo
from medigan_zoo.catalog.schema import CATALOG_SCHEMA, check_schema
from medigan_zoo.core.errors import MetadataError
from medigan_zoo.core.jsonio import load_json
from medigan_zoo.medigan.config_view import to_medigan_config


def read_catalog(path: Path) -> List[ModelInfo]:
    """Parse and schema-check a catalog; each entry becomes a ModelInfo with source "catalog"."""
    path = Path(path).expanduser().resolve()
    data = load_json(path, "catalog")
    check_schema(data, CATALOG_SCHEMA, path)
    infos: List[ModelInfo] = []
    seen = set()
    for i, entry in enumerate(data["models"]):
        model_id = entry["id"]
        if model_id in seen:
            raise MetadataError(f"duplicate model id {model_id!r}", file=path, json_path=f"$.models[{i}].id",
                                hint="each id may appear once per catalog")
        seen.add(model_id)
        name = entry.get("name") or model_id
        version = entry.get("version") or "0.0.0"
        description = entry.get("description") or ""
        medigan_config = entry.get("medigan_config") or to_medigan_config(
            model_id, entry["zoo"], name, version, description, (entry.get("download") or {}).get("url"))
        infos.append(ModelInfo(
            id=model_id,
            name=name,
            version=version,
            description=description,
            source="catalog",
            zoo=entry["zoo"],
            medigan_config=medigan_config,
            origin=path,
            download=entry.get("download"),
        ))
    return infos
