"""Read a MONAI bundle folder into a ModelInfo (zoo bundles and foreign bundles alike)."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from medigan_zoo.catalog.fields import ALWAYS, ZOO_BLOCK_FIELDS
from medigan_zoo.catalog.foreign import OWN_WORKFLOW
from medigan_zoo.catalog.licenses import LicenseTerms, license_from_text, license_id, license_terms
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
        verdict = None
    else:
        from medigan_zoo.catalog.foreign import assess

        verdict = assess(bundle_dir, metadata)
        zoo, missing = derive_zoo_block(metadata, bundle_dir, verdict)
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
        runnable=verdict.as_dict() if verdict is not None else None,
        licenses=bundle_license_terms(metadata, bundle_dir).as_dict() if verdict is not None else None,
    )


def _text(path: Path, limit: int = 200_000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:limit] if path.is_file() else ""
    except OSError:
        return ""


def bundle_license_terms(metadata: Mapping[str, Any], bundle_dir: Path) -> LicenseTerms:
    """The licenses of a foreign bundle's code, weights and data, from its metadata, LICENSE and docs/README.md
    (:func:`medigan_zoo.catalog.licenses.license_terms`)."""
    return license_terms(metadata, _text(bundle_dir / "LICENSE"), _text(bundle_dir / "docs" / "README.md"))


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
    """Parse every ``configs/*.json|yaml|yml`` of a bundle before monai.bundle reads them, so that a malformed
    config is one error naming the file and line (MONAI's own reader would raise a traceback). YAML configs are
    read as MONAI reads them (a bundle may have ``inference.yaml`` instead of ``inference.json``)."""
    from medigan_zoo.catalog.foreign import read_config

    configs = Path(bundle_dir) / "configs"
    try:
        names = sorted(p.name for p in configs.iterdir() if p.suffix.lower() in (".json", ".yaml", ".yml"))
    except OSError as err:
        raise MetadataError(f"cannot list the bundle's configs: {err.strerror or err}", file=configs) from None
    for name in names:
        path = own_file(Path(bundle_dir).resolve(), f"configs/{name}")
        if path.suffix.lower() == ".json":
            load_json(path, "bundle config")
        else:
            read_config(path)


def _output_format(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    outputs = (metadata.get("network_data_format") or {}).get("outputs") or {}
    return outputs.get("pred") or next(iter(outputs.values()), {})


def _first_match(text: str, table: Tuple[Tuple[str, str], ...]) -> str:
    for needle, value in table:
        if re.search(rf"(?<![a-z]){re.escape(needle)}", text):
            return value
    return ""


#: the note on metrics a bundle reports itself (MONAI metadata ``eval_metrics``)
REPORTED_NOTE = "reported by the bundle, not measured by the zoo"


def _spatial_dims(bundle_dir: Path, verdict: Any) -> Optional[int]:
    """``spatial_dims`` (or ``dimensions``) of the bundle's network as its config states it (read as data)."""
    from medigan_zoo.catalog.foreign import inference_config, read_config

    config_path = inference_config(bundle_dir)
    if config_path is None:
        return None
    try:
        config = read_config(config_path)
    except MetadataError:
        return None
    ids = dict(getattr(verdict, "ids", {}) or {})
    for key in (ids.get("network_def"), "network_def", "network", "generator_def"):
        value = config.get(key) if key else None
        if isinstance(value, Mapping):
            dims = value.get("spatial_dims", value.get("dimensions"))
            if isinstance(dims, int) and dims in (2, 3):
                return dims
    return None


def shape_and_channels(out: Mapping[str, Any], spatial_dims: Optional[int]) -> Tuple[List[int], Optional[int]]:
    """``(spatial shape in MONAI order, channels)`` of an output description; a leading channel axis in
    ``spatial_shape`` (MedNIST DDPM's ``[1, 64, 64]`` with ``num_channels`` 1) is a channel, never a dimension.

    The channel axis is recognised when the network's ``spatial_dims`` is one less than the shape's length, or, with
    ``spatial_dims`` unknown, when a 3-entry shape starts with ``num_channels`` (at most 4) before two larger sizes."""
    shape = [int(s) for s in out.get("spatial_shape") or [] if isinstance(s, (int, float)) and not isinstance(s, bool)]
    channels = int(out["num_channels"]) if isinstance(out.get("num_channels"), int) and out["num_channels"] > 0 \
        else None
    leading_channel = False
    if spatial_dims is not None:
        leading_channel = len(shape) == spatial_dims + 1 and (channels is None or shape[0] == channels)
    elif len(shape) == 3 and channels is not None and shape[0] == channels <= 4 < min(shape[1:]):
        leading_channel = True
    if leading_channel:
        channels = channels or shape[0]
        shape = shape[1:]
    return shape, channels


def reported_metrics(metadata: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """MONAI's ``eval_metrics`` as zoo metrics (numbers only), each noted as reported by the bundle."""
    from medigan_zoo.catalog.metrics import flatten_metrics, metric_direction

    out = []
    for name, value in flatten_metrics(metadata.get("eval_metrics") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append({"name": name, "value": float(value), "direction": metric_direction(name),
                        "note": REPORTED_NOTE})
    return out


def _ddpm_options(bundle_dir: Path, verdict: Any) -> Dict[str, Any]:
    """``{"options": {"num_inference_steps": ...}}`` of a DDPM bundle (default: what the bundle runs)."""
    from medigan_zoo.catalog.foreign import ddpm_steps, read_config

    try:
        steps = ddpm_steps(read_config(bundle_dir / str(verdict.config)), verdict.ids)
    except MetadataError:
        return {}
    if steps is None:
        return {}
    default, train = steps
    return {"options": {"num_inference_steps": {
        "type": "integer", "default": default, "minimum": 1, "maximum": train,
        "description": f"denoising steps of the bundle's scheduler (the bundle runs {default}; fewer: faster, "
                       "coarser)"}}}


def _literal(config: Mapping[str, Any], value: Any) -> Any:
    """``value`` with ``@id`` references to plain values followed (a few levels)."""
    for _ in range(3):
        if isinstance(value, str) and re.fullmatch(r"@\w+", value):
            value = config.get(value[1:])
    return value


def _latent_layout(bundle_dir: Path, verdict: Any) -> Dict[str, Any]:
    """What a latent diffusion config tells, read as data: the *decoded* image's shape (the latent's spatial shape
    times the autoencoder's downsampling, 2 per level after the first) and channels (the autoencoder's
    ``out_channels``), ``num_inference_steps`` (default: what the bundle's ``set_timesteps`` runs), and its
    conditions (continuous, in [0, 1] as the bundle takes them; described by the metadata's ``channel_def``)."""
    from medigan_zoo.catalog.foreign import read_config

    try:
        config = read_config(bundle_dir / str(verdict.config))
    except MetadataError:
        return {}
    ids = verdict.ids
    found: Dict[str, Any] = {}
    auto = config.get(ids.get("autoencoder_def") or "")
    auto = auto if isinstance(auto, Mapping) else {}
    levels = _literal(config, auto.get("channels", auto.get("num_channels")))
    noise = str(config.get(ids.get("noise") or "") or "")
    shape_id = ids.get("latent_shape") or "latent_shape"
    latent = config.get(shape_id) if f"@{shape_id}" in noise else None  # [C, x, y] (2D LDM) ...
    if isinstance(latent, list):
        sizes = [_literal(config, v) for v in latent[1:]]
    else:
        # ... or the literal shape of torch.randn((1, C, x, y, z)) (3D LDM)
        numbers = [int(n) for n in re.findall(r"\d+", noise.split("randn", 1)[-1].split(")")[0])]
        sizes = numbers[2:] if len(numbers) >= 4 else []
    if isinstance(levels, list) and levels and sizes and all(isinstance(v, int) for v in sizes):
        factor = 2 ** (len(levels) - 1)
        found["spatial_shape"] = [int(v) * factor for v in sizes][::-1]  # MONAI's (x, y[, z]) -> display order
    channels = _literal(config, auto.get("out_channels"))
    if isinstance(channels, int) and channels > 0:
        found["num_channels"] = channels
    scheduler = config.get(ids.get("scheduler") or "")
    train = _literal(config, scheduler.get("num_train_timesteps", 1000)) if isinstance(scheduler, Mapping) else None
    runs = re.search(r"num_inference_steps\s*=\s*(\d+)", str(config.get("set_timesteps", "")))
    if isinstance(train, int) and train > 0:
        default = int(runs.group(1)) if runs and 1 <= int(runs.group(1)) <= train else train
        found["options"] = {"num_inference_steps": {
            "type": "integer", "default": default, "minimum": 1, "maximum": train,
            "description": f"denoising steps of the bundle's scheduler (the bundle runs {default}; fewer: faster, "
                           "coarser)"}}
    names = [c for c in str(ids.get("conditions") or "").split(",") if c]
    if names:
        first: Any = next(iter(_inputs_of(bundle_dir).values()), {})
        defs = first.get("channel_def") if isinstance(first, Mapping) else None
        desc = {i: str(v) for i, v in enumerate(defs.values())} if isinstance(defs, Mapping) else {}
        found["condition"] = {name: {
            "type": "continuous", "default": float(config[name]), "minimum": 0.0, "maximum": 1.0,
            "description": f"{desc.get(i, name)}: a number in [0, 1], as the bundle's `{ids.get('conditioning')}` "
                           f"takes it (entry {i} of its conditioning vector)"}
            for i, name in enumerate(names)}
    return found


def _inputs_of(bundle_dir: Path) -> Dict[str, Any]:
    """``network_data_format.inputs`` of the bundle's metadata ({} when unreadable)."""
    try:
        meta = json.loads((bundle_dir / "configs" / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    inputs = (meta.get("network_data_format") or {}).get("inputs")
    return dict(inputs) if isinstance(inputs, Mapping) else {}


def derive_zoo_block(metadata: Mapping[str, Any], bundle_dir: Path, verdict: Any = None
                     ) -> Tuple[Dict[str, Any], Tuple[str, ...]]:
    """What the zoo can tell about a bundle without a zoo block, and which zoo fields stay unknown.

    Read from MONAI's metadata: spatial_shape and num_channels (network_data_format.outputs; a channel axis in
    spatial_shape counts as channels, :func:`shape_and_channels`), modality and architecture (words of
    name/task/description), generates (task), license (the LICENSE file, else metadata's "license"), metrics
    (``eval_metrics``, noted :data:`REPORTED_NOTE`). ``verdict`` (:func:`medigan_zoo.catalog.foreign.assess`) adds
    what the config tells: a DDPM's ``num_inference_steps`` as a sampling option. A foreign bundle takes no zoo
    conditions (condition {} counts as known). Every other required field gets its placeholder from the field table
    (modality ["OT"], architecture/license "unknown", ...).
    """
    out = _output_format(metadata)
    text = " ".join([str(metadata.get(k, "")) for k in ("name", "task", "description", "intended_use", "data_source")]
                    + [str(out.get("modality") or "")])
    found: Dict[str, Any] = {"condition": {}}
    shape, channels = shape_and_channels(out, _spatial_dims(bundle_dir, verdict))
    if len(shape) in (2, 3):
        found["spatial_shape"] = shape[::-1]  # MONAI's (x, y[, z]) -> the zoo's display order [[D,] H, W]
    if channels:
        found["num_channels"] = channels
    metrics = reported_metrics(metadata)
    if metrics:
        found["metrics"] = metrics
    own = verdict is not None and verdict.route == OWN_WORKFLOW  # its workflow takes no zoo options/conditions
    if verdict is not None and verdict.family == "ddpm" and not own:
        found.update(_ddpm_options(bundle_dir, verdict))
    if verdict is not None and verdict.family == "latent_diffusion":
        layout = _latent_layout(bundle_dir, verdict)
        found.update({k: v for k, v in layout.items() if not (own and k in ("options", "condition"))})
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
    weights = bundle_license_terms(metadata, bundle_dir).weights
    if weights != "unknown":  # the weights' own license, where the bundle states one apart from the code's
        found["license"] = weights
    if metadata.get("task"):
        found["generates"] = [str(metadata["task"])]
    if verdict is not None and verdict.family == "ddpm" and "architecture" not in found:
        found["architecture"] = "DDPM"
    if verdict is not None and verdict.family == "latent_diffusion":
        found["architecture"] = "latent diffusion model"
    found = {k: v for k, v in found.items() if v or k == "condition"}
    zoo: Dict[str, Any] = {}
    for field in ZOO_BLOCK_FIELDS:
        if field.name in found:
            zoo[field.name] = found[field.name]
        elif field.required == ALWAYS and field.unknown is not None:
            zoo[field.name] = copy.deepcopy(field.unknown)
    missing = tuple(f for f in ZOO_FIELDS if f not in found)
    return zoo, missing
