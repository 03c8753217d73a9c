"""Generation throughput and streaming memory (see benchmarks/README.md, section "Generation").

    python benchmarks/bench_generate.py --threads 1 --threads 2 --repeats 5
    python benchmarks/bench_generate.py --memory          # SyntheticDataset peak RSS, 1,000 vs 100,000 samples

Throughput: N PNG samples of MONAI's MedNIST GAN (a foreign bundle, ../shared/bundles/mednist_gan) made by
  (a) medigan_zoo.engine.generate (model loaded beforehand, like the baseline),
  (b) a hand-written loop in one process: torch.inference_mode, batches of 64, sigmoid, uint8, PIL save,
  (c) the bundle's published inference.json, `python -m monai.bundle run inferring` (batch size 1), as a process.
(a) and (b) alternate ``--repeats`` times in one process for each ``--threads`` (torch intra-op threads).
(c), and the zoo run the same way as a process (a'), run once per thread count with N and with N/10 samples.

Two measures, because the development machine is shared:
  wall: samples per second; (a)/(b) from the best run of each (timeit's convention), (c) from its steady rate
        (first file to last file: no interpreter start-up, imports or model loading). It shows what overlapping
        the writes with the forward pass buys, but depends on what else the machine runs.
  cpu:  CPU seconds (all threads) per 1,000 samples; (a)/(b): median of the runs, (c)/(a'): the difference
        between the N and N/10 runs (start-up cancels). Hardly affected by other jobs; does not show overlap.
Not a unit test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing
MEDNIST = Path(os.environ.get("MEDIGAN_ZOO_SHARED", REPO.parent / "shared")) / "bundles" / "mednist_gan"


def baseline(network, num_samples: int, out: Path) -> None:
    """(b): what one would write by hand."""
    import torch
    from PIL import Image

    out.mkdir(parents=True)
    with torch.inference_mode():
        for start in range(0, num_samples, 64):
            count = min(64, num_samples - start)
            images = torch.sigmoid(network(torch.rand(count, 64)))
            pixels = (images * 255).round().to(torch.uint8).numpy()
            for j in range(count):
                Image.fromarray(pixels[j, 0]).save(out / f"{start + j:06d}.png")


def _timed(fn) -> tuple:
    """(wall seconds, CPU seconds of this process) of ``fn()``."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def in_process(bundle: Path, num_samples: int, threads: int, repeats: int, workers, output_root=None) -> dict:
    import torch

    from medigan_zoo.engine import generate, load_bundle_sampler
    from medigan_zoo.engine.runner import _default_lanes

    torch.set_num_threads(threads)
    sampler = load_bundle_sampler(bundle, device="cpu")
    root = Path(tempfile.mkdtemp(prefix="bench_generate_", dir=output_root))
    zoo, base = [], []
    try:
        generate(bundle, 64, root / "warmup", sampler=sampler, quiet=True)
        for rep in range(repeats):
            zoo.append(_timed(lambda: generate(bundle, num_samples, root / f"zoo{rep}", sampler=sampler, quiet=True,
                                               num_workers=workers)))
            base.append(_timed(lambda: baseline(sampler.module.network, num_samples, root / f"base{rep}")))
            assert len(list((root / f"zoo{rep}").glob("*.png"))) == num_samples
            shutil.rmtree(root / f"zoo{rep}")
            shutil.rmtree(root / f"base{rep}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    zw, bw = min(w for w, _ in zoo), min(w for w, _ in base)
    zc, bc = statistics.median(c for _, c in zoo), statistics.median(c for _, c in base)
    per_k = 1000 / num_samples
    return {"threads": threads, "lanes": _default_lanes(sampler.device) if workers is None else workers,
            "zoo_per_s": num_samples / zw, "baseline_per_s": num_samples / bw, "wall_ratio_zoo_over_baseline": bw / zw,
            "wall_ratio_of_medians": statistics.median(w for w, _ in base) / statistics.median(w for w, _ in zoo),
            "zoo_cpu_s_per_1000": zc * per_k, "baseline_cpu_s_per_1000": bc * per_k,
            "cpu_ratio_zoo_over_baseline": bc / zc,
            "zoo_runs_wall_s": [w for w, _ in zoo], "baseline_runs_wall_s": [w for w, _ in base]}


def _child_run(cmd, env) -> tuple:
    """(wall seconds, CPU seconds) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def whole_process(bundle: Path, num_samples: int, threads: int, output_root=None) -> dict:
    """(c) MONAI's published inferring and (a') the zoo, each as a process, with N and N/10 samples."""
    root = Path(tempfile.mkdtemp(prefix="bench_generate_proc_", dir=output_root))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": f"{REPO}{os.pathsep}"
           f"{os.environ.get('PYTHONPATH', '')}"}

    def command(tool: str, n: int, out: Path) -> list:
        if tool == "monai":
            return [sys.executable, "-m", "monai.bundle", "run", "inferring",
                    "--meta_file", str(bundle / "configs/metadata.json"),
                    "--config_file", str(bundle / "configs/inference.json"),
                    "--logging_file", str(bundle / "configs/logging.conf"), "--bundle_root", str(bundle),
                    "--num_samples", str(n), "--output_dir", str(out), "--device", "$torch.device('cpu')"]
        code = (f"import torch; torch.set_num_threads({threads}); from medigan_zoo.engine import generate; "
                f"generate({str(bundle)!r}, {n}, {str(out)!r}, device='cpu', quiet=True)")
        return [sys.executable, "-c", code]

    small = max(2, num_samples // 10)
    out = {"threads": threads}
    try:
        for tool in ("monai", "zoo"):
            wall, cpu = _child_run(command(tool, num_samples, root / tool), env)
            _, cpu_small = _child_run(command(tool, small, root / f"{tool}_small"), env)
            stamps = sorted(p.stat().st_mtime for p in (root / tool).glob("*.png"))
            assert len(stamps) == num_samples, (tool, len(stamps))
            out[f"{tool}_process_s"] = wall
            out[f"{tool}_process_per_s"] = num_samples / wall
            out[f"{tool}_steady_per_s"] = (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9)
            out[f"{tool}_cpu_s_per_1000"] = (cpu - cpu_small) / (num_samples - small) * 1000
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out["process_ratio_zoo_over_monai"] = out["monai_process_s"] / out["zoo_process_s"]
    return out


def rss_child(bundle: Path, num_samples: int) -> None:
    """Iterate a DataLoader over SyntheticDataset and print this process's peak RSS (KiB)."""
    import torch
    from torch.utils.data import DataLoader

    from medigan_zoo.engine import SyntheticDataset

    torch.set_num_threads(1)
    seen = 0
    for batch in DataLoader(SyntheticDataset(bundle, num_samples, device="cpu"), batch_size=64):
        seen += len(batch["index"])
    assert seen == num_samples
    print(json.dumps({"num_samples": num_samples, "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def memory(bundle: Path) -> dict:
    out = {}
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for n in (1_000, 100_000):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--rss-child", str(n), "--bundle", str(bundle)],
                              check=True, capture_output=True, text=True, env=env)
        rec = json.loads(proc.stdout.strip().splitlines()[-1])
        out[n] = {"peak_rss_mib": rec["peak_rss_kib"] / 1024, "seconds": time.perf_counter() - t0}
    out["ratio_100k_over_1k"] = out[100_000]["peak_rss_mib"] / out[1_000]["peak_rss_mib"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=MEDNIST)
    parser.add_argument("--num_samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, action="append", help="torch threads (repeatable); default 1 and 2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lanes", type=int, default=None, help="zoo num_workers (default: automatic)")
    parser.add_argument("--skip_process", action="store_true", help="skip the (c) and (a') process runs")
    parser.add_argument("--memory", action="store_true", help="only the SyntheticDataset peak-RSS comparison")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--output_root", type=Path, default=None,
                        help="folder the runs write into (default: the temporary folder; /dev/shm takes the disk out)")
    args = parser.parse_args()
    if not (args.bundle / "configs" / "inference.json").is_file():
        sys.exit(f"MedNIST GAN bundle not found at {args.bundle} (set MEDIGAN_ZOO_SHARED)")
    if args.rss_child:
        rss_child(args.bundle, args.rss_child)
        return
    import torch

    report = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"python {platform.python_version()}, torch {torch.__version__}",
              "load_average_at_start": os.getloadavg(),
              "command": " ".join([Path(sys.executable).name] + sys.argv), "num_samples": args.num_samples,
              "output_root": str(args.output_root or tempfile.gettempdir())}
    if args.memory:
        report["memory"] = memory(args.bundle)
    else:
        report["in_process"] = [in_process(args.bundle, args.num_samples, t, args.repeats, args.lanes,
                                            args.output_root)
                                for t in args.threads or [1, 2]]
        if not args.skip_process:
            report["process"] = []
            for row in report["in_process"]:
                proc = whole_process(args.bundle, args.num_samples, row["threads"], args.output_root)
                # (a) vs (c), both without start-up: wall rates, and CPU per sample
                proc["wall_ratio_a_over_c"] = row["zoo_per_s"] / proc["monai_steady_per_s"]
                proc["cpu_ratio_a_over_c"] = proc["monai_cpu_s_per_1000"] / row["zoo_cpu_s_per_1000"]
                report["process"].append(proc)
        report["load_average_at_end"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
