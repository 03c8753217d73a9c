"""``iteration_update`` for MONAI's ``GanTrainer`` with a FastGAN-style discriminator
(``medigan_zoo.networks.fastgan.FastGANDiscriminator``).

Per minibatch: one discriminator step (hinge loss on DiffAugment-ed real and fake images, plus the L1
reconstruction loss of the discriminator's auxiliary decoder on the real images, plus a lazy R1 penalty every
``r1_interval`` steps) and one generator step (hinge loss on augmented fakes). Fake labels are the real
minibatch's labels, so the class balance follows the data (with ``mode_seeking``, the second half of the
fake batch repeats the first half's labels with other latents). The engine output is a dict of floats for
MONAI's ``StatsHandler``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F

from medigan_zoo.training.augment import DiffAugment, downsample_to
from medigan_zoo.training.ddp import draw, unwrap
from medigan_zoo.training.gan import conditional_batch


class FastGANIteration:
    """Hinge-loss conditional GAN step with DiffAugment, D reconstruction loss and lazy R1.

    Args:
        latent_size: generator latent length (standard normal latents).
        condition_name: batch key of the class labels.
        image_key: batch key of the images (in [-1, 1]).
        augment: the :class:`DiffAugment` applied to real and fake images alike (None: no augmentation).
        recon_weight: weight of the discriminator's L1 reconstruction loss on real images (0 disables; the
            discriminator must then not need ``return_recon``).
        recon_size: side of the reconstruction target (the real image area-downsampled).
        r1_gamma: R1 gradient penalty weight (0 disables); applied every ``r1_interval`` D steps, scaled by
            the interval (lazy regularisation, Karras et al. 2020).
        r1_interval: D steps between R1 penalties.
        mode_seeking: weight of the mode-seeking term of the generator (Mao et al. 2019, MSGAN): the two
            halves of the fake batch (same labels, different latents) are pushed apart,
            ``mean|z1 - z2| / (mean|G(z1) - G(z2)| + eps)``, against mode collapse; 0 disables it.
    """

    def __init__(self, latent_size: int, condition_name: str = "class_label", image_key: str = "image",
                 augment: Optional[DiffAugment] = None, recon_weight: float = 1.0, recon_size: int = 32,
                 r1_gamma: float = 0.0, r1_interval: int = 16, mode_seeking: float = 0.0):
        self.latent_size = int(latent_size)
        self.condition_name = condition_name
        self.image_key = image_key
        self.augment = augment
        self.recon_weight = float(recon_weight)
        self.recon_size = int(recon_size)
        self.r1_gamma = float(r1_gamma)
        self.r1_interval = max(1, int(r1_interval))
        self.mode_seeking = float(mode_seeking)

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment(x) if self.augment is not None else x

    def _r1(self, disc: torch.nn.Module, real: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        real = real.detach().requires_grad_(True)
        score = disc(self._aug(real), labels)
        (grad,) = torch.autograd.grad(score.sum(), real, create_graph=True)
        return grad.pow(2).sum(dim=(1, 2, 3)).mean()

    def __call__(self, engine: Any, batchdata: Dict[str, Any]) -> Dict[str, float]:
        real, labels, gen, disc = conditional_batch(engine, batchdata, self.image_key, self.condition_name)
        device = engine.state.device
        n = real.shape[0]
        z = draw(n, lambda m: torch.randn(m, self.latent_size, device=device))
        fake_labels = labels
        if self.mode_seeking > 0 and n >= 2:  # second half: the first half's labels, other latents
            half = n // 2
            fake_labels = torch.cat([labels[:half], labels[:half], labels[2 * half:]])

        # discriminator step
        fake = gen(z, fake_labels)
        real_aug = self._aug(real)
        recon_loss = torch.zeros((), device=device)
        if self.recon_weight > 0:
            d_real, recon = disc(real_aug, labels, return_recon=True)
            recon_loss = F.l1_loss(recon, downsample_to(real_aug, recon.shape[-1]))
        else:
            d_real = disc(real_aug, labels)
        d_fake = disc(self._aug(fake.detach()), fake_labels)
        d_loss = engine.d_loss_function(d_real, d_fake)
        total = d_loss + self.recon_weight * recon_loss
        r1 = torch.zeros((), device=device)
        if self.r1_gamma > 0 and engine.state.iteration % self.r1_interval == 0:
            r1 = self._r1(disc, real, labels)
            total = total + 0.5 * self.r1_gamma * self.r1_interval * r1
        engine.d_optimizer.zero_grad(set_to_none=True)
        total.backward()
        engine.d_optimizer.step()

        # generator step
        for p in disc.parameters():
            p.requires_grad_(False)
        g_loss = engine.g_loss_function(unwrap(disc)(self._aug(fake), fake_labels))  # frozen D: no DDP sync
        ms = torch.zeros((), device=device)
        if self.mode_seeking > 0 and n >= 2:
            half = n // 2
            ms = (z[:half] - z[half:2 * half]).abs().mean() / (
                (fake[:half] - fake[half:2 * half]).abs().mean() + 1e-5)
        engine.g_optimizer.zero_grad(set_to_none=True)
        (g_loss + self.mode_seeking * ms).backward()
        engine.g_optimizer.step()
        for p in disc.parameters():
            p.requires_grad_(True)
        return {"g_loss": g_loss.item(), "d_loss": d_loss.item(), "d_real": d_real.mean().item(),
                "d_fake": d_fake.mean().item(), "recon": recon_loss.item(), "r1": r1.item(), "ms": ms.item()}

