"""What FID ratio would a perfect copy of the training data get? The ceiling each data split puts on a model.

The zoo's FID ratio is FID(real_a, real_b) / FID(real_a, synthetic) with real_a, real_b the two halves of the real
test split (docs/evaluation.md). A generator that reproduced its training distribution exactly would score what
the training images themselves score in place of the samples. Where train and test come from the same
distribution (MedMNIST's random splits) that is close to 1; where they do not (a spatial split of one slide, a
split by patient with few patients), the ceiling is lower, and a model's distance to the issue #14 target
(>= 0.4) should be read against it.

For each bundle given, this runs ``medigan_zoo.evaluation.evaluate_images`` with the real test split as the
reference and a seeded random subset of the real **training** split (``--num_samples``, default 2000, or the whole
split when smaller) as the "synthetic" images: the bundle's own data loader, image size, channels, extractor and
normalization, as ``medigan-zoo evaluate`` uses them. Nothing is written into the bundles.

    OMP_NUM_THREADS=1 python benchmarks/fid_ratio_ceiling.py bundles/pathology_he_gan64 bundles/chest_xray_ddpm
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def ceiling(bundle: Path, num_samples: int = 2000, seed: int = 0, data_dir: Optional[str] = None) -> Dict[str, Any]:
    """FID and FID ratio of the real training split (as if it were the samples) against the real test split."""
    import torch

    from medigan_zoo.evaluation.data import load_reference
    from medigan_zoo.evaluation.evaluate import _match_channels, evaluate_images

    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    zoo = meta["medigan_zoo"]
    names, shape, channels = list(zoo["dataset"]), list(zoo["spatial_shape"]), int(zoo.get("num_channels", 1))
    t0 = time.perf_counter()
    test = _match_channels(load_reference(names, "test", data_dir, shape), channels)
    train = _match_channels(load_reference(names, "train", data_dir, shape), channels)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(train), generator=g)[:num_samples]
    report = evaluate_images(test.images, train.images[pick], metrics=("fid", "fid_ratio"), seed=seed,
                             reference_name=test.name)
    values = report.values()
    stored = {m["name"]: m["value"] for m in zoo.get("metrics") or [] if isinstance(m, dict)}
    return {"bundle": bundle.name, "dataset": ", ".join(names), "shape": "x".join(str(v) for v in shape),
            "data": test.name, "train_images": int(len(pick)), "test_images": len(test),
            "FID_train_vs_test": values.get("FID"), "FID_ratio_ceiling": values.get("FID_ratio"),
            "model_FID_ratio": stored.get("FID_ratio"), "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", nargs="+", help="bundle folders (their data sets are used)")
    parser.add_argument("--num_samples", type=int, default=2000, help="training images standing in for samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_dir", default=None,
                        help="shared data folder (default: $MEDIGAN_ZOO_DATA or ../shared/data)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    print("| model | real test split | training images | FID(train, test) | FID ratio ceiling | model's FID ratio |")
    print("|---|---|---|---|---|---|")
    for b in args.bundles:
        row = ceiling(Path(b).resolve(), args.num_samples, args.seed, args.data_dir)
        rows.append(row)
        model = row["model_FID_ratio"]
        print(f"| `{row['bundle']}` | {row['data']} ({row['test_images']}) | {row['train_images']} | "
              f"{row['FID_train_vs_test']:.3f} | {row['FID_ratio_ceiling']:.3f} | "
              f"{'–' if model is None else f'{model:.3f}'} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
