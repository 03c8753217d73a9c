#!/usr/bin/env python
"""Refresh the generated parts of the docs: the contract table of docs/bundle_contract.md (from the runtime's
properties file). tests/test_runtime.py fails when a generated part is stale.

    python scripts/build_docs.py
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from medigan_zoo.runtime.properties import contract_table  # noqa: E402

BEGIN = "<!-- generated from medigan_zoo/runtime/generator_properties.json: python scripts/build_docs.py -->"
END = "<!-- end generated -->"


def main() -> None:
    path = ROOT / "docs" / "bundle_contract.md"
    text = path.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: generated-section markers not found")
    path.write_text(pattern.sub(lambda _: f"{BEGIN}\n{contract_table('generator')}\n{END}", text))
    print(f"updated {path}")


if __name__ == "__main__":
    main()
