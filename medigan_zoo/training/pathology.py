"""H&E pathology tiles from one slide region: tiling, tissue filter and a spatial train/test split.

The slide (``pathology_cmu_small_region.svs`` of the shared data folder: OpenSlide test data CMU-1-Small-Region,
CC0 1.0) is read with Pillow (page 0, RGB). Tiles of ``tile`` px are taken every ``stride`` px; a tile is tissue
when more than ``min_fraction`` of its pixels have HSV saturation above ``saturation`` (0-255), which drops the
white glass and pale background.

Tiles overlap (stride < tile), so a random split would put half of a test tile into the training set. The split
is spatial instead: the test set is the bottom band of the slide (the tile rows holding about ``test_fraction``
of the tissue tiles) and a training tile must end at least ``gap`` px above the band's first row, so no training
tile shares a pixel with a test tile (with ``gap`` = ``tile``, there is a tile's height of slide between them).
Invariants: train and test positions are disjoint and non-overlapping; the same inputs give the same tiles.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import numpy as np

PathLike = Union[str, Path]

#: the shared slide file (never committed; recipes take its path as a parameter)
PATHOLOGY_FILE = "pathology_cmu_small_region.svs"
SPLITS = ("train", "test", "all")


def read_slide(path: PathLike) -> np.ndarray:
    """The slide's first page as (H, W, 3) uint8 RGB (Pillow reads the SVS as a TIFF)."""
    from PIL import Image

    with Image.open(Path(path)) as im:
        im.seek(0)
        return np.asarray(im.convert("RGB"))


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation in 0-255 (as Pillow's HSV mode: 255 * (max - min) / max, 0 where max is 0)."""
    rgb = rgb.astype(np.float32)
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    return np.where(high > 0, 255.0 * (high - low) / np.maximum(high, 1e-6), 0.0)


def tile_positions(height: int, width: int, tile: int = 64, stride: int = 32) -> np.ndarray:
    """(N, 2) int (y, x) top-left corners of every whole tile on the grid, row by row."""
    ys = np.arange(0, height - tile + 1, stride)
    xs = np.arange(0, width - tile + 1, stride)
    grid = np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1)
    return grid.reshape(-1, 2).astype(np.int64)


def tissue_positions(image: np.ndarray, tile: int = 64, stride: int = 32, saturation_threshold: float = 40.0,
                     min_fraction: float = 0.6) -> np.ndarray:
    """(N, 2) (y, x) of the tiles with more than ``min_fraction`` of pixels above ``saturation_threshold``."""
    tissue = (saturation(image) > saturation_threshold).astype(np.float64)
    # integral image: the tissue pixel count of any tile in O(1)
    integral = np.pad(tissue.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    pos = tile_positions(image.shape[0], image.shape[1], tile, stride)
    y, x = pos[:, 0], pos[:, 1]
    count = integral[y + tile, x + tile] - integral[y, x + tile] - integral[y + tile, x] + integral[y, x]
    return pos[count / float(tile * tile) > min_fraction]


def spatial_split(positions: np.ndarray, tile: int = 64, test_fraction: float = 0.2,
                  gap: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of ``positions``: test = tiles starting at or below the first row ``y0`` such
    that about ``test_fraction`` of the tiles lie there (the bottom band); train = tiles with
    ``y + tile + gap <= y0``. Tiles in between are in neither set."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if len(positions) < 2:
        raise ValueError(f"need at least 2 tiles to split, got {len(positions)}")
    y = positions[:, 0]
    rows = np.unique(y)[::-1]  # bottom row first
    counts = np.array([(y == r).sum() for r in rows]).cumsum()
    y0 = int(rows[int(np.searchsorted(counts, test_fraction * len(y)))])
    test = np.flatnonzero(y >= y0)
    train = np.flatnonzero(y + tile + gap <= y0)
    return train, test


def pathology_tiles(data_path: PathLike, split: str = "train", tile: int = 64, stride: int = 32,
                    saturation_threshold: float = 40.0, min_fraction: float = 0.6, test_fraction: float = 0.2,
                    gap: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """(tiles (N, 3, tile, tile) float32 in [0, 1], positions (N, 2) (y, x)) of one split: "train", "test"
    (the held-out bottom band, see :func:`spatial_split`) or "all" (every tissue tile)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    image = read_slide(data_path)
    pos = tissue_positions(image, tile, stride, saturation_threshold, min_fraction)
    if split != "all":
        train, test = spatial_split(pos, tile, test_fraction, gap)
        pos = pos[train if split == "train" else test]
    tiles = np.stack([image[y:y + tile, x:x + tile] for y, x in pos]) if len(pos) else \
        np.zeros((0, tile, tile, 3), np.uint8)
    return (tiles.transpose(0, 3, 1, 2).astype(np.float32) / 255.0), pos


def pathology_records(data_path: PathLike, split: str = "train", label_key: str = "class_label",
                      num_items: int = 0, **kwargs: Any) -> List[Dict[str, Any]]:
    """Records ``{"image": (3, tile, tile) float32 in [0, 1], label_key: 0}`` (one class: the GAN is
    unconditional) of :func:`pathology_tiles`; ``num_items`` > 0 takes a fixed random subset."""
    tiles, _ = pathology_tiles(data_path, split=split, **kwargs)
    if num_items and num_items > 0:
        tiles = tiles[np.random.RandomState(0).permutation(len(tiles))[:num_items]]
    return [{"image": t, label_key: 0} for t in tiles]
