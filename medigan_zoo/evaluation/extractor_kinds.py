"""The registry of feature-extractor kinds: what a ``--feature_extractor`` spec string can name.

Each kind is one registered block (:class:`ExtractorKind`): how its spec string is recognised, its default
normalization (the preprocessing it was trained with) and how it is loaded. :func:`load_feature_extractor` asks the
kinds in registration order; the first that recognises the spec builds the extractor, with the user's
normalization overrides applied on top of the kind's default. Built-in kinds:

* ``torchvision``: ``torchvision:NAME`` with ``weights=PATH`` (a local state dict; nothing is downloaded), the
  classifier head replaced by the identity, ImageNet normalization at 299 px (Inception v3) or 224 px;
* ``bundle``: a feature-extractor bundle id (looked up in ``bundle_dirs`` and the shipped bundles; default
  ``medmnist_feature_extractor``) or folder: ``network_def`` with the weights at ``ckpt_path``, loaded with the
  runtime's one weights loader; its inference.json ids ``input_size``, ``input_channels``, ``input_intensity`` and
  ``resize_mode`` are its default normalization;
* ``torchscript``: a TorchScript file, ``features`` method if exported else ``forward``; the zoo's default
  normalization.

tests/test_extractor_kinds.py builds a tiny real example of every registered kind and checks recognition, default
normalization and features.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from medigan_zoo.core.errors import ZooError
from medigan_zoo.core.files import file_sha256
from medigan_zoo.core.jsonio import load_json
from medigan_zoo.evaluation.features import FeatureExtractor, Normalization

DEFAULT_EXTRACTOR = "medmnist_feature_extractor"
Device = Union[str, torch.device]


@dataclass(frozen=True)
class ExtractorKind:
    """One kind of feature extractor.

    Args:
        name: the kind's name (for messages and docs).
        recognise: ``(spec, bundle_roots) -> target`` (what ``load`` takes, e.g. a resolved path), or None when
            the spec is not of this kind. Must not load anything heavy.
        default_normalization: ``target -> Normalization`` the extractor expects when the user overrides nothing.
        load: ``(target, normalization, device, weights) -> FeatureExtractor``.
        accepts: how a user names it, for the "unknown feature extractor" message.
    """

    name: str
    recognise: Callable[[str, Sequence[Path]], Any]
    default_normalization: Callable[[Any], Normalization]
    load: Callable[[Any, Normalization, Device, Optional[Path], Any], FeatureExtractor]  # (..., trusted)
    accepts: str


_KINDS: Dict[str, ExtractorKind] = {}


def register_extractor_kind(kind: ExtractorKind) -> ExtractorKind:
    """Add ``kind`` after the registered ones (recognition order).

    Raises:
        ValueError: a kind of that name is registered already.
    """
    if kind.name in _KINDS:
        raise ValueError(f"feature-extractor kind {kind.name!r} is registered already")
    _KINDS[kind.name] = kind
    return kind


def registered_extractor_kinds() -> Tuple[ExtractorKind, ...]:
    """Every registered kind, in recognition order."""
    return tuple(_KINDS.values())


# --- torchvision:NAME ---------------------------------------------------------------------------------

TORCHVISION_PREFIX = "torchvision:"
#: torchvision heads replaced by the identity (the first one the model has)
TORCHVISION_HEADS = ("fc", "classifier", "head")


def _torchvision_recognise(spec: str, roots: Sequence[Path]) -> Optional[str]:
    return spec[len(TORCHVISION_PREFIX):] if spec.startswith(TORCHVISION_PREFIX) else None


def _torchvision_normalization(name: str) -> Normalization:
    return Normalization(size=299 if name == "inception_v3" else 224, channels="rgb", intensity="imagenet",
                         resize_mode="bilinear")


def _torchvision_load(name: str, normalization: Normalization, device: Device,
                      weights: Optional[Path], trusted: Any = None) -> FeatureExtractor:
    """``torchvision.models.NAME`` with a local state dict, classifier head replaced by the identity."""
    from medigan_zoo.runtime.weights import load_weights

    try:
        import torchvision
    except ImportError:
        raise ZooError(f"torchvision is not installed, so feature extractor 'torchvision:{name}' cannot be built; "
                       "install torchvision (pinned to your torch) or export the model to TorchScript.") from None
    if weights is None:
        raise ZooError(f"torchvision:{name} needs weights=PATH (a local state dict: nothing is downloaded).")
    builder = getattr(torchvision.models, name, None)
    if builder is None:
        raise ZooError(f"torchvision.models has no {name!r}.")
    kwargs: Dict[str, Any] = {"weights": None}
    if name == "inception_v3":
        kwargs.update(aux_logits=True, init_weights=False)
    model = builder(**kwargs)
    weights = Path(weights).expanduser()
    missing, unexpected = model.load_state_dict(load_weights(weights), strict=False)
    if unexpected or [m for m in missing if not m.startswith(("fc.", "classifier.", "AuxLogits."))]:
        raise ZooError(f"Weights {weights} do not fit torchvision {name}: missing {missing[:5]}, "
                       f"unexpected {unexpected[:5]}.")
    for head in TORCHVISION_HEADS:
        if hasattr(model, head):
            setattr(model, head, nn.Identity())
            break
    label = f"torchvision:{name}({weights.name}, sha256 {file_sha256(weights)[:12]})"
    return FeatureExtractor(model, label, normalization, device)


register_extractor_kind(ExtractorKind(
    name="torchvision", recognise=_torchvision_recognise, default_normalization=_torchvision_normalization,
    load=_torchvision_load, accepts="torchvision:NAME with weights=PATH"))


# --- feature-extractor bundles ------------------------------------------------------------------------

def _bundle_recognise(spec: str, roots: Sequence[Path]) -> Optional[Path]:
    path = Path(spec).expanduser()
    if (path / "configs" / "metadata.json").is_file():
        return path.resolve()
    for root in roots:
        if (Path(root) / spec / "configs" / "metadata.json").is_file():
            return (Path(root) / spec).resolve()
    return None


def _extractor_metadata(bundle_dir: Path) -> Dict[str, Any]:
    """The bundle's metadata, after checking that its zoo role is ``feature_extractor``."""
    meta = load_json(bundle_dir / "configs" / "metadata.json", "bundle metadata")
    zoo = meta.get("medigan_zoo") or {}
    if zoo.get("role") != "feature_extractor":
        raise ZooError(f"Bundle {bundle_dir} is not a feature extractor (its medigan_zoo role is "
                       f"{zoo.get('role', 'generator')!r}).")
    return meta


def _bundle_normalization(bundle_dir: Path) -> Normalization:
    """The ``input_*`` ids of the bundle's inference.json (the preprocessing it was trained with)."""
    _extractor_metadata(bundle_dir)
    config = load_json(Path(bundle_dir) / "configs" / "inference.json", "bundle config")
    return Normalization(size=config.get("input_size", 32), channels=config.get("input_channels", "rgb"),
                         intensity=config.get("input_intensity", "[0,1]"),
                         resize_mode=config.get("resize_mode", "bilinear"))


def _bundle_load(bundle_dir: Path, normalization: Normalization, device: Device,
                 weights: Optional[Path], trusted: Any = None) -> FeatureExtractor:
    """The bundle's network with the weights at its ``ckpt_path``, opened by the zoo's one bundle runtime."""
    from medigan_zoo.runtime.bundle import open_bundle

    meta = _extractor_metadata(bundle_dir)
    network = open_bundle(bundle_dir, device=device, trusted=trusted).network
    return FeatureExtractor(network, f"{bundle_dir.name}@{meta.get('version', '?')}", normalization, device)


register_extractor_kind(ExtractorKind(
    name="bundle", recognise=_bundle_recognise, default_normalization=_bundle_normalization, load=_bundle_load,
    accepts=f"a feature-extractor bundle id or folder (default {DEFAULT_EXTRACTOR})"))


# --- TorchScript files --------------------------------------------------------------------------------

def _torchscript_recognise(spec: str, roots: Sequence[Path]) -> Optional[Path]:
    path = Path(spec).expanduser()
    return path if path.is_file() else None


def _torchscript_normalization(path: Path) -> Normalization:
    return Normalization()


def _torchscript_load(path: Path, normalization: Normalization, device: Device,
                      weights: Optional[Path], trusted: Any = None) -> FeatureExtractor:
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:  # noqa: BLE001 - TorchScript loading has many error types
        raise ZooError(f"Feature extractor {path} is not a TorchScript file ({err}). Save one with "
                       "torch.jit.save(torch.jit.script(model), path).") from None
    return FeatureExtractor(module, f"torchscript:{path.name}(sha256 {file_sha256(path)[:12]})", normalization, device)


register_extractor_kind(ExtractorKind(
    name="torchscript", recognise=_torchscript_recognise, default_normalization=_torchscript_normalization,
    load=_torchscript_load, accepts="a TorchScript file"))


# --- entry points -------------------------------------------------------------------------------------

def resolve_extractor(spec: str, bundle_dirs: Sequence[Path] = ()) -> Tuple[ExtractorKind, Any]:
    """The first kind that recognises ``spec`` and its target.

    Raises:
        ZooError: no kind recognises it; the message lists what each kind accepts.
    """
    from medigan_zoo.core.paths import builtin_bundles_root

    roots = [Path(p) for p in bundle_dirs] + [builtin_bundles_root()]
    for kind in registered_extractor_kinds():
        target = kind.recognise(spec, roots)
        if target is not None:
            return kind, target
    accepts = [k.accepts for k in registered_extractor_kinds()]
    raise ZooError(f"Unknown feature extractor {spec!r}: pass {', '.join(accepts[:-1])} or {accepts[-1]}.")


def load_feature_extractor(spec: Union[str, Path, FeatureExtractor, None] = None, device: Device = "cpu",
                           normalization: Optional[Union[Normalization, Mapping[str, Any]]] = None,
                           weights: Optional[Union[str, Path]] = None,
                           bundle_dirs: Sequence[Path] = (), trusted: Any = None) -> FeatureExtractor:
    """Build the extractor named by ``spec`` (see the module docstring; default the zoo's own bundle) with its
    kind's default normalization, overridden by ``normalization`` (a Normalization or a dict of fields)."""
    if isinstance(spec, FeatureExtractor):
        if normalization is not None:
            spec.normalization = Normalization.from_any(normalization, spec.normalization)
        return spec
    if isinstance(normalization, Normalization):
        normalization = asdict(normalization)
    kind, target = resolve_extractor(str(spec or DEFAULT_EXTRACTOR), bundle_dirs)
    norm = Normalization.from_any(normalization, kind.default_normalization(target))
    return kind.load(target, norm, device, Path(weights).expanduser() if weights else None, trusted)


def load_bundle_extractor(bundle_dir: Union[str, Path], device: Device = "cpu",
                          normalization: Optional[Mapping[str, Any]] = None, trusted: Any = None) -> FeatureExtractor:
    """A feature-extractor bundle folder as an extractor (the ``extractor`` id of such a bundle's inference.json)."""
    bundle_dir = Path(bundle_dir).expanduser().resolve()
    return _bundle_load(bundle_dir, Normalization.from_any(normalization, _bundle_normalization(bundle_dir)), device,
                        None, trusted)


def load_torchvision_extractor(name: str, weights: Optional[Union[str, Path]], device: Device,
                               normalization: Optional[Mapping[str, Any]] = None) -> FeatureExtractor:
    """``torchvision.models.NAME`` with a local state dict (``weights``), head replaced by the identity."""
    return load_feature_extractor(TORCHVISION_PREFIX + name, device, normalization, weights)
