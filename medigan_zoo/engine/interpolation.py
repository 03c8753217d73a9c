"""Latent interpolation for GAN-like bundles: a row of samples between two seeds' latents.

Users judge a GAN's smoothness by walking between two latents. The end points are the latents the sampler draws
itself (``medigan_zoo.samplers.noise``), for sample 0 of a run with base seed ``seed_a`` and of one with ``seed_b``,
so the first and last image equal ``generate(..., seed=seed_a)`` / ``seed_b``'s first sample.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import torch

from medigan_zoo.core.errors import GenerationError
from medigan_zoo.core.seeding import sample_seed

#: most images in one interpolation row
MAX_STEPS = 32


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the rows of ``a`` and ``b`` (flattened) at fractions ``t`` (T,) -> (T, ...).

    Gaussian latents keep their norm along a great circle (a straight line would pass through unlikely, low-norm
    latents); nearly parallel latents fall back to a straight line.
    """
    fa, fb = a.reshape(-1).double(), b.reshape(-1).double()
    cos = torch.clamp(fa @ fb / (fa.norm() * fb.norm()).clamp_min(1e-12), -1.0, 1.0)
    omega = torch.arccos(cos)
    t = t.double().reshape(-1, 1)
    if float(omega.sin().abs()) < 1e-6:
        rows = (1 - t) * fa + t * fb
    else:
        rows = (torch.sin((1 - t) * omega) * fa + torch.sin(t * omega) * fb) / torch.sin(omega)
    return rows.reshape(-1, *a.shape).to(a.dtype)


def _uniform(module: Any) -> bool:
    return getattr(module, "latent_distribution", None) == "uniform" or bool(getattr(module, "uniform", False))


def interpolate(sampler: Any, seed_a: int, seed_b: int, steps: int = 8,
                conditions: Optional[Mapping[str, Any]] = None) -> torch.Tensor:
    """``steps`` images (steps, C, *spatial) in [0, 1] from seed ``seed_a``'s latent to ``seed_b``'s.

    Args:
        sampler: a loaded :class:`~medigan_zoo.runtime.sampler.BundleSampler` of a GAN-like bundle.
        seed_a, seed_b: base seeds of the two end points (sample 0 of each run).
        steps: images in the row, 2..MAX_STEPS, end points included.
        conditions: one value per condition (defaults for the others), the same for the whole row.
    Raises:
        GenerationError: the model has no latent per sample (diffusion), bad steps or conditions.
    """
    from medigan_zoo.engine.runner import MAX_SEED, _check_int
    from medigan_zoo.runtime.sample import condition_plan

    steps = _check_int("steps", steps, 2, MAX_STEPS)
    seed_a = _check_int("seed_a", seed_a, 0, MAX_SEED)
    seed_b = _check_int("seed_b", seed_b, 0, MAX_SEED)
    if any(isinstance(v, (list, tuple)) for v in (conditions or {}).values()):
        raise GenerationError("Interpolation takes one value per condition, not a list.")
    latents = sampler.latents([sample_seed(seed_a, 0), sample_seed(seed_b, 0)])
    t = torch.linspace(0.0, 1.0, steps)
    if _uniform(sampler.module):
        rows = torch.lerp(latents[0:1], latents[1:2], t.reshape(-1, *([1] * (latents.ndim - 1))))
    else:
        rows = slerp(latents[0], latents[1], t)
    plan = condition_plan(sampler, conditions)
    tensors = plan.tensors([plan.at(0)] * steps, sampler.device) if plan.specs else None
    return sampler.normalized("image", sampler.decode_latents(rows, tensors)["image"])
