"""2.5D FID of 3D models: FID of the central axial, coronal and sagittal planes, each on its own (as MAISI reports
its 3D models), beside the zoo's slice-averaged 3D FID (``features.volume_slices``: 3 slices per axis, features
averaged per axis and concatenated).
"""
from __future__ import annotations

from typing import Dict

import torch

from medigan_zoo.evaluation.features import FeatureExtractor
from medigan_zoo.evaluation.fid import fid_from_features

#: volume axis of (N, C, D, H, W) -> plane name (a plane is what stays when that axis is cut at its centre)
PLANES: Dict[int, str] = {2: "axial", 3: "coronal", 4: "sagittal"}


def central_plane(volumes: torch.Tensor, axis: int) -> torch.Tensor:
    """(N, C, D, H, W) -> (N, C, *two remaining axes): the slice at the centre of ``axis``."""
    return volumes.select(axis, (volumes.shape[axis] - 1) // 2).contiguous()


def plane_fids(real: torch.Tensor, synthetic: torch.Tensor, extractor: FeatureExtractor,
               batch_size: int = 500) -> Dict[str, float]:
    """FID of each central plane (2D features of the extractor) and their mean (``mean``)."""
    if real.ndim != 5 or synthetic.ndim != 5:
        raise ValueError("plane FIDs need volumes (N, C, D, H, W)")
    out = {}
    for axis, name in PLANES.items():
        f_real = extractor(central_plane(real, axis), batch_size)
        f_syn = extractor(central_plane(synthetic, axis), batch_size)
        out[name] = fid_from_features(f_syn, f_real)
    out["mean"] = sum(out[n] for n in PLANES.values()) / len(PLANES)
    return out
