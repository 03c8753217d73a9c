"""Write every shipped bundle's configs from its templates: ``configs/template.json`` names a template of
``medigan_zoo/templates/`` and the overrides of this bundle, per config file (see medigan_zoo.templates.render).

    python scripts/render_bundle_configs.py              # rewrite the configs that drifted, list them
    python scripts/render_bundle_configs.py --check      # exit 1 and list them instead of writing
    python scripts/render_bundle_configs.py bundles/x    # only these bundles

Edit a template or a bundle's template.json, never a rendered inference.json / train.json: tests/test_templates.py
fails when a shipped config differs from its rendering.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from medigan_zoo.templates.render import TEMPLATE_FILE, render_bundle, stale_configs  # noqa: E402


def templated_bundles(root: Path) -> List[Path]:
    """Bundles under ``root`` that declare templates (sorted)."""
    return sorted(p for p in root.iterdir() if (p / TEMPLATE_FILE).is_file())


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="*", type=Path, help="bundle folders (default: every templated bundle)")
    parser.add_argument("--check", action="store_true", help="list drifted configs and exit 1, write nothing")
    args = parser.parse_args(argv)
    bundles = args.bundles or templated_bundles(REPO / "bundles")
    drifted = 0
    for bundle in bundles:
        if args.check:
            for name in stale_configs(bundle):
                print(f"{bundle / 'configs' / name} differs from its template rendering")
                drifted += 1
        else:
            for path in render_bundle(bundle):
                print(f"wrote {path}")
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main())
