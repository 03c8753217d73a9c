"""``medigan-zoo validate``: check a bundle against docs/bundle_contract.md, offline.

Every problem names its file, JSON path and a fix. MONAI's own ``verify_metadata`` downloads its
schema URL; this check needs no network.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

from medigan_zoo.core.errors import MetadataError
from medigan_zoo.core.jsonio import load_json
from medigan_zoo.catalog.fields import SHIPPED_FIELDS
from medigan_zoo.catalog.model_info import ZOO_KEY
from medigan_zoo.catalog.schema import ZOO_BLOCK_SCHEMA, schema_problems

REQUIRED_FILES = ("configs/metadata.json", "configs/inference.json", "configs/logging.conf",
                  "models/model.pt", "docs/README.md", "LICENSE")
MONAI_KEYS = ("version", "changelog", "monai_version", "pytorch_version", "name", "task", "description",
              "authors", "copyright", "intended_use", "data_source", "data_type", "network_data_format")
STANDARD_IDS = ("bundle_root", "device", "num_samples", "batch_size", "seed", "output_dir", "output_ext",
                "network_def", "network", "ckpt_path", "sampler")
#: a feature-extractor bundle (zoo role "feature_extractor") generates nothing
EXTRACTOR_IDS = ("bundle_root", "device", "network_def", "network", "ckpt_path")
#: zoo fields a shipped bundle must fill (the schema alone also admits partial catalog entries)
BUNDLE_ZOO_FIELDS = SHIPPED_FIELDS  # the field table's "shipped" rows (medigan_zoo/catalog/fields.py)


@dataclass(frozen=True)
class Problem:
    """One contract violation."""

    file: str
    json_path: str
    message: str
    hint: str = ""
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = f"{self.file} {self.json_path}".strip()
        hint = f" -> {self.hint}" if self.hint else ""
        return f"{self.severity.upper()}: {where}: {self.message}{hint}"


def validate_bundle(bundle_dir: Path) -> List[Problem]:
    """All problems of one bundle (empty list: valid). Warnings do not make a bundle invalid."""
    bundle_dir = Path(bundle_dir)
    problems: List[Problem] = []
    if not bundle_dir.is_dir():
        return [Problem(str(bundle_dir), "", "not a folder", "pass the bundle's root folder")]
    for rel in REQUIRED_FILES:
        if not (bundle_dir / rel).is_file():
            problems.append(Problem(rel, "", "required file is missing", "see docs/bundle_contract.md section 1"))
    if not (bundle_dir / "models" / "model.ts").is_file():
        problems.append(Problem("models/model.ts", "", "no TorchScript export",
                                "export with `python -m monai.bundle ckpt_export` where the network allows it",
                                severity="warning"))
    metadata = _load(bundle_dir, "configs/metadata.json", problems)
    if isinstance(metadata, dict):
        problems += _check_metadata(metadata)
    inference = bundle_dir / "configs" / "inference.json"
    if inference.is_file() and _load(bundle_dir, "configs/inference.json", problems) is not None:
        problems += _check_inference(bundle_dir, metadata if isinstance(metadata, dict) else {})
    return problems


def _load(bundle_dir: Path, rel: str, problems: List[Problem]) -> Any:
    path = bundle_dir / rel
    if not path.is_file():
        return None
    try:
        return load_json(path)
    except MetadataError as err:
        problems.append(Problem(rel, "$", str(err).split(": ", 1)[-1], "fix the JSON syntax"))
        return None


def _check_metadata(metadata: Dict[str, Any]) -> List[Problem]:
    rel = "configs/metadata.json"
    out: List[Problem] = []
    for key in MONAI_KEYS:
        if key not in metadata:
            out.append(Problem(rel, f"$.{key}", "MONAI metadata key is missing", "add it (MONAI bundle spec)"))
    version, changelog = metadata.get("version"), metadata.get("changelog")
    if version is not None and isinstance(changelog, dict) and str(version) not in changelog:
        out.append(Problem(rel, "$.changelog", f"version {version} has no changelog entry",
                           f'add "{version}": "what changed" to changelog'))
    zoo = metadata.get(ZOO_KEY)
    if zoo is None:
        out.append(Problem(rel, f"$.{ZOO_KEY}", "no zoo block (a foreign bundle: indexable, but not a zoo bundle)",
                           "add the block described in docs/bundle_contract.md section 2"))
        return out
    for path, message in schema_problems(zoo, ZOO_BLOCK_SCHEMA, prefix=[ZOO_KEY]):
        out.append(Problem(rel, path, message, f"see schemas/{ZOO_BLOCK_SCHEMA}"))
    if isinstance(zoo, dict):
        for key in BUNDLE_ZOO_FIELDS:
            if key not in zoo:
                out.append(Problem(rel, f"$.{ZOO_KEY}.{key}", "zoo field is missing", "fill it in honestly"))
        pred = ((metadata.get("network_data_format") or {}).get("outputs") or {}).get("pred") or {}
        if zoo.get("role", "generator") == "generator" and pred.get("spatial_shape") and zoo.get("spatial_shape") and \
                list(pred["spatial_shape"]) != list(zoo["spatial_shape"]):
            out.append(Problem(rel, f"$.{ZOO_KEY}.spatial_shape",
                               f"{zoo['spatial_shape']} differs from network_data_format.outputs.pred.spatial_shape "
                               f"{pred['spatial_shape']}", "make them agree"))
    return out


def _check_inference(bundle_dir: Path, metadata: Dict[str, Any]) -> List[Problem]:
    rel = "configs/inference.json"
    out: List[Problem] = []
    from monai.bundle import ConfigParser  # lazy: validate is not on the search path

    parser = ConfigParser()
    try:
        with warnings.catch_warnings():  # MONAI warns about the older optional_packages_version key
            warnings.filterwarnings("ignore", message=".*optional_packages_version.*")
            parser.read_config(str(bundle_dir / "configs" / "inference.json"))
            parser.read_meta(str(bundle_dir / "configs" / "metadata.json"))
            parser["bundle_root"] = str(bundle_dir)
            parser["device"] = "$torch.device('cpu')"
            parser.parse(reset=True)
    except Exception as err:  # noqa: BLE001 - any parse failure is a problem to report
        return [Problem(rel, "$", f"does not parse with monai.bundle.ConfigParser: {err}", "fix the config")]
    zoo = metadata.get(ZOO_KEY) or {}
    required = EXTRACTOR_IDS if zoo.get("role") == "feature_extractor" else STANDARD_IDS
    for key in required + tuple(zoo.get("condition") or {}):
        if key not in parser:
            out.append(Problem(rel, f"$.{key}", "standard id is missing",
                               "declare it (docs/bundle_contract.md section 3)"))
    for key, spec in (zoo.get("options") or {}).items():
        if key not in parser:
            out.append(Problem(rel, f"$.{key}", f"sampling option {key!r} of the zoo block is not an id here",
                               "declare it in inference.json or remove it from medigan_zoo.options"))
        elif isinstance(spec, dict) and "default" in spec and parser.get(key) != spec["default"]:
            out.append(Problem(rel, f"$.{key}", f"is {parser.get(key)!r} but medigan_zoo.options.{key}.default "
                               f"says {spec['default']!r}", "make them agree"))
    weights = bundle_dir / "models" / "model.pt"
    if not weights.is_file():
        return out
    import torch

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        return out + [Problem("models/model.pt", "", f"does not load with torch.load(weights_only=True): {err}",
                              "save a plain state dict: torch.save(network.state_dict(), path)")]
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if "network_def" in parser:
        try:
            network = parser.get_parsed_content("network_def")
            network.load_state_dict(state)
        except Exception as err:  # noqa: BLE001
            out.append(Problem("models/model.pt", "", f"weights do not fit network_def: {err}",
                               "retrain or fix network_def in inference.json"))
    return out
