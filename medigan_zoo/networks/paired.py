"""Networks of the zoo's paired 2D models: image-to-image translation and tumor image + mask generation.

* :class:`UNetTranslator`: pix2pix-style generator, MONAI's ``UNet`` followed by ``tanh``:
  image (B, C, H, W) in [-1, 1] -> translated image (B, C', H, W) in [-1, 1]. Trained with MONAI's
  ``PatchDiscriminator`` (:func:`patch_scores` reads its last output).
* :class:`MaskConditionedGenerator`: (latent (B, L), mask (B, 1, H, W) in {0, 1}) -> image (B, 1, H, W) in
  [-1, 1]: a DCGAN-style upsampling stack that concatenates the mask, resized to each scale, to the features
  before every convolution (a light form of SPADE's spatially adaptive conditioning).
* :class:`TumorPairGenerator`: a mask generator (:class:`medigan_zoo.networks.gan2d.CondDCGANGenerator`, one
  class) and a :class:`MaskConditionedGenerator`. ``forward(latent)`` -> (image, mask) from noise;
  ``image_from_mask(latent, mask)`` -> image for a given mask. Both TorchScript-scriptable.
* :class:`DeformedMaskBank`: latent -> mask, a real training mask chosen and smoothly deformed by the latent (random
  flip, rotation, scale, shift and an elastic field); the mask source of :class:`TumorBankPairGenerator` (noise ->
  (image, mask) with a :class:`MaskConditionedGenerator`), for data sets with too few masks to train a mask GAN.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from torch import nn

from medigan_zoo.networks.gan2d import CondDCGANGenerator


class UNetTranslator(nn.Module):
    """MONAI ``UNet`` (2D, residual units, instance norm) + ``tanh``: (B, C, H, W) -> (B, C', H, W) in [-1, 1]."""

    def __init__(self, in_channels: int = 1, out_channels: int = 1, channels: Sequence[int] = (32, 64, 128, 256),
                 strides: Sequence[int] = (2, 2, 2), num_res_units: int = 1, norm: str = "INSTANCE",
                 dropout: float = 0.0):
        super().__init__()
        from monai.networks.nets import UNet

        self.unet = UNet(spatial_dims=2, in_channels=int(in_channels), out_channels=int(out_channels),
                         channels=tuple(int(c) for c in channels), strides=tuple(int(s) for s in strides),
                         num_res_units=int(num_res_units), norm=norm, dropout=float(dropout))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.unet(image))


def patch_scores(discriminator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The patch logits of MONAI's ``PatchDiscriminator`` (its last output; it returns every layer's features)."""
    out = discriminator(x)
    return out[-1] if isinstance(out, (list, tuple)) else out


class MaskConditionedGenerator(nn.Module):
    """(latent (B, latent_size), mask (B, 1, H, W)) -> image (B, out_channels, H, W) in [-1, 1].

    Args:
        latent_size: latent length; it is projected to a ``start_size`` x ``start_size`` map.
        channels: features at the start and after each x2 upsampling; H = start_size * 2 ** (len(channels) - 1).
        out_channels: image channels.
        mask_channels: channels of the mask input.
        convs_per_block: 3x3 conv + batch norm + ReLU blocks per scale, each fed the features and the mask.
    """

    def __init__(self, latent_size: int = 128, channels: Sequence[int] = (256, 128, 64, 32, 16), start_size: int = 4,
                 out_channels: int = 1, mask_channels: int = 1, convs_per_block: int = 2):
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"channels needs at least 2 entries (one upsampling), got {list(channels)}")
        self.latent_size = int(latent_size)
        self.start_size = int(start_size)
        self.start_channels = int(channels[0])
        self.mask_channels = int(mask_channels)
        numel = self.start_channels * self.start_size * self.start_size
        self.project = nn.Sequential(nn.Linear(self.latent_size, numel, bias=False), nn.BatchNorm1d(numel), nn.ReLU())
        convs: List[nn.Module] = []
        for cin, cout in zip(channels[:-1], channels[1:]):
            for k in range(max(1, int(convs_per_block))):
                convs.append(Convolution(2, (int(cin) if k == 0 else int(cout)) + self.mask_channels, int(cout),
                                         kernel_size=3, act="RELU", norm="BATCH", bias=False))
        self.convs = nn.ModuleList(convs)
        self.convs_per_block = max(1, int(convs_per_block))
        self.head = Convolution(2, int(channels[-1]) + self.mask_channels, int(out_channels), kernel_size=3,
                                conv_only=True)

    def forward(self, latent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        z = latent.reshape(latent.shape[0], -1)
        x = self.project(z).reshape(z.shape[0], self.start_channels, self.start_size, self.start_size)
        for i, conv in enumerate(self.convs):
            if i % self.convs_per_block == 0:
                x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            m = F.interpolate(mask, size=(x.shape[2], x.shape[3]), mode="area")
            x = conv(torch.cat([x, m], dim=1))
        return torch.tanh(self.head(torch.cat([x, mask], dim=1)))


def affine_theta(angle: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``F.affine_grid``'s (B, 2, 3) matrices of a rotation by ``angle`` (B,) radians, a zoom by ``scale`` (B,) and a
    shift (B, 2) in normalised coordinates (the sampling grid's inverse map: ``scale`` > 1 enlarges the content)."""
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)


def image_latent(latent: torch.Tensor, latent_size: int) -> torch.Tensor:
    """The image generator's latent (B, latent_size) of a pair generator's ``latent``: (B, L) as given, or the second
    half of (B, 2 L) (the first half drives the mask, as in ``forward``)."""
    z = latent.reshape(latent.shape[0], -1)
    if z.shape[1] == 2 * latent_size:
        z = z[:, latent_size:]
    return z


class TumorPairGenerator(nn.Module):
    """Noise -> (image, mask) and (noise, mask) -> image for 2D tumor slices.

    The latent (B, 2 * latent_size) is split: the first half drives the mask generator, the second the image
    generator. Masks are {0, 1} (the mask generator's ``tanh`` output thresholded at 0); images are in [-1, 1].
    """

    def __init__(self, latent_size: int = 128, mask_channels: Sequence[int] = (128, 64, 32, 16, 8),
                 image_channels: Sequence[int] = (256, 128, 64, 32, 16), start_size: int = 4,
                 convs_per_block: int = 2):
        super().__init__()
        self.latent_size = int(latent_size)
        self.latent_input_size = 2 * self.latent_size  # forward's latent: mask half + image half
        self.mask_generator = CondDCGANGenerator(latent_size=self.latent_size, num_classes=1, start_size=start_size,
                                                 channels=mask_channels, out_channels=1, embed_size=1,
                                                 upsample_mode="bilinear", convs_per_block=convs_per_block)
        self.image_generator = MaskConditionedGenerator(latent_size=self.latent_size, channels=image_channels,
                                                        start_size=start_size, out_channels=1,
                                                        convs_per_block=convs_per_block)

    @torch.jit.export
    def soft_mask(self, mask_latent: torch.Tensor) -> torch.Tensor:
        """The mask generator's output in [-1, 1] (training; the discriminator sees this)."""
        labels = torch.zeros(mask_latent.shape[0], dtype=torch.long, device=mask_latent.device)
        return self.mask_generator(mask_latent, labels)

    @torch.jit.export
    def image_from_mask(self, latent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """An image in [-1, 1] for ``mask`` (B, 1, H, W) in {0, 1}; ``latent`` (B, L) or (B, 2 L) (then its second
        half, as in ``forward``)."""
        return self.image_generator(image_latent(latent, self.latent_size), mask)

    def forward(self, latent: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        z = latent.reshape(latent.shape[0], -1)
        mask = (self.soft_mask(z[:, :self.latent_size]) > 0).float()
        return self.image_generator(z[:, self.latent_size:], mask), mask


class DeformedMaskBank(nn.Module):
    """Latent (B, L >= :attr:`latent_used`) -> masks (B, 1, H, W) in {0, 1}: bank mask ``floor(Phi(z_0) * N)``,
    mirrored left-right when ``z_1 > 0``, rotated by ``max_rotation * tanh(z_2)`` radians, scaled by
    ``exp(scale_sd * z_3)``, shifted by ``max_shift * tanh(z_4, z_5)`` (a fraction of the image size) and deformed by
    a smooth elastic field (``z_6 ...``: ``2 * elastic_grid ** 2`` control displacements of ``elastic_sd`` pixels,
    upsampled bicubically), then thresholded at 0.5; a mask the deformation erased (a few-pixel tumor) is kept
    undeformed, so a mask is never empty. A pure function of the latent (the same latent, the same mask).

    The bank (buffer ``masks``, N x 1 x H x W) holds the non-empty training masks: :meth:`set_masks` fills it before
    training and the checkpoint carries it, so every synthetic mask is a deformed training mask. That is honest
    shape augmentation, not a learned shape model: masks stay close to the N training shapes.
    """

    def __init__(self, size: int, spatial_shape: Sequence[int] = (64, 64), max_rotation: float = 0.35,
                 scale_sd: float = 0.15, max_shift: float = 0.06, elastic_grid: int = 4, elastic_sd: float = 1.5):
        super().__init__()
        self.register_buffer("masks", torch.zeros(int(size), 1, int(spatial_shape[0]), int(spatial_shape[1])))
        self.max_rotation, self.scale_sd, self.max_shift = float(max_rotation), float(scale_sd), float(max_shift)
        self.elastic_grid, self.elastic_sd = int(elastic_grid), float(elastic_sd)
        self.latent_used = 6 + 2 * self.elastic_grid * self.elastic_grid

    @torch.jit.ignore
    def set_masks(self, masks: torch.Tensor) -> "DeformedMaskBank":
        """Fill the bank with ``masks`` (N, 1, H, W) {0, 1}, N = the bank size (returns self, for configs)."""
        masks = torch.as_tensor(masks).float()
        bank: torch.Tensor = self.masks  # type: ignore[assignment]
        if tuple(masks.shape) != tuple(bank.shape):
            raise ValueError(f"the mask bank holds {tuple(bank.shape)} masks; got {tuple(masks.shape)}: "
                             "set the bank size to the number of non-empty training masks")
        bank.copy_((masks > 0.5).float())
        return self

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        z = latent.reshape(latent.shape[0], -1)
        if z.shape[1] < self.latent_used:
            raise ValueError(f"the mask bank reads {self.latent_used} latent values; got {z.shape[1]}")
        bank: torch.Tensor = self.masks  # type: ignore[assignment]
        b, n = z.shape[0], bank.shape[0]
        h, w = bank.shape[2], bank.shape[3]
        u = 0.5 * (1.0 + torch.erf(z[:, 0] / math.sqrt(2.0)))
        index = (u * n).long().clamp(0, n - 1)
        mask = bank.index_select(0, index)
        mask = torch.where((z[:, 1] > 0)[:, None, None, None], mask.flip(-1), mask)
        angle = self.max_rotation * torch.tanh(z[:, 2])
        scale = torch.exp(self.scale_sd * z[:, 3])
        shift = 2.0 * self.max_shift * torch.tanh(z[:, 4:6])
        grid = F.affine_grid(affine_theta(angle, scale, shift), [b, 1, h, w], align_corners=False)
        k = self.elastic_grid
        if k > 0 and self.elastic_sd > 0:
            control = z[:, 6:6 + 2 * k * k].reshape(b, 2, k, k) * self.elastic_sd
            field = F.interpolate(control, size=(h, w), mode="bicubic", align_corners=True)
            scale_xy = torch.tensor([2.0 / w, 2.0 / h], device=z.device, dtype=z.dtype)
            grid = grid + field.permute(0, 2, 3, 1) * scale_xy
        warped = (F.grid_sample(mask, grid, mode="bilinear", padding_mode="zeros", align_corners=False) > 0.5).float()
        kept = warped.flatten(1).amax(1) > 0  # a tiny mask the deformation erased: keep it undeformed (flip only)
        return torch.where(kept[:, None, None, None], warped, mask)


class TumorBankPairGenerator(nn.Module):
    """Noise -> (image, mask) and (noise, mask) -> image, with masks from a :class:`DeformedMaskBank`.

    The latent (B, 2 * latent_size) is split as in :class:`TumorPairGenerator`: the first half picks and deforms a
    bank mask (``latent_size`` >= the bank's ``latent_used``), the second drives the image generator.
    """

    def __init__(self, bank_size: int, latent_size: int = 64, image_channels: Sequence[int] = (128, 64, 32, 16, 8),
                 start_size: int = 4, convs_per_block: int = 2, spatial_shape: Sequence[int] = (64, 64),
                 max_rotation: float = 0.35, scale_sd: float = 0.15, max_shift: float = 0.06, elastic_grid: int = 4,
                 elastic_sd: float = 1.5):
        super().__init__()
        self.latent_size = int(latent_size)
        self.latent_input_size = 2 * self.latent_size
        self.mask_bank = DeformedMaskBank(bank_size, spatial_shape, max_rotation=max_rotation, scale_sd=scale_sd,
                                          max_shift=max_shift, elastic_grid=elastic_grid, elastic_sd=elastic_sd)
        if self.mask_bank.latent_used > self.latent_size:
            raise ValueError(f"latent_size {self.latent_size} < the {self.mask_bank.latent_used} latent values the "
                             "mask bank reads; raise latent_size or lower elastic_grid")
        self.image_generator = MaskConditionedGenerator(latent_size=self.latent_size, channels=image_channels,
                                                        start_size=start_size, out_channels=1,
                                                        convs_per_block=convs_per_block)

    @torch.jit.ignore
    def set_masks(self, masks: torch.Tensor) -> "TumorBankPairGenerator":
        """Fill the mask bank (see :meth:`DeformedMaskBank.set_masks`); returns self."""
        self.mask_bank.set_masks(masks)
        return self

    @torch.jit.export
    def image_from_mask(self, latent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """An image in [-1, 1] for ``mask`` (B, 1, H, W) in {0, 1}; ``latent`` (B, L) or (B, 2 L) (its second half)."""
        return self.image_generator(image_latent(latent, self.latent_size), mask)

    def forward(self, latent: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        z = latent.reshape(latent.shape[0], -1)
        mask = self.mask_bank(z[:, :self.latent_size])
        return self.image_generator(z[:, self.latent_size:], mask), mask
