#!/usr/bin/env python
"""Export bundles' networks (``network_def`` + ``models/model.pt``) to ``models/model.ts`` and check them.

GAN generators go through MONAI's ``ckpt_export``; diffusion UNets are traced (see ``medigan_zoo.runtime.export``).

    python scripts/export_torchscript.py bundles/chest_xray_cdcgan [bundles/chest_xray_ddpm ...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from medigan_zoo.runtime.export import export_torchscript  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    for bundle in ap.parse_args().bundles:
        result = export_torchscript(bundle)
        print(f"wrote {result.path} (max |ts - state dict| = {result.max_abs_difference:.2e})")


if __name__ == "__main__":
    main()
