"""Typed, introspectable metadata of one zoo model (a bundle on disk, or a catalog entry)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from medigan_zoo.catalog.fields import COMPLETE_FIELDS

ZOO_KEY = "medigan_zoo"

#: zoo-block fields a complete zoo bundle declares (``info`` reports the missing ones): the field table's required
#: and shipped-bundle fields (medigan_zoo/catalog/fields.py)
ZOO_FIELDS: Tuple[str, ...] = COMPLETE_FIELDS


@dataclass(frozen=True)
class Metric:
    """One measured performance figure, with how it was measured."""

    name: str
    value: Any  # float, or a list of floats (medigan allows list-valued metrics)
    direction: str  # "lower" or "higher" is better
    num_samples: Optional[int] = None
    feature_extractor: Optional[str] = None
    normalization: Optional[str] = None
    reference_split: Optional[str] = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Metric":
        known = {"name", "value", "direction", "num_samples", "feature_extractor", "normalization", "reference_split"}
        return cls(
            name=str(data["name"]),
            value=data["value"],
            direction=str(data.get("direction", "lower")),
            num_samples=data.get("num_samples"),
            feature_extractor=data.get("feature_extractor"),
            normalization=data.get("normalization"),
            reference_split=data.get("reference_split"),
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass(frozen=True)
class ConditionSpec:
    """A condition a model takes at generation time (an inference.json id)."""

    name: str
    type: str
    values: Mapping[str, str] = field(default_factory=dict)
    default: Any = None
    description: str = ""
    minimum: Optional[float] = None  # continuous conditions: the range the model takes (None: unbounded)
    maximum: Optional[float] = None


@dataclass(frozen=True)
class OptionSpec:
    """A sampling option (an inference.json id, e.g. ``num_inference_steps``): changes how samples are made,
    not what they show. ``type`` is "integer", "number", "boolean" or "string"."""

    name: str
    type: str
    default: Any
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Tuple[Any, ...] = ()
    description: str = ""


def _range(value: Any, default: Tuple[float, float] = (0.0, 1.0)) -> Tuple[float, float]:
    """``[low, high]`` of a zoo-block or MONAI description as two floats; ``default`` when absent or malformed."""
    try:
        low, high = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError, KeyError):
        return default
    return (low, high) if high > low else default


def _labels(value: Any) -> Dict[int, str]:
    """A ``labels`` block (``{"0": "background", "1": "tumor"}``) as int -> name, in value order."""
    out: Dict[int, str] = {}
    for key, name in dict(value or {}).items():
        try:
            out[int(key)] = str(name)
        except (TypeError, ValueError):
            continue
    return dict(sorted(out.items()))


#: the kinds of inputs and outputs: intensities, or a label map
IMAGE, MASK = "image", "mask"


@dataclass(frozen=True)
class InputSpec:
    """An image input the model takes (zoo block ``inputs``; docs/bundle_contract.md section 5).

    The sampler receives it as ``inputs[name]``: (B, num_channels, *spatial_shape) float32 in display order, in
    ``value_range`` (images) or label values (masks). ``normalization`` says how a file's values get there:
    "none" (integer PNG/JPEG scaled from their type's range, other files used as read and checked to lie in the
    range), "minmax" (each input's min..max) or "percentile" (each input's min..99.5th percentile, clipped).
    ``optional``: the model also runs without it (e.g. an image + mask model that draws the mask itself unless one
    is given); a model whose inputs are all optional generates from noise when no input is given."""

    name: str
    kind: str = IMAGE
    modality: Optional[str] = None
    spatial_shape: Tuple[int, ...] = ()
    num_channels: int = 1
    value_range: Tuple[float, float] = (0.0, 1.0)
    normalization: str = "none"
    labels: Mapping[int, str] = field(default_factory=dict)
    description: str = ""
    optional: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InputSpec":
        return cls(name=str(data.get("name") or "image"), kind=str(data.get("kind") or IMAGE),
                   modality=data.get("modality"),
                   spatial_shape=tuple(int(s) for s in data.get("spatial_shape") or ()),
                   num_channels=int(data.get("num_channels") or 1), value_range=_range(data.get("value_range")),
                   normalization=str(data.get("normalization") or "none"), labels=_labels(data.get("labels")),
                   description=str(data.get("description") or ""), optional=data.get("optional") is True)


@dataclass(frozen=True)
class OutputSpec:
    """One output of each sample (zoo block ``outputs``; default: one ``image``, network_data_format's ``pred``).

    The sampler returns it as ``outputs[name]``: (B, num_channels, *spatial) float32 in display order, in
    ``value_range`` (images) or integer label values of ``labels`` (masks, saved as uint8 label maps, unscaled)."""

    name: str
    kind: str = IMAGE
    num_channels: int = 1
    value_range: Tuple[float, float] = (0.0, 1.0)
    labels: Mapping[int, str] = field(default_factory=dict)
    description: str = ""

    @property
    def is_mask(self) -> bool:
        return self.kind == MASK


@dataclass(frozen=True)
class ModelInfo:
    """Everything the zoo knows about one model, without importing torch or monai."""

    id: str
    name: str
    version: str
    description: str
    source: str  # "bundle" or "catalog"
    zoo: Mapping[str, Any]
    monai_metadata: Mapping[str, Any] = field(default_factory=dict)
    medigan_config: Mapping[str, Any] = field(default_factory=dict)
    bundle_dir: Optional[Path] = None
    origin: Optional[Path] = None  # the catalog file or metadata.json it was read from
    download: Optional[Mapping[str, Any]] = None
    missing_zoo_fields: Tuple[str, ...] = ()
    #: foreign bundles: the zoo's verdict (medigan_zoo.catalog.foreign.Verdict.as_dict): runnable, reason, family,
    #: run_id, config, ids; None for zoo bundles and catalog entries
    runnable: Optional[Mapping[str, Any]] = None
    #: foreign bundles: the licenses of code, weights and data as the bundle states them
    #: (medigan_zoo.catalog.licenses.LicenseTerms.as_dict); None otherwise (the zoo block's license is the weights')
    licenses: Optional[Mapping[str, Any]] = None

    @property
    def available(self) -> bool:
        """True when the bundle is on disk and can generate."""
        return self.bundle_dir is not None

    @property
    def alias(self) -> Optional[int]:
        alias = self.zoo.get("alias")
        return int(alias) if alias is not None else None

    @property
    def modality(self) -> List[str]:
        return list(self.zoo.get("modality") or [])

    @property
    def spatial_shape(self) -> List[int]:
        return [int(s) for s in self.zoo.get("spatial_shape") or []]

    @property
    def dims(self) -> Optional[int]:
        return len(self.spatial_shape) or None

    @property
    def license(self) -> str:
        return str(self.zoo.get("license") or "unknown")

    @property
    def architecture(self) -> str:
        return str(self.zoo.get("architecture") or "")

    @property
    def metrics(self) -> List[Metric]:
        return [Metric.from_dict(m) for m in self.zoo.get("metrics") or []]

    @property
    def conditions(self) -> List[ConditionSpec]:
        specs = []
        for name, spec in (self.zoo.get("condition") or {}).items():
            specs.append(ConditionSpec(
                name=name,
                type=str(spec.get("type", "categorical")),
                values=dict(spec.get("values") or {}),
                default=spec.get("default"),
                description=str(spec.get("description", "")),
                minimum=spec.get("minimum"),
                maximum=spec.get("maximum"),
            ))
        return specs

    @property
    def options(self) -> List[OptionSpec]:
        return [OptionSpec(name=name, type=str(spec.get("type", "number")), default=spec.get("default"),
                           minimum=spec.get("minimum"), maximum=spec.get("maximum"),
                           choices=tuple(spec.get("choices") or ()), description=str(spec.get("description", "")))
                for name, spec in (self.zoo.get("options") or {}).items()]

    @property
    def run_status(self) -> Dict[str, Any]:
        """Can the zoo run it: ``{"runnable": True/False/None, "route", "reason"}``, derived without torch.

        Foreign bundles: the static verdict (medigan_zoo.catalog.foreign.assess: fast path, own workflow, or not
        and why). Zoo bundles on disk: yes, on the fast path (their ``sampler``). Catalog entries: None (unknown)
        until their bundle is downloaded."""
        if self.runnable is not None:
            return {"runnable": bool(self.runnable.get("runnable")), "route": str(self.runnable.get("route") or ""),
                    "reason": str(self.runnable.get("reason") or "")}
        if self.bundle_dir is not None:
            return {"runnable": True, "route": "fast path", "reason": "it is a zoo bundle (its `sampler` draws the "
                                                                      "samples, seeded per sample)"}
        return {"runnable": None, "route": "", "reason": f"its bundle is not on disk; `medigan-zoo download {self.id}` "
                                                         "fetches it, then `info` says whether it runs"}

    @property
    def runs(self) -> str:
        """``yes``, ``no`` or ``unknown`` (the ``runnable=`` search filter's values)."""
        flag = self.run_status["runnable"]
        return "unknown" if flag is None else ("yes" if flag else "no")

    @property
    def license_parts(self) -> Dict[str, str]:
        """``{"code", "weights", "data"}`` licenses (SPDX ids or "unknown"): a foreign bundle's as it states them; a
        zoo model's block ``license`` is its weights' license and its data's is the one its metadata
        ``data_source`` names (e.g. "DermaMNIST (MedMNIST v3, CC BY-NC 4.0; ...)"), "unknown" when it names none."""
        if self.licenses is not None:
            return {k: str(self.licenses.get(k) or "unknown") for k in ("code", "weights", "data")}
        from medigan_zoo.catalog.licenses import license_mentioned

        data = license_mentioned(self.monai_metadata.get("data_source")) or "unknown"
        return {"code": "unknown", "weights": self.license, "data": data}

    @property
    def inputs(self) -> List[InputSpec]:
        """The image inputs the model takes (zoo block ``inputs``); [] for noise-to-image models."""
        return [InputSpec.from_dict(d) for d in self.zoo.get("inputs") or [] if isinstance(d, Mapping)]

    @property
    def required_inputs(self) -> List[InputSpec]:
        """The inputs a run cannot do without (not ``optional``); [] when the model also generates from noise."""
        return [spec for spec in self.inputs if not spec.optional]

    @property
    def declares_outputs(self) -> bool:
        """True when the zoo block lists ``outputs`` (files are then named ``sample_<i>_<output><ext>``)."""
        return bool(self.zoo.get("outputs"))

    @property
    def outputs(self) -> List[OutputSpec]:
        """What each sample is made of: the zoo block's ``outputs``, else one ``image`` described by
        network_data_format's ``pred`` (its channels and value range)."""
        nd = self.monai_metadata.get("network_data_format") or {}
        outs = nd.get("outputs") if isinstance(nd, Mapping) else None
        raw: Any = (outs.get("pred") or next(iter(outs.values()), {})) if isinstance(outs, Mapping) and outs else {}
        pred: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        channels = int(self.zoo.get("num_channels") or pred.get("num_channels") or 1)
        declared = [d for d in self.zoo.get("outputs") or [] if isinstance(d, Mapping)]
        if not declared:
            return [OutputSpec(name="image", num_channels=channels, value_range=_range(pred.get("value_range")))]
        specs = []
        for d in declared:
            kind = str(d.get("kind") or IMAGE)
            default = _range(pred.get("value_range")) if d.get("name") == "image" else (0.0, 1.0)
            specs.append(OutputSpec(name=str(d.get("name")), kind=kind,
                                    num_channels=int(d.get("num_channels") or (1 if kind == MASK else channels)),
                                    value_range=_range(d.get("value_range"), default), labels=_labels(d.get("labels")),
                                    description=str(d.get("description") or "")))
        return specs

    def metric(self, name: str) -> Optional[Metric]:
        """The metric called ``name`` (case-insensitive), or None."""
        low = name.lower()
        return next((m for m in self.metrics if m.name.lower() == low), None)

    def summary(self) -> Dict[str, Any]:
        """A JSON-friendly description (what ``medigan-zoo info`` prints)."""
        out: Dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "available": self.available,
            "location": str(self.bundle_dir or self.origin or ""),
            "description": self.description,
            "zoo": dict(self.zoo),
        }
        if self.download:
            out["download"] = dict(self.download)
        if self.missing_zoo_fields:
            out["missing_zoo_fields"] = list(self.missing_zoo_fields)
        out["runnable"] = dict(self.runnable) if self.runnable is not None else self.run_status
        if self.licenses is not None:
            out["licenses"] = dict(self.licenses)
        return out
