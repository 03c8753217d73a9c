"""Requests of the deploy application: JSON files in the app's input folder, read and checked before any model runs.

A request names a model (``"model"``: an id of the zoo or of a bundle in the app's model folder) or a bundle folder
(``"bundle"``: a path, relative to the model folder unless absolute), or neither when the model folder is itself one
bundle. ``num_samples`` (default 1), ``seed`` (default 0), ``conditions`` and ``options`` are the engine's
(``medigan-zoo info MODEL`` lists a model's), ``outputs`` is a list of ``"dicom"`` (default) and ``"nifti"``.
The request's name (``"name"``, else the file's stem) names its output folder. Torch-free.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from medigan_zoo.core.errors import ZooError

#: what a request may hold
KEYS = ("name", "model", "bundle", "num_samples", "seed", "conditions", "options", "outputs")
OUTPUTS = ("dicom", "nifti")
#: a request is a study; larger data sets are for ``medigan-zoo generate``
MAX_SAMPLES = 1000
MAX_SEED = 2 ** 63 - 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RequestError(ZooError):
    """A request that cannot be run: the message says which file, which key, and what to do."""


@dataclass(frozen=True)
class Request:
    """One checked request (one study)."""

    name: str
    source: str  # the file it came from (for messages)
    model: Optional[str] = None
    bundle: Optional[str] = None
    num_samples: int = 1
    seed: int = 0
    conditions: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    outputs: Tuple[str, ...] = ("dicom",)

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "model": self.model, "bundle": self.bundle, "num_samples": self.num_samples,
                "seed": self.seed, "conditions": dict(self.conditions), "options": dict(self.options),
                "outputs": list(self.outputs)}


def _int(data: Mapping[str, Any], key: str, default: int, low: int, high: int, where: str) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(f"{where}: {key!r} must be an integer between {low} and {high}, got {value!r}.")
    return value


def parse_request(data: Any, source: str, default_name: str) -> Request:
    """A :class:`Request` from the decoded JSON ``data`` of file ``source``, or a RequestError naming the key."""
    where = f"request {source}"
    if not isinstance(data, dict):
        raise RequestError(f"{where}: a request is a JSON object, e.g. {{\"model\": \"chest_xray_cdcgan\", "
                           f"\"num_samples\": 4}}; got {type(data).__name__}.")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise RequestError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; a request may hold "
                           f"{', '.join(KEYS)}.")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not _NAME.match(name):
        raise RequestError(f"{where}: 'name' {name!r} must be 1-100 letters, digits, '.', '_' or '-' (it names "
                           "the output folder).")
    model, bundle = data.get("model"), data.get("bundle")
    if model is not None and bundle is not None:
        raise RequestError(f"{where}: give 'model' (an id) or 'bundle' (a folder), not both.")
    for key, value in (("model", model), ("bundle", bundle)):
        if value is not None and (not isinstance(value, (str, int)) or isinstance(value, bool) or value == ""):
            raise RequestError(f"{where}: {key!r} must be a non-empty string, got {value!r}.")
    for key in ("conditions", "options"):
        if not isinstance(data.get(key, {}), dict):
            raise RequestError(f"{where}: {key!r} must be a JSON object (name -> value), got {data[key]!r}.")
    outputs = data.get("outputs", ["dicom"])
    if isinstance(outputs, str):
        outputs = [outputs]
    if not isinstance(outputs, list) or not outputs or any(o not in OUTPUTS for o in outputs):
        raise RequestError(f"{where}: 'outputs' must be a list of {' and '.join(map(repr, OUTPUTS))}, "
                           f"got {outputs!r}.")
    return Request(name=name, source=source, model=None if model is None else str(model),
                   bundle=bundle, num_samples=_int(data, "num_samples", 1, 1, MAX_SAMPLES, where),
                   seed=_int(data, "seed", 0, 0, MAX_SEED, where), conditions=dict(data.get("conditions") or {}),
                   options=dict(data.get("options") or {}), outputs=tuple(dict.fromkeys(outputs)))


def request_files(input_path: Path) -> List[Path]:
    """The request files of the app's input: the file itself, or the ``*.json`` files of the folder (sorted)."""
    path = Path(input_path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise RequestError(f"Input {path} does not exist; pass -i with a request JSON file or a folder of them.")
    files = sorted(p for p in path.glob("*.json") if p.is_file())
    if not files:
        raise RequestError(f"Input folder {path} holds no request (*.json), e.g. "
                           "{\"model\": \"chest_xray_cdcgan\", \"num_samples\": 4}.")
    return files


def read_request(path: Path) -> Request:
    """The request in file ``path`` (a RequestError for unreadable JSON names the line)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RequestError(f"request {path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}).") \
            from None
    except (OSError, UnicodeDecodeError) as err:
        raise RequestError(f"request {path}: cannot be read ({err}).") from None
    return parse_request(data, str(path), Path(path).stem)


def resolve_bundle(request: Request, model_path: Optional[Path]) -> Path:
    """The bundle folder a request runs: its ``bundle`` (relative to ``model_path`` unless absolute), the bundle or
    zoo model its ``model`` id names (bundles in ``model_path`` are indexed next to the shipped ones), or
    ``model_path`` itself when it is one bundle and the request names none."""
    from medigan_zoo.catalog.index import ZooIndex
    from medigan_zoo.core.paths import find_bundles, is_bundle_dir

    where = f"request {request.source}"
    if request.bundle is not None:
        path = Path(request.bundle).expanduser()
        if not path.is_absolute() and model_path is not None:
            path = Path(model_path) / path
        if not is_bundle_dir(path):
            raise RequestError(f"{where}: 'bundle' {request.bundle!r} is not a bundle folder ({path} has no "
                               "configs/metadata.json).")
        return path.resolve()
    extra = [Path(model_path)] if model_path is not None and find_bundles(model_path) else []
    if request.model is None:
        if extra and is_bundle_dir(extra[0]):
            return extra[0].resolve()
        raise RequestError(f"{where}: name a 'model' (e.g. \"chest_xray_cdcgan\") or a 'bundle' folder; the model "
                           f"folder {model_path} is not one bundle.")
    index = ZooIndex(bundle_dirs=extra or None)
    info = index.get(request.model)  # ModelNotFoundError names close matches
    if info.bundle_dir is None:
        raise RequestError(f"{where}: model {info.id!r} is a catalog entry without a bundle on disk; download it "
                           f"(`medigan-zoo download {info.id}`) into the model folder first.")
    return Path(info.bundle_dir)
