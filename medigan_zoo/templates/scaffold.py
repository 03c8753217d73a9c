"""A new bundle from the templates (the zoo's counterpart of ``monai.bundle.init_bundle``): its folder layout,
``configs/template.json`` and the configs it renders to, MONAI's ``logging.conf``, ``metadata.json``, a model card
stub and the license text. The weights (``models/model.pt``) are the author's: train with the rendered
``train.json`` or copy a state dict there, then ``medigan-zoo validate`` the folder. Torch-free."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping, Union

from medigan_zoo.core.errors import ZooError
from medigan_zoo.templates.render import TEMPLATE_FILE, TEMPLATES_DIR, declared, render_bundle

PathLike = Union[str, Path]

CARD = """# {name}

{description}

## How to run

```bash
python -m monai.bundle run inferring --config_file {root}/configs/inference.json \\
    --meta_file {root}/configs/metadata.json --logging_file {root}/configs/logging.conf --bundle_root {root}
```
"""


def new_bundle(dest: PathLike, templates: Mapping[str, Mapping[str, Any]], metadata: Mapping[str, Any],
               license_text: str) -> Path:
    """Create the bundle folder ``dest`` (it must not exist yet) and return it.

    ``templates`` is what ``configs/template.json`` will hold (config file name -> ``{"template": NAME,
    "overrides": {...}, "remove": [...]}``); ``metadata`` is the full ``configs/metadata.json`` (MONAI keys and
    the ``medigan_zoo`` block); ``license_text`` goes to ``LICENSE``.
    """
    dest = Path(dest)
    if dest.exists():
        raise ZooError(f"{dest} already exists; pass a new folder for the bundle.")
    (dest / "configs").mkdir(parents=True)
    (dest / "models").mkdir()
    (dest / "docs").mkdir()
    (dest / TEMPLATE_FILE).write_text(json.dumps(dict(templates), indent=4) + "\n")
    declared(dest)  # checks the declaration before anything is rendered
    render_bundle(dest)
    (dest / "configs" / "logging.conf").write_text((TEMPLATES_DIR / "logging.conf").read_text())
    (dest / "configs" / "metadata.json").write_text(json.dumps(dict(metadata), indent=4) + "\n")
    (dest / "LICENSE").write_text(license_text)
    card: Dict[str, str] = {"name": str(metadata.get("name", dest.name)),
                            "description": str(metadata.get("description", "")), "root": str(dest)}
    (dest / "docs" / "README.md").write_text(CARD.format(**card))
    return dest
