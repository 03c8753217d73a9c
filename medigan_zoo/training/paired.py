"""Training steps of the paired models on MONAI's ``GanTrainer`` (``iteration_update``) and their previews.

* :class:`Pix2PixIteration`: pix2pix (Isola et al. 2017): a U-Net generator translates the source image; a
  PatchGAN discriminator (MONAI ``PatchDiscriminator``) sees (source, target) or (source, translation) stacked as
  channels; generator loss = hinge adversarial + ``l1_weight`` * L1(translation, target).
* :class:`TumorPairIteration`: a :class:`medigan_zoo.networks.paired.TumorPairGenerator` against a
  :class:`TumorPairDiscriminator`: the mask-conditioned image generator is trained on the real masks of the
  minibatch (so it serves user masks), the pair discriminator sees (image, mask); the mask generator is trained
  against a mask discriminator on the minibatch's non-empty real masks. Hinge losses; DiffAugment translation
  shifts each (image, mask) pair together.

Images are in [-1, 1]; masks are {0, 1} in the batch and 2 * mask - 1 where a discriminator sees them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from medigan_zoo.networks.gan2d import ProjectionDiscriminator
from medigan_zoo.networks.paired import patch_scores
from medigan_zoo.training.ddp import draw
from medigan_zoo.training.gan import translate


def _batch(engine: Any, batchdata: Dict[str, Any], *keys: str) -> Sequence[torch.Tensor]:
    device = engine.state.device
    engine.g_network.train()
    engine.d_network.train()
    return [torch.as_tensor(batchdata[k]).float().to(device, non_blocking=engine.non_blocking) for k in keys]


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class _FrozenDiscriminator:
    """Context: the discriminator's parameters need no gradient during the generator step."""

    def __init__(self, disc: nn.Module):
        self.disc = disc

    def __enter__(self) -> None:
        for p in self.disc.parameters():
            p.requires_grad_(False)

    def __exit__(self, *exc: Any) -> None:
        for p in self.disc.parameters():
            p.requires_grad_(True)


class Pix2PixIteration:
    """``iteration_update`` for ``GanTrainer``: one PatchGAN discriminator step and one generator step.

    Args:
        source_key / target_key: batch keys of the input and the wanted output (both in [-1, 1]).
        l1_weight: weight of the L1 term of the generator loss (pix2pix uses 100 with a BCE adversarial loss).
    """

    def __init__(self, source_key: str = "source", target_key: str = "target", l1_weight: float = 100.0):
        self.source_key, self.target_key = source_key, target_key
        self.l1_weight = float(l1_weight)

    def __call__(self, engine: Any, batchdata: Dict[str, Any]) -> Dict[str, float]:
        source, target = _batch(engine, batchdata, self.source_key, self.target_key)
        gen, disc = engine.g_network, engine.d_network
        fake = gen(source)
        d_real = patch_scores(disc, torch.cat([source, target], 1))
        d_fake = patch_scores(disc, torch.cat([source, fake.detach()], 1))
        d_loss = engine.d_loss_function(d_real, d_fake)
        _step(engine.d_optimizer, d_loss)
        with _FrozenDiscriminator(disc):
            adv = engine.g_loss_function(patch_scores(disc, torch.cat([source, fake], 1)))
            l1 = F.l1_loss(fake, target)
            g_loss = adv + self.l1_weight * l1
            _step(engine.g_optimizer, g_loss)
        return {"g_loss": g_loss.item(), "g_adv": adv.item(), "l1": l1.item(), "d_loss": d_loss.item(),
                "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}


class TumorPairDiscriminator(nn.Module):
    """The two discriminators of the tumor model in one module (one optimizer): ``pair`` scores (image, mask)
    stacked as 2 channels, ``mask`` scores masks alone."""

    def __init__(self, pair_channels: Sequence[int] = (32, 64, 128, 256),
                 mask_channels: Sequence[int] = (16, 32, 64, 128)):
        super().__init__()
        self.pair = ProjectionDiscriminator(in_channels=2, num_classes=1, channels=pair_channels)
        # no mask discriminator when the masks are not learned (TumorBankPairGenerator: ``mask_channels=[]``)
        self.mask = (ProjectionDiscriminator(in_channels=1, num_classes=1, channels=mask_channels)
                     if len(mask_channels) else None)

    @staticmethod
    def _zeros(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], dtype=torch.long, device=x.device)

    def score_pair(self, image: torch.Tensor, mask_pm1: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image, mask_pm1], 1)
        return self.pair(x, self._zeros(x))

    def score_mask(self, mask_pm1: torch.Tensor) -> torch.Tensor:
        if self.mask is None:
            raise ValueError("this TumorPairDiscriminator has no mask discriminator (mask_channels=[]); train with "
                             "mask_weight 0")
        return self.mask(mask_pm1, self._zeros(mask_pm1))


class TumorPairIteration:
    """``iteration_update`` for ``GanTrainer`` with a ``TumorPairGenerator`` and a ``TumorPairDiscriminator``.

    Args:
        latent_size: the generator's ``latent_size`` (each half of its latent).
        image_key / mask_key: batch keys (image in [-1, 1], mask in {0, 1}).
        translation: DiffAugment translation ratio (0 disables), the same shift for an image and its mask.
        mask_weight: weight of the mask generator's adversarial loss; 0 trains the image generator alone (no mask
            generator step, no mask discriminator: a generator whose masks are not learned, e.g.
            :class:`medigan_zoo.networks.paired.TumorBankPairGenerator`).
        straight_through: show the mask discriminator the generated masks binarised (``tanh`` output > 0 -> 1 else
            -1, as the generator's ``forward`` outputs them) with the gradient of the soft mask passed straight
            through; without it the discriminator tells soft masks from the real {-1, 1} ones by their values alone.
        mode_seeking: weight of a mode-seeking term for the image generator (Mao et al. 2019, MSGAN): the two
            halves of the minibatch share their masks and differ in latents, and the generator is pushed to give
            them different images (0 disables).
        mask_r1_gamma: weight of an R1 penalty (the squared gradient of the mask discriminator's score at the real
            masks; Mescheder et al. 2018) that keeps the mask discriminator from overpowering the mask generator
            on the few real tumor masks (0 disables).
    """

    def __init__(self, latent_size: int, image_key: str = "image", mask_key: str = "mask", translation: float = 0.0,
                 mask_weight: float = 1.0, straight_through: bool = False, mode_seeking: float = 0.0,
                 mask_r1_gamma: float = 0.0):
        self.latent_size = int(latent_size)
        self.image_key, self.mask_key = image_key, mask_key
        self.translation = float(translation)
        self.mask_weight = float(mask_weight)
        self.straight_through = bool(straight_through)
        self.mode_seeking = float(mode_seeking)
        self.mask_r1_gamma = float(mask_r1_gamma)

    def __call__(self, engine: Any, batchdata: Dict[str, Any]) -> Dict[str, float]:
        image, mask = _batch(engine, batchdata, self.image_key, self.mask_key)
        gen, disc = engine.g_network, engine.d_network
        device, n = image.device, image.shape[0]
        mask_pm1 = mask * 2.0 - 1.0
        tumor = mask_pm1[mask.flatten(1).amax(1) > 0]  # the non-empty real masks train the mask generator
        half = n // 2 if self.mode_seeking > 0 and n >= 2 else 0
        fmask = mask  # the masks the fakes are drawn for
        if half:  # the second half repeats the first half's masks with other latents
            fmask = torch.cat([mask[:half], mask[:half], mask[2 * half:]])
        fmask_pm1 = fmask * 2.0 - 1.0
        z = draw(n, lambda m: torch.randn(m, self.latent_size, device=device))
        fake = gen.image_from_mask(z, fmask)
        learn_masks = self.mask_weight > 0
        fake_mask = torch.zeros((), device=device)
        if learn_masks:
            fake_mask = gen.soft_mask(torch.randn(max(2, tumor.shape[0]), self.latent_size, device=device))
            if self.straight_through:
                fake_mask = fake_mask + (torch.where(fake_mask > 0, 1.0, -1.0) - fake_mask).detach()

        def pair(img: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            both = translate(torch.cat([img, m], 1), self.translation)
            return disc.score_pair(both[:, :1], both[:, 1:])

        def masks(m: torch.Tensor) -> torch.Tensor:
            return disc.score_mask(translate(m, self.translation))

        d_real, d_fake = pair(image, mask_pm1), pair(fake.detach(), fmask_pm1)
        d_loss = engine.d_loss_function(d_real, d_fake)
        dm_loss = torch.zeros((), device=device)
        if learn_masks and tumor.shape[0] >= 2:
            dm_loss = engine.d_loss_function(masks(tumor), masks(fake_mask.detach()))
        r1 = torch.zeros((), device=device)
        if learn_masks and self.mask_r1_gamma > 0 and tumor.shape[0] >= 2:
            real = tumor.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(disc.score_mask(real).sum(), real, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
        _step(engine.d_optimizer, d_loss + dm_loss + 0.5 * self.mask_r1_gamma * r1)
        with _FrozenDiscriminator(disc):
            g_img = engine.g_loss_function(pair(fake, fmask_pm1))
            g_mask = engine.g_loss_function(masks(fake_mask)) if learn_masks else torch.zeros((), device=device)
            ms = torch.zeros((), device=device)
            if half:
                ms = (z[:half] - z[half:2 * half]).abs().mean() / (
                    (fake[:half] - fake[half:2 * half]).abs().mean() + 1e-5)
            _step(engine.g_optimizer, g_img + self.mask_weight * g_mask + self.mode_seeking * ms)
        return {"g_loss": g_img.item(), "g_mask": g_mask.item(), "d_loss": d_loss.item(), "dm_loss": dm_loss.item(),
                "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item(), "ms": ms.item(), "mask_r1": r1.item()}


def nonempty_masks(records: Sequence[Dict[str, Any]], mask_key: str = "mask") -> torch.Tensor:
    """The non-empty masks of ``records`` stacked (N, 1, H, W) {0, 1}: the bank of a
    :class:`medigan_zoo.networks.paired.TumorBankPairGenerator` (``set_masks``)."""
    masks = [torch.as_tensor(r[mask_key]).float() for r in records]
    kept = [m for m in masks if float(m.amax()) > 0]
    if not kept:
        raise ValueError("no record has a non-empty mask: the mask bank needs at least one tumor mask")
    return (torch.stack(kept) > 0.5).float()


def tumor_oversampling_weights(records: Sequence[Dict[str, Any]], mask_key: str = "mask",
                               tumor_fraction: float = 0.5) -> torch.Tensor:
    """Sampling weights that draw slices with a non-empty mask with probability ``tumor_fraction``."""
    has = torch.tensor([float(torch.as_tensor(r[mask_key]).amax() > 0) for r in records])
    k = float(has.sum())
    if k == 0 or k == len(records):
        return torch.ones(len(records))
    return torch.where(has > 0, tumor_fraction / k, (1.0 - tumor_fraction) / (len(records) - k))


class TranslationPreview:
    """Preview for :class:`medigan_zoo.training.checkpoint.TimedCheckpoint`: a grid of fixed sources (row 1), their
    translations (row 2) and targets (row 3) at ``output_dir/samples_iter_NNNNNN.png``."""

    def __init__(self, generator: nn.Module, records: Sequence[Dict[str, Any]], output_dir: Union[str, Path],
                 count: int = 8, source_key: str = "source", target_key: str = "target", scale: int = 2):
        step = max(1, len(records) // count)
        chosen = list(records)[::step][:count]
        self.source = torch.stack([torch.as_tensor(r[source_key]) for r in chosen]).float()
        self.target = torch.stack([torch.as_tensor(r[target_key]) for r in chosen]).float()
        self.generator, self.output_dir, self.scale = generator, Path(output_dir), int(scale)

    @torch.no_grad()
    def __call__(self, engine: Any) -> None:
        from medigan_zoo.engine.preview import save_sample_grid

        was = self.generator.training
        self.generator.eval()
        device = next(self.generator.parameters()).device
        fake = self.generator(self.source.to(device) * 2 - 1).cpu()
        self.generator.train(was)
        grid = torch.cat([self.source, (fake + 1) / 2, self.target]).clamp(0, 1)
        save_sample_grid(grid, self.output_dir / f"samples_iter_{engine.state.iteration:06d}.png",
                         nrow=len(self.source), scale=self.scale)


class TumorPreview:
    """Preview: noise -> (image, mask) (rows 1-2) and fixed real masks -> images (rows 3-4)."""

    def __init__(self, generator: nn.Module, records: Sequence[Dict[str, Any]], output_dir: Union[str, Path],
                 latent_size: int, count: int = 8, mask_key: str = "mask", seed: int = 0, scale: int = 2):
        tumor = [r for r in records if float(torch.as_tensor(r[mask_key]).amax()) > 0] or list(records)
        step = max(1, len(tumor) // count)
        self.masks = torch.stack([torch.as_tensor(r[mask_key]) for r in tumor[::step][:count]]).float()
        self.z = torch.randn(len(self.masks), 2 * int(latent_size), generator=torch.Generator().manual_seed(seed))
        self.generator, self.output_dir, self.scale = generator, Path(output_dir), int(scale)

    @torch.no_grad()
    def __call__(self, engine: Any) -> None:
        from medigan_zoo.engine.preview import save_sample_grid

        was = self.generator.training
        self.generator.eval()
        image, mask = self.generator(self.z)
        from_mask = getattr(self.generator, "image_from_mask")(self.z, self.masks)
        self.generator.train(was)
        grid = torch.cat([(image + 1) / 2, mask, (from_mask + 1) / 2, self.masks]).clamp(0, 1)
        save_sample_grid(grid, self.output_dir / f"samples_iter_{engine.state.iteration:06d}.png",
                         nrow=len(self.masks), scale=self.scale)
