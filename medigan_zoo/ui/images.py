"""Image helpers of the web UI: thumbnails, slices of 3D samples, arrays as display images."""
from __future__ import annotations

import base64
import functools
import io
from pathlib import Path
from typing import List, Sequence

import numpy as np

#: 3D view -> the spatial axis (of display order D, H, W) it cuts across; the same views as engine.preview's grids
AXES = {"axial": 0, "coronal": 1, "sagittal": 2}
#: small samples are enlarged (nearest neighbour) to at least this many pixels on their longer side
DISPLAY_SIZE = 112


@functools.lru_cache(maxsize=64)
def _thumbnail(path: str, mtime: float, width: int) -> str:
    from PIL import Image

    with Image.open(path) as opened:
        rgb = opened.convert("RGB")
    if rgb.width > width:
        rgb = rgb.resize((width, max(1, round(rgb.height * width / rgb.width))), Image.Resampling.BOX)
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail_uri(path: Path, width: int = 256) -> str:
    """``path`` (a bundle's docs/samples.png) shrunk to ``width`` pixels as a PNG data URI (cached per file
    version); "" when the file is absent."""
    if not path.is_file():
        return ""
    return _thumbnail(str(path), path.stat().st_mtime, width)


def num_slices(shape: Sequence[int], axis: str) -> int:
    """Slices of a (C, D, H, W) volume along ``axis`` ("axial", "coronal" or "sagittal")."""
    return int(shape[1 + AXES[axis]])


def volume_slice(volume: np.ndarray, axis: str, index: int) -> np.ndarray:
    """Slice ``index`` (clipped to the volume) of a (C, D, H, W) volume across ``axis`` -> (C, h, w)."""
    k = AXES[axis]
    index = int(min(max(int(index), 0), volume.shape[1 + k] - 1))
    return np.take(volume, index, axis=1 + k)


def to_display(image: np.ndarray, size: int = DISPLAY_SIZE):
    """A (C, H, W) array in [0, 1] as an RGB PIL image, enlarged (nearest) to about ``size`` pixels."""
    from PIL import Image

    x = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    x = x[:1].repeat(3, 0) if x.shape[0] != 3 else x
    pil = Image.fromarray((x.transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8))
    factor = max(1, size // max(pil.size))
    return pil.resize((pil.width * factor, pil.height * factor), Image.Resampling.NEAREST) if factor > 1 else pil


def display_images(arrays: Sequence[np.ndarray], axis: str = "axial", index: int = -1) -> List:
    """(C, *spatial) arrays in [0, 1] as display images; a volume shows slice ``index`` across ``axis`` (-1: the
    middle slice)."""
    out = []
    for arr in arrays:
        if arr.ndim == 4:
            arr = volume_slice(arr, axis, arr.shape[1 + AXES[axis]] // 2 if index < 0 else index)
        out.append(to_display(arr))
    return out
