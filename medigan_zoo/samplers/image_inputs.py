"""Samplers and MONAI pieces for models with image inputs and several outputs (docs/bundle_contract.md section 5).

* :class:`TranslationSampler`: ``inputs[name]`` -> ``network`` -> ``{"image": ...}`` (image-to-image models).
* for ``python -m monai.bundle run inferring``: :func:`input_records` (the dataset), :func:`prepare_input_batch`
  (the evaluator's ``prepare_batch``), :class:`DisplayOrderd` (MONAI's ``(x, y[, z])`` -> display order) and
  :class:`SplitOutputsd` (the sampler's output dict -> one key per output, back in MONAI order, with the input's
  metadata, for ``SaveImaged``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from medigan_zoo.core.seeding import sample_seed

#: file endings ``input_records`` takes from ``input_dir``
INPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".nii", ".nii.gz", ".npy", ".dcm")


class TranslationSampler(nn.Module):
    """An image-to-image sampler: ``network(inputs[input_name])`` as the ``image`` output (deterministic: the seeds
    are not used), clamped to ``output_range`` when given."""

    def __init__(self, network: nn.Module, input_name: str = "image",
                 output_range: Optional[Sequence[float]] = None):
        super().__init__()
        self.network = network
        self.input_name = input_name
        self.output_range = tuple(float(v) for v in output_range) if output_range else None

    def forward(self, seeds: torch.Tensor, inputs: Optional[Dict[str, torch.Tensor]] = None,
                **conditions: Any) -> Dict[str, torch.Tensor]:
        if not inputs or self.input_name not in inputs:
            raise ValueError(f"this sampler translates input {self.input_name!r}; call it with inputs=")
        out = self.network(inputs[self.input_name])
        if self.output_range:
            out = out.clamp(*self.output_range)
        return {"image": out}


def input_records(input_dir: str, names: Sequence[str], seed: int = 0) -> List[Dict[str, Any]]:
    """One record per file of ``input_dir`` (name order): ``{names[0]: path, "seed": sample_seed(seed, k),
    "index": k}`` (models with one input; the zoo's seeds, so sample k matches ``medigan-zoo generate``)."""
    folder = Path(input_dir)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(INPUT_SUFFIXES))
    if not files:
        raise FileNotFoundError(f"no input files ({', '.join(INPUT_SUFFIXES)}) in {folder}; set input_dir")
    return [{names[0]: str(p), "seed": sample_seed(int(seed), k), "index": k} for k, p in enumerate(files)]


def prepare_input_batch(batchdata: Mapping[str, Any], device: Any = None, non_blocking: bool = False,
                        input_names: Sequence[str] = (), **_: Any) -> Tuple[torch.Tensor, None, tuple, Dict[str, Any]]:
    """``prepare_batch`` for SupervisedEvaluator: seeds as the network's input, the image inputs (every tensor key
    of the batch that is not seed/index; ``input_names`` to name them) as the sampler's second argument ``inputs``,
    conditions as keywords."""
    seeds = torch.as_tensor(batchdata["seed"], dtype=torch.long)
    inputs, conditions = {}, {}
    for key, value in batchdata.items():
        if key in ("seed", "index"):
            continue
        if isinstance(value, torch.Tensor) and value.ndim >= 3 and (not input_names or key in input_names):
            plain = value.as_tensor() if hasattr(value, "as_tensor") else value
            inputs[key] = plain.to(device=device, dtype=torch.float32, non_blocking=non_blocking)
        elif not isinstance(value, (str, list)):
            conditions[key] = torch.as_tensor(value)
    # the inputs go second, positionally: SimpleInferer's own first parameter is called `inputs`
    return seeds, None, (inputs,) if inputs else (), conditions


def _reverse_spatial(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, *range(x.ndim - 1, 0, -1))


class DisplayOrderd:
    """Reverse the spatial axes of ``keys`` (C, x, y[, z]) -> (C, [z,] y, x): MONAI's order to the zoo's display
    order (and back: the same operation). Metadata stays with the tensor."""

    def __init__(self, keys: Sequence[str]):
        self.keys = [keys] if isinstance(keys, str) else list(keys)

    def __call__(self, data: Mapping[str, Any]) -> Dict[str, Any]:
        out = dict(data)
        for key in self.keys:
            out[key] = _reverse_spatial(out[key])
        return out


class SplitOutputsd:
    """Postprocessing: the sampler's ``pred`` dict -> one key per output, in MONAI order, as MetaTensors carrying the
    metadata of input ``meta_from`` (so ``SaveImaged`` names them ``<input name>_<output>`` and keeps its affine),
    or named ``sample_<index:06d>`` for models without inputs."""

    def __init__(self, names: Sequence[str], meta_from: Optional[str] = None, source: str = "pred"):
        self.names, self.meta_from, self.source = list(names), meta_from, source

    def __call__(self, data: Mapping[str, Any]) -> Dict[str, Any]:
        from monai.data import MetaTensor

        out = dict(data)
        pred = data[self.source]
        pred = pred if isinstance(pred, Mapping) else {"image": pred}
        ref = data.get(self.meta_from) if self.meta_from else None
        for name in self.names:
            value = _reverse_spatial(torch.as_tensor(pred[name]).detach().cpu())
            if isinstance(ref, MetaTensor):
                meta = dict(ref.meta)
                out[name] = MetaTensor(value, affine=ref.affine, meta=meta)
            else:
                index = int(torch.as_tensor(data.get("index", 0)))
                out[name] = MetaTensor(value, meta={"filename_or_obj": f"sample_{index:06d}"})
        return out
