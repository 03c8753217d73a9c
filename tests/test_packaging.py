"""A normal (non-editable) wheel install finds the shipped bundles and schemas."""
from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import REPO, shipped_bundles, shipped_generators


@pytest.mark.skipif(not shipped_bundles(), reason="no shipped bundles yet")
def test_wheel_install_lists_shipped_bundles(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("medigan_zoo-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # dependencies come from this interpreter's site-packages (offline); the wheel itself is installed for real
    (Path(site) / "outer_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    where = subprocess.run([str(py), "-c", "import medigan_zoo; print(medigan_zoo.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    assert str(env_dir) in where.stdout, "the test must exercise the installed copy, not the checkout"
    out = subprocess.run([str(py), "-m", "medigan_zoo", "list", "--json"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ids = [m["id"] for m in json.loads(out.stdout)]
    assert ids == [b.name for b in shipped_generators()]
    script = subprocess.run([str(env_dir / "bin" / "medigan-zoo"), "list"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert script.returncode == 0, script.stderr
    assert all(b.name in script.stdout for b in shipped_generators())
