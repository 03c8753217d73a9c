"""The zoo's bundle contract as MONAI properties files (the generator counterpart of MONAI's ``InferProperties``).

``generator_properties.json`` and ``feature_extractor_properties.json`` beside this module are in the format of
``monai.bundle.ConfigWorkflow(properties_path=...)``: ``{"infer": {name: {description, required, id}}, "meta":
{...}}``. They are the one home of the ids a zoo bundle's ``inference.json`` declares and of the MONAI metadata keys
its ``metadata.json`` must have; :func:`contract_table` renders the table of docs/bundle_contract.md section 3 from
them (tests/test_runtime.py checks that the document is up to date). Reading them needs neither torch nor monai.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Mapping

ROLES = ("generator", "feature_extractor")
_HERE = Path(__file__).resolve().parent


def properties_file(role: str = "generator") -> Path:
    """The properties file of bundles of ``role`` ("generator" or "feature_extractor")."""
    if role not in ROLES:
        raise ValueError(f"unknown bundle role {role!r}; known: {', '.join(ROLES)}")
    return _HERE / f"{role}_properties.json"


@lru_cache(maxsize=None)
def properties(role: str = "generator") -> Mapping[str, Mapping[str, Mapping[str, object]]]:
    """``{"infer": {...}, "meta": {...}}`` of ``role``."""
    return json.loads(properties_file(role).read_text())


def required_ids(role: str = "generator") -> List[str]:
    """Config ids a zoo bundle of ``role`` must declare in its inference config, in contract order."""
    return [str(p["id"]) for p in properties(role)["infer"].values() if p.get("required")]


def required_meta_keys(role: str = "generator") -> List[str]:
    """MONAI metadata keys a zoo bundle must have (``_meta_#version`` -> ``version``)."""
    return [str(p["id"]).split("#", 1)[1] for p in properties(role)["meta"].values() if p.get("required")]


def contract_table(role: str = "generator") -> str:
    """The markdown table of the inference ids of ``role`` (docs/bundle_contract.md section 3)."""
    rows: Dict[str, str] = {str(p["id"]): str(p["description"]) for p in properties(role)["infer"].values()}
    lines = ["| id | meaning |", "|---|---|"] + [f"| `{k}` | {v} |" for k, v in rows.items()]
    if role == "generator":
        lines += ["| one id per condition | e.g. `class_label`, named as in the zoo block's `condition` |",
                  "| one id per sampling option | e.g. `num_inference_steps`, named as in the zoo block's `options` |"]
    return "\n".join(lines)
