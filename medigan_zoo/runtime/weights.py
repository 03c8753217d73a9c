"""The one weights loader: a bundle checkpoint file -> a plain state dict -> a network.

Every part of the zoo that loads bundle weights (generation, datasets, validate, export, evaluation's feature
extractors) goes through :func:`load_weights` and :func:`fit_weights`, so a bundle that validates also generates.
Checkpoints are read with ``torch.load(weights_only=True)``: nothing in them is unpickled as code.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Dict, Mapping, Union

import torch
from torch import nn

from medigan_zoo.core.errors import BundleLoadError

#: keys under which training checkpoints commonly nest the network's state dict (MONAI CheckpointSaver, Lightning,
#: GAN recipes); the first one that holds a state dict is used
NESTED_STATE_KEYS = ("model", "state_dict", "network", "generator")
#: prefix added by DataParallel / DistributedDataParallel wrappers
WRAPPER_PREFIX = "module."


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def load_weights(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """The state dict in checkpoint ``path``, unwrapped from a training checkpoint and ``module.`` prefixes.

    Raises:
        BundleLoadError: the file is missing, is not a plain tensor checkpoint (it will not be unpickled), or holds
            no state dict; one line that names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise BundleLoadError(f"Weights file {path} not found; the bundle is incomplete (check its ckpt_path or "
                              "download its weights).")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - unpickling errors have many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BundleLoadError(f"{path} is not a plain state-dict checkpoint, so it will not be unpickled "
                              f"(torch.load(weights_only=True): {first[:200]}); save it with "
                              "torch.save(network.state_dict(), path).") from None
    if isinstance(obj, Mapping) and not _is_state_dict(obj):
        for key in NESTED_STATE_KEYS:
            if _is_state_dict(obj.get(key)):
                obj = obj[key]
                break
        else:
            raise BundleLoadError(f"{path} holds a checkpoint dict with keys {sorted(map(str, obj))[:10]} but no "
                                  f"state dict under {', '.join(repr(k) for k in NESTED_STATE_KEYS)}.")
    if not _is_state_dict(obj):
        raise BundleLoadError(f"{path} does not hold a state dict (got {type(obj).__name__}).")
    return {(k[len(WRAPPER_PREFIX):] if k.startswith(WRAPPER_PREFIX) else k): v for k, v in obj.items()}


def mismatch_summary(network: nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    """One line saying how ``state`` differs from ``network``'s parameters: counts, first keys, likely cause."""
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if keys:
            parts.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
    cause = ""
    if missing and unexpected and len(missing) == len(unexpected):
        cause = "; the names differ but the counts agree: an older layout of the same network (MONAI's " \
                "GenerativeModels checkpoints load with the network's load_old_state_dict)"
    elif missing and unexpected:
        cause = "; these weights belong to another network (check which config id the checkpoint is for)"
    elif shapes:
        cause = "; the network was built with other sizes than the ones these weights were trained with"
    return f"{len(expected)} tensors expected, {len(state)} in the file: " + "; ".join(parts) + cause


def fit_weights(network: nn.Module, state: Mapping[str, torch.Tensor], where: str,
                old_layout: bool = False) -> nn.Module:
    """``network`` with ``state`` loaded strictly.

    ``old_layout``: the bundle's own config loads this checkpoint with the network's ``load_old_state_dict`` (MONAI's
    GenerativeModels layout); when the plain load does not fit, that conversion is used, and it must consume every
    tensor of the file and give as many tensors as the network has (it keeps the network's own values for those it
    does not find, which the zoo does not accept).

    Raises:
        BundleLoadError: the tensors do not fit; one line from :func:`mismatch_summary` naming ``where``.
    """
    try:
        network.load_state_dict(state)
    except RuntimeError:
        convert = getattr(network, "load_old_state_dict", None) if old_layout else None
        if convert is not None:
            left = dict(state)
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # it prints "All keys match ..."
                    convert(left)
            except (RuntimeError, KeyError):
                left = {"": torch.empty(0)}
            if not left and len(state) == len(network.state_dict()):
                return network
            raise BundleLoadError(f"Weights {where} do not fit the network, not even with its load_old_state_dict "
                                  f"(which the bundle's config uses): {mismatch_summary(network, state)}.") from None
        raise BundleLoadError(f"Weights {where} do not fit the network: {mismatch_summary(network, state)}.") from None
    return network
