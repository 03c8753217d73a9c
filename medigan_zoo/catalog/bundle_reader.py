"""Read a MONAI bundle folder into a ModelInfo (zoo bundles and foreign bundles alike)."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

from medigan_zoo.catalog.fields import ALWAYS, ZOO_BLOCK_FIELDS
from medigan_zoo.catalog.licenses import license_from_text, license_id
from medigan_zoo.catalog.model_info import ZOO_FIELDS, ZOO_KEY, ModelInfo
from medigan_zoo.catalog.schema import ZOO_BLOCK_SCHEMA, check_schema
from medigan_zoo.core.errors import MetadataError
from medigan_zoo.core.jsonio import load_json
from medigan_zoo.medigan.config_view import to_medigan_config
from medigan_zoo.query import vocabulary

_ARCHITECTURES = (
    ("wgan-gp", "WGAN-GP"), ("wgan", "WGAN"), ("dcgan", "DCGAN"), ("cyclegan", "CycleGAN"),
    ("pix2pix", "pix2pix"), ("stylegan", "StyleGAN"), ("ddpm", "DDPM"), ("ddim", "DDIM"),
    ("diffusion", "diffusion model"), ("autoencoder", "autoencoder"), ("vae", "VAE"), ("gan", "GAN"),
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
    """What the zoo can tell about a bundle without a zoo block, and which zoo fields stay unknown.

    Read from MONAI's metadata: spatial_shape and num_channels (network_data_format.outputs), modality and
    architecture (words of name/task/description), generates (task), license (the LICENSE file, else metadata's
    "license"). A foreign bundle takes no zoo conditions (condition {} counts as known). Every other required
    field gets its placeholder from the field table (modality ["OT"], architecture/license "unknown", ...).
    """
    text = " ".join(str(metadata.get(k, "")) for k in ("name", "task", "description", "intended_use", "data_source"))
    out = _output_format(metadata)
    found: Dict[str, Any] = {"condition": {}}
    shape = [int(s) for s in out.get("spatial_shape") or [] if isinstance(s, (int, float))]
    if len(shape) in (2, 3):
        found["spatial_shape"] = shape[::-1]  # MONAI's (x, y[, z]) -> the zoo's display order [[D,] H, W]
    if out.get("num_channels"):
        found["num_channels"] = int(out["num_channels"])
    modality = vocabulary.modality_codes([text])
    if modality:
        found["modality"] = modality
    architecture = _first_match(text.lower(), _ARCHITECTURES)
    if architecture:
        found["architecture"] = architecture
    license_file = bundle_dir / "LICENSE"
    if license_file.is_file():
        found["license"] = license_from_text(license_file.read_text(encoding="utf-8", errors="replace")[:4000])
    if not found.get("license") and metadata.get("license"):
        found["license"] = license_id(metadata["license"])
    if metadata.get("task"):
        found["generates"] = [str(metadata["task"])]
    found = {k: v for k, v in found.items() if v or k == "condition"}
    zoo: Dict[str, Any] = {}
    for field in ZOO_BLOCK_FIELDS:
        if field.name in found:
            zoo[field.name] = found[field.name]
        elif field.required == ALWAYS and field.unknown is not None:
            zoo[field.name] = copy.deepcopy(field.unknown)
    missing = tuple(f for f in ZOO_FIELDS if f not in found)
    return zoo, missing
