"""Read a MONAI bundle folder into a ModelInfo (zoo bundles and foreign bundles alike)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

from medigan_zoo.core.errors import MetadataError
from medigan_zoo.query import vocabulary
from medigan_zoo.core.jsonio import load_json
from medigan_zoo.medigan.config_view import to_medigan_config
from medigan_zoo.catalog.model_info import ZOO_FIELDS, ZOO_KEY, ModelInfo
from medigan_zoo.catalog.schema import ZOO_BLOCK_SCHEMA, check_schema

_ARCHITECTURES = (
    ("wgan-gp", "WGAN-GP"), ("wgan", "WGAN"), ("dcgan", "DCGAN"), ("cyclegan", "CycleGAN"),
    ("pix2pix", "pix2pix"), ("stylegan", "StyleGAN"), ("ddpm", "DDPM"), ("ddim", "DDIM"),
    ("diffusion", "diffusion model"), ("autoencoder", "autoencoder"), ("vae", "VAE"), ("gan", "GAN"),
)
_LICENSES = (
    ("apache license", "Apache-2.0"), ("mit license", "MIT"), ("attribution-noncommercial 4.0", "CC-BY-NC-4.0"),
    ("attribution-noncommercial", "CC-BY-NC-4.0"), ("attribution 4.0", "CC-BY-4.0"),
    ("attribution 3.0", "CC-BY-3.0"), ("bsd", "BSD-3-Clause"), ("cc0", "CC0-1.0"),
)


def read_bundle(bundle_dir: Path) -> ModelInfo:
    """Index one bundle. Zoo bundles are schema-checked; foreign bundles get a derived zoo block."""
    bundle_dir = Path(bundle_dir).resolve()
    meta_file = own_file(bundle_dir, "configs/metadata.json")
    metadata = load_json(meta_file, "bundle metadata")
    if not isinstance(metadata, dict):
        raise MetadataError("metadata must be a JSON object", file=meta_file, json_path="$")
    zoo = metadata.get(ZOO_KEY)
    if zoo is not None:
        check_schema(zoo, ZOO_BLOCK_SCHEMA, meta_file, prefix=[ZOO_KEY])
        missing = tuple(f for f in ZOO_FIELDS if f not in zoo)
    else:
        zoo, missing = derive_zoo_block(metadata, bundle_dir)
    model_id = bundle_dir.name
    name = str(metadata.get("name") or model_id)
    version = str(metadata.get("version") or "0.0.0")
    description = str(metadata.get("description") or metadata.get("task") or "")
    return ModelInfo(
        id=model_id,
        name=name,
        version=version,
        description=description,
        source="bundle",
        zoo=zoo,
        monai_metadata=metadata,
        medigan_config=to_medigan_config(model_id, zoo, name, version, description, str(bundle_dir)),
        bundle_dir=bundle_dir,
        origin=meta_file,
        missing_zoo_fields=missing,
    )


def own_file(bundle_dir: Path, relative: str) -> Path:
    """``bundle_dir / relative``, refused (MetadataError) when it is a link to a file outside the bundle: a bundle
    whose metadata or config is another bundle's file would claim that bundle's identity or code."""
    path = bundle_dir / relative
    try:
        target = path.resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop
        raise MetadataError(f"cannot resolve {relative}: {err}", file=path) from None
    if target != path and not target.is_relative_to(bundle_dir.resolve()):
        raise MetadataError(f"{relative} is a link to {target}, outside the bundle folder", file=path,
                            hint="copy the file into the bundle instead of linking it")
    return path


def check_config_json(bundle_dir: Path) -> None:
    """Parse every ``configs/*.json`` of a bundle with ``load_json`` before monai.bundle reads them, so that a
    malformed config is one error naming the file and line (MONAI's own reader would raise a traceback)."""
    configs = Path(bundle_dir) / "configs"
    try:
        names = sorted(p.name for p in configs.iterdir() if p.suffix == ".json")
    except OSError as err:
        raise MetadataError(f"cannot list the bundle's configs: {err.strerror or err}", file=configs) from None
    for name in names:
        load_json(own_file(Path(bundle_dir).resolve(), f"configs/{name}"), "bundle config")


def _output_format(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    outputs = (metadata.get("network_data_format") or {}).get("outputs") or {}
    return outputs.get("pred") or next(iter(outputs.values()), {})


def _first_match(text: str, table: Tuple[Tuple[str, str], ...]) -> str:
    for needle, value in table:
        if re.search(rf"(?<![a-z]){re.escape(needle)}", text):
            return value
    return ""


def derive_zoo_block(metadata: Mapping[str, Any], bundle_dir: Path) -> Tuple[Dict[str, Any], Tuple[str, ...]]:
    """What the zoo can tell about a bundle without a zoo block, and which zoo fields stay unknown."""
    text = " ".join(str(metadata.get(k, "")) for k in ("name", "task", "description", "intended_use", "data_source"))
    low = text.lower()
    out = _output_format(metadata)
    zoo: Dict[str, Any] = {"condition": {}, "metrics": []}
    derived: List[str] = ["condition"]
    shape = [int(s) for s in out.get("spatial_shape") or [] if isinstance(s, (int, float))]
    if len(shape) in (2, 3):
        zoo["spatial_shape"] = shape
        derived.append("spatial_shape")
    if out.get("num_channels"):
        zoo["num_channels"] = int(out["num_channels"])
        derived.append("num_channels")
    modality = vocabulary.modality_codes([text])
    if modality:
        zoo["modality"] = modality
        derived.append("modality")
    else:
        zoo["modality"] = ["OT"]
    architecture = _first_match(low, _ARCHITECTURES)
    zoo["architecture"] = architecture or "unknown"
    if architecture:
        derived.append("architecture")
    license_file = bundle_dir / "LICENSE"
    license_id = ""
    if license_file.is_file():
        license_id = _first_match(license_file.read_text(encoding="utf-8", errors="replace")[:4000].lower(), _LICENSES)
    zoo["license"] = license_id or str(metadata.get("license") or "unknown")
    if license_id:
        derived.append("license")
    zoo["generates"] = [str(metadata["task"])] if metadata.get("task") else []
    if zoo["generates"]:
        derived.append("generates")
    zoo["anatomy"] = []
    missing = tuple(f for f in ZOO_FIELDS if f not in derived)
    return zoo, missing
