"""Sampler of image + mask models (docs/bundle_contract.md section 5): noise -> (image, mask), or a given mask ->
image.

:class:`MaskPairSampler` wraps a network with ``forward(latent) -> (image, mask)`` and
``image_from_mask(latent, mask) -> image`` (e.g. :class:`medigan_zoo.networks.paired.TumorPairGenerator`). Sample
``b``'s latent is drawn from ``seeds[b]`` (:func:`medigan_zoo.samplers.noise.seeded_noise`), so a sample does not
depend on its batch. Without ``inputs`` (or without the mask input) the network draws the mask too; with
``inputs[mask_name]`` the given mask is used and returned unchanged as the ``mask`` output.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn

from medigan_zoo.samplers.noise import seeded_noise


class MaskPairSampler(nn.Module):
    """Seeds (+ optional mask input) -> ``{"image": (B, 1, H, W) in [0, 1], "mask": (B, 1, H, W) labels}``.

    Args:
        network: the pair generator (outputs in ``output_range``).
        latent_shape: one sample's latent shape.
        mask_name: the input name of a user mask.
        output_range: the network's image range, mapped to [0, 1].
    """

    def __init__(self, network: nn.Module, latent_shape: Sequence[int], mask_name: str = "mask",
                 output_range: Sequence[float] = (-1.0, 1.0)):
        super().__init__()
        self.network = network
        self.latent_shape = tuple(int(s) for s in latent_shape)
        self.mask_name = mask_name
        self.output_range = (float(output_range[0]), float(output_range[1]))

    def _device(self) -> torch.device:
        param = next(self.network.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    def forward(self, seeds: torch.Tensor, inputs: Optional[Dict[str, torch.Tensor]] = None,
                **conditions: Any) -> Dict[str, torch.Tensor]:
        device = self._device()
        latent = seeded_noise(torch.as_tensor(seeds), self.latent_shape).to(device)
        mask = (inputs or {}).get(self.mask_name)
        if mask is not None:
            if mask.shape[0] != latent.shape[0]:
                raise ValueError(f"{mask.shape[0]} masks for {latent.shape[0]} seeds; give one seed per mask")
            mask = (torch.as_tensor(mask).float().to(device) > 0.5).float()
            image = getattr(self.network, "image_from_mask")(latent, mask)
        else:
            image, mask = self.network(latent)
        low, high = self.output_range
        image = ((image.float() - low) / (high - low)).clamp(0.0, 1.0)
        return {"image": image, "mask": mask.float().round()}
