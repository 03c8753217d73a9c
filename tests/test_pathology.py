"""H&E tile preparation: tissue filter, tiling and the spatial split (synthetic image; the shared slide if present)."""
from __future__ import annotations

import numpy as np
import pytest

from medigan_zoo.training.pathology import (
    PATHOLOGY_FILE,
    pathology_tiles,
    saturation,
    spatial_split,
    tile_positions,
    tissue_positions,
)


def _synthetic_slide(height: int = 320, width: int = 256) -> np.ndarray:
    """Synthetic test image: white glass (saturation 0) with a pink 'tissue' block in rows 64-255, columns 32-223."""
    image = np.full((height, width, 3), 240, np.uint8)
    image[64:256, 32:224] = (200, 90, 160)  # saturation 255 * (200 - 90) / 200 = 140
    return image


def test_saturation_matches_hsv_definition():
    px = np.array([[[200, 90, 160], [240, 240, 240], [0, 0, 0], [255, 0, 0]]], np.uint8)
    np.testing.assert_allclose(saturation(px)[0], [140.25, 0.0, 0.0, 255.0])


def test_tile_positions_cover_the_grid():
    pos = tile_positions(128, 96, tile=64, stride=32)
    assert pos.tolist() == [[0, 0], [0, 32], [32, 0], [32, 32], [64, 0], [64, 32]]


def test_tissue_filter_keeps_tiles_mostly_on_tissue():
    image = _synthetic_slide()
    pos = tissue_positions(image, tile=64, stride=32, saturation_threshold=40, min_fraction=0.6)
    assert len(pos) > 0
    for y, x in pos:  # every kept tile is > 60 % tissue, computed directly
        assert (saturation(image[y:y + 64, x:x + 64]) > 40).mean() > 0.6
    kept = {tuple(p) for p in pos.tolist()}
    for y, x in tile_positions(*image.shape[:2], tile=64, stride=32).tolist():
        if (y, x) not in kept:
            assert (saturation(image[y:y + 64, x:x + 64]) > 40).mean() <= 0.6
    assert (0, 0) not in kept and (64, 32) in kept


def test_spatial_split_is_disjoint_with_a_gap():
    pos = tile_positions(640, 256, tile=64, stride=32)
    train, test = spatial_split(pos, tile=64, test_fraction=0.25, gap=64)
    assert len(set(train) & set(test)) == 0 and len(train) > 0 and len(test) > 0
    y0 = pos[test, 0].min()
    assert (pos[test, 0] >= y0).all() and (pos[train, 0] + 64 + 64 <= y0).all()
    # no training tile overlaps a test tile
    for ty, tx in pos[train]:
        for sy, sx in pos[test]:
            assert ty + 64 <= sy or sy + 64 <= ty or tx + 64 <= sx or sx + 64 <= tx
    assert abs(len(test) / len(pos) - 0.25) < 0.1
    with pytest.raises(ValueError, match="test_fraction"):
        spatial_split(pos, test_fraction=1.0)


def test_shared_slide_tiles(data_dir):
    from conftest import require

    path = require(data_dir / PATHOLOGY_FILE, "the shared H&E slide")
    train, train_pos = pathology_tiles(path, "train")
    test, test_pos = pathology_tiles(path, "test")
    assert train.shape[1:] == (3, 64, 64) and test.shape[1:] == (3, 64, 64)
    assert train.dtype == np.float32 and 0.0 <= train.min() and train.max() <= 1.0
    assert len(train) > 1000 and len(test) > 300
    assert train_pos[:, 0].max() + 128 <= test_pos[:, 0].min()


def test_evaluation_reference_finds_the_tiles(data_dir):
    from conftest import require

    from medigan_zoo.evaluation.data import dataset_file, load_reference

    assert dataset_file(["CMU-1-Small-Region"]) == PATHOLOGY_FILE
    require(data_dir / PATHOLOGY_FILE, "the shared H&E slide")
    test = load_reference(["CMU-1-Small-Region"], "test", data_dir, (64, 64))
    expected, _ = pathology_tiles(data_dir / PATHOLOGY_FILE, "test")
    assert test.images.shape == (len(expected), 3, 64, 64) and test.labels is None
    assert np.array_equal(test.images.numpy(), expected)
