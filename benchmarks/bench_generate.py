"""Generation throughput and streaming memory (see benchmarks/README.md, section "Generation").

    python benchmarks/bench_generate.py --threads 1 --threads 2 --repeats 3
    python benchmarks/bench_generate.py --memory          # SyntheticDataset peak RSS, 1,000 vs 100,000 samples

Throughput: N PNG samples of MONAI's MedNIST GAN (a foreign bundle, ../shared/bundles/mednist_gan) made by
  (a) medigan_zoo.engine.generate (model loaded beforehand, like the baseline),
  (b) a hand-written loop in one process: torch.inference_mode, batches of 64, sigmoid, uint8, PIL save,
  (c) the bundle's published inference.json: `python -m monai.bundle run inferring` (batch size 1), timed as a
      whole process, and compared with (a') the zoo's generate run the same way as a whole process.
(a) and (b) alternate ``--repeats`` times in one process; the best run of each is reported, with their ratio
(and the ratio of the medians).
Not a unit test: timings depend on the machine and its load.
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


def in_process(bundle: Path, num_samples: int, threads: int, repeats: int, workers) -> dict:
    import torch

    from medigan_zoo.engine import generate, load_bundle_sampler

    torch.set_num_threads(threads)
    sampler = load_bundle_sampler(bundle, device="cpu")
    root = Path(tempfile.mkdtemp(prefix="bench_generate_"))
    zoo, base = [], []
    try:
        generate(bundle, 64, root / "warmup", sampler=sampler, quiet=True)
        for rep in range(repeats):
            t0 = time.perf_counter()
            result = generate(bundle, num_samples, root / f"zoo{rep}", sampler=sampler, quiet=True,
                              num_workers=workers)
            zoo.append(time.perf_counter() - t0)
            assert result.num_written == num_samples
            t0 = time.perf_counter()
            baseline(sampler.module.network, num_samples, root / f"base{rep}")
            base.append(time.perf_counter() - t0)
            shutil.rmtree(root / f"zoo{rep}")
            shutil.rmtree(root / f"base{rep}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    from medigan_zoo.engine.runner import _default_workers

    za, zb = min(zoo), min(base)  # best of n: the least disturbed run of each (timeit's convention)
    return {"threads": threads, "writer_threads": workers if workers is not None else _default_workers(sampler.device),
            "zoo_s": za, "baseline_s": zb, "zoo_per_s": num_samples / za, "baseline_per_s": num_samples / zb,
            "ratio_zoo_over_baseline": zb / za,
            "ratio_of_medians": statistics.median(base) / statistics.median(zoo),
            "zoo_runs_s": zoo, "baseline_runs_s": base}


def whole_process(bundle: Path, num_samples: int, threads: int) -> dict:
    """(c) MONAI's published inferring and (a') the zoo, each as one timed process."""
    root = Path(tempfile.mkdtemp(prefix="bench_generate_proc_"))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": f"{REPO}{os.pathsep}"
           f"{os.environ.get('PYTHONPATH', '')}"}
    try:
        monai_cmd = [sys.executable, "-m", "monai.bundle", "run", "inferring",
                     "--meta_file", str(bundle / "configs/metadata.json"),
                     "--config_file", str(bundle / "configs/inference.json"),
                     "--logging_file", str(bundle / "configs/logging.conf"), "--bundle_root", str(bundle),
                     "--num_samples", str(num_samples), "--output_dir", str(root / "monai"),
                     "--device", "$torch.device('cpu')"]
        zoo_code = (f"import torch; torch.set_num_threads({threads}); from medigan_zoo.engine import generate; "
                    f"generate({str(bundle)!r}, {num_samples}, {str(root / 'zoo')!r}, device='cpu', quiet=True)")
        times, steady, written = {}, {}, {}
        for name, cmd in (("monai", monai_cmd), ("zoo", [sys.executable, "-c", zoo_code])):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name] = time.perf_counter() - t0
            stamps = sorted(p.stat().st_mtime for p in (root / name).glob("*.png"))
            written[name] = len(stamps)
            # steady state: first file to last file (no interpreter start-up, imports or model loading)
            steady[name] = (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"threads": threads, "monai_s": times["monai"], "zoo_s": times["zoo"],
            "monai_per_s": num_samples / times["monai"], "zoo_per_s": num_samples / times["zoo"],
            "ratio_zoo_over_monai": times["monai"] / times["zoo"],
            "monai_steady_per_s": steady["monai"], "zoo_steady_per_s": steady["zoo"],
            "ratio_steady_zoo_over_monai": steady["zoo"] / steady["monai"], "files": written}


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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--writer_threads", type=int, default=None, help="zoo num_workers (default: automatic)")
    parser.add_argument("--skip_process", action="store_true", help="skip (c) and (a') whole-process timings")
    parser.add_argument("--memory", action="store_true", help="only the SyntheticDataset peak-RSS comparison")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
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
              "command": " ".join([Path(sys.executable).name] + sys.argv), "num_samples": args.num_samples}
    if args.memory:
        report["memory"] = memory(args.bundle)
    else:
        report["in_process"] = [in_process(args.bundle, args.num_samples, t, args.repeats, args.writer_threads)
                                for t in args.threads or [1, 2]]
        if not args.skip_process:
            report["whole_process"] = whole_process(args.bundle, args.num_samples, max(args.threads or [2]))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
