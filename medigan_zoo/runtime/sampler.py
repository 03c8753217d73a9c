"""A loaded bundle as a sampler: seeds (and conditions) in, a batch of images in display order out.

Zoo bundles declare a ``sampler`` (docs/bundle_contract.md, section 4). Foreign bundles (e.g. MONAI's MedNIST GAN)
get a :class:`LatentSampler` built from their ``network``, ``network_data_format.inputs`` and their own
``postprocessing`` transforms with the saving transforms dropped. :func:`medigan_zoo.runtime.bundle.open_bundle`
builds both.

**Axis order.** Every tensor a :class:`BundleSampler` returns is in *display order*: ``(B, C, H, W)`` or
``(B, C, D, H, W)``, rows before columns, as zoo bundles produce it. Foreign bundles produce MONAI's
``(x, y[, z])`` order (the order MONAI's writers save); the sampler reverses their spatial axes once, here, so files,
datasets, arrays, grids and evaluation all see the same array.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from medigan_zoo.catalog.model_info import ConditionSpec, ModelInfo
from medigan_zoo.core.errors import GenerationError
from medigan_zoo.core.files import file_sha256
from medigan_zoo.samplers.noise import seeded_noise

DeviceArg = Union[None, str, torch.device]


def resolve_device(device: DeviceArg = None) -> torch.device:
    """``device`` as a torch.device: CUDA when available and not given, else CPU; "cuda" without CUDA is an error."""
    if device is None or device == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise GenerationError(f"Unknown device {device!r} ({err}); use 'cpu', 'cuda' or 'cuda:N'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GenerationError(f"Device {device!r} was asked for but CUDA is not available here; use device='cpu'.")
    return dev


def output_formats(metadata: Mapping[str, Any]) -> Dict[str, Mapping[str, Any]]:
    """``network_data_format.outputs`` of a bundle's metadata (name -> description)."""
    return dict(((metadata.get("network_data_format") or {}).get("outputs") or {}))


def value_range(desc: Mapping[str, Any]) -> Tuple[float, float]:
    """(low, high) of an output description; [0, 1] when absent or malformed."""
    rng: Any = desc.get("value_range") if desc else None  # JSON; what is not two numbers falls back below
    try:
        low, high = float(rng[0]), float(rng[1])
    except (TypeError, ValueError, IndexError, KeyError):
        return 0.0, 1.0
    return (low, high) if high > low else (0.0, 1.0)


# --- foreign bundles ------------------------------------------------------------------------------

def _flatten_without_saving(transform: Any) -> List[Any]:
    """The transforms of ``transform`` (nested Compose flattened) minus MONAI's saving transforms."""
    from monai.transforms import Compose, SaveImage, SaveImaged

    if isinstance(transform, Compose):
        return [t for sub in transform.transforms for t in _flatten_without_saving(sub)]
    return [] if isinstance(transform, (SaveImage, SaveImaged)) else [transform]


def _elementwise(transform: Any) -> bool:
    """True for postprocessing transforms that give the same result on a batch as item by item."""
    from monai.transforms import (
        Activations,
        Activationsd,
        CastToType,
        CastToTyped,
        EnsureType,
        EnsureTyped,
        ScaleIntensityRange,
        ScaleIntensityRanged,
        ThresholdIntensity,
        ThresholdIntensityd,
        ToTensor,
        ToTensord,
    )
    from monai.utils import ensure_tuple

    if isinstance(transform, (Activations, Activationsd)):
        return not any(ensure_tuple(transform.softmax)) and all(o is None for o in ensure_tuple(transform.other))
    return isinstance(transform, (CastToType, CastToTyped, EnsureType, EnsureTyped, ScaleIntensityRange,
                                  ScaleIntensityRanged, ThresholdIntensity, ThresholdIntensityd, ToTensor, ToTensord))


def _plain(x: Any) -> torch.Tensor:
    x = x.as_tensor() if hasattr(x, "as_tensor") else x
    return torch.as_tensor(x)


class LatentSampler(nn.Module):
    """Sampler for a bundle without one: per-sample latent noise -> ``network`` -> the bundle's postprocessing.

    The latent of sample ``b`` is drawn on CPU from a ``torch.Generator`` seeded with ``seeds[b]`` (uniform when the
    input's value_range is [0, 1], as MONAI's MedNIST GAN draws it, else standard normal). ``postprocessing`` is
    applied as MONAI does after an evaluator iteration: to ``{"pred": item}`` for each decollated item (or to the
    whole batch at once when every transform is element-wise, which gives the same result faster).
    """

    def __init__(self, network: nn.Module, latent_shape: Sequence[int], uniform: bool,
                 postprocessing: Optional[Sequence[Any]] = None):
        super().__init__()
        self.network = network
        self.latent_shape = tuple(int(s) for s in latent_shape)
        self.uniform = bool(uniform)
        self.postprocessing = list(postprocessing or [])
        self.batch_safe = all(_elementwise(t) for t in self.postprocessing)

    def latents(self, seeds: torch.Tensor) -> torch.Tensor:
        return seeded_noise(seeds, self.latent_shape, "uniform" if self.uniform else "normal")

    def _post(self, pred: torch.Tensor) -> torch.Tensor:
        if not self.postprocessing:
            return pred
        from monai.transforms import Compose

        compose = Compose(self.postprocessing)
        if self.batch_safe:
            return _plain(compose({"pred": pred})["pred"])
        return torch.stack([_plain(compose({"pred": item})["pred"]) for item in pred])

    def forward(self, seeds: torch.Tensor, **conditions: Any) -> torch.Tensor:
        device = next(self.network.parameters(), torch.empty(0)).device
        return self._post(self.network(self.latents(seeds).to(device)))


# --- the loaded bundle ----------------------------------------------------------------------------

@dataclass
class BundleSampler:
    """A bundle ready to sample: its sampler module on ``device`` plus what the engine needs to save the outputs.

    Call it with per-sample seeds (and conditions, name -> (B,) tensors) to get ``{"image": (B, C, *spatial)}``
    (plus ``"mask"`` for models that also output a mask) as float32 CPU tensors in the model's value range, in
    display order (module docstring). :func:`medigan_zoo.runtime.sample.sample` is the loop around it.
    """

    bundle_dir: Path
    info: ModelInfo
    module: nn.Module
    device: torch.device
    weights_path: Path
    foreign: bool  # the bundle has no `sampler`: the zoo built a LatentSampler for it
    #: the module returns MONAI's (x, y[, z]) order (foreign bundles); __call__ reverses it into display order
    monai_order: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # sampling options the config was parsed with
    # CPU kernels sum in another order for very small batches (e.g. a GEMV for one sample), which changes the last
    # bits of the outputs; calls with fewer samples are padded to this many, so sample i is bit-identical whatever
    # the batch size.
    min_batch: int = 16

    @property
    def model_id(self) -> str:
        return self.info.id

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def conditions(self) -> List[ConditionSpec]:
        return self.info.conditions

    @cached_property
    def weights_sha256(self) -> str:
        return file_sha256(self.weights_path)

    @property
    def outputs(self) -> Dict[str, Mapping[str, Any]]:
        return output_formats(self.info.monai_metadata)

    @property
    def _pred(self) -> Mapping[str, Any]:
        outs = self.outputs
        return outs.get("pred") or next(iter(outs.values()), {})

    @property
    def spatial_shape(self) -> Tuple[int, ...]:
        """Output spatial shape in display order (``[H, W]`` / ``[D, H, W]``)."""
        if self.info.spatial_shape:
            return tuple(self.info.spatial_shape)
        shape = tuple(int(s) for s in self._pred.get("spatial_shape") or [])
        return shape[::-1] if self.monai_order else shape

    @property
    def num_channels(self) -> int:
        return int(self.info.zoo.get("num_channels") or self._pred.get("num_channels") or 1)

    @property
    def value_range(self) -> Tuple[float, float]:
        return value_range(self._pred)

    def output_range(self, name: str) -> Tuple[float, float]:
        """Value range of output ``name`` ("image" is the bundle's ``pred``; declared outputs: their value_range)."""
        if self.info.declares_outputs:
            spec = next((o for o in self.info.outputs if o.name == name), None)
            if spec is not None:
                return spec.value_range
        return self.value_range if name == "image" else value_range(self.outputs.get(name) or {})

    @property
    def spacing(self) -> Tuple[float, ...]:
        """Voxel spacing in mm per spatial axis (``spacing``/``pixdim`` of the output or zoo block; default 1)."""
        for source in (self._pred, self.info.zoo):
            for key in ("spacing", "pixdim"):
                values = source.get(key) if isinstance(source, Mapping) else None
                if isinstance(values, (list, tuple)) and len(values) == len(self.spatial_shape):
                    return tuple(float(v) for v in values)
        return (1.0,) * len(self.spatial_shape)

    def __call__(self, seeds: Sequence[int], conditions: Optional[Mapping[str, Any]] = None,
                 inputs: Optional[Mapping[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        """Outputs of samples ``seeds``; ``inputs`` (models declaring image inputs) are name -> (B, C, *spatial)
        tensors in display order, passed to the module as ``inputs=`` (docs/bundle_contract.md section 5)."""
        seeds = list(seeds)
        conditions = dict(conditions or {})
        count = len(seeds)
        if count < self.min_batch:  # pad by cycling the batch; the extra samples are dropped below
            take = [k % count for k in range(self.min_batch)]
            seeds = [seeds[k] for k in take]
            conditions = {name: value[torch.as_tensor(take, device=value.device)] if isinstance(value, torch.Tensor)
                          else [value[k] for k in take] for name, value in conditions.items()}
            if inputs:
                inputs = {name: value[torch.as_tensor(take)] for name, value in inputs.items()}
        kwargs: Dict[str, Any] = dict(conditions)
        if inputs:
            kwargs["inputs"] = {name: value.to(self.device) for name, value in inputs.items()}
        with torch.inference_mode():
            out = self.module(torch.as_tensor(seeds, dtype=torch.long), **kwargs)
        if isinstance(out, Mapping):
            named = dict(out)
        elif isinstance(out, (tuple, list)):
            names = ["image", "mask"] + [f"output{i}" for i in range(2, len(out))]
            named = dict(zip(names, out))
        else:
            named = {"image": out}
        result = {}
        for key, value in named.items():
            value = _plain(value)[:count].to("cpu", torch.float32)
            if self.monai_order:  # (B, C, x, y[, z]) -> (B, C, [z,] y, x): display order
                value = value.permute(0, 1, *range(value.ndim - 1, 1, -1))
            # inference tensors refuse in-place ops outside inference mode (e.g. a user's augmentation)
            result[key] = value.clone() if value.is_inference() else value
        return result

    def normalized(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Output ``name`` scaled from its value range to [0, 1] (clipped)."""
        low, high = self.output_range(name)
        if (low, high) != (0.0, 1.0):
            x = (x - low) / (high - low)
        return x.clamp(0.0, 1.0)


def _latent_spec(metadata: Mapping[str, Any], bundle_dir: Path) -> Tuple[Tuple[int, ...], bool]:
    inputs = (metadata.get("network_data_format") or {}).get("inputs") or {}
    desc = next(iter(inputs.values()), None)
    if not isinstance(desc, Mapping) or not desc.get("spatial_shape"):
        raise GenerationError(f"Bundle {bundle_dir} has no `sampler` and no latent description in "
                              "network_data_format.inputs, so the zoo cannot build a sampler for it.")
    shape = tuple(int(s) for s in desc["spatial_shape"])
    channels = int(desc.get("num_channels") or 0)
    uniform = value_range(desc) == (0.0, 1.0) and desc.get("value_range") is not None
    return ((channels,) + shape if channels > 0 else shape), uniform


def channels_last(module: nn.Module) -> nn.Module:
    """``module`` with its convolution weights in channels-last layout (3D for volumetric networks).

    oneDNN's channels-last CPU kernels are 1.2-1.8x faster for every network of the zoo (and MONAI's MedNIST
    GAN); outputs move by less than 2e-5 against the default layout and stay bit-identical whatever the batch
    size or thread count (tests/test_bundles.py)."""
    convs = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    dims = {m.weight.dim() for m in module.modules() if isinstance(m, convs)}
    if dims == {4}:
        # torch's stubs lack Module.to(memory_format=...), which Module.to accepts at run time
        return module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if dims == {5}:
        return module.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]  # (as above)
    return module  # no convolutions, or 2D and 3D ones mixed
