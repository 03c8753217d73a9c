"""DDPM training pieces for MONAI's ``SupervisedTrainer`` (used by diffusion bundles' configs/train.json).

``SupervisedTrainer`` runs ``prepare_batch -> inferer(inputs, network, *args, **kwargs) -> loss(pred, target)``.
MONAI's ``DiffusionPrepareBatch`` + ``DiffusionInferer`` pass a condition as cross-attention ``context``; the zoo's
class-conditional UNets take ``class_labels`` (``num_class_embeds``), so these two small subclasses pass the labels
that way, with optional label dropout to a null class for classifier-free guidance. Given the training scheduler,
the target follows its ``prediction_type``: the noise (``"epsilon"``) or the velocity
``v = sqrt(alpha_bar) * noise - sqrt(1 - alpha_bar) * image`` (``"v_prediction"``, as MONAI's
``VPredictionPrepareBatch``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

import torch
from monai.engines.utils import DiffusionPrepareBatch, default_prepare_batch
from monai.inferers import DiffusionInferer

from medigan_zoo.training.ddp import draw


class ClassDiffusionPrepareBatch(DiffusionPrepareBatch):
    """Image -> (noisy-image inputs, noise target) with per-sample timesteps and class labels.

    Args:
        num_train_timesteps: length of the DDPM chain.
        condition_name: batch key holding the (B,) or (B, 1) class labels; None for unconditional training.
        null_class: label that means "no condition" (classifier-free guidance); None disables label dropout.
        drop_prob: probability of replacing a sample's label with ``null_class``.
        scheduler: the training scheduler; when its ``prediction_type`` is ``"v_prediction"`` the target is the
            velocity (``scheduler.get_velocity``), when ``"epsilon"`` or None the noise.
    """

    def __init__(self, num_train_timesteps: int, condition_name: Optional[str] = "class_label",
                 null_class: Optional[int] = None, drop_prob: float = 0.0, scheduler: Optional[Any] = None):
        super().__init__(num_train_timesteps=num_train_timesteps, condition_name=condition_name)
        if drop_prob and null_class is None:
            raise ValueError("drop_prob > 0 needs null_class")
        prediction = getattr(scheduler, "prediction_type", "epsilon") if scheduler is not None else "epsilon"
        if prediction not in ("epsilon", "v_prediction"):
            raise ValueError(f"scheduler prediction_type {prediction!r} is not supported; use 'epsilon' or "
                             "'v_prediction'")
        self.scheduler = scheduler
        self.prediction_type = str(prediction)
        self.null_class = null_class
        self.drop_prob = float(drop_prob)

    def get_noise(self, images: torch.Tensor) -> torch.Tensor:
        """MONAI's standard normal noise; under torchrun drawn for the global batch (medigan_zoo.training.ddp)."""
        return draw(images.shape[0], lambda m: torch.randn((m, *images.shape[1:]), device=images.device,
                                                           dtype=images.dtype))

    def get_timesteps(self, images: torch.Tensor) -> torch.Tensor:
        """MONAI's uniform timesteps; under torchrun drawn for the global batch."""
        return draw(images.shape[0], lambda m: torch.randint(0, self.num_train_timesteps, (m,),
                                                             device=images.device)).long()

    def __call__(self, batchdata: Dict[str, torch.Tensor], device: Union[str, torch.device, None] = None,
                 non_blocking: bool = False, **kwargs: Any):
        images, _ = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        images = torch.as_tensor(images)  # drop MetaTensor metadata: the UNet needs plain tensors
        noise = self.get_noise(images)
        timesteps = self.get_timesteps(images)
        infer_kwargs: Dict[str, torch.Tensor] = {"noise": noise, "timesteps": timesteps}
        if self.condition_name is not None:
            labels = torch.as_tensor(batchdata[self.condition_name]).reshape(-1).long().to(images.device)
            if self.drop_prob > 0:
                assert self.null_class is not None  # __init__: drop_prob > 0 needs null_class
                drop = draw(labels.shape[0], lambda m: torch.rand(m, device=labels.device)) < self.drop_prob
                labels = torch.where(drop, torch.full_like(labels, self.null_class), labels)
            infer_kwargs["class_labels"] = labels
        return images, self.get_target(images, noise, timesteps), (), infer_kwargs

    def get_target(self, images: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The regression target: the noise, or the velocity for a v-prediction scheduler."""
        if self.prediction_type == "v_prediction":
            assert self.scheduler is not None  # __init__: v_prediction comes from a scheduler
            return self.scheduler.get_velocity(images, noise, timesteps)
        return noise


class ClassDiffusionInferer(DiffusionInferer):
    """``DiffusionInferer`` whose training call passes ``class_labels`` to the UNet (``num_class_embeds``)."""

    def __call__(self, inputs: torch.Tensor, diffusion_model: torch.nn.Module, noise: torch.Tensor,  # type: ignore[override]
                 timesteps: torch.Tensor, class_labels: Optional[torch.Tensor] = None, **_: Any) -> torch.Tensor:
        noisy = self.scheduler.add_noise(original_samples=inputs, noise=noise, timesteps=timesteps)
        if class_labels is None:
            return diffusion_model(x=noisy, timesteps=timesteps)
        return diffusion_model(x=noisy, timesteps=timesteps, class_labels=class_labels)
