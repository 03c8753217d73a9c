"""torchrun: two CPU processes (gloo) shard one generation run; the union equals the single-process output.

Launched as users do (docs/generation.md): ``python -m torch.distributed.run --nproc_per_node 2 -m medigan_zoo
generate ...``. Should the CLI not import (it is developed in parallel), a small script calling
``medigan_zoo.engine.generate`` is launched instead, so the engine's sharding is tested either way.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO
from test_engine import folder_bytes, manifest_lines, one_torch_thread, tiny_bundle  # noqa: F401

engine = pytest.importorskip("medigan_zoo.engine")
dist = pytest.importorskip("torch.distributed")

NUM, SEED = 13, 11
SCRIPT = textwrap.dedent(f"""
    import sys
    from medigan_zoo.engine import generate

    result = generate(sys.argv[1], {NUM}, sys.argv[2], seed={SEED}, batch_size=4, conditions={{"class_label": [0, 1]}},
                      split_by_condition=True, quiet=True)
    print(f"{{result.num_written}} samples written to {{result.output_path}}")
""")


def _launch_args(bundle: Path, out: Path, tmp_path: Path) -> list:
    try:
        import medigan_zoo.cli  # noqa: F401
        from medigan_zoo import Generators  # noqa: F401
    except ImportError:
        script = tmp_path / "gen.py"
        script.write_text(SCRIPT)
        return [str(script), str(bundle), str(out)]
    return ["-m", "medigan_zoo", "--bundle_dirs", str(bundle.parent), "--include_builtin", "False", "generate",
            bundle.name, "--num_samples", str(NUM), "--output_path", str(out), "--seed", str(SEED),
            "--batch_size", "4", "--class_label", "0,1", "--split_by_condition", "True"]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")
def test_torchrun_two_processes_equal_one(tiny_bundle, tmp_path):
    out = tmp_path / "dist"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           *_launch_args(tiny_bundle, out, tmp_path)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # both ranks report the whole run (counts summed over ranks)
    assert proc.stdout.count(f"{NUM} samples written to {out}") == 2, proc.stdout
    single = engine.generate(tiny_bundle, NUM, tmp_path / "single", seed=SEED, batch_size=5,
                             conditions={"class_label": [0, 1]}, split_by_condition=True, quiet=True)
    files = folder_bytes(out)
    assert len(files) == NUM and files == folder_bytes(single.output_path)
    assert manifest_lines(out) == manifest_lines(single.output_path)
    assert not (out / ".manifest-parts").exists()  # rank 0 merged the parts of both ranks
