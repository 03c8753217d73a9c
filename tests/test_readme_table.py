"""README.md's model table is generated from the bundles' metadata (scripts/readme_model_table.py)."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO, shipped_generators


def test_the_readme_model_table_is_up_to_date():
    result = subprocess.run([sys.executable, "scripts/readme_model_table.py", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_table_has_one_row_per_shipped_generator():
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("<!-- model-table:begin"):readme.index("<!-- model-table:end -->")]
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    ids = [r.split("`")[1] for r in rows]  # the model table, then the quality table: one row each per generator
    names = sorted(b.name for b in shipped_generators())
    assert sorted(set(ids)) == names and len(ids) == 2 * len(names)


def test_the_check_fails_on_a_hand_edited_table(tmp_path):
    readme = (REPO / "README.md").read_text().replace("| 101 |", "| 1010 |")
    (tmp_path / "README.md").write_text(readme)
    result = subprocess.run([sys.executable, "scripts/readme_model_table.py", "--check", "--output",
                             str(tmp_path / "README.md")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "out of date" in result.stdout
