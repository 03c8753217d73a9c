#!/usr/bin/env python
"""Search and ranking benchmark: medigan_zoo's MediganSelector vs a naive scan vs medigan 1.0.0 itself.

Builds a 10,000-entry catalog (medigan's 23-model config replicated with new ids) in a temporary folder,
times ``find_matching_models_by_values`` and ``rank_models_by_performance`` over a fixed query set (median
and p95 ms per call), checks every answer equals a naive recursive scan (a port of medigan's algorithm) and,
when medigan 1.0.0 is installed in /tmp/medigan_venv (see scripts/make_medigan_expected.py), runs medigan on
the same catalog in a subprocess, times it and checks it gives the same ids in the same order.

    nice python benchmarks/bench_search.py                   # 10,000 models, medigan if its venv exists
    nice python benchmarks/bench_search.py --models 2000 --no-medigan --repeat 5

Not a unit test: figures depend on the machine (results: benchmarks/README.md, "Search and ranking").
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from medigan_naive import naive_find, naive_rank  # noqa: E402  (the shared reference scan)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GLOBAL = REPO.parent / "shared" / "reference" / "medigan_global.json"
DEFAULT_MEDIGAN_PYTHON = Path("/tmp/medigan_venv/bin/python")

#: (values, operator, keys also matched, case-sensitive): README examples and typical searches
FIND_QUERIES = [
    (["dcgan", "Mammography", "inbreast"], "AND", True, False),
    (["dcgan", "mMg", "ClF", "modalities", "inbreast"], "AND", True, False),
    (["mammography", "mri"], "OR", False, False),
    (["breast", "chest", "brain"], "XOR", False, False),
    (["MMG"], "AND", False, True),
    (["x-ray", "lung"], "AND", True, False),
    (["FID", "performance"], "OR", True, False),
    (["zzz"], "OR", False, False),
]
#: (metric, order, first n model ids or None)
RANK_QUERIES = [
    ("FID", "asc", None),
    ("FID", "desc", None),
    ("SSIM", "desc", None),
    ("FID_ratio", "desc", None),
    ("CLF.trained_on_real.f1", "desc", None),
    ("turing_test.AUC", "asc", None),
    ("FID", "asc", 2000),
]


def build_catalog(global_json: Path, n: int) -> Dict[str, Any]:
    """medigan's config replicated to ``n`` entries, ids renumbered (00001_DCGAN... -> 00024_DCGAN...)."""
    base = json.loads(global_json.read_text(encoding="utf-8"))
    items = list(base.items())
    catalog: Dict[str, Any] = {}
    for k in range(n):
        model_id, config = items[k % len(items)]
        catalog[f"{k + 1:05d}{model_id[5:]}"] = json.loads(json.dumps(config))
    return catalog


# --- timing ------------------------------------------------------------------------------------------------


#: CPU ms of every call timed with ``timed`` (wall-clock ms are returned); on a shared machine the CPU time
#: shows the cost of a call without the time the process waited for a core
CPU_MS: List[float] = []


def timed(fn, repeat: int) -> List[float]:
    """Wall-clock ms per call over ``repeat`` calls (after one warm-up call); CPU ms go to CPU_MS."""
    fn()
    out = []
    for _ in range(repeat):
        cpu = time.process_time()
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
        CPU_MS.append((time.process_time() - cpu) * 1000)
    return out


def summary(ms: List[float]) -> Dict[str, float]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median_ms": statistics.median(ordered), "p95_ms": p95, "max_ms": ordered[-1], "calls": len(ms)}


def rank_ids(catalog_ids: List[str], first: Optional[int]) -> Optional[List[str]]:
    return None if first is None else catalog_ids[:first]


# --- medigan worker (runs under /tmp/medigan_venv/bin/python) ----------------------------------------------


def medigan_worker(workdir: Path, repeat: int, out: Path) -> None:
    """Time medigan 1.0.0 on workdir/config/global.json; write timings and answers to ``out``."""
    import logging

    logging.disable(logging.WARNING)
    os.chdir(workdir)
    start = time.perf_counter()
    from medigan import Generators

    generators = Generators()
    init_ms = (time.perf_counter() - start) * 1000
    ids = generators.list_models()
    result: Dict[str, Any] = {"init_ms": init_ms, "find": [], "rank": []}
    for values, op, keys, cs in FIND_QUERIES:
        answer = [m.model_id for m in generators.find_matching_models_by_values(values, op, keys, cs)]
        ms = timed(lambda: generators.find_matching_models_by_values(values, op, keys, cs), repeat)
        result["find"].append({"ids": answer, "ms": ms})
    for metric, order, first in RANK_QUERIES:
        subset = rank_ids(ids, first)
        answer = generators.rank_models_by_performance(model_ids=subset, metric=metric, order=order)
        ms = timed(lambda: generators.rank_models_by_performance(model_ids=subset, metric=metric, order=order),
                   repeat)
        result["rank"].append({"answer": answer, "ms": ms})
    out.write_text(json.dumps(result), encoding="utf-8")


def run_medigan(python: Path, workdir: Path, repeat: int) -> Dict[str, Any]:
    out = workdir / "medigan_result.json"
    cmd = [str(python), str(Path(__file__).resolve()), "--medigan-worker", str(workdir), "--repeat", str(repeat),
           "--worker-out", str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(out.read_text(encoding="utf-8"))


def time_all(selector, ids: List[str], repeat: int):
    """Per-query rows and per-verb summaries (median/p95 ms per call) over the fixed query set."""
    find_ms: List[float] = []
    find_cpu_ms: List[float] = []
    find_full_ms: List[float] = []
    rows = []
    for values, op, keys, cs in FIND_QUERIES:
        del CPU_MS[:]
        ms = timed(lambda: selector.find_matching_models_by_values(values, op, keys, cs), repeat)
        cpu = list(CPU_MS)
        find_cpu_ms += cpu
        full = timed(lambda: [c.matched_entries for c in selector.find_matching_models_by_values(values, op, keys, cs)],
                     max(3, repeat // 10))
        hits = len(selector.find_matching_models_by_values(values, op, keys, cs))
        find_ms += ms
        find_full_ms += full
        rows.append({"verb": "find", "query": f"{values} {op} keys={keys} cs={cs}", "hits": hits,
                     **summary(ms), "cpu_median_ms": statistics.median(cpu), "cpu_p95_ms": summary(cpu)["p95_ms"],
                     "with_matched_entries_median_ms": statistics.median(full)})
    rank_ms: List[float] = []
    rank_cpu_ms: List[float] = []
    for metric, order, first in RANK_QUERIES:
        subset = rank_ids(ids, first)
        del CPU_MS[:]
        ms = timed(lambda: selector.rank_models_by_performance(model_ids=subset, metric=metric, order=order),
                   repeat)
        cpu = list(CPU_MS)
        rank_cpu_ms += cpu
        hits = len(selector.rank_models_by_performance(model_ids=subset, metric=metric, order=order))
        rank_ms += ms
        rows.append({"verb": "rank", "query": f"{metric} {order}" + (f" model_ids=first {first}" if first else ""),
                     "hits": hits, **summary(ms), "cpu_median_ms": statistics.median(cpu),
                     "cpu_p95_ms": summary(cpu)["p95_ms"]})
    return rows, {"find_matching_models_by_values": summary(find_ms),
                  "find_matching_models_by_values_cpu": summary(find_cpu_ms),
                  "find_with_matched_entries": summary(find_full_ms),
                  "rank_models_by_performance": summary(rank_ms),
                  "rank_models_by_performance_cpu": summary(rank_cpu_ms)}


# --- main --------------------------------------------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--global-json", type=Path, default=DEFAULT_GLOBAL)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50, help="timed calls per query (medigan: --medigan-repeat)")
    parser.add_argument("--medigan-repeat", type=int, default=3)
    parser.add_argument("--medigan-python", type=Path, default=DEFAULT_MEDIGAN_PYTHON)
    parser.add_argument("--no-medigan", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--medigan-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.medigan_worker:
        medigan_worker(args.medigan_worker, args.repeat, args.worker_out)
        return 0

    sys.path.insert(0, str(REPO))
    from medigan_zoo.medigan.compat import MediganSelector

    if not args.global_json.is_file():
        sys.exit(f"medigan's config not found at {args.global_json} (pass --global-json)")
    catalog = build_catalog(args.global_json, args.models)
    ids = list(catalog)
    report: Dict[str, Any] = {"models": len(catalog), "python": sys.version.split()[0],
                              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"}

    start = time.perf_counter()
    selector = MediganSelector(catalog)
    report["index_build_ms"] = (time.perf_counter() - start) * 1000

    # correctness first: every answer equals the naive scan
    for values, op, keys, cs in FIND_QUERIES:
        ours = [json.loads(str(c)) for c in selector.find_matching_models_by_values(values, op, keys, cs)]
        assert ours == naive_find(catalog, values, op, keys, cs), ("find", values, op, keys, cs)
    for metric, order, first in RANK_QUERIES:
        subset = rank_ids(ids, first)
        ours = selector.rank_models_by_performance(model_ids=subset, metric=metric, order=order)
        assert ours == naive_rank(catalog, subset, metric, order), ("rank", metric, order, first)
    report["equal_to_naive_scan"] = True

    # pass 1: the interpreter as it is; pass 2: after gc.freeze(), i.e. without the occasional full garbage
    # collection of the process heap (the 10,000 configs) that allocating thousands of results triggers
    report["queries"], summaries = time_all(selector, ids, args.repeat)
    report.update(summaries)
    gc.collect()
    gc.freeze()
    report["queries_gc_frozen"], frozen = time_all(selector, ids, args.repeat)
    report["gc_frozen"] = frozen
    rows = report["queries"]

    naive_ms = timed(lambda: naive_find(catalog, *FIND_QUERIES[0]), 2)
    report["naive_scan_find_ms"] = statistics.median(naive_ms)

    if not args.no_medigan and args.medigan_python.exists():
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "config").mkdir()
            (Path(tmp) / "config" / "global.json").write_text(json.dumps(catalog), encoding="utf-8")
            med = run_medigan(args.medigan_python, Path(tmp), args.medigan_repeat)
        for (values, op, keys, cs), got in zip(FIND_QUERIES, med["find"]):
            ours = [c.model_id for c in selector.find_matching_models_by_values(values, op, keys, cs)]
            assert ours == got["ids"], ("medigan find differs", values)
        for (metric, order, first), got in zip(RANK_QUERIES, med["rank"]):
            ours = selector.rank_models_by_performance(model_ids=rank_ids(ids, first), metric=metric, order=order)
            assert ours == got["answer"], ("medigan rank differs", metric, order)
        report["medigan_1_0_0"] = {
            "init_ms": med["init_ms"], "equal_answers": True,
            "find_matching_models_by_values": summary([x for q in med["find"] for x in q["ms"]]),
            "rank_models_by_performance": summary([x for q in med["rank"] for x in q["ms"]]),
        }
    else:
        report["medigan_1_0_0"] = "not run (no --medigan-python venv, or --no-medigan)"

    print(f"catalog: {report['models']} models; index build {report['index_build_ms']:.0f} ms; "
          f"answers equal to the naive scan: {report['equal_to_naive_scan']}")
    print("ms per call, wall clock (cpu) as the interpreter is | after gc.freeze()")
    print(f"{'verb':5} {'hits':>6} {'median':>15} {'p95':>15} | {'median':>15} {'p95':>15}  query")
    for row, fro in zip(rows, report["queries_gc_frozen"]):
        cells = [f"{r[a]:.3f} ({r[b]:.3f})" for r in (row, fro)
                 for a, b in (("median_ms", "cpu_median_ms"), ("p95_ms", "cpu_p95_ms"))]
        print(f"{row['verb']:5} {row['hits']:>6} {cells[0]:>15} {cells[1]:>15} | {cells[2]:>15} {cells[3]:>15}  "
              f"{row['query']}")
    for verb in ("find_matching_models_by_values", "find_matching_models_by_values_cpu", "find_with_matched_entries",
                 "rank_models_by_performance", "rank_models_by_performance_cpu"):
        s, f = report[verb], report["gc_frozen"][verb]
        print(f"medigan_zoo {verb}: median {s['median_ms']:.3f} ms, p95 {s['p95_ms']:.3f} ms over {s['calls']} "
              f"calls; after gc.freeze(): median {f['median_ms']:.3f} ms, p95 {f['p95_ms']:.3f} ms")
    print(f"naive scan (README query 1): {report['naive_scan_find_ms']:.0f} ms per call")
    med = report["medigan_1_0_0"]
    if isinstance(med, dict):
        for verb in ("find_matching_models_by_values", "rank_models_by_performance"):
            s = med[verb]
            print(f"medigan 1.0.0 {verb}: median {s['median_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms over "
                  f"{s['calls']} calls (same answers: {med['equal_answers']})")
        print(f"medigan 1.0.0 Generators() init: {med['init_ms']:.0f} ms")
    else:
        print(f"medigan 1.0.0: {med}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
