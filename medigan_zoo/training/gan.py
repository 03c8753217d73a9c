"""Conditional GAN training on MONAI's ``GanTrainer`` (hinge loss, spectral-norm projection discriminator).

``GanTrainer`` holds the generator / discriminator and their optimizers; :class:`ConditionalGANIteration` is
its ``iteration_update``: one discriminator and one generator step per minibatch, the fake labels drawn from
the real minibatch (so the class balance follows the data). The engine output is a dict of floats
(``g_loss``, ``d_loss``, ``d_real``, ``d_fake``) for MONAI's ``StatsHandler``. Optional DiffAugment-style
translation (Zhao et al. 2020) is applied to real and fake images alike, which helps on small data sets.

:class:`SampleGridSaver` writes a sample grid every few epochs (to watch training); the shipped weights are
written with :mod:`medigan_zoo.training.weights`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from medigan_zoo.training.ddp import draw, is_main, unwrap


def hinge_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))."""
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def hinge_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -mean(D(fake))."""
    return -d_fake.mean()


def translate(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Shift every image by a random integer offset of up to ``ratio`` of its size (zero padding), differentiably."""
    if ratio <= 0:
        return x
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = draw(b, lambda m: torch.randint(-sh, sh + 1, (m, 1, 1), device=x.device))
    dx = draw(b, lambda m: torch.randint(-sw, sw + 1, (m, 1, 1), device=x.device))
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = (gy[None] + dy).clamp(-1, h)  # index into the zero-padded image
    gx = (gx[None] + dx).clamp(-1, w)
    padded = F.pad(x, (1, 1, 1, 1))
    idx = ((gy + 1) * (w + 2) + (gx + 1)).reshape(b, 1, -1).expand(-1, x.shape[1], -1)
    return padded.reshape(b, x.shape[1], -1).gather(2, idx).reshape_as(x)


def conditional_batch(engine: Any, batchdata: Dict[str, Any], image_key: str,
                      condition_name: str) -> Tuple[torch.Tensor, torch.Tensor, nn.Module, nn.Module]:
    """The real images and their (B,) long labels on the engine's device, and the engine's generator and
    discriminator switched to training mode (the start of every conditional GAN step)."""
    device = engine.state.device
    real = torch.as_tensor(batchdata[image_key]).float().to(device, non_blocking=engine.non_blocking)
    labels = torch.as_tensor(batchdata[condition_name]).reshape(-1).long().to(device)
    gen, disc = engine.g_network, engine.d_network
    gen.train()
    disc.train()
    return real, labels, gen, disc


class ConditionalGANIteration:
    """``iteration_update`` for ``GanTrainer``: hinge-loss conditional GAN step.

    Args:
        latent_size: generator latent length (standard normal latents).
        condition_name: batch key of the class labels.
        image_key: batch key of the images (in the generator's output range, [-1, 1]).
        translation: DiffAugment translation ratio applied to real and fake images before D (0 disables).
        d_steps: discriminator steps per generator step (each on the same real minibatch, fresh fakes).
    """

    def __init__(self, latent_size: int, condition_name: str = "class_label", image_key: str = "image",
                 translation: float = 0.0, d_steps: int = 1):
        self.latent_size = int(latent_size)
        self.condition_name = condition_name
        self.image_key = image_key
        self.translation = float(translation)
        self.d_steps = max(1, int(d_steps))

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return translate(x, self.translation)

    def __call__(self, engine: Any, batchdata: Dict[str, Any]) -> Dict[str, float]:
        real, labels, gen, disc = conditional_batch(engine, batchdata, self.image_key, self.condition_name)
        device = engine.state.device
        n = real.shape[0]
        d_loss = d_real = d_fake = torch.zeros(())
        fake = real
        for _ in range(self.d_steps):
            z = draw(n, lambda m: torch.randn(m, self.latent_size, device=device))  # under DDP: global batch
            fake = gen(z, labels)
            d_real = disc(self._aug(real), labels)
            d_fake = disc(self._aug(fake.detach()), labels)
            d_loss = engine.d_loss_function(d_real, d_fake)
            engine.d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            engine.d_optimizer.step()
        for p in disc.parameters():
            p.requires_grad_(False)
        g_loss = engine.g_loss_function(unwrap(disc)(self._aug(fake), labels))  # frozen D: no DDP sync
        engine.g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        engine.g_optimizer.step()
        for p in disc.parameters():
            p.requires_grad_(True)
        return {"g_loss": g_loss.item(), "d_loss": d_loss.item(),
                "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}


class SampleGridSaver:
    """Bundle handler: every ``every_n_epochs`` epochs write ``output_dir/samples_epoch_NNN.png`` with
    ``per_class`` samples of each class (one row per class) from ``generator`` in eval mode, fixed latents.
    ``name_format`` (fields ``epoch``, ``iteration``) names the file; ``scale`` enlarges the grid.
    """

    def __init__(self, generator: nn.Module, latent_size: int, num_classes: int, output_dir: Union[str, Path],
                 every_n_epochs: int = 5, per_class: int = 8, seed: int = 0,
                 name_format: str = "samples_epoch_{epoch:03d}.png", scale: int = 2):
        self.generator = generator
        self.latent_size = int(latent_size)
        self.num_classes = int(num_classes)
        self.output_dir = Path(output_dir)
        self.every_n_epochs = max(1, int(every_n_epochs))
        self.per_class = int(per_class)
        self.seed = int(seed)
        self.name_format = name_format
        self.scale = int(scale)

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every_n_epochs), self)

    @torch.no_grad()
    def __call__(self, engine: Any) -> None:
        from medigan_zoo.engine.preview import save_sample_grid

        if not is_main():  # under torchrun rank 0 writes the grids
            return

        device = next(self.generator.parameters()).device
        rng = torch.Generator().manual_seed(self.seed)
        z = torch.randn(self.per_class, self.latent_size, generator=rng).repeat(self.num_classes, 1).to(device)
        labels = torch.arange(self.num_classes).repeat_interleave(self.per_class).to(device)
        was_training = self.generator.training
        self.generator.eval()
        images = (self.generator(z, labels).float().cpu() + 1.0) / 2.0
        self.generator.train(was_training)
        path = self.output_dir / self.name_format.format(epoch=engine.state.epoch, iteration=engine.state.iteration)
        save_sample_grid(images.clamp(0, 1), path, nrow=self.per_class, scale=self.scale)
