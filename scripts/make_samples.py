#!/usr/bin/env python
"""Write a bundle's docs/samples.png from its shipped weights: one row per condition value, fixed seed.

    python scripts/make_samples.py bundles/chest_xray_cdcgan [--seed 0] [--num_per_row 8]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from medigan_zoo.engine.visualize import write_sample_grid  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_per_row", type=int, default=8)
    parser.add_argument("--output", type=Path, default=None, help="default: BUNDLE/docs/samples.png")
    args = parser.parse_args()
    out = write_sample_grid(args.bundle, args.output or args.bundle / "docs" / "samples.png",
                            num_per_row=args.num_per_row, seed=args.seed, device="cpu")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
