"""What the zoo can do with a bundle it did not write: its inference config, run id, id mapping and family, read
as data (torch-free; nothing is evaluated).

* **Config.** ``configs/inference.json``, ``.yaml`` or ``.yml``, whichever exists (in that order), as MONAI reads them.
* **Mapping file** (docs/foreign_bundles.md). ``medigan_zoo.json`` in the bundle root, or a file the user names,
  maps the zoo's ids to the bundle's: ``{"ids": {"network": "model", "ckpt_path": "checkpoint"}, "run_id": "go"}``.
  Only the ids in :data:`MAPPABLE_IDS` may be mapped; any other key is an error naming the file.
* **Run id** (what ``python -m monai.bundle run ID`` runs): the mapping's ``run_id``; else the first id that the
  bundle's ``docs/README.md`` runs with ``monai.bundle run ID``; else ``inferring``, then ``run``; else the first
  ``testing*`` id whose expressions reach a MONAI image saver (``SaveImage``/``SaveImaged``), else the first
  ``testing*`` id.
* **Route**: the fast path (the families below), else the bundle's own workflow run once per sample
  (:func:`own_workflow`: its run id must save images through MONAI's ``SaveImage``/``SaveImaged``), else none.
* **Family**: how the zoo draws samples from it (:func:`assess`): ``zoo`` (its own ``sampler``), ``gan`` (a
  ``network`` on a latent described in ``network_data_format.inputs``), ``ddpm`` (MONAI's ``DiffusionInferer`` with a
  ``DDPMScheduler``/``DDIMScheduler`` and a ``DiffusionModelUNet``), ``latent_diffusion`` (an ``AutoencoderKL``, a
  ``DiffusionModelUNet``, a DDPM/DDIM scheduler, the latent ``noise`` and both checkpoints:
  :func:`latent_diffusion_family`), or one the zoo cannot run (CUDA-only pieces, anything else), each with the reason.
"""
from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Set, Tuple, Union

from medigan_zoo.core.errors import MetadataError

#: inference configs, in the order they are looked for (relative to the bundle root)
INFERENCE_CONFIGS = ("configs/inference.json", "configs/inference.yaml", "configs/inference.yml")
#: the mapping file a user drops into a bundle's root
MAPPING_FILE = "medigan_zoo.json"
#: zoo ids a mapping file may point at other config ids
MAPPABLE_IDS = ("network", "network_def", "ckpt_path", "num_samples", "noise", "scheduler", "inferer",
                "postprocessing", "output_dir", "seed", "device",
                # latent diffusion (docs/foreign_bundles.md): the networks, their checkpoints, the latent, the decoder's
                # scale and the conditioning vector
                "autoencoder_def", "diffusion_def", "load_autoencoder_path", "load_diffusion_path", "latent_shape",
                "scale_factor", "conditioning")
#: run ids tried (after the mapping and the README) before the ``testing*`` ones
RUN_ID_ORDER = ("inferring", "run")
#: schedulers whose ``step`` takes a ``generator`` (the zoo seeds each sample's step noise)
SEEDABLE_SCHEDULERS = ("DDPMScheduler", "DDIMScheduler")
_SAVERS = ("SaveImage", "SaveImaged")
_REF = re.compile(r"@([A-Za-z_][\w]*)")
_README_RUN = re.compile(r"monai\.bundle\s+run\s+(?:--run_id\s+)?([A-Za-z_]\w*)")
_CKPT_IN_EXPR = re.compile(r"""['"]/?([^'"]+\.(?:pt|pth|ckpt|ts|safetensors))['"]""")
DEFAULT_CKPT = "models/model.pt"


def inference_config(bundle_dir: Union[str, Path]) -> Optional[Path]:
    """The bundle's inference config (``configs/inference.json|yaml|yml``, first that exists), or None."""
    for rel in INFERENCE_CONFIGS:
        path = Path(bundle_dir) / rel
        if path.is_file():
            return path
    return None


def read_config(path: Path) -> Dict[str, Any]:
    """An inference config as plain data.

    Raises:
        MetadataError: unreadable, not JSON/YAML, or not a mapping; one line naming the file (and line).
    """
    from medigan_zoo.catalog.code_scan import load_config_data

    try:
        data = load_config_data(path)
    except Exception as err:  # noqa: BLE001 - json and yaml errors have many types
        first = (str(err).strip().splitlines() or [type(err).__name__])
        raise MetadataError(f"does not parse as {path.suffix.lstrip('.').upper()}: {' '.join(first)[:300]}",
                            file=path, hint="fix the syntax") from None
    if not isinstance(data, dict):
        raise MetadataError(f"holds a {type(data).__name__}, not a mapping of config ids", file=path)
    return data


@dataclass(frozen=True)
class BundleMapping:
    """Zoo id -> the bundle's id, and the run id, from a mapping file (empty when there is none)."""

    ids: Mapping[str, str] = field(default_factory=dict)
    run_id: Optional[str] = None
    source: Optional[Path] = None

    def id(self, zoo_id: str) -> str:
        """The bundle's id for ``zoo_id`` (``zoo_id`` itself when not mapped)."""
        return self.ids.get(zoo_id, zoo_id)


def read_mapping(bundle_dir: Union[str, Path], mapping: Union[None, str, Path] = None) -> BundleMapping:
    """The mapping file ``mapping`` (when given) or ``BUNDLE/medigan_zoo.json`` (when present), checked.

    Raises:
        MetadataError: a named file that is missing, invalid JSON, an unknown key or zoo id, or a non-string value.
    """
    path = Path(mapping).expanduser() if mapping else Path(bundle_dir) / MAPPING_FILE
    if not path.is_file():
        if mapping:
            raise MetadataError("mapping file not found", file=path, hint=f"pass an existing JSON file "
                                f"(docs/foreign_bundles.md) or drop {MAPPING_FILE} into the bundle root")
        return BundleMapping()
    from medigan_zoo.core.jsonio import load_json

    data = load_json(path, "bundle id mapping")
    if not isinstance(data, dict):
        raise MetadataError("a mapping file is a JSON object", file=path, json_path="$")
    unknown = sorted(k for k in data if k not in ("ids", "run_id", "description"))
    if unknown:
        raise MetadataError(f"unknown key {unknown[0]!r}", file=path, json_path=f"$.{unknown[0]}",
                            hint='use "ids", "run_id" and "description" (docs/foreign_bundles.md)')
    ids = data.get("ids") or {}
    if not isinstance(ids, dict):
        raise MetadataError('"ids" must map zoo ids to the bundle\'s ids', file=path, json_path="$.ids")
    for key, value in ids.items():
        if key not in MAPPABLE_IDS:
            raise MetadataError(f"{key!r} is not a zoo id a mapping can set", file=path, json_path=f"$.ids.{key}",
                                hint=f"map one of {', '.join(MAPPABLE_IDS)}")
        if not isinstance(value, str) or not value:
            raise MetadataError("must be the bundle's config id (a string)", file=path, json_path=f"$.ids.{key}")
    run_id = data.get("run_id")
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise MetadataError("must be a config id (a string)", file=path, json_path="$.run_id")
    return BundleMapping(ids=dict(ids), run_id=run_id, source=path)


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _target_name(value: Any) -> str:
    """Last dotted part of a component's ``_target_`` ("" for non-components)."""
    target = value.get("_target_") if isinstance(value, Mapping) else None
    return str(target).rsplit(".", 1)[-1] if isinstance(target, str) else ""


def _refs(value: Any) -> Set[str]:
    """Top-level ids ``value`` references (``@id`` and ``@id#key``)."""
    return {m.group(1) for v in _walk(value) if isinstance(v, str) for m in _REF.finditer(v)}


def _reached(config: Mapping[str, Any], start: str) -> Set[str]:
    """Ids reachable from ``start`` through references (``start`` included)."""
    seen: Set[str] = set()
    todo = [start]
    while todo:
        current = todo.pop()
        if current in seen or current not in config:
            continue
        seen.add(current)
        todo.extend(_refs(config[current]))
    return seen


def _saves_images(config: Mapping[str, Any], run_id: str) -> bool:
    return bool(savers(config, run_id))


def savers(config: Mapping[str, Any], run_id: str) -> Dict[str, Any]:
    """The MONAI image savers (``SaveImage``/``SaveImaged`` components) ``run_id`` reaches: config id -> saver."""
    found: Dict[str, Any] = {}
    for id_ in sorted(_reached(config, run_id)):
        for value in _walk(config[id_]):
            if _target_name(value) in _SAVERS:
                found.setdefault(id_, value)
    return found


def find_run_id(config: Mapping[str, Any], bundle_dir: Union[str, Path],
                mapping: BundleMapping = BundleMapping()) -> Tuple[Optional[str], str]:
    """``(run id, how it was found)`` of a bundle (module docstring), or ``(None, why not)``."""
    if mapping.run_id:
        if mapping.run_id not in config:
            return None, f"the mapping's run_id {mapping.run_id!r} is not an id of the config"
        return mapping.run_id, f"run_id of {mapping.source.name if mapping.source else 'the mapping'}"
    readme = Path(bundle_dir) / "docs" / "README.md"
    if readme.is_file():
        for match in _README_RUN.finditer(readme.read_text(encoding="utf-8", errors="replace")):
            if match.group(1) in config:
                return match.group(1), "the command in docs/README.md"
    for run_id in RUN_ID_ORDER:
        if run_id in config:
            return run_id, "MONAI's convention"
    testing = [k for k in config if str(k).startswith("testing") and isinstance(config[k], (list, str))]
    saving = [k for k in testing if _saves_images(config, k)]
    if saving:
        return saving[0], "the first testing* id that saves images"
    if testing:
        return testing[0], "the first testing* id"
    return None, f"none of {', '.join(RUN_ID_ORDER)}, testing* is in the config"


def ckpt_relative(config: Mapping[str, Any], mapping: BundleMapping = BundleMapping()) -> str:
    """The weights file the config's ``ckpt_path`` names, relative to the bundle (read statically: the quoted
    ``*.pt|pth|ckpt|ts|safetensors`` path of its expression, or its plain value); default ``models/model.pt``."""
    value = config.get(mapping.id("ckpt_path"))
    if isinstance(value, str):
        if not value.startswith("$") and "@" not in value:
            return value[2:] if value.startswith("./") else value
        match = _CKPT_IN_EXPR.search(value)
        if match:
            return match.group(1)
    return DEFAULT_CKPT


LARGE_FILES = ("large_files.yml", "large_files.yaml", "large_files.json")


def large_file_url(bundle_dir: Union[str, Path], relative: str) -> Optional[str]:
    """The download URL the bundle's ``large_files.yml|yaml|json`` gives for ``relative`` (e.g. ``models/model.pt``),
    or None (no such file, entry or URL; an unreadable file counts as none)."""
    from medigan_zoo.catalog.code_scan import load_config_data

    for name in LARGE_FILES:
        path = Path(bundle_dir) / name
        if not path.is_file():
            continue
        try:
            entries = (load_config_data(path) or {}).get("large_files") or []
        except Exception:  # noqa: BLE001 - a broken list of downloads only loses the hint
            return None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, Mapping) and str(entry.get("path", "")).lstrip("./") == relative.lstrip("./"):
                return str(entry["url"]) if entry.get("url") else None
    return None


#: the routes a bundle runs by (Verdict.route)
FAST_PATH = "fast path"
OWN_WORKFLOW = "own workflow"
#: the seeding guarantees (Verdict.seeding; stated in every manifest of the route)
PER_SAMPLE = "per sample"
PER_RUN = "seeded per run"


@dataclass(frozen=True)
class Verdict:
    """Can the zoo run this bundle (and how), and which run id runs it with ``monai.bundle``."""

    runnable: bool
    reason: str  # completes "runs with the zoo: yes/no, because ..."
    family: str  # zoo, gan, ddpm, latent_diffusion, unknown
    run_id: Optional[str] = None
    run_id_source: str = ""
    config: Optional[str] = None  # configs/inference.yaml
    ids: Mapping[str, str] = field(default_factory=dict)  # zoo role -> the bundle's id (network, scheduler, ...)
    #: how the zoo runs it: FAST_PATH (its own batched, per-sample seeded sampler) or OWN_WORKFLOW (the bundle's
    #: ConfigWorkflow, once per sample); "" when it does not
    route: str = ""
    #: the seeding guarantee of the route (what a manifest states)
    seeding: str = ""

    def line(self) -> str:
        """``runs with the zoo: yes, because ...; runs with monai.bundle: run id testing_jpg (configs/...)``"""
        monai = (f"run id {self.run_id} ({self.config}; {self.run_id_source})" if self.run_id
                 else f"no run id ({self.run_id_source})")
        return f"runs with the zoo: {'yes' if self.runnable else 'no'}, because {self.reason}; " \
               f"runs with monai.bundle: {monai}"

    def as_dict(self) -> Dict[str, Any]:
        return {"runnable": self.runnable, "reason": self.reason, "family": self.family, "route": self.route,
                "seeding": self.seeding, "run_id": self.run_id, "config": self.config, "ids": dict(self.ids)}


def _one(config: Mapping[str, Any], names: Tuple[str, ...]) -> Optional[str]:
    return next((k for k, v in config.items() if _target_name(v) in names), None)


def _scheduler_id(config: Mapping[str, Any], inferer_id: str) -> Optional[str]:
    ref = config[inferer_id].get("scheduler") if isinstance(config[inferer_id], Mapping) else None
    refs = sorted(_refs(ref)) if ref is not None else []
    if refs and refs[0] in config:
        return refs[0]
    return next((k for k, v in config.items() if _target_name(v).endswith("Scheduler")), None)


_AUTOENCODERS = ("AutoencoderKL",)
#: vector-quantised autoencoders (MONAI's VQVAE): recognised as latent diffusion, not run on the fast path
_VQ_AUTOENCODERS = ("VQVAE",)
#: ControlNets (MONAI core and MAISI's): they need a control image the zoo does not make
_CONTROLNETS = ("ControlNet", "ControlNetMaisi")
#: MAISI's networks (monai.apps.generation.maisi): a latent diffusion layout the zoo recognises but does not run
_MAISI = ("AutoencoderKlMaisi", "DiffusionModelUNetMaisi", "ControlNetMaisi")
#: CUDA-only pieces the zoo's CPU path cannot build: TensorRT (expressions naming these) and flash attention on MAISI's
#: networks (they raise "Flash attention is only available for GPU" without CUDA; MONAI-core networks run it on CPU)
_TENSORRT = ("trt_compile", "TRTWrapper")


def cuda_only_pieces(config: Mapping[str, Any]) -> Tuple[str, ...]:
    """The CUDA-only pieces a config builds, read as data: ``use_flash_attention of `id`: DiffusionModelUNetMaisi``
    for each MAISI network (monai.apps.generation.maisi) built with flash attention, and ``trt_compile`` /
    ``TRTWrapper`` where an expression names them. MONAI-core networks with ``use_flash_attention`` are not CUDA-only
    (they use torch's scaled_dot_product_attention, which runs on CPU)."""
    found = [f"use_flash_attention of `{k}`: {_target_name(v)}" for k, v in config.items()
             if isinstance(v, Mapping) and v.get("use_flash_attention") is True
             and (_target_name(v) in _MAISI or ".maisi." in str(v.get("_target_", "")))]
    found += sorted({w for w in _TENSORRT for v in _walk(config) if isinstance(v, str) and w in v})
    return tuple(found)


def _maisi_networks(config: Mapping[str, Any]) -> Tuple[str, ...]:
    """Ids of the networks of a MAISI-style config (autoencoders, diffusion UNets, ControlNets), in config order."""
    kinds = ("Autoencoder", "DiffusionModelUNet", "ControlNet")
    return tuple(k for k, v in config.items() if any(_target_name(v).startswith(n) for n in kinds))


def _condition_ids(config: Mapping[str, Any], conditioning: Optional[str]) -> Tuple[str, ...]:
    """Plain-number ids the ``conditioning`` expression stacks, in its order (the 3D LDM's gender, age, ...)."""
    if not conditioning or not isinstance(config.get(conditioning), str):
        return ()
    refs = [m.group(1) for m in _REF.finditer(str(config[conditioning]))]
    return tuple(dict.fromkeys(r for r in refs if isinstance(config.get(r), (int, float))
                               and not isinstance(config.get(r), bool)))


def static_path(config: Mapping[str, Any], id_: str, depth: int = 0) -> Optional[str]:
    """A path id read as data, relative to the bundle root: plain values, and expressions that concatenate
    quoted strings and ``@ids`` (``$@model_dir + '/model.pt'`` with ``model_dir`` ``$@bundle_root + '/models'``
    -> ``models/model.pt``); None when the expression is anything else."""
    value = config.get(id_)
    if not isinstance(value, str) or depth > 4:
        return None
    if not value.startswith("$"):
        text = value
    else:
        parts = re.findall(r"""@(\w+)|'([^']*)'|"([^"]*)"|(\+)|(\S)""", value[1:])
        text = ""
        for ref, single, double, _plus, other in parts:
            if other:
                return None
            if ref:
                if ref == "bundle_root":
                    continue
                inner = static_path(config, ref, depth + 1)
                if inner is None:
                    return None
                text += inner
            else:
                text += single or double
    while text.startswith(("./", "/")):
        text = text[1:] if text.startswith("/") else text[2:]
    return text


def _first_id(config: Mapping[str, Any], names: Tuple[str, ...]) -> Optional[str]:
    return next((n for n in names if n in config), None)


def latent_diffusion_family(config: Mapping[str, Any], mapping: BundleMapping = BundleMapping()
                            ) -> Tuple[str, bool, str, Dict[str, str]]:
    """The latent-diffusion verdict of a config read as data: an autoencoder (``AutoencoderKL``), a diffusion UNet
    (``DiffusionModelUNet``: ``network_def`` or ``diffusion_def``), a DDPM/DDIM scheduler, the latent ``noise`` and
    each network's checkpoint id (``load_autoencoder_path``, ``load_diffusion_path``), as MONAI's
    brats_mri_axial_slices_generative_diffusion and brain_image_synthesis_latent_diffusion_model declare them.
    ``mapping`` renames any of these ids (``{"ids": {"autoencoder_def": "vae", "load_diffusion_path": "unet_ckpt",
    "latent_shape": "z_shape", ...}}``); a mapped id comes first, MONAI's own names after."""
    def mapped(zoo_id: str) -> Tuple[str, ...]:
        return tuple(dict.fromkeys((mapping.id(zoo_id), zoo_id)))

    autoencoder = next((k for k in mapped("autoencoder_def")[:1] if k in mapping.ids.values() and k in config),
                       None) or _one(config, _AUTOENCODERS + _MAISI[:1])
    unet = next((k for k in (mapping.ids.get("diffusion_def"), "diffusion_def", "network_def")
                 if k and _target_name(config.get(k)) in ("DiffusionModelUNet",) + _MAISI[1:2]), None) \
        or _one(config, ("DiffusionModelUNet",) + _MAISI[1:2])
    inferer = _one(config, ("LatentDiffusionInferer", "ControlNetLatentDiffusionInferer"))
    scheduler = _scheduler_id(config, inferer) if inferer else next(
        (k for k, v in config.items() if _target_name(v).endswith("Scheduler")), None)
    if mapping.ids.get("scheduler") in config:
        scheduler = mapping.ids["scheduler"]
    ids = {"autoencoder_def": autoencoder or "", "diffusion_def": unet or "", "scheduler": scheduler or "",
           "inferer": inferer or ""}
    for role, names in (("noise", mapped("noise")), ("autoencoder_ckpt", mapped("load_autoencoder_path")),
                        ("diffusion_ckpt", mapped("load_diffusion_path") + mapped("ckpt_path")),
                        ("conditioning", mapped("conditioning")), ("scale_factor", mapped("scale_factor")),
                        ("latent_shape", mapped("latent_shape"))):
        found = _first_id(config, names)
        if found:
            ids[role] = found
    conditions = _condition_ids(config, ids.get("conditioning"))
    if conditions:
        ids["conditions"] = ",".join(conditions)
    kind = _target_name(config.get(scheduler)) if scheduler else ""
    cuda = cuda_only_pieces(config)
    what = (f"`{autoencoder}`: {_target_name(config.get(autoencoder or ''))}, "
            f"`{unet}`: {_target_name(config.get(unet or ''))}, "
            f"`{scheduler}`: {kind or 'no scheduler'}")
    networks = _maisi_networks(config)
    several = (f"; it has no single generator network: it chains {len(networks)} "
               f"({', '.join(f'`{n}`' for n in networks)})") if _one(config, _MAISI) and len(networks) > 2 else ""
    if cuda:
        return "latent_diffusion", False, (f"it needs CUDA-only pieces ({', '.join(cuda)}) the zoo's CPU path cannot "
                                           f"build{several}; it is a latent diffusion bundle ({what})"), ids
    controlnet = _one(config, _CONTROLNETS)
    if controlnet or _one(config, ("ControlNetLatentDiffusionInferer",)):
        which = f"`{controlnet}`: {_target_name(config.get(controlnet))}" if controlnet else \
            "a ControlNetLatentDiffusionInferer"
        return "latent_diffusion", False, (f"it steers its diffusion network with a ControlNet ({which}) from a "
                                           f"control image (a mask) the zoo does not make{several}; it is a latent "
                                           f"diffusion bundle ({what})"), ids
    vq = _one(config, _VQ_AUTOENCODERS)
    if vq and not autoencoder:
        return "latent_diffusion", False, (f"its autoencoder `{vq}` is a {_target_name(config.get(vq))} (a "
                                           "vector-quantised latent); the zoo's latent diffusion path decodes "
                                           f"AutoencoderKL latents only ({what.replace(f'`{autoencoder}`: , ', '')})"
                                           ), ids
    missing = [role for role in ("autoencoder_def", "diffusion_def", "noise", "autoencoder_ckpt", "diffusion_ckpt")
               if not ids.get(role)]
    if missing or not (autoencoder and unet):
        return "latent_diffusion", False, (f"it is a latent diffusion bundle the zoo cannot lay out: it has no "
                                           f"{', '.join(missing)} id ({what})"), ids
    if kind not in SEEDABLE_SCHEDULERS:
        return "latent_diffusion", False, (f"its latent diffusion scheduler `{scheduler}` is one the zoo cannot seed "
                                           f"per sample ({kind or 'none found'}; it seeds "
                                           f"{', '.join(SEEDABLE_SCHEDULERS)})"), ids
    cond = f", conditioned on {', '.join(conditions)}" if conditions else ""
    return "latent_diffusion", True, (f"it is a latent diffusion model ({what}{cond}); the zoo seeds each sample's "
                                      "latent noise and decodes it with the autoencoder"), ids


def latent_ckpts(config: Mapping[str, Any], ids: Mapping[str, str]) -> Tuple[str, ...]:
    """The checkpoint files of a latent diffusion bundle (autoencoder, diffusion UNet), relative to its root."""
    return tuple(static_path(config, ids[r]) or ids[r] for r in ("autoencoder_ckpt", "diffusion_ckpt") if ids.get(r))


def family_of(config: Mapping[str, Any], metadata: Mapping[str, Any],
              mapping: BundleMapping = BundleMapping()) -> Tuple[str, bool, str, Dict[str, str]]:
    """``(family, runnable by the zoo, reason, ids)`` of a config read as data (weights not checked here)."""
    network = mapping.id("network") if mapping.id("network") in config else mapping.id("network_def")
    if "sampler" in config and metadata.get("medigan_zoo") is not None:
        return "zoo", True, "it is a zoo bundle (its `sampler` draws the samples)", {"sampler": "sampler"}
    legacy = sorted({str(v["_target_"]) for v in _walk(config) if isinstance(v, Mapping)
                     and str(v.get("_target_", "")).startswith("generative.")})
    if legacy and importlib.util.find_spec("generative") is None:
        return "unknown", False, (f"its config builds MONAI GenerativeModels classes ({legacy[0]}"
                                  f"{f' and {len(legacy) - 1} more' if len(legacy) > 1 else ''}) and that package "
                                  "(`generative`) is not installed; MONAI 1.4+ has them as monai.networks.nets and "
                                  "monai.networks.schedulers (newer versions of the bundle use those)"), {}
    if _one(config, ("LatentDiffusionInferer", "ControlNetLatentDiffusionInferer") + _MAISI) or (
            _one(config, _AUTOENCODERS + _VQ_AUTOENCODERS) and _one(config, ("DiffusionModelUNet",))):
        return latent_diffusion_family(config, mapping)
    inferer = _one(config, ("DiffusionInferer",))
    if inferer:
        scheduler = _scheduler_id(config, inferer)
        unet = next((k for k in (mapping.id("network_def"), network) if _target_name(config.get(k)).endswith(
            "DiffusionModelUNet")), None) or _one(config, ("DiffusionModelUNet",))
        ids = {"inferer": inferer, "scheduler": scheduler or "", "network": network if network in config else "",
               "network_def": unet or ""}
        noise = mapping.id("noise")
        if noise in config:
            ids["noise"] = noise
        kind = _target_name(config.get(scheduler)) if scheduler else ""
        if not scheduler or kind not in SEEDABLE_SCHEDULERS:
            return "ddpm", False, (f"its DiffusionInferer `{inferer}` uses a scheduler the zoo cannot seed per "
                                   f"sample ({kind or 'none found'}; it seeds {', '.join(SEEDABLE_SCHEDULERS)})"), ids
        if network not in config:
            return "ddpm", False, f"it declares no `{network}` network for its DiffusionInferer", ids
        return "ddpm", True, (f"it is a DDPM (`{inferer}`: DiffusionInferer, `{scheduler}`: {kind}, `{network}`: "
                              "the UNet); the zoo seeds each sample's noise"), ids
    if network in config:
        formats = metadata.get("network_data_format")
        inputs = formats.get("inputs") if isinstance(formats, Mapping) else None
        desc = next(iter(inputs.values()), None) if isinstance(inputs, Mapping) else None
        if isinstance(desc, Mapping) and desc.get("spatial_shape"):
            return "gan", True, (f"its `{network}` maps a latent (network_data_format.inputs: "
                                 f"{list(desc['spatial_shape'])}) to an image; the zoo seeds each sample's latent"), \
                {"network": network}
        return "unknown", False, (f"it has a `{network}` but network_data_format.inputs describes no latent, so the "
                                  "zoo cannot tell what to feed it"), {"network": network}
    return "unknown", False, ("its config declares no `network`/`network_def` and no DiffusionInferer, so the zoo "
                              "cannot tell how it draws samples (a mapping file can name its ids)"), {}


def assess(bundle_dir: Union[str, Path], metadata: Optional[Mapping[str, Any]] = None,
           mapping: Union[None, str, Path, BundleMapping] = None) -> Verdict:
    """The zoo's verdict on a bundle: family, runnable with the reason, and its ``monai.bundle`` run id.

    Reads files only. A bundle runs on the zoo's fast path (``route`` FAST_PATH) when its family is one the zoo
    samples (``zoo``, ``gan``, ``ddpm``, ``latent_diffusion``) and its weights are present; else through its own
    workflow (OWN_WORKFLOW, :func:`own_workflow`) when its run id saves images; else not, with the reason. Problems
    reading the config or the mapping file become a "no" with the reason.
    """
    bundle_dir = Path(bundle_dir)
    if metadata is None:
        try:
            metadata = json.loads((bundle_dir / "configs" / "metadata.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            return Verdict(False, f"configs/metadata.json does not read ({err})", "unknown")
    config_path = inference_config(bundle_dir)
    if config_path is None:
        return Verdict(False, f"it has no inference config ({', '.join(INFERENCE_CONFIGS)})", "unknown",
                       run_id_source="no inference config")
    rel = config_path.relative_to(bundle_dir).as_posix()
    try:
        if not isinstance(mapping, BundleMapping):
            mapping = read_mapping(bundle_dir, mapping)
        config = read_config(config_path)
    except MetadataError as err:
        return Verdict(False, str(err), "unknown", config=rel, run_id_source="unreadable")
    run_id, how = find_run_id(config, bundle_dir, mapping)
    family, runnable, reason, ids = family_of(config, metadata, mapping)
    if runnable and family != "zoo":
        ckpts = latent_ckpts(config, ids) if family == "latent_diffusion" else (ckpt_relative(config, mapping),)
        absent = _absent_weights(bundle_dir, ckpts)
        if absent:
            return Verdict(False, f"{absent}; otherwise {reason}", family, run_id, how, rel, ids)
    if runnable:
        seeding = PER_SAMPLE if family != "zoo" else ""
        return Verdict(True, reason, family, run_id, how, rel, ids, FAST_PATH, seeding)
    own = own_workflow(bundle_dir, config, run_id, family, ids, mapping)
    if own is None:
        if run_id in config and not savers(config, run_id):
            reason += (f"; its run id {run_id} saves no image through MONAI's SaveImage/SaveImaged, so the zoo cannot "
                       "collect the output of its own workflow either")
        return Verdict(False, reason, family, run_id, how, rel, ids)
    ok, why, extra, seeding = own
    if not ok:
        return Verdict(False, f"{why}; the zoo's fast path cannot run it either ({reason})", family, run_id, how, rel,
                       ids)
    return Verdict(True, f"{why}; the zoo's fast path cannot ({reason})", family, run_id, how, rel,
                   {**ids, **extra}, OWN_WORKFLOW, seeding)


def _absent_weights(bundle_dir: Path, relatives: Tuple[str, ...]) -> str:
    """"its weights X are absent (large_files.yml names their download)" for the first absent file, else ""."""
    ckpt = next((c for c in relatives if not (bundle_dir / c).is_file()), "")
    if not ckpt:
        return ""
    extra = " (large_files.yml names their download)" if any((bundle_dir / n).is_file() for n in LARGE_FILES) \
        else ""
    return f"its weights {ckpt} are absent{extra}"


def weight_paths(config: Mapping[str, Any]) -> Tuple[str, ...]:
    """Weights files the config names, read statically (ids whose path ends in .pt/.pth/.ckpt/.ts/.safetensors)."""
    found = []
    for id_ in config:
        path = static_path(config, str(id_)) if isinstance(config.get(id_), str) else None
        if path and re.search(r"\.(pt|pth|ckpt|ts|safetensors)$", path):
            found.append(path)
    return tuple(dict.fromkeys(found))


def _large_files_absent(bundle_dir: Path) -> Optional[Tuple[str, str]]:
    """``(path, url)`` of the first file the bundle's large_files.yml lists that is not in the bundle, or None."""
    from medigan_zoo.catalog.code_scan import load_config_data

    for name in LARGE_FILES:
        try:
            entries = (load_config_data(bundle_dir / name) or {}).get("large_files") or [] \
                if (bundle_dir / name).is_file() else []
        except Exception:  # noqa: BLE001 - an unreadable list of downloads names nothing
            entries = []
        for entry in entries if isinstance(entries, list) else []:
            path = str(entry.get("path", "")) if isinstance(entry, Mapping) else ""
            rel = path[2:] if path.startswith("./") else path
            if rel and not (bundle_dir / rel).exists():
                return rel, str(entry.get("url") or "")
    return None


#: network classes whose presence means the config is a latent diffusion layout even without an AutoencoderKL
_ANY_AUTOENCODER = ("AutoencoderKL", "AutoencoderKlMaisi", "VQVAE", "VQGAN")


def own_workflow(bundle_dir: Path, config: Mapping[str, Any], run_id: Optional[str], family: str,
                 ids: Mapping[str, str], mapping: BundleMapping = BundleMapping()
                 ) -> Optional[Tuple[bool, str, Dict[str, str], str]]:
    """Can the zoo run the bundle's own workflow (``ConfigWorkflow`` with its run id, once per sample, collecting
    what its MONAI savers write)? ``None`` when the route does not apply (no run id, or the run id saves no image
    through ``SaveImage``/``SaveImaged``, or a latent diffusion config without any autoencoder); else
    ``(runnable, reason, ids it overrides, seeding guarantee)``.

    Only safe ids are overridden: ``output_dir`` (when a saver writes there; else the run's working folder is a
    fresh one), ``device``, ``seed`` (when the bundle has one: per-sample seeding through the bundle's own id;
    otherwise torch, numpy and random are seeded before each run: "seeded per run") and ``num_samples`` (set to 1).
    """
    if not run_id or run_id not in config:
        return None
    saving = savers(config, run_id)
    if not saving:
        return None
    if family == "latent_diffusion" and not any(_target_name(v) in _ANY_AUTOENCODER for v in _walk(config)):
        return None
    cuda = cuda_only_pieces(config)
    if cuda:
        return False, f"it needs CUDA-only pieces ({', '.join(cuda)}) the zoo's CPU path cannot build", {}, ""
    saver_id, saver = next(iter(saving.items()))
    out_dir = saver.get("output_dir") if isinstance(saver, Mapping) else None
    if isinstance(out_dir, str) and (out_dir.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", out_dir)):
        return False, (f"its saver `{saver_id}` writes to the fixed folder {out_dir}, which the zoo cannot point at "
                       "a run folder"), {}, ""
    absent = _absent_weights(bundle_dir, weight_paths(config))
    if absent:
        return False, f"{absent} (its own workflow {run_id} loads them)", {}, ""
    extra = _large_files_absent(bundle_dir)
    if extra:
        return False, (f"large_files.yml lists {extra[0]}, which is not downloaded"
                       + (f" ({extra[1]})" if extra[1] else "")), {}, ""
    overrides: Dict[str, str] = {"saver": saver_id}
    for zoo_id in ("output_dir", "num_samples", "seed", "device"):
        if mapping.id(zoo_id) in config:
            overrides[zoo_id] = mapping.id(zoo_id)
    seeding = PER_SAMPLE if "seed" in overrides else PER_RUN
    how = (f"its `{overrides['seed']}` id is set to each sample's seed" if "seed" in overrides else
           "torch, numpy and random are seeded with each sample's seed before its run")
    count = f" (`{overrides['num_samples']}` set to 1)" if "num_samples" in overrides else ""
    reason = (f"the zoo runs the bundle's own workflow: run id {run_id} once per sample{count}, collecting what its "
              f"saver `{saver_id}` ({_target_name(saver)}) writes; {seeding}: {how}")
    return True, reason, overrides, seeding


def ddpm_steps(config: Mapping[str, Any], ids: Mapping[str, str]) -> Optional[Tuple[int, int]]:
    """``(default num_inference_steps, num_train_timesteps)`` of a DDPM config, read statically, or None.

    The default is the config's ``num_inference_steps`` when it is a number, else the scheduler's
    ``num_train_timesteps`` (a number or a reference to one): MONAI's DiffusionInferer then runs every step."""
    def literal(value: Any) -> Optional[int]:
        for _ in range(3):  # follow "@id" references to a literal
            if isinstance(value, str) and re.fullmatch(r"@\w+", value):
                value = config.get(value[1:])
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    scheduler = config.get(ids.get("scheduler") or "")
    train = literal(scheduler.get("num_train_timesteps", 1000)) if isinstance(scheduler, Mapping) else None
    if train is None:
        return None
    steps = literal(config.get("num_inference_steps"))
    return (steps if steps and 1 <= steps <= train else train), train

