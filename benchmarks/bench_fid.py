"""FID (and precision/recall/density/coverage) between two sets of 10,000 28x28 images on the CPU.

    python benchmarks/bench_fid.py --threads 1 --threads 2 --repeats 3
    python benchmarks/bench_fid.py --num 10000 --json /tmp/bench_fid.json

Set A: 10,000 PneumoniaMNIST images (train + val, drawn with replacement, seeded); set B: 10,000 from the test
split with Gaussian noise (sigma 0.05). Without ../shared/data both sets are seeded random images (same timings).
Times (median of ``--repeats``): loading the zoo's feature extractor (medmnist_feature_extractor), batched
feature extraction of both sets under torch.inference_mode (batches of 500), FID (MONAI's FIDMetric: 128x128
covariances, scipy sqrtm; and the eigh form), PRDC (k=5, block-wise torch.cdist over 10,000 x 10,000).
See benchmarks/README.md, section "Evaluation". Not a unit test: timings depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing
DATA = Path(os.environ.get("MEDIGAN_ZOO_DATA", REPO.parent / "shared" / "data"))


def image_sets(num: int):
    import torch

    from medigan_zoo.evaluation.data import load_medmnist

    gen = torch.Generator().manual_seed(0)
    file = DATA / "pneumoniamnist.npz"
    if file.is_file():
        a_pool = load_medmnist(file, "train+val").images
        b_pool = load_medmnist(file, "test").images
        a = a_pool[torch.randint(len(a_pool), (num,), generator=gen)]
        b = b_pool[torch.randint(len(b_pool), (num,), generator=gen)]
        b = (b + 0.05 * torch.randn(b.shape, generator=gen)).clamp(0, 1)
        return a, b, "PneumoniaMNIST"
    return torch.rand(num, 1, 28, 28, generator=gen), torch.rand(num, 1, 28, 28, generator=gen), "random"


def run_once(a, b, k: int):
    from medigan_zoo.evaluation.features import load_feature_extractor
    from medigan_zoo.evaluation.fid import fid_from_features, frechet_distance_eigh
    from medigan_zoo.evaluation.prdc import precision_recall_density_coverage

    t = {}
    t0 = time.perf_counter()
    extractor = load_feature_extractor()
    t["load_extractor"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fa = extractor(a)
    fb = extractor(b)
    t["features_2x"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fid = fid_from_features(fb, fa)
    t["fid_monai"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fid_eigh = frechet_distance_eigh(fb, fa)
    t["fid_eigh"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    prdc = precision_recall_density_coverage(fa, fb, k=k)
    t["prdc"] = time.perf_counter() - t0
    t["fid_total"] = t["load_extractor"] + t["features_2x"] + t["fid_monai"]
    return t, {"FID": fid, "FID_eigh": fid_eigh, **prdc}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=10_000, help="images per set")
    parser.add_argument("--threads", type=int, action="append", help="torch threads (repeatable; default 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    import torch

    a, b, source = image_sets(args.num)
    print(f"sets: {len(a)} vs {len(b)} images {tuple(a.shape[1:])} ({source}); torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    results = {}
    for threads in args.threads or [1]:
        torch.set_num_threads(threads)
        runs = []
        values = None
        for _ in range(args.repeats):
            t, values = run_once(a, b, args.k)
            runs.append(t)
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        results[threads] = {"median_s": med, "values": values}
        print(f"threads={threads}: " + ", ".join(f"{k} {v:.2f} s" for k, v in med.items()))
        print("  values: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"num": args.num, "source": source, "results": results}, indent=2))


if __name__ == "__main__":
    main()
