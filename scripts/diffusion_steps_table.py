"""Quality-vs-steps table of a diffusion bundle: the zoo's evaluation (``evaluate_bundle``, dry run) at several
numbers of sampling steps, with the sampling speed measured in the same run.

    python scripts/diffusion_steps_table.py bundles/chest_xray_ddpm --steps 5,10,25,50 --num_samples 312 \\
        --guidance_scale 2.0 --metrics fid,fid_ratio,realism

Each row evaluates ``num_samples`` samples (seed 0, labels in the training split's class proportions) generated
with ``num_inference_steps`` = that row's steps and the other options given (``--guidance_scale``, ``--eta``).
Speed is timed on its own run of ``--speed_samples`` samples in one batch (``--num_threads`` torch threads):
``samples_per_cpu_s`` divides by the process's CPU time, which on a shared machine is what one dedicated thread
would reach; ``samples_per_s`` divides by the wall time of that run (lower when other jobs share the core).
FID ratio compares equal-sized sets (min(num_samples, |real| / 2)), so it is
comparable with a stored FID ratio measured on as many samples; FID and the realism AUC depend on ``num_samples``:
compare them only at equal counts. Writes nothing into the bundle; ``--json`` also saves the rows.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

COLUMNS = ("FID_ratio", "FID", "realism_AUC", "precision", "recall")


def steps_rows(bundle: Path, steps: List[int], num_samples: int, metrics: str, options: Dict[str, Any],
               seed: int = 0, batch_size: int = 128, num_threads: int = 1,
               speed_samples: int = 64) -> List[Dict[str, Any]]:
    """One dict per number of steps: the metric values, seconds of generation and samples per second."""
    from medigan_zoo.evaluation import evaluate_bundle

    rows = []
    for n in steps:
        wall, cpu = _speed(bundle, {**options, "num_inference_steps": int(n)}, speed_samples, num_threads)
        report = evaluate_bundle(bundle, metrics=metrics, num_samples=num_samples, seed=seed, write=False,
                                 batch_size=batch_size, num_threads=num_threads, log=lambda *a, **k: None,
                                 options={**options, "num_inference_steps": int(n)})
        row = {"num_inference_steps": int(n), **options, "num_samples": num_samples,
               "evaluation_generate_s": round(float(report.timings["generate"]), 2),
               "speed_samples": speed_samples, "samples_per_s": round(speed_samples / wall, 2),
               "samples_per_cpu_s": round(speed_samples / cpu, 2),
               **{k: round(float(v), 4) for k, v in report.values().items()}}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _speed(bundle: Path, options: Dict[str, Any], count: int, num_threads: int) -> Tuple[float, float]:
    """(wall s, CPU s) of sampling ``count`` images in one batch (the first class label; model already loaded)."""
    import torch

    from medigan_zoo.runtime.bundle import load_bundle_sampler

    torch.set_num_threads(num_threads)
    sampler = load_bundle_sampler(bundle, device="cpu", options=options)
    conditions = {c.name: torch.zeros(count, dtype=torch.long) for c in sampler.conditions}
    wall, cpu = time.perf_counter(), time.process_time()
    sampler(list(range(count)), conditions)
    return time.perf_counter() - wall, time.process_time() - cpu


def markdown(rows: List[Dict[str, Any]]) -> str:
    """The rows as a Markdown table (metrics that were not measured are left out)."""
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    lines = ["| DDIM steps | " + " | ".join(cols) + " | samples/s (per CPU s) | samples/s (wall) |",
             "|---" * (len(cols) + 3) + "|"]
    for r in rows:
        cells = [f"{r[c]:.4g}" if c in r else "" for c in cols]
        lines.append(f"| {r['num_inference_steps']} | " + " | ".join(cells)
                     + f" | {r['samples_per_cpu_s']:.3g} | {r['samples_per_s']:.3g} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--steps", default="5,10,25,50", help="comma-separated numbers of DDIM steps")
    parser.add_argument("--num_samples", type=int, default=312)
    parser.add_argument("--metrics", default="fid,fid_ratio,realism")
    parser.add_argument("--guidance_scale", type=float, default=None)
    parser.add_argument("--eta", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--num_threads", type=int, default=1)
    parser.add_argument("--speed_samples", type=int, default=64, help="samples of the timed run (one batch)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)
    options = {k: v for k, v in (("guidance_scale", args.guidance_scale), ("eta", args.eta)) if v is not None}
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    rows = steps_rows(args.bundle, steps, args.num_samples, args.metrics, options, args.seed, args.batch_size,
                      args.num_threads, args.speed_samples)
    print(markdown(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
