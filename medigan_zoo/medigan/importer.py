"""Convert medigan's model config (``global.json``) into a zoo catalog (``medigan-zoo import-medigan``).

Every medigan model becomes one catalog entry: its original config, verbatim, under ``medigan_config`` (so
medigan's search and ranking verbs give medigan's own answers), a zoo block (docs/bundle_contract.md,
section 2) derived from it, and where its medigan package can be downloaded. medigan packages are not MONAI
bundles; the catalog only makes them findable and comparable next to the zoo's bundles.

The oddities of medigan 1.0.0's real config are handled: years given as strings, heights as floats and
image sizes as strings (00021), ``depth`` used for the channel count of 2D images, metrics given as strings
("0.797") or as lists (Turing-test readers), downstream-task metrics nested under ``downstream_task``
(00023), empty performance blocks (00022), missing licenses and versions. Malformed input raises
``MetadataError`` naming the file and the JSON path.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from medigan_zoo.catalog.fields import ZOO_BLOCK_FIELDS
from medigan_zoo.catalog.licenses import license_id
from medigan_zoo.catalog.metrics import metric_direction, walk_metric_tree
from medigan_zoo.core.errors import MetadataError
from medigan_zoo.core.jsonio import json_path
from medigan_zoo.medigan.compat import metric_number

__all__ = ["convert_medigan_config", "convert_entry", "write_catalog", "CATALOG_FORMAT", "DEFAULT_CATALOG_NAME"]

log = logging.getLogger(__name__)

CATALOG_FORMAT = "medigan_zoo.catalog/1"
DEFAULT_CATALOG_NAME = "medigan-1.0.0"
DOWNLOAD_NOTE = "medigan model package; not a MONAI bundle: convert before running in the zoo"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

_PRIVATE = {"private", "non-public", "nonpublic", "not public", "proprietary", "in-house", "internal", "restricted"}
#: Turing-test fields that describe the readers rather than measure the model
_READER_FIELDS = {"number_radiologists": "num_readers", "years_experience": "readers_years_experience"}


class _Ctx:
    """Where we are in the input, for error messages."""

    def __init__(self, file: Optional[Path], model_id: str):
        self.file = file
        self.model_id = model_id

    def error(self, message: str, *parts: Union[str, int], hint: str = "") -> MetadataError:
        return MetadataError(message, file=self.file, json_path=json_path([self.model_id, *parts]), hint=hint)


# --- small converters -------------------------------------------------------------------------------------


def _number(value: Any) -> Optional[float]:
    """A finite float from a number or a numeric string; None otherwise (bools are not numbers)."""
    number = metric_number(value)
    return number if number is not None and math.isfinite(number) else None


def _metric_value(value: Any) -> Optional[Union[int, float, List[Union[int, float]]]]:
    """A metric value as numbers (ints stay ints), or None when it is not numeric."""
    if isinstance(value, list):
        items = [_metric_value(v) for v in value]
        if not items or any(v is None or isinstance(v, list) for v in items):
            return None
        return items  # type: ignore[return-value]
    number = _number(value)
    if number is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return number


def _positive_int(ctx: _Ctx, value: Any, *parts: Union[str, int]) -> Optional[int]:
    """Heights, widths, sizes: int, integral float (224.0) or numeric string ("224"); None for null."""
    if value is None or value == "":
        return None
    number = _number(value)
    if number is None or number != int(number) or number < 1:
        raise ctx.error(f"expected a positive integer, found {value!r}", *parts)
    return int(number)


def _strings(ctx: _Ctx, selection: Dict[str, Any], key: str) -> List[str]:
    """A list field of the selection block as clean strings (a bare string counts as one item)."""
    value = selection.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ctx.error(f"expected a list of strings, found {type(value).__name__}", "selection", key)
    out: List[str] = []
    for i, item in enumerate(value):
        if item is None:
            continue
        if isinstance(item, (dict, list)):
            raise ctx.error(f"expected a string, found {type(item).__name__}", "selection", key, i)
        text = str(item).strip()
        if text and text not in out:
            out.append(text)
    return out


def _dataset_type(value: Any) -> str:
    text = str(value or "").strip().lower()
    if text == "public":
        return "public"
    if text in _PRIVATE:
        return "private"
    return "unknown"


def _year(ctx: _Ctx, value: Any) -> Optional[int]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = _number(value)
    if number is None or number != int(number):
        raise ctx.error(f"expected a year such as 2021, found {value!r}", "selection", "year")
    year = int(number)
    if not 1990 <= year <= 2100:
        raise ctx.error(f"year {year} is out of range (1990-2100)", "selection", "year")
    return year


def _condition_key(text: str, taken: Dict[str, Any]) -> str:
    key = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower() or "condition"
    if key[0].isdigit():
        key = "c_" + key
    base, n = key, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


def _shape(ctx: _Ctx, selection: Dict[str, Any], execution: Dict[str, Any]) -> Tuple[List[int], Optional[int]]:
    """(spatial_shape, num_channels) from selection.height/width/depth, else execution.image_size.

    Where both are given and disagree, execution.image_size (what medigan runs the generator with) wins.
    medigan's ``depth`` is the channel count for its 2D models (1 to 4: gray, RGB, RGB + mask), as in
    medigan_zoo.query.ranking; a larger depth is a volume's depth. ``image_size`` may end with the channels.
    """
    height = _positive_int(ctx, selection.get("height"), "selection", "height")
    width = _positive_int(ctx, selection.get("width"), "selection", "width")
    depth = _positive_int(ctx, selection.get("depth"), "selection", "depth")
    raw = execution.get("image_size")
    size: List[int] = []
    if raw not in (None, "", []):
        if not isinstance(raw, list):
            raise ctx.error(f"expected a list such as [128, 128], found {raw!r}", "execution", "image_size")
        size = [_positive_int(ctx, v, "execution", "image_size", i) or 0 for i, v in enumerate(raw)]
    channels: Optional[int] = None
    if height and width:
        if depth and depth > 4:
            shape = [depth, height, width]
        else:
            shape = [height, width]
            channels = depth
        if len(size) >= 2 and size[:2] != [height, width] and len(shape) == 2:
            # 00020 says 1028x1028 in its selection block but runs at image_size 1024x1024: the execution
            # block is what the generator is run with, so it wins
            log.warning("%s: selection height x width %sx%s differs from execution.image_size %s; using "
                        "image_size", ctx.model_id, height, width, size)
            shape = size[:2]
    elif len(size) >= 2:
        shape = size[:2]
    else:
        raise ctx.error("no image size: neither selection.height/width nor execution.image_size is given",
                        "selection", hint="medigan_zoo needs the spatial shape of the generated images")
    if channels is None and len(size) == 3 and size[2] <= 4:
        channels = size[2]
    return shape, channels


def _metrics(ctx: _Ctx, performance: Any) -> List[Dict[str, Any]]:
    """One metric object per numeric performance value (nested CLF/SEG/DET ones included)."""
    if performance is None:
        return []
    if not isinstance(performance, dict):
        raise ctx.error(f"expected an object, found {type(performance).__name__}", "selection", "performance")
    fid_images = performance.get("FID_no_images")
    num_samples = _number(fid_images)
    num_samples_int = int(num_samples) if num_samples and num_samples == int(num_samples) and num_samples >= 1 \
        else None
    metrics: List[Dict[str, Any]] = []
    names: Dict[str, int] = {}

    def add(path: Sequence[str], value: Any, extra: Dict[str, Any]) -> None:
        parts = list(path)
        if parts[0] == "downstream_task" and len(parts) > 1:
            parts = parts[1:]  # 00023 nests CLF/SEG under downstream_task; the others do not
        name = ".".join(parts)
        if name in names:
            log.warning("%s: metric %s is given twice; keeping the first", ctx.model_id, name)
            return
        metric: Dict[str, Any] = {"name": name, "value": _metric_value(value),
                                  "direction": metric_direction(name)}
        leaf = parts[-1].upper()
        if len(parts) == 1 and leaf.startswith(("FID", "KID")) and num_samples_int:
            metric["num_samples"] = num_samples_int
        if isinstance(value, str) or (isinstance(value, list) and any(isinstance(v, str) for v in value)):
            metric["note"] = f"given as {value!r} in medigan's config"
        metric.update(extra)
        names[name] = len(metrics)
        metrics.append(metric)

    readers: Dict[Tuple[str, ...], Dict[str, Any]] = {}  # turing_test block -> its reader fields
    leaves = list(walk_metric_tree(performance))
    for path, value in leaves:
        if len(path) > 1 and path[-2] == "turing_test" and path[-1] in _READER_FIELDS and value is not None:
            readers.setdefault(path[:-1], {})[_READER_FIELDS[path[-1]]] = value
    for where, value in leaves:
        block = readers.get(where[:-1], {})
        if where[-1] in _READER_FIELDS and block:
            continue
        if where[-1].endswith("_no_images"):
            continue  # the sample count of FID-like metrics, not a metric
        if _metric_value(value) is None:
            if isinstance(value, list) and value:
                raise ctx.error(f"expected a number or a list of numbers, found {value!r}",
                                "selection", "performance", *where)
            continue  # null, "", non-numeric notes
        extra = dict(block)
        if block and isinstance(value, list):
            extra.setdefault("note", "one value per reader of the visual Turing test")
        add(where, value, extra)
    return metrics


# --- entries and catalogs ----------------------------------------------------------------------------------


def _modality(ctx: _Ctx, selection: Dict[str, Any]) -> List[str]:
    """DICOM codes of the modality strings; OT (other) when none is recognized."""
    terms = _strings(ctx, selection, "modality")
    from medigan_zoo.query import vocabulary  # imported lazily to keep this module light

    codes = vocabulary.modality_codes(terms) if terms else []
    if not codes:
        log.warning("%s: no DICOM modality recognized in %s; using OT (other)", ctx.model_id, terms)
        codes = ["OT"]
    return codes


def _condition(ctx: _Ctx, selection: Dict[str, Any]) -> Dict[str, Any]:
    """medigan's condition strings as text conditions with snake_case ids."""
    condition: Dict[str, Any] = {}
    for text in _strings(ctx, selection, "condition"):
        condition[_condition_key(text, condition)] = {"type": "text", "description": text}
    return condition


def convert_entry(model_id: str, entry: Any, file: Optional[Path] = None) -> Dict[str, Any]:
    """One medigan config entry -> one catalog model (``id``, ``name``, ..., ``zoo``, ``download``)."""
    ctx = _Ctx(file, model_id)
    if not _ID_RE.match(model_id):
        raise ctx.error(f"model id {model_id!r} has characters a zoo id cannot have",
                        hint="ids are letters, digits, '_', '.', '-'")
    if not isinstance(entry, dict):
        raise ctx.error(f"expected an object with execution/selection/description, found {type(entry).__name__}")
    blocks = {}
    for block in ("execution", "selection", "description"):
        value = entry.get(block)
        if value is None and block == "description":
            value = {}
        if not isinstance(value, dict):
            found = "nothing" if value is None else type(value).__name__
            raise ctx.error(f"expected an object, found {found}", block, hint="medigan configs have "
                            "'execution', 'selection' and 'description' blocks")
        blocks[block] = value
    execution, selection, description = blocks["execution"], blocks["selection"], blocks["description"]

    url = execution.get("package_link")
    if not isinstance(url, str) or not url.strip():
        raise ctx.error("missing the package link (where the medigan package is downloaded from)",
                        "execution", "package_link")
    shape, channels = _shape(ctx, selection, execution)
    zoo: Dict[str, Any] = {}
    alias = re.match(r"^(\d+)_", model_id) or re.match(r"^(\d+)$", model_id)
    if alias and int(alias.group(1)) >= 1:
        zoo["alias"] = int(alias.group(1))
    special = {  # zoo fields that are more than their medigan key's strings; None leaves a field out
        "modality": lambda: _modality(ctx, selection),
        "condition": lambda: _condition(ctx, selection),
        "dataset_type": lambda: _dataset_type(selection.get("dataset_type")),
        "license": lambda: license_id(selection.get("license")),
        "architecture": lambda: str(selection.get("type") or execution.get("model_name") or "unknown").strip()
        or "unknown",
        "spatial_shape": lambda: shape,
        "num_channels": lambda: channels or None,
        "year": lambda: _year(ctx, selection.get("year")),
        "metrics": lambda: _metrics(ctx, selection.get("performance")),
    }
    for field in ZOO_BLOCK_FIELDS:  # the field table (catalog/fields.py): every field medigan has a key for
        if not field.medigan_keys:
            continue
        if field.name in special:
            value = special[field.name]()
        elif field.is_list:
            value = _strings(ctx, selection, field.medigan_keys[0])
        else:
            raw = selection.get(field.medigan_keys[0])
            value = str(raw).strip() if raw not in (None, "") else field.unknown
        if value is not None:
            zoo[field.name] = value

    version = description.get("version")
    return {
        "id": model_id,
        "name": str(description.get("title") or model_id).strip(),
        "version": str(version).strip() if version not in (None, "") else "0.0.0",
        "description": str(description.get("comment") or "").strip(),
        "medigan_config": entry,
        "zoo": zoo,
        "download": {"url": url.strip(), "sha256": None, "format": "medigan-zip", "note": DOWNLOAD_NOTE},
    }


def convert_medigan_config(path: Union[str, Path], name: str = DEFAULT_CATALOG_NAME) -> Dict[str, Any]:
    """Read medigan's ``global.json`` at ``path`` and return the catalog (a dict, not yet written)."""
    from medigan_zoo.core.jsonio import load_json

    path = Path(path)
    data = load_json(path, "medigan config")
    if not isinstance(data, dict) or not data:
        found = "an empty object" if isinstance(data, dict) else type(data).__name__
        raise MetadataError(f"expected an object of model id -> model config, found {found}", file=path,
                            json_path="$", hint="pass medigan's config/global.json")
    models = [convert_entry(str(model_id), entry, path) for model_id, entry in data.items()]
    return {
        "catalog_format": CATALOG_FORMAT,
        "name": name,
        "source": {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
        "models": models,
    }


def write_catalog(path_in: Union[str, Path], path_out: Union[str, Path], name: str = DEFAULT_CATALOG_NAME
                  ) -> Dict[str, Any]:
    """Convert ``path_in`` (medigan's global.json) and write the catalog to ``path_out``; returns the catalog.

    The catalog is checked against schemas/catalog.schema.json before it is written.
    """
    catalog = convert_medigan_config(path_in, name=name)
    path_out = Path(path_out)
    try:
        from medigan_zoo.catalog.schema import CATALOG_SCHEMA, check_schema
    except ImportError:  # pragma: no cover - schema support is part of the package
        pass
    else:
        check_schema(catalog, CATALOG_SCHEMA, path_out)
    path_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = path_out.with_name(path_out.name + ".tmp")
    tmp.write_text(json.dumps(catalog, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path_out)
    return catalog
