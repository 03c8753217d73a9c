"""Class-conditional GAN training with the hinge loss, as an ``iteration_update`` of MONAI's ``SupervisedTrainer``.

``SupervisedTrainer`` holds the generator (``network``) and its optimizer; the discriminator and its optimizer
live in :class:`HingeGANIteration`. Each iteration: one discriminator step on a real minibatch and fakes of the
same class labels, then one generator step. The engine output is a dict of scalars for MONAI's ``StatsHandler``.
"""
from __future__ import annotations

from typing import Any, Dict

import torch
from torch import nn
from torch.nn import functional as F


class HingeGANIteration:
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018) for ``generator(z, labels)`` / ``discriminator(x, labels)``.

    Args:
        discriminator: e.g. ``medigan_zoo.networks.projection_discriminator.ProjectionDiscriminator``.
        discriminator_optimizer: its optimizer.
        latent_size: generator latent length (standard normal latents).
        image_key / condition_name: batch keys of the images and class labels.
    """

    def __init__(self, discriminator: nn.Module, discriminator_optimizer: torch.optim.Optimizer, latent_size: int,
                 image_key: str = "image", condition_name: str = "class_label"):
        self.discriminator = discriminator
        self.discriminator_optimizer = discriminator_optimizer
        self.latent_size = int(latent_size)
        self.image_key = image_key
        self.condition_name = condition_name

    def __call__(self, engine: Any, batchdata: Dict[str, Any]) -> Dict[str, float]:
        device = engine.state.device
        real = torch.as_tensor(batchdata[self.image_key]).to(device)
        labels = torch.as_tensor(batchdata[self.condition_name]).reshape(-1).long().to(device)
        generator = engine.network
        generator.train()
        self.discriminator.train()
        z = torch.randn(real.shape[0], self.latent_size, device=device)
        with torch.no_grad():
            fake = generator(z, labels)
        d_real = self.discriminator(real, labels)
        d_fake = self.discriminator(fake, labels)
        d_loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.discriminator_optimizer.step()
        for p in self.discriminator.parameters():
            p.requires_grad_(False)
        z = torch.randn(real.shape[0], self.latent_size, device=device)
        g_loss = -self.discriminator(generator(z, labels), labels).mean()
        engine.optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        engine.optimizer.step()
        for p in self.discriminator.parameters():
            p.requires_grad_(True)
        return {"g_loss": g_loss.item(), "d_loss": d_loss.item(), "d_real": d_real.mean().item(),
                "d_fake": d_fake.mean().item()}
