"""WGAN-GP training (Gulrajani et al. 2017) as an ``iteration_update`` of MONAI's ``SupervisedTrainer``.

One engine iteration = ``n_critic`` critic updates, each on its own real minibatch, followed by one generator
update. The data loader therefore yields ``n_critic * batch_size`` real images per iteration (the
``real_batches`` are its chunks). ``SupervisedTrainer`` holds the generator (``network``) and its optimizer; the
critic and its optimizer live in :class:`WGANGPIteration`. The engine output is a dict of scalars
(``g_loss``, ``d_loss``, ``wasserstein``, ``gp``) for MONAI's ``StatsHandler``.

Class-conditional models take the labels from the batch key ``condition_name`` (real images) and draw
labels for the fakes from the same minibatch, so the class balance follows the training data.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from torch import nn

from medigan_zoo.training.ddp import draw, unwrap


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean of (||grad_x critic(x_hat)||_2 - 1)^2 on random interpolates x_hat of real and fake images."""
    eps = draw(real.shape[0], lambda m: torch.rand((m,) + (1,) * (real.ndim - 1), device=real.device,
                                                   dtype=real.dtype))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    score = critic(x_hat) if labels is None else critic(x_hat, labels)
    grad = torch.autograd.grad(score.sum(), x_hat, create_graph=True)[0]
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


class WGANGPIteration:
    """``iteration_update`` for ``SupervisedTrainer(network=generator, optimizer=generator_optimizer, ...)``.

    Args:
        critic: the critic network (no batch norm).
        critic_optimizer: its optimizer (WGAN-GP: Adam, lr 1e-4, betas (0, 0.9)).
        latent_size: generator latent length; latents are standard normal.
        n_critic: critic updates per generator update.
        gp_weight: gradient penalty weight (lambda, 10 in the paper).
        image_key / condition_name: batch keys of the images and (optional) class labels.
        drift_weight: small penalty on critic(real)^2 that keeps scores near 0 (Karras et al. 2018; 0 disables).
    """

    def __init__(self, critic: nn.Module, critic_optimizer: torch.optim.Optimizer, latent_size: int,
                 n_critic: int = 5, gp_weight: float = 10.0, image_key: str = "image",
                 condition_name: Optional[str] = None, drift_weight: float = 0.0):
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.critic = critic
        self.critic_optimizer = critic_optimizer
        self.latent_size = int(latent_size)
        self.n_critic = int(n_critic)
        self.gp_weight = float(gp_weight)
        self.image_key = image_key
        self.condition_name = condition_name
        self.drift_weight = float(drift_weight)

    def _generate(self, generator: nn.Module, n: int, labels: Optional[torch.Tensor], device) -> torch.Tensor:
        z = draw(n, lambda m: torch.randn(m, self.latent_size, device=device))
        return generator(z) if labels is None else generator(z, labels)

    def _score(self, x: torch.Tensor, labels: Optional[torch.Tensor], frozen: bool = False) -> torch.Tensor:
        critic = unwrap(self.critic) if frozen else self.critic  # frozen: the generator step, no DDP sync
        return critic(x) if labels is None else critic(x, labels)

    def __call__(self, engine: Any, batchdata: Dict[str, Any]) -> Dict[str, float]:
        device = engine.state.device
        images = torch.as_tensor(batchdata[self.image_key]).to(device, non_blocking=engine.non_blocking)
        labels = None
        if self.condition_name is not None:
            labels = torch.as_tensor(batchdata[self.condition_name]).reshape(-1).long().to(device)
        generator = engine.network
        generator.train()
        self.critic.train()
        reals = images.chunk(self.n_critic)
        label_chunks = labels.chunk(self.n_critic) if labels is not None else [None] * len(reals)
        for p in self.critic.parameters():
            p.requires_grad_(True)
        d_loss = wdist = gp = torch.zeros(())
        for real, lab in zip(reals, label_chunks):
            with torch.no_grad():
                fake = self._generate(generator, real.shape[0], lab, device)
            d_real = self._score(real, lab)
            d_fake = self._score(fake, lab)
            gp = gradient_penalty(self.critic, real, fake, lab)
            wdist = d_real.mean() - d_fake.mean()
            d_loss = -wdist + self.gp_weight * gp
            if self.drift_weight:
                d_loss = d_loss + self.drift_weight * (d_real ** 2).mean()
            self.critic_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            self.critic_optimizer.step()
        # generator update on a fresh batch of latents (labels of the last real chunk)
        for p in self.critic.parameters():
            p.requires_grad_(False)
        lab = label_chunks[-1]
        fake = self._generate(generator, reals[-1].shape[0], lab, device)
        g_loss = -self._score(fake, lab, frozen=True).mean()
        engine.optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        engine.optimizer.step()
        return {"g_loss": g_loss.item(), "d_loss": d_loss.item(), "wasserstein": wdist.item(), "gp": gp.item()}
