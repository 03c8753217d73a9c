"""``LatentDiffusionSampler``: a latent diffusion bundle (MONAI's ``LatentDiffusionInferer`` layout: an autoencoder,
a diffusion UNet on its latent, a DDPM/DDIM scheduler) on the zoo's fast path: seeds (and conditions) in, decoded
images out.

It steps as ``LatentDiffusionInferer.sample`` (MONAI 1.6) does: for each of the scheduler's timesteps ``t``,
``model_output = unet(z, timesteps=torch.Tensor((t,)), context=c)`` and ``z = scheduler.step(model_output, t, z)``,
then ``image = autoencoder.decode_stage_2_outputs(z / scale_factor)``. Conditioned bundles (MONAI's 3D brain LDM)
take their conditions as that bundle's own sampler does: ``c`` is the ``(B, 1, n)`` stack of the ``n`` condition
values, given as cross-attention context and, when the UNet takes more input channels than the latent has, also
concatenated to ``z`` as constant channels. The latent noise of sample ``b`` and the noise of every stochastic step
come, in that order, from one CPU generator seeded with ``seeds[b]`` (:mod:`medigan_zoo.samplers.noise`): the random
stream of the bundle run after ``torch.manual_seed(seed)``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from medigan_zoo.samplers.noise import seeded_generators


class LatentDiffusionSampler(nn.Module):
    """Latent diffusion sampling with per-sample seeded latent noise (module docstring).

    Args:
        unet: the diffusion UNet (``DiffusionModelUNet``).
        autoencoder: the autoencoder whose ``decode_stage_2_outputs`` maps a latent to an image.
        scheduler: ``DDPMScheduler`` or ``DDIMScheduler``; ``set_timesteps(num_inference_steps)`` is applied here.
        latent_shape: one sample's latent ``(C, *spatial)`` in MONAI's axis order.
        num_inference_steps: denoising steps.
        scale_factor: the latent is divided by it before decoding (1.0: decoded as is).
        condition_names: the conditions, in the order the bundle stacks them (empty: unconditioned).
    """

    def __init__(self, unet: nn.Module, autoencoder: nn.Module, scheduler: Any, latent_shape: Sequence[int],
                 num_inference_steps: int, scale_factor: float = 1.0, condition_names: Sequence[str] = ()):
        super().__init__()
        if int(num_inference_steps) < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if not float(scale_factor):
            raise ValueError("scale_factor must not be 0")
        self.unet = unet
        self.autoencoder = autoencoder
        self.scheduler = scheduler
        self.latent_shape = tuple(int(s) for s in latent_shape)
        self.num_inference_steps = int(num_inference_steps)
        self.scale_factor = float(scale_factor)
        self.condition_names = tuple(condition_names)
        scheduler.set_timesteps(self.num_inference_steps)

    def _context(self, conditions: dict, batch: int, device: torch.device) -> Any:
        """``(B, 1, n)`` float context of the conditions (None when unconditioned)."""
        if not self.condition_names:
            if conditions:
                raise ValueError(f"this bundle takes no conditions, got {sorted(conditions)}")
            return None
        missing = [n for n in self.condition_names if n not in conditions]
        extra = sorted(set(conditions) - set(self.condition_names))
        if missing or extra:
            raise ValueError(f"this bundle takes the conditions {list(self.condition_names)}; missing {missing}, "
                             f"unknown {extra}")
        values = [torch.as_tensor(conditions[n], dtype=torch.float32).reshape(-1).expand(batch)
                  for n in self.condition_names]
        return torch.stack(values, dim=1).unsqueeze(1).to(device)

    @torch.no_grad()
    def forward(self, seeds: torch.Tensor, **conditions: Any) -> torch.Tensor:
        """``seeds``: (B,) per-sample seeds. Returns the decoded (B, C, *spatial) in MONAI's axis order, float32."""
        device = next(self.unet.parameters(), torch.empty(0)).device
        generators = seeded_generators(torch.as_tensor(seeds).reshape(-1))
        latent = torch.stack([torch.randn(self.latent_shape, generator=g) for g in generators]).to(device)
        context = self._context(conditions, len(generators), device)
        concat = None
        if context is not None and int(getattr(self.unet, "in_channels", 0) or 0) > self.latent_shape[0]:
            concat = context.reshape(context.shape[0], -1, *([1] * (latent.ndim - 2))).expand(
                -1, -1, *latent.shape[2:])
        for t in self.scheduler.timesteps:
            model_input = latent if concat is None else torch.cat((latent, concat), dim=1)
            output = self.unet(model_input, timesteps=torch.Tensor((t,)).to(device), context=context)
            # one step per sample with its own generator keeps each sample's stream its own whatever the batch
            steps = [self.scheduler.step(output[b:b + 1].cpu(), t, latent[b:b + 1].cpu(), generator=g)[0]
                     for b, g in enumerate(generators)]
            latent = torch.cat(steps).to(device)
        decode: Any = self.autoencoder.decode_stage_2_outputs
        return decode(latent / self.scale_factor).float()
