"""``medigan-zoo init NAME --template cgan|wgan_gp|ddpm [--from BUNDLE]``: a new bundle folder that passes
``validate``, ready for ``medigan-zoo train``.

The bundle is written by :func:`medigan_zoo.templates.new_bundle` (``configs/template.json`` and the configs it
renders to, ``logging.conf``, ``metadata.json``, card, license). Its template declaration and metadata start from a
bundle: ``--from BUNDLE`` (any zoo bundle with ``configs/template.json``), else the shipped bundle of that template
family (:data:`STARTING_POINTS`; :data:`RGB_STARTING_POINTS` for colour data). What belongs to that bundle is reset:
version 0.1.0 with a changelog entry, the name, description, alias, metrics (none: nothing measured yet), the
training data set's name. ``models/model.pt`` holds the network's initial weights (``network_def`` built with torch
seed 0, untrained) and ``models/model.ts`` their TorchScript export, so the folder validates and runs before it is
trained; ``medigan-zoo train`` replaces both.

``--data DATASET`` (a ``medigan-zoo prepare`` folder or a MedMNIST-layout npz) fits the new bundle to that data
(:func:`fit_to_data`): the starting bundle is picked by the data's channel count, and the class count (class
embeddings, the DDPM's null class), the class names (``dataset.json``'s ``label_names``, else "class i"), the
default class (the most common one), the image size (DDPM only: the GAN networks make one size) and the data file
of train.json are set in ``configs/template.json`` and the metadata (with the task, image description and data
source rewritten for the data; the search fields that describe the starting bundle's data are named in a note),
so ``medigan-zoo train BUNDLE --data DATASET`` runs without hand edits. Data that does not fit a family (3D, other
channel counts, a size the GAN networks do not make, labels that are not 0..K-1) is refused with a one-line reason.
The license stays the starting bundle's until you set yours: ``lines()`` says so.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from medigan_zoo.core.errors import ZooError

PathLike = Union[str, Path]

#: template family -> the train.json template it renders
TEMPLATES = {"cgan": "cdcgan_train", "wgan_gp": "wgangp_train", "ddpm": "ddpm_train"}
#: template family -> the shipped bundle whose declaration and metadata a new bundle starts from
STARTING_POINTS = {"cgan": "chest_xray_cdcgan", "wgan_gp": "breast_ultrasound_wgangp", "ddpm": "chest_xray_ddpm"}
#: template family -> the shipped RGB bundle a new bundle for colour data starts from (no entry: grey only)
RGB_STARTING_POINTS = {"cgan": "skin_dermatoscopy_cdcgan", "ddpm": "skin_dermatoscopy_ddpm"}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
FIRST_VERSION = "0.1.0"


@dataclass(frozen=True)
class DataFacts:
    """What a training data set says about the bundle that should learn it (read by :func:`read_data_facts`)."""

    npz: Path
    name: str
    spatial_shape: Tuple[int, ...]
    channels: int
    counts: Dict[int, int]  # training images per label
    label_names: Dict[int, str]

    @property
    def num_classes(self) -> int:
        return len(self.counts)

    @property
    def majority(self) -> int:
        """The most common training label (lowest on ties): the bundle's default class."""
        return min(self.counts, key=lambda k: (-self.counts[k], k))


@dataclass
class InitResult:
    bundle: Path
    template: str
    started_from: Path
    data: Optional[DataFacts] = None
    license: str = ""
    notes: List[str] = field(default_factory=list)

    def lines(self) -> List[str]:
        out = [f"bundle {self.bundle.name} created in {self.bundle} from template {self.template} "
               f"(configs and metadata of {self.started_from.name}; initial untrained weights)"]
        if self.data is not None:
            d = self.data
            out.append(f"fitted to {d.npz}: {'x'.join(map(str, d.spatial_shape))} px, {d.channels} channel(s), "
                       f"{d.num_classes} class(es) ({', '.join(d.label_names[k] for k in sorted(d.counts))}), "
                       f"default class {d.majority}")
        out += [f"note: {n}" for n in self.notes]
        out.append(f"license: {self.license or 'none'} (from {self.started_from.name}); set medigan_zoo.license and "
                   "LICENSE to your data's license before sharing the weights")
        data = str(self.data.npz.parent if self.data and self.data.npz.name == "dataset.npz" else
                   self.data.npz if self.data else "DATASET")
        out.append(f"next: medigan-zoo --trust {self.bundle.parent} train {self.bundle} --data {data}")
        return out


def read_data_facts(data: PathLike) -> DataFacts:
    """Image size, channels, label counts and names of a data set's training split (``--data``: a ``medigan-zoo
    prepare`` folder or a MedMNIST-layout npz); one-line ZooError when it cannot train a 2D template."""
    from medigan_zoo.training.data import read_train_split
    from medigan_zoo.training.run import resolve_data

    npz = resolve_data(data)
    split = read_train_split(npz)
    if split.counts is None:
        raise ZooError(f"--data {npz}: has no train_labels array; prepare the data set with `medigan-zoo prepare` "
                       "(a folder per class gives the labels).")
    shape, counts = split.shape, split.counts
    if len(shape) == 4 and shape[-1] in (1, 3):
        spatial, channels = shape[1:3], shape[-1]
    elif len(shape) == 3:
        spatial, channels = shape[1:3], 1
    else:
        raise ZooError(f"--data {npz}: train_images has shape {shape}; the init templates make 2D images, (N, H, W) "
                       "grey or (N, H, W, 3) colour.")
    if not counts or list(counts) != list(range(len(counts))):
        raise ZooError(f"--data {npz}: train_labels are {sorted(counts)[:10]}; they must be 0..K-1 with every class "
                       "present in the training split (the class embedding is indexed by them).")
    names = {k: f"class {k}" for k in counts}
    info = npz.parent / "dataset.json"
    if npz.name == "dataset.npz" and info.is_file():
        given = json.loads(info.read_text()).get("label_names")
        if isinstance(given, list):
            names.update({k: str(v) for k, v in enumerate(given) if k in names})
        elif isinstance(given, dict):
            names.update({int(k): str(v) for k, v in given.items() if str(k).isdigit() and int(k) in names})
    name = npz.parent.name if npz.name == "dataset.npz" else npz.stem
    return DataFacts(npz=npz, name=name, spatial_shape=tuple(spatial), channels=int(channels), counts=counts,
                     label_names=names)


def _starting_point(template: str, from_bundle: Optional[PathLike], channels: int = 1) -> Path:
    from medigan_zoo.core.paths import builtin_bundles_root
    from medigan_zoo.templates import TEMPLATE_FILE, declared

    if channels == 3 and not from_bundle and template not in RGB_STARTING_POINTS:
        raise ZooError(f"--data: colour (3-channel) images, but the {template} template has no colour starting bundle;"
                       f" use --template {' or '.join(RGB_STARTING_POINTS)}, or --from a colour bundle of this family.")
    default = builtin_bundles_root() / (RGB_STARTING_POINTS if channels == 3 else STARTING_POINTS)[template]
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


def _set(overrides: Dict[str, Any], key: str, value: Any) -> None:
    """Set the override ``key``; when an earlier override replaces the whole parent (``network_def``), set the
    value inside it instead, so the declaration says it once."""
    parent, _, leaf = key.rpartition("::")
    if parent and isinstance(overrides.get(parent), dict):
        overrides[parent][leaf] = value
    else:
        overrides[key] = value


def fit_to_data(declaration: Dict[str, Any], metadata: Dict[str, Any], template: str, facts: DataFacts) -> List[str]:
    """Make ``declaration`` (configs/template.json) and ``metadata`` fit ``facts``, in place; returns notes for the
    user. Raises ZooError (one line) when the data cannot fit the family."""
    zoo = metadata["medigan_zoo"]
    notes: List[str] = []
    start_shape = tuple(int(v) for v in zoo.get("spatial_shape") or ())
    if int(zoo.get("num_channels", 1)) != facts.channels:
        raise ZooError(f"--data {facts.npz}: {facts.channels}-channel images, but the starting bundle makes "
                       f"{zoo.get('num_channels', 1)}-channel ones; start --from a bundle with {facts.channels} "
                       "channel(s) (or leave --from out: init picks one by the data's channels).")
    shape = facts.spatial_shape
    if template != "ddpm" and shape != start_shape:
        raise ZooError(f"--data {facts.npz}: images are {'x'.join(map(str, shape))}, but the {template} networks "
                       f"make {'x'.join(map(str, start_shape))}; prepare the data with --size {start_shape[-1]} "
                       "(medigan-zoo prepare) or use --template ddpm (any size divisible by 4).")
    if template == "ddpm" and any(s % 4 for s in shape):
        raise ZooError(f"--data {facts.npz}: images are {'x'.join(map(str, shape))}; the DDPM UNet halves the size "
                       "twice, so each side must be divisible by 4: prepare the data with such a --size.")
    k = facts.num_classes
    inference = declaration["inference.json"].setdefault("overrides", {})
    train = declaration["train.json"].setdefault("overrides", {})
    train["data_path"] = f"$@data_dir + '/{facts.npz.name}'"
    names = {str(i): facts.label_names[i] for i in range(k)}
    if template == "wgan_gp":
        if k > 1:
            notes.append(f"the wgan_gp template is unconditional: the data's {k} classes are pooled")
    else:
        if template == "ddpm":
            for overrides in (inference, train):
                _set(overrides, "network_def::num_class_embeds", k + 1)
                overrides["null_class"] = k
            inference["spatial_shape"] = list(shape)
        else:
            _set(inference, "network_def::num_classes", k)
            train["num_classes"] = k
        inference["class_label"] = facts.majority
        condition = dict((zoo.get("condition") or {}).get("class_label") or {})
        condition.update({"type": "categorical", "values": names, "default": facts.majority,
                          "description": f"class of the generated image ({facts.name} training labels)"})
        zoo["condition"] = {"class_label": condition}
    zoo["spatial_shape"] = list(shape)
    size, colour = "x".join(map(str, shape)), "RGB" if facts.channels == 3 else "grey-scale"
    conditional = template != "wgan_gp"
    metadata["task"] = (f"Class-conditional generation of {size} {colour} images of {facts.name} ({k} classes)"
                        if conditional else f"Generation of {size} {colour} images of {facts.name}")
    metadata["image_classes"] = f"{colour} image, {size}, intensities in [0, 1]"
    metadata["data_source"] = f"{facts.name} ({facts.npz.name}); say where the data comes from and its license"
    for kind in ("inputs", "outputs"):
        for spec in (metadata.get("network_data_format") or {}).get(kind, {}).values():
            if spec.get("type") == "image":
                spec["spatial_shape"] = list(shape)
            elif "label" in str(spec.get("format", "")) and template != "wgan_gp":
                with_null = template == "ddpm"
                spec["value_range"] = [0, k if with_null else k - 1]
                spec["channel_def"] = {**names, **({str(k): "none (classifier-free guidance)"} if with_null else {})}
    return notes


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
                output: Optional[PathLike] = None, dataset: Optional[str] = None,
                data: Optional[PathLike] = None) -> InitResult:
    """Create the bundle ``name`` (folder ``output``, default ``./NAME``) from ``template`` (cgan, wgan_gp, ddpm),
    starting from ``from_bundle``'s template declaration and metadata (default: the shipped bundle of the family).
    ``dataset`` names its training data set in the zoo block; ``data`` (a prepared folder or npz) fits the bundle
    to that data set (:func:`fit_to_data`) and names it when ``dataset`` is not given. The folder must not
    exist."""
    from medigan_zoo.templates import TEMPLATE_FILE, new_bundle

    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ZooError(f"init: bundle name {name!r} must be 2-64 lower-case letters, digits and _, starting with a "
                       "letter (it becomes the model id), e.g. `medigan-zoo init my_cxr_gan --template cgan`.")
    if template not in TEMPLATES:
        raise ZooError(f"init: --template {template!r} is not one of {', '.join(TEMPLATES)}.")
    facts = read_data_facts(data) if data is not None else None
    src = _starting_point(template, from_bundle, facts.channels if facts else 1)
    dest = Path(output).expanduser().resolve() if output else Path.cwd() / name
    declaration = json.loads((src / TEMPLATE_FILE).read_text())
    license_file = src / "LICENSE"
    license_text = license_file.read_text() if license_file.is_file() else ""
    metadata = _metadata(src, name, template, dataset or (facts.name if facts else None))
    notes = fit_to_data(declaration, metadata, template, facts) if facts else []
    if facts:
        notes.append(f"modality, anatomy, generates, tags, intended_use and copyright in configs/metadata.json still "
                     f"describe {src.name}'s data: set them to yours (they are what search finds)")
    new_bundle(dest, declaration, metadata, license_text)
    _write_initial_weights(dest)
    from medigan_zoo.runtime.export import export_torchscript

    export_torchscript(dest, trusted=[dest])  # the bundle's own configs, just written from the zoo's templates
    return InitResult(bundle=dest, template=template, started_from=src, data=facts,
                      license=str(metadata["medigan_zoo"].get("license", "")), notes=notes)
