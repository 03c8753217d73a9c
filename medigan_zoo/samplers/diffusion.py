"""``DiffusionSampler``: seeds (and class labels) in, DDIM samples out (docs/bundle_contract.md, section 4).

Every random number of sample ``b`` (its initial noise and, for ``eta > 0``, the noise of each stochastic DDIM
step) comes from a CPU ``torch.Generator`` seeded with ``seeds[b]``, so sample ``i`` is the same whatever the
batch size. The network is a MONAI ``DiffusionModelUNet`` trained as a DDPM on images scaled to ``data_range``,
predicting the noise or the velocity (the scheduler's ``prediction_type``: ``"epsilon"`` or ``"v_prediction"``);
sampling uses MONAI's ``DDIMScheduler`` with ``num_inference_steps`` steps and, for models trained with a null
class, classifier-free guidance.

``timestep_spacing``: MONAI 1.6's ``DDIMScheduler.set_timesteps`` spaces the timesteps linearly from T - 1 to 0
("linspace") while its ``step`` always jumps ``T // steps``; with few steps the two disagree (5 steps: the sample
made for t = 799 is next given to the network as t = 749, and the last call is told t = 0 while the sample still
holds the noise of t = 50, which stays in the output). "trailing" (Lin et al. 2024, "Common diffusion noise
schedules and sample steps are flawed") uses ``t = T - 1 - k * (T // steps)``, so every step lands exactly on the
next timestep and the chain starts from pure noise at the last training step.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import torch
from torch import nn

from medigan_zoo.samplers.noise import seeded_generators


def predicted_x0_eps(out: torch.Tensor, x: torch.Tensor, alpha_bar: torch.Tensor,
                     prediction_type: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """(clean image, noise) implied by the network output ``out`` for the noisy sample ``x`` at cumulative alpha
    ``alpha_bar``: ``x = sqrt(a) x0 + sqrt(1 - a) eps``; ``out`` is ``eps`` or ``v = sqrt(a) eps - sqrt(1 - a) x0``."""
    if prediction_type == "v_prediction":
        return alpha_bar ** 0.5 * x - (1 - alpha_bar) ** 0.5 * out, alpha_bar ** 0.5 * out + (1 - alpha_bar) ** 0.5 * x
    return (x - (1 - alpha_bar) ** 0.5 * out) / alpha_bar ** 0.5, out


class DiffusionSampler(nn.Module):
    """DDIM sampler around a class-conditional (or unconditional) epsilon- or v-prediction UNet.

    Args:
        network: ``DiffusionModelUNet`` (called as ``network(x, timesteps, class_labels=...)``) or a module with
            the same call signature (e.g. a traced export taking ``(x, timesteps, class_labels)``).
        scheduler: a ``monai.networks.schedulers.DDIMScheduler`` built with the training noise schedule and
            ``prediction_type`` ("epsilon" or "v_prediction").
        num_inference_steps: DDIM steps (more: slower, usually sharper; 1000 = the training chain).
        spatial_shape: output spatial shape ``[H, W]`` (or ``[D, H, W]``).
        num_channels: output channels.
        condition_names: names of the keyword conditions passed to ``forward``; the first (if any) is the class
            label given to the network as ``class_labels``.
        guidance_scale: classifier-free guidance weight; 1.0 = plain conditional sampling. Values != 1 need
            ``null_class`` (the label the model was trained with for "no condition").
        null_class: label of the unconditional class, or None when the model has none.
        eta: DDIM stochasticity (0 = deterministic DDIM, 1 = DDPM-like variance).
        data_range: range of the training images (the network's sample space).
        output_range: range of the returned images.
        timestep_spacing: "linspace" (MONAI's ``set_timesteps``, the default of bundles before v-prediction) or
            "trailing" (``t = T - 1 - k * (T // steps)``, consistent with the scheduler's step; module docstring).
    """

    def __init__(self, network: nn.Module, scheduler: Any, num_inference_steps: int = 50,
                 spatial_shape: Sequence[int] = (28, 28), num_channels: int = 1,
                 condition_names: Sequence[str] = ("class_label",), guidance_scale: float = 1.0,
                 null_class: Optional[int] = None, eta: float = 0.0,
                 data_range: Tuple[float, float] = (-1.0, 1.0), output_range: Tuple[float, float] = (0.0, 1.0),
                 timestep_spacing: str = "linspace"):
        super().__init__()
        if int(num_inference_steps) < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if float(guidance_scale) != 1.0 and null_class is None:
            raise ValueError("guidance_scale != 1 needs null_class (the model's unconditional label)")
        if float(eta) < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        if timestep_spacing not in ("linspace", "trailing"):
            raise ValueError(f"timestep_spacing must be 'linspace' or 'trailing', got {timestep_spacing!r}")
        prediction = str(getattr(scheduler, "prediction_type", "epsilon"))
        if prediction not in ("epsilon", "v_prediction"):
            raise ValueError(f"scheduler prediction_type {prediction!r} is not supported ('epsilon', 'v_prediction')")
        self.network = network
        self.scheduler = scheduler
        self.num_inference_steps = int(num_inference_steps)
        self.spatial_shape = tuple(int(s) for s in spatial_shape)
        self.num_channels = int(num_channels)
        self.condition_names = tuple(condition_names)
        self.guidance_scale = float(guidance_scale)
        self.null_class = None if null_class is None else int(null_class)
        self.eta = float(eta)
        self.data_range = (float(data_range[0]), float(data_range[1]))
        self.output_range = (float(output_range[0]), float(output_range[1]))
        self.timestep_spacing = timestep_spacing
        self.prediction_type = prediction

    # --- randomness: one CPU generator per sample --------------------------------------------------
    def _generators(self, seeds: torch.Tensor) -> list:
        return seeded_generators(seeds)

    def _noise(self, generators: list) -> torch.Tensor:
        shape = (self.num_channels,) + self.spatial_shape
        return torch.stack([torch.randn(shape, generator=g) for g in generators])

    def _labels(self, conditions: dict, batch: int, device: torch.device) -> Optional[torch.Tensor]:
        unknown = set(conditions) - set(self.condition_names)
        if unknown:
            raise ValueError(f"unknown condition(s) {sorted(unknown)}; this model takes {list(self.condition_names)}")
        if not self.condition_names:
            return None
        name = self.condition_names[0]
        if name not in conditions or conditions[name] is None:
            raise ValueError(f"condition {name!r} is required (a (B,) tensor of class labels)")
        labels = torch.as_tensor(conditions[name]).reshape(-1).long()
        if labels.numel() == 1 and batch > 1:
            labels = labels.expand(batch)
        if labels.numel() != batch:
            raise ValueError(f"condition {name!r} has {labels.numel()} values for {batch} seeds")
        return labels.to(device)

    # --- one network evaluation (with classifier-free guidance) ------------------------------------
    def _model_output(self, x: torch.Tensor, t: torch.Tensor, labels: Optional[torch.Tensor]) -> torch.Tensor:
        timesteps = t.expand(x.shape[0]).to(x.device)
        if labels is None:
            return self.network(x, timesteps)
        if self.guidance_scale == 1.0:
            return self.network(x, timesteps, class_labels=labels)
        assert self.null_class is not None  # __init__: guidance_scale != 1 needs null_class
        null = torch.full_like(labels, self.null_class)
        out = self.network(torch.cat([x, x]), torch.cat([timesteps, timesteps]),
                           class_labels=torch.cat([labels, null]))
        cond, uncond = out.chunk(2)
        return uncond + self.guidance_scale * (cond - uncond)

    def _timesteps(self) -> torch.Tensor:
        """The chain's timesteps, high to low (the scheduler's, or the trailing ones)."""
        sched = self.scheduler
        sched.set_timesteps(self.num_inference_steps)
        if self.timestep_spacing == "linspace":
            return sched.timesteps
        ratio = sched.num_train_timesteps // self.num_inference_steps
        return (sched.num_train_timesteps - 1) - torch.arange(self.num_inference_steps, dtype=torch.long) * ratio

    def _step(self, out: torch.Tensor, t: int, x: torch.Tensor, generators: list) -> torch.Tensor:
        """One DDIM step; the eta > 0 noise of sample b comes from generator b (MONAI's own step draws one batch)."""
        sched = self.scheduler
        if self.eta == 0.0:
            return sched.step(out, t, x)[0]
        prev_t = t - sched.num_train_timesteps // sched.num_inference_steps
        alpha_t = sched.alphas_cumprod[t]
        alpha_prev = sched.alphas_cumprod[prev_t] if prev_t >= 0 else sched.final_alpha_cumprod
        x0, eps = predicted_x0_eps(out, x, alpha_t, self.prediction_type)
        if sched.clip_sample:
            x0 = x0.clamp(sched.clip_sample_values[0], sched.clip_sample_values[1])
        std = self.eta * sched._get_variance(t, prev_t) ** 0.5
        prev = alpha_prev ** 0.5 * x0 + (1 - alpha_prev - std ** 2) ** 0.5 * eps
        noise = torch.stack([torch.randn(x.shape[1:], generator=g) for g in generators]).to(x.device, x.dtype)
        return prev + std * noise

    @torch.no_grad()
    def forward(self, seeds: torch.Tensor, **conditions: Any) -> torch.Tensor:
        """``seeds``: (B,) per-sample seeds; ``conditions``: name -> (B,) labels. Returns (B, C, *spatial) float32."""
        seeds = torch.as_tensor(seeds).reshape(-1)
        device = next(self.network.parameters(), torch.empty(0)).device
        generators = self._generators(seeds)
        labels = self._labels(conditions, len(generators), device)
        x = self._noise(generators).to(device)
        for t in self._timesteps():
            t_int = int(t)
            out = self._model_output(x, torch.as_tensor(t_int, dtype=torch.long).reshape(1), labels)
            x = self._step(out, t_int, x, generators)
        lo, hi = self.data_range
        out_lo, out_hi = self.output_range
        x = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
        return (x * (out_hi - out_lo) + out_lo).float()


class ClassUNetExport(nn.Module):
    """Positional-argument wrapper for tracing a ``DiffusionModelUNet``: ``(x, timesteps, class_labels) -> eps``.

    ``DiffusionModelUNet`` does not compile with ``torch.jit.script`` (its attention block reshapes with a
    star-expanded shape); ``torch.jit.trace`` of this wrapper gives a TorchScript module that runs without MONAI
    for any batch size, timesteps and labels.
    """

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
        return self.network(x, timesteps, class_labels=class_labels)


def trace_unet(network: nn.Module, spatial_shape: Sequence[int], num_channels: int = 1) -> torch.jit.ScriptModule:
    """TorchScript (traced) export of a class-conditional ``DiffusionModelUNet`` (see ``ClassUNetExport``)."""
    import warnings

    network = network.eval()
    shape = (2, num_channels) + tuple(int(s) for s in spatial_shape)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([3, 700])
    c = torch.tensor([0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.jit.trace(ClassUNetExport(network), (x, t, c))
