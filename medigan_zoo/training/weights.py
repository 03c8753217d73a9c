"""What every training recipe does at the end: re-estimate an averaged generator's batch-norm statistics and
write the weights the bundle ships (``models/model.pt``: a plain state dict, ``torch.load(weights_only=True)``)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Union

import torch
from torch import nn

logger = logging.getLogger(__name__)


@torch.no_grad()
def recalibrate_batchnorm(generator: nn.Module, latent_size: int, num_batches: int = 50, batch_size: int = 64,
                          num_classes: int = 0, seed: int = 0) -> nn.Module:
    """Recompute the generator's batch-norm running statistics as the exact average over ``num_batches``
    batches of its own activations (needed after weight averaging, e.g. EMA). Returns the generator in eval mode."""
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return generator.eval()
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    gen = torch.Generator().manual_seed(int(seed))
    device = next(generator.parameters()).device
    generator.train()
    for _ in range(int(num_batches)):
        z = torch.randn(batch_size, int(latent_size), generator=gen).to(device)
        if num_classes > 0:
            labels = torch.randint(0, int(num_classes), (batch_size,), generator=gen).to(device)
            generator(z, labels)
        else:
            generator(z)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    return generator.eval()


def save_state_dict(module: nn.Module, path: Union[str, Path]) -> Path:
    """Write ``module``'s state dict as plain CPU tensors (loads with ``torch.load(weights_only=True)``); under
    torchrun only rank 0 writes (every rank holds the same weights)."""
    from medigan_zoo.training.ddp import is_main

    path = Path(path)
    if not is_main():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().clone() for k, v in module.state_dict().items()}, path)
    logger.info("saved state dict to %s", path)
    return path


def load_init_weights(module: nn.Module, path: Union[str, Path, None]) -> nn.Module:
    """Load a plain state dict (``save_state_dict``'s file, e.g. an earlier release's ``models/model.pt``) into
    ``module`` before training, strictly (every key must fit); an empty ``path`` leaves the initialisation as is.
    Lets a recipe continue from earlier weights (fine-tuning) instead of starting from random ones."""
    if not path:
        return module
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"init_ckpt={path}: no such file; pass a state dict written by save_state_dict "
                                "(a bundle's models/model.pt) or '' to start from random weights")
    state = torch.load(path, map_location="cpu", weights_only=True)
    module.load_state_dict(state, strict=True)
    logger.info("initialised %s from %s", type(module).__name__, path)
    return module
