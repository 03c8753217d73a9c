"""Freeze the metrics every generator bundle had at one git commit into a JSON file, so the comparison page can
show progress against that state (a baseline) without the git history at hand.

    python scripts/snapshot_metrics.py --commit e7ea0ae --label "issue #14 audit" \\
        --output docs/baselines/issue14_audit.json

The file records the commit, its date, and per bundle its version and each stored metric's value and sample
count, read with ``git show <commit>:bundles/<id>/configs/metadata.json`` (nothing is re-measured). The targets
the page counts are not part of the snapshot: they live in ``medigan_zoo.catalog.targets``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> str:
    """Output of ``git -C repo args`` (raises SystemExit with git's message when it fails)."""
    run = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed in {repo}: {run.stderr.strip()}")
    return run.stdout


def snapshot(repo: Path, commit: str) -> Dict[str, Any]:
    """Version and metrics (value, num_samples) of every generator bundle under bundles/ at ``commit``."""
    full = git(repo, "rev-parse", "--verify", f"{commit}^{{commit}}").strip()
    models: Dict[str, Any] = {}
    for path in git(repo, "ls-tree", "--name-only", full, "bundles/").split():
        try:
            meta = json.loads(git(repo, "show", f"{full}:{path}/configs/metadata.json"))
        except SystemExit:
            continue  # a folder without metadata at that commit is not a bundle
        zoo = meta.get("medigan_zoo") or {}
        if zoo.get("role", "generator") != "generator":
            continue
        metrics = {m["name"]: {"value": m["value"], "num_samples": m.get("num_samples")}
                   for m in zoo.get("metrics") or [] if isinstance(m, dict) and "name" in m
                   and isinstance(m.get("value"), (int, float))}
        models[Path(path).name] = {"version": meta.get("version"), "dataset": ", ".join(zoo.get("dataset") or []),
                                   "metrics": metrics}
    return {"commit": full, "date": git(repo, "show", "-s", "--format=%cs", full).strip(), "models": models}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", required=True, help="the baseline commit")
    parser.add_argument("--label", required=True, help="what the baseline was, e.g. 'issue #14 audit'")
    parser.add_argument("--output", required=True, help="JSON file to write")
    parser.add_argument("--repo", default=str(REPO), help="git repository (default: this checkout)")
    args = parser.parse_args(argv)
    out = Path(args.output)
    data = {"label": args.label, **snapshot(Path(args.repo), args.commit)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    print(f"{len(data['models'])} models of {data['commit'][:10]} ({data['date']}) written to {out}")


if __name__ == "__main__":
    main()
