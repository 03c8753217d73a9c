"""Bundle configs from templates: ``configs/template.json`` names, per config file, a template of this package and
the overrides that make it this bundle's; :func:`render_bundle` writes the rendered files into the bundle.

A bundle stays self-contained (``python -m monai.bundle run inferring --config_file configs/inference.json`` needs
only the bundle); the template is where its shared part is written once. ``configs/template.json``::

    {"inference.json": {"template": "generator_inference",
                        "remove": ["spatial_shape"],
                        "overrides": {"num_samples": 8, "sampler::condition_names": ["class_label"]}},
     "train.json": {"template": "cdcgan_train", "overrides": {...}}}

Overrides are MONAI config ids (``::`` walks into dicts and list indices, as on the ``monai.bundle run`` command
line): each replaces the template's value at that id, or adds the id (appended) where the template has none;
``remove`` deletes ids first. Rendering is a pure function of the template and the declared overrides (invariant,
proved by tests/test_templates.py: every shipped config equals its rendering). Torch-free.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from medigan_zoo.core.errors import ZooError

PathLike = Union[str, Path]

#: folder holding the template files (``<name>.json``)
TEMPLATES_DIR = Path(__file__).resolve().parent
#: a bundle's declaration of its templates and overrides, relative to the bundle root
TEMPLATE_FILE = "configs/template.json"
#: MONAI's id separator (``monai.bundle.utils.ID_SEP_KEY``)
ID_SEP = "::"


def template_names() -> List[str]:
    """Names of the templates this package ships (sorted)."""
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.json"))


def load_template(name: str) -> Dict[str, Any]:
    """The template ``name`` (a fresh copy)."""
    path = TEMPLATES_DIR / f"{name}.json"
    if not path.is_file():
        raise ZooError(f"Unknown bundle config template {name!r}; known: {', '.join(template_names())}. "
                       f"Fix the 'template' of {TEMPLATE_FILE}.")
    return json.loads(path.read_text())


def _walk(config: Any, parts: Sequence[str], id_: str) -> Any:
    node = config
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ZooError(f"Config id {id_!r} of {TEMPLATE_FILE} does not exist in the template (no {part!r}); "
                           "override an existing id or a new top-level one.")
    return node


def _set(config: Dict[str, Any], id_: str, value: Any) -> None:
    *parents, last = id_.split(ID_SEP)
    node = _walk(config, parents, id_)
    if isinstance(node, list):
        _walk(node, [last], id_)  # the index must exist
        node[int(last)] = copy.deepcopy(value)
    else:
        node[last] = copy.deepcopy(value)


def _remove(config: Dict[str, Any], id_: str) -> None:
    *parents, last = id_.split(ID_SEP)
    node = _walk(config, parents, id_)
    _walk(node, [last], id_)
    del node[int(last) if isinstance(node, list) else last]


def render(template: str, overrides: Optional[Mapping[str, Any]] = None, remove: Iterable[str] = ()) -> Dict[str, Any]:
    """The config ``template`` with the ids in ``remove`` deleted, then ``overrides`` applied in order."""
    config = load_template(template)
    for id_ in remove:
        _remove(config, id_)
    for id_, value in (overrides or {}).items():
        _set(config, id_, value)
    return config


def dumps(config: Mapping[str, Any]) -> str:
    """The text a rendered config file holds (4-space JSON, trailing newline)."""
    return json.dumps(config, indent=4) + "\n"


def declared(bundle: PathLike) -> Dict[str, Dict[str, Any]]:
    """A bundle's ``configs/template.json``: config file name -> {template, overrides, remove}."""
    path = Path(bundle) / TEMPLATE_FILE
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise ZooError(f"{path} not found: this bundle declares no templates.") from None
    except json.JSONDecodeError as error:
        raise ZooError(f"{path} is not valid JSON ({error}); fix it.") from None
    for name, entry in spec.items():
        if not isinstance(entry, dict) or "template" not in entry:
            raise ZooError(f"{path} ${name}: expected {{\"template\": NAME, \"overrides\": {{...}}}}.")
        unknown = set(entry) - {"template", "overrides", "remove"}
        if unknown:
            raise ZooError(f"{path} ${name}: unknown keys {sorted(unknown)}; allowed: template, overrides, remove.")
    return spec


def rendered_configs(bundle: PathLike) -> Dict[str, str]:
    """Config file name (``inference.json``, ``train.json``) -> the text its template and overrides render to."""
    return {name: dumps(render(entry["template"], entry.get("overrides"), entry.get("remove", ())))
            for name, entry in declared(bundle).items()}


def stale_configs(bundle: PathLike) -> List[str]:
    """Config files of the bundle that differ from their rendering (empty: no drift)."""
    configs = Path(bundle) / "configs"
    return [name for name, text in rendered_configs(bundle).items()
            if not (configs / name).is_file() or (configs / name).read_text() != text]


def render_bundle(bundle: PathLike) -> List[Path]:
    """Write the bundle's rendered configs into ``configs/``; returns the files that changed."""
    configs = Path(bundle) / "configs"
    changed = []
    for name, text in rendered_configs(bundle).items():
        path = configs / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed
