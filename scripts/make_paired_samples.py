#!/usr/bin/env python
"""Write docs/samples.png of a paired brain MRI bundle from its shipped weights (held-out patients only).

* ``translation BUNDLE``: rows = real T1 input, synthetic T2, real T2 of 8 held-out slices.
* ``tumor BUNDLE``: rows = synthetic (image, mask) pairs from noise with the mask outlined in red, the bare images;
  then real held-out masks -> synthetic images (outlined) next to the real held-out images with the same masks.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def outline(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) images in [0, 1] -> (N, 3, H, W) RGB with the border pixels of ``masks`` in red."""
    m = masks[:, 0] > 0.5
    inner = m.clone()
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    inner[:, :, 1:] &= m[:, :, :-1]
    inner[:, :, :-1] &= m[:, :, 1:]
    edge = m & ~inner
    rgb = images.repeat(1, 3, 1, 1).clone()
    for c, v in enumerate((1.0, 0.0, 0.0)):
        rgb[:, c][edge] = v
    return rgb


def translation_grid(bundle: Path, data_path: Path, out: Path, count: int = 8) -> Path:
    from medigan_zoo.engine.preview import save_sample_grid
    from medigan_zoo.evaluation.paired import _network, translate
    from medigan_zoo.training.brain_pairs import brain_mri_translation_pairs

    src, tgt, _ = brain_mri_translation_pairs(data_path, size=64, split="test")
    idx = np.linspace(0, len(src) - 1, count).round().astype(int)
    source, target = torch.from_numpy(src[idx]), torch.from_numpy(tgt[idx])
    fake = translate(_network(bundle), source)
    return save_sample_grid(torch.cat([source, fake, target]), out, nrow=count, scale=2,
                            row_labels=["T1 (input)", "T2 (synthetic)", "T2 (real)"])


def tumor_grid(bundle: Path, data_path: Path, out: Path, count: int = 8) -> Path:
    from medigan_zoo.engine.preview import save_sample_grid
    from medigan_zoo.evaluation.paired import _network, synthetic_pairs
    from medigan_zoo.samplers.mask_pairs import MaskPairSampler
    from medigan_zoo.training.brain_pairs import brain_mri_tumor_pairs

    network = _network(bundle)
    image, mask = synthetic_pairs(network, count, seed=0)
    img, msk, _ = brain_mri_tumor_pairs(data_path, size=64, split="test")
    tumor = np.flatnonzero(msk.reshape(len(msk), -1).max(1) > 0)
    idx = tumor[np.linspace(0, len(tumor) - 1, count).round().astype(int)]
    real_img, real_mask = torch.from_numpy(img[idx]), torch.from_numpy(msk[idx])
    with torch.no_grad():
        from_mask = MaskPairSampler(network, [2 * int(network.latent_size)])(
            torch.arange(count), inputs={"mask": real_mask})["image"]
    rows = [outline(image, mask), outline(image, torch.zeros_like(mask)),
            outline(from_mask, real_mask), outline(real_img, real_mask)]
    return save_sample_grid(torch.cat(rows), out, nrow=count, scale=2,
                            row_labels=["noise->pair", "(image only)", "real mask->image", "real (held out)"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("translation", "tumor"))
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--data_path", type=Path, default=None)
    args = parser.parse_args()
    from medigan_zoo.core.paths import default_data_dir

    torch.set_num_threads(1)
    data = args.data_path or default_data_dir() / "brain_mri_pgbm_128.npz"
    make = translation_grid if args.kind == "translation" else tumor_grid
    print(make(args.bundle, data, args.bundle / "docs" / "samples.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
