"""``medigan-zoo init NAME --template cgan|wgan_gp|ddpm [--from BUNDLE]``: a new bundle folder that passes
``validate``, ready for ``medigan-zoo train``.

The bundle is written by :func:`medigan_zoo.templates.new_bundle` (``configs/template.json`` and the configs it
renders to, ``logging.conf``, ``metadata.json``, card, license). Its template declaration and metadata start from a
bundle: ``--from BUNDLE`` (any zoo bundle with ``configs/template.json``), else the shipped bundle of that template
family (:data:`STARTING_POINTS`). What belongs to that bundle is reset: version 0.1.0 with a changelog entry, the
name, description, alias, metrics (none: nothing measured yet), the training data set's name. ``models/model.pt``
holds the network's initial weights (``network_def`` built with torch seed 0, untrained) and ``models/model.ts`` their
TorchScript export, so the folder validates and runs before it is trained; ``medigan-zoo train`` replaces both.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from medigan_zoo.core.errors import ZooError

PathLike = Union[str, Path]

#: template family -> the train.json template it renders
TEMPLATES = {"cgan": "cdcgan_train", "wgan_gp": "wgangp_train", "ddpm": "ddpm_train"}
#: template family -> the shipped bundle whose declaration and metadata a new bundle starts from
STARTING_POINTS = {"cgan": "chest_xray_cdcgan", "wgan_gp": "breast_ultrasound_wgangp", "ddpm": "chest_xray_ddpm"}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
FIRST_VERSION = "0.1.0"


@dataclass
class InitResult:
    bundle: Path
    template: str
    started_from: Path

    def lines(self) -> List[str]:
        return [f"bundle {self.bundle.name} created in {self.bundle} from template {self.template} "
                f"(configs and metadata of {self.started_from.name}; initial untrained weights)",
                f"next: medigan-zoo --trust {self.bundle.parent} train {self.bundle} --data DATASET"]


def _starting_point(template: str, from_bundle: Optional[PathLike]) -> Path:
    from medigan_zoo.core.paths import builtin_bundles_root
    from medigan_zoo.templates import TEMPLATE_FILE, declared

    default = builtin_bundles_root() / STARTING_POINTS[template]
    src = Path(from_bundle).expanduser().resolve() if from_bundle else default
    if not (src / TEMPLATE_FILE).is_file():
        raise ZooError(f"--from {src}: it has no {TEMPLATE_FILE}; start from a zoo bundle made from the templates "
                       f"(e.g. {', '.join(STARTING_POINTS.values())}).")
    train = declared(src).get("train.json", {}).get("template")
    if train != TEMPLATES[template]:
        raise ZooError(f"--from {src.name}: its train.json comes from template {train!r}, not {TEMPLATES[template]!r} "
                       f"(--template {template}); pick a matching --template or bundle.")
    return src


def _metadata(src: Path, name: str, template: str, dataset: Optional[str]) -> Dict[str, Any]:
    metadata = json.loads((src / "configs" / "metadata.json").read_text())
    src_version = metadata.get("version", "")
    zoo = dict(metadata.get("medigan_zoo") or {})
    zoo.pop("alias", None)
    zoo["metrics"] = []
    if dataset:
        zoo["dataset"] = [dataset]
        zoo["dataset_type"] = "private"
    metadata["medigan_zoo"] = zoo
    metadata["version"] = FIRST_VERSION
    metadata["changelog"] = {FIRST_VERSION: f"created with `medigan-zoo init {name} --template {template}` from "
                                            f"{src.name} {src_version}; not trained yet"}
    metadata["name"] = name
    metadata["description"] = (f"{name}: a {zoo.get('architecture', template)} bundle made with medigan-zoo init "
                               f"(template {template}, configs of {src.name}); describe your model and its data here.")
    metadata["authors"] = "the authors of this bundle"
    return metadata


def _write_initial_weights(bundle: Path) -> Path:
    """``models/model.pt``: the state dict of ``network_def`` built with torch seed 0 (untrained)."""
    import torch
    from monai.bundle import ConfigParser

    from medigan_zoo.runtime.imports import bundle_on_sys_path
    from medigan_zoo.training.weights import save_state_dict

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser["bundle_root"] = str(bundle)
    with bundle_on_sys_path(bundle):
        torch.manual_seed(0)
        network = parser.get_parsed_content("network_def")
    return save_state_dict(network, bundle / "models" / "model.pt")


def init_bundle(name: str, template: str = "cgan", from_bundle: Optional[PathLike] = None,
                output: Optional[PathLike] = None, dataset: Optional[str] = None) -> InitResult:
    """Create the bundle ``name`` (folder ``output``, default ``./NAME``) from ``template`` (cgan, wgan_gp, ddpm),
    starting from ``from_bundle``'s template declaration and metadata (default: the shipped bundle of the family).
    ``dataset`` names its training data set in the zoo block. The folder must not exist."""
    from medigan_zoo.templates import TEMPLATE_FILE, new_bundle

    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ZooError(f"init: bundle name {name!r} must be 2-64 lower-case letters, digits and _, starting with a "
                       "letter (it becomes the model id), e.g. `medigan-zoo init my_cxr_gan --template cgan`.")
    if template not in TEMPLATES:
        raise ZooError(f"init: --template {template!r} is not one of {', '.join(TEMPLATES)}.")
    src = _starting_point(template, from_bundle)
    dest = Path(output).expanduser().resolve() if output else Path.cwd() / name
    declaration = json.loads((src / TEMPLATE_FILE).read_text())
    license_file = src / "LICENSE"
    license_text = license_file.read_text() if license_file.is_file() else ""
    new_bundle(dest, declaration, _metadata(src, name, template, dataset), license_text)
    _write_initial_weights(dest)
    from medigan_zoo.runtime.export import export_torchscript

    export_torchscript(dest, trusted=[dest])  # the bundle's own configs, just written from the zoo's templates
    return InitResult(bundle=dest, template=template, started_from=src)
