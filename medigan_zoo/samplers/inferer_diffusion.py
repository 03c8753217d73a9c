"""``InfererDiffusionSampler``: a bundle that samples with MONAI's ``DiffusionInferer`` (e.g. MONAI's MedNIST DDPM),
on the zoo's fast path: seeds in, images out, one forward pass per step for the whole batch.

It steps exactly as ``DiffusionInferer.sample`` (MONAI 1.6) does without conditioning: for each of the
scheduler's timesteps ``t``, ``model_output = network(x, timesteps=torch.Tensor((t,)))`` and
``x = scheduler.step(model_output, t, x)``. What it adds is the zoo's per-sample randomness: the initial noise of
sample ``b`` and the noise of every stochastic step come, in that order, from one CPU ``torch.Generator`` seeded with
``seeds[b]`` (:mod:`medigan_zoo.samplers.noise`). For one sample this is the random stream of MONAI running the
bundle after ``torch.manual_seed(seed)`` (its ``noise`` drawn first, then one draw per step), so the zoo's sample for
seed ``s`` equals what ``monai.bundle run`` makes after ``torch.manual_seed(s)`` (tests/test_foreign_bundles.py).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from medigan_zoo.samplers.noise import seeded_generators


class InfererDiffusionSampler(nn.Module):
    """DiffusionInferer-style sampling with per-sample seeded noise (module docstring).

    Args:
        network: the bundle's diffusion UNet (called as ``network(x, timesteps=...)``).
        scheduler: the bundle's scheduler (``DDPMScheduler`` or ``DDIMScheduler``: their ``step`` takes a
            ``generator``); ``set_timesteps(num_inference_steps)`` is applied to it here.
        noise_shape: one sample's noise ``(C, *spatial)`` in MONAI's axis order.
        distribution: "uniform" (``torch.rand``, as MONAI's MedNIST DDPM draws it) or "normal".
        num_inference_steps: denoising steps (the bundle's scheduler runs ``num_train_timesteps`` by default).
    """

    def __init__(self, network: nn.Module, scheduler: Any, noise_shape: Sequence[int], distribution: str,
                 num_inference_steps: int):
        super().__init__()
        if distribution not in ("uniform", "normal"):
            raise ValueError(f"distribution must be 'uniform' or 'normal', got {distribution!r}")
        if int(num_inference_steps) < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        self.network = network
        self.scheduler = scheduler
        self.noise_shape = tuple(int(s) for s in noise_shape)
        self.distribution = distribution
        self.num_inference_steps = int(num_inference_steps)
        scheduler.set_timesteps(self.num_inference_steps)

    @torch.no_grad()
    def forward(self, seeds: torch.Tensor, **conditions: Any) -> torch.Tensor:
        """``seeds``: (B,) per-sample seeds. Returns (B, C, *spatial) in MONAI's axis order, float32."""
        if conditions:
            raise ValueError(f"this bundle takes no conditions, got {sorted(conditions)}")
        device = next(self.network.parameters(), torch.empty(0)).device
        generators = seeded_generators(torch.as_tensor(seeds).reshape(-1))
        draw = torch.rand if self.distribution == "uniform" else torch.randn
        image = torch.stack([draw(self.noise_shape, generator=g) for g in generators]).to(device)
        for t in self.scheduler.timesteps:
            output = self.network(image, timesteps=torch.Tensor((t,)).to(device))
            # the scheduler's step draws its noise from the generator it is given: one call per sample, on CPU
            # (the generators are CPU ones), keeps each sample's stream its own whatever the batch
            steps = [self.scheduler.step(output[b:b + 1].cpu(), t, image[b:b + 1].cpu(), generator=g)[0]
                     for b, g in enumerate(generators)]
            image = torch.cat(steps).to(device)
        return image.float()
