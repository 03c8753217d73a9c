"""Samplers: seeds (and conditions) in, images in [0, 1] out (docs/bundle_contract.md, section 4).

A bundle's ``inference.json`` declares ``sampler``; ``monai.bundle run inferring`` runs it inside MONAI's
``SupervisedEvaluator`` (``network: @sampler``, ``prepare_batch: $medigan_zoo.samplers.gan.prepare_seed_batch``)
and the zoo's engine calls it directly. Every random number of sample ``b`` comes from a CPU
``torch.Generator`` seeded with ``seeds[b]``, so a sample does not depend on the batch it is generated in.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from medigan_zoo.core.seeding import sample_seed
from medigan_zoo.samplers.noise import seeded_noise


class GANSampler(nn.Module):
    """Wrap a GAN generator ``network(latent, *conditions)`` as a seeded sampler.

    Args:
        network: the generator.
        latent_shape: shape of one sample's latent (without batch), e.g. ``[100]`` or ``[128, 1, 1]``.
        latent_distribution: "normal" or "uniform".
        output_range: the generator's raw output range, mapped to [0, 1]; None when it already is [0, 1].
        condition_names: keyword conditions passed to the network, positionally after the latent, in this order.
        binarize_threshold: mask models: outputs (in [0, 1]) at or above it become 1, the rest 0, so the model
            outputs masks like those it was trained on; None (default) keeps the values.
    """

    def __init__(self, network: nn.Module, latent_shape: Sequence[int], latent_distribution: str = "normal",
                 output_range: Optional[Sequence[float]] = (-1.0, 1.0), condition_names: Sequence[str] = (),
                 binarize_threshold: Optional[float] = None):
        super().__init__()
        self.network = network
        self.latent_shape: Tuple[int, ...] = tuple(int(s) for s in latent_shape)
        self.latent_distribution = latent_distribution
        self.output_range = None if output_range is None else (float(output_range[0]), float(output_range[1]))
        self.condition_names = tuple(condition_names)
        self.binarize_threshold = None if binarize_threshold is None else float(binarize_threshold)

    def _device(self) -> torch.device:
        param = next(self.network.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    def latents(self, seeds: torch.Tensor) -> torch.Tensor:
        """(B, *latent_shape) CPU latents of ``seeds`` (row b from seed b): what ``forward`` feeds the network."""
        return seeded_noise(torch.as_tensor(seeds), self.latent_shape, self.latent_distribution)

    def forward(self, seeds: torch.Tensor, **conditions: Any) -> torch.Tensor:
        return self.decode(self.latents(seeds), **conditions)

    def decode(self, latent: torch.Tensor, **conditions: Any) -> torch.Tensor:
        """Images in [0, 1] from given latents (e.g. interpolated between two seeds' latents)."""
        missing = [n for n in self.condition_names if n not in conditions]
        if missing:
            raise ValueError(f"missing condition(s) {missing}; this model takes {list(self.condition_names)}")
        device = self._device()
        latent = latent.to(device)
        args = [torch.as_tensor(conditions[n]).reshape(-1).long().to(device) for n in self.condition_names]
        out = self.network(latent, *args).float()
        if self.output_range is not None:
            low, high = self.output_range
            out = (out - low) / (high - low)
        out = out.clamp(0.0, 1.0)
        if self.binarize_threshold is not None:
            out = (out >= self.binarize_threshold).float()
        return out


def seed_records(seed: int, num_samples: int, conditions: Optional[Mapping[str, Any]] = None) -> List[Dict[str, Any]]:
    """Items for a MONAI Dataset in ``inferring``: per-sample seed, index and conditions.

    A condition value may be one value for all samples or a list cycled over the samples.
    """
    records = []
    for i in range(int(num_samples)):
        item: Dict[str, Any] = {"seed": sample_seed(int(seed), i), "index": i}
        for name, value in (conditions or {}).items():
            item[name] = value[i % len(value)] if isinstance(value, (list, tuple)) else value
        records.append(item)
    return records


def prepare_seed_batch(batchdata: Mapping[str, Any], device: Any = None, non_blocking: bool = False,
                       **_: Any) -> Tuple[torch.Tensor, None, tuple, Dict[str, torch.Tensor]]:
    """``prepare_batch`` for SupervisedEvaluator: seeds as inputs, conditions as keyword arguments."""
    seeds = torch.as_tensor(batchdata["seed"], dtype=torch.long)
    kwargs = {k: torch.as_tensor(v) for k, v in batchdata.items() if k not in ("seed", "index")}
    return seeds, None, (), kwargs
