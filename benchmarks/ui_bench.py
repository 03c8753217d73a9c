"""Web UI benchmark: ``medigan-zoo ui`` start-to-ready time and a 16-sample 28x28 generate round trip through the
UI's HTTP API (gradio_client), against the same generate through the Python API in the same run.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/ui_bench.py --starts 3 --calls 10 --json /tmp/ui_bench.json

Start-to-ready: from spawning ``python -m medigan_zoo ui --port P`` to the first HTTP 200 of its page (a fresh
process each time: gradio is imported, the index read, the page built and served). Round trip: ``Client.predict``
of the ``/generate`` endpoint (chest_xray_cdcgan, 16 samples, 28x28, a new seed each call) after one warm-up call
that loads the model, so it measures what a user waits for after the first generate. Baselines, same seeds, same
process as the client: ``Generators.generate`` (loads the bundle every call, as one CLI/API call does) and a
``Generators.get_generate_function`` (model loaded once, as the server keeps it).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "chest_xray_cdcgan"
NUM = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): the start's cost without the waits for a shared
    CPU."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(port: int, timeout: float = 300.0):
    """Spawn ``medigan-zoo ui``; return (process, seconds until its page answered 200, its CPU seconds by then)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "medigan_zoo", "ui", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"medigan-zoo ui exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return proc, time.perf_counter() - start, cpu_seconds(proc.pid)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"medigan-zoo ui did not answer within {timeout} s")


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def summary(times):
    ordered = sorted(times)
    return {"median_s": statistics.median(ordered), "min_s": ordered[0], "max_s": ordered[-1],
            "p95_s": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], "n": len(ordered),
            "all_s": [round(t, 3) for t in times]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3, help="fresh server starts timed")
    parser.add_argument("--calls", type=int, default=10, help="timed generate calls per path")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    from gradio_client import Client

    from medigan_zoo import Generators

    machine = {"python": platform.python_version(), "cpus_allowed": len(os.sched_getaffinity(0)),
               "nproc": os.cpu_count(), "load_average_before": os.getloadavg(),
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    starts, start_cpu, proc = [], [], None
    for k in range(args.starts):
        proc, seconds, cpu = start_server(free_port())
        starts.append(seconds)
        start_cpu.append(cpu)
        print(f"start {k}: ready in {seconds:.2f} s ({cpu:.2f} s CPU)", flush=True)
        if k < args.starts - 1:
            stop(proc)
    assert proc is not None
    url = f"http://127.0.0.1:{proc.args[-1]}/"
    try:
        client = Client(url, verbose=False, analytics_enabled=False, download_files=False)

        def ui_call(seed: int):
            return client.predict(MODEL, str(seed), NUM, None, None, None, None, None, None, None, "axial", 0,
                                  api_name="/generate")

        t0 = time.perf_counter()
        first = ui_call(1000)
        warm_up = time.perf_counter() - t0
        assert len(first[0]) == NUM, first
        ui_times = []
        for seed in range(args.calls):
            t0 = time.perf_counter()
            out = ui_call(seed)
            ui_times.append(time.perf_counter() - t0)
            assert len(out[0]) == NUM and f"seed {seed}" in out[3], out[3]
    finally:
        stop(proc)
    gens = Generators()
    api_times, fn_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        gens.generate(MODEL, num_samples=NUM, output_path=Path(tmp) / "warm", seed=1000, quiet=True)  # imports
        for seed in range(args.calls):
            t0 = time.perf_counter()
            gens.generate(MODEL, num_samples=NUM, output_path=Path(tmp) / f"api{seed}", seed=seed, quiet=True)
            api_times.append(time.perf_counter() - t0)
        fn = gens.get_generate_function(MODEL, num_samples=NUM, quiet=True)
        fn(output_path=Path(tmp) / "fnwarm", seed=1000, start_index=0)
        for seed in range(args.calls):
            t0 = time.perf_counter()
            fn(output_path=Path(tmp) / f"fn{seed}", seed=seed, start_index=0)
            fn_times.append(time.perf_counter() - t0)
    machine["load_average_after"] = os.getloadavg()
    report = {"start_to_ready": summary(starts), "start_to_ready_cpu": summary(start_cpu),
              "ui_round_trip": summary(ui_times), "ui_warm_up_s": warm_up,
              "python_api_generate": summary(api_times), "python_api_generate_function": summary(fn_times),
              "model": MODEL, "num_samples": NUM, "machine": machine}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
