"""A normal (non-editable) wheel install finds the shipped bundles and schemas; the wheel declares version ranges
and constraints.txt pins the tested CPU environment inside them."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from conftest import REPO, shipped_bundles, shipped_generators

CONSTRAINTS = REPO / "constraints.txt"


def _pins() -> dict:
    """constraints.txt: lower-cased name -> exact version."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def _install_requires() -> dict:
    """setup.cfg install_requires: lower-cased name -> specifier."""
    import configparser

    from packaging.requirements import Requirement

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    reqs = [Requirement(line) for line in cfg["options"]["install_requires"].splitlines()
            if line.strip() and not line.strip().startswith("#")]
    return {r.name.lower().replace("_", "-"): r.specifier for r in reqs}


def test_the_package_declares_ranges_and_constraints_pin_the_cpu_build_inside_them():
    requires, pins = _install_requires(), _pins()
    assert not [n for n, spec in requires.items() if any(s.operator == "==" for s in spec)], \
        "install_requires must declare ranges; exact pins belong in constraints.txt"
    assert set(requires) <= set(pins), f"constraints.txt lacks {sorted(set(requires) - set(pins))}"
    for name, spec in requires.items():
        assert spec.contains(pins[name], prereleases=True), f"constraints.txt {name}=={pins[name]} is outside {spec}"
    assert pins["torch"].endswith("+cpu"), "the tested torch is the CPU build (PyPI's plain wheel is CUDA)"


def test_install_scripts_use_the_constraints_file():
    for script in ("scripts/test.sh", "scripts/quickstart.sh"):
        installs = [line for line in (REPO / script).read_text().splitlines()
                    if "pip install" in line and "--upgrade pip" not in line]
        assert installs and all("-c constraints.txt" in line for line in installs), script


@pytest.mark.skipif(not shipped_bundles(), reason="no shipped bundles yet")
def test_wheel_install_lists_shipped_bundles(tmp_path):
    dist = tmp_path / "dist"
    # build from a clean copy: setuptools reuses a checkout's build/ folder, whose stale files would hide package
    # data missing from setup.cfg
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info",
                                                                "training_output", "__pycache__", ".pytest_cache"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("medigan_zoo-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # dependencies come from this interpreter's site-packages (offline); the wheel itself is installed for real
    (Path(site) / "outer_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # the installed copy, not a checkout on PYTHONPATH (the test commands set it to the worktree)
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                              "-c", str(CONSTRAINTS), str(wheel)], env=clean, capture_output=True, text=True,
                             timeout=300)
    assert install.returncode == 0, install.stderr
    where = subprocess.run([str(py), "-c", "import medigan_zoo; print(medigan_zoo.__file__)"], cwd=tmp_path, env=clean,
                           capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    assert str(env_dir) in where.stdout, "the test must exercise the installed copy, not the checkout"
    shipped = subprocess.run([str(py), "-c", "import medigan_zoo, pathlib; from medigan_zoo.templates import "
                              "template_names; print(template_names()); "
                              "print((pathlib.Path(medigan_zoo.__file__).parent / 'py.typed').is_file())"],
                             cwd=tmp_path, env=clean, capture_output=True, text=True)
    assert shipped.returncode == 0, shipped.stderr
    assert "generator_inference" in shipped.stdout and shipped.stdout.split()[-1] == "True", shipped.stdout
    out = subprocess.run([str(py), "-m", "medigan_zoo", "list", "--json"], cwd=tmp_path, env=clean, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ids = [m["id"] for m in json.loads(out.stdout)]
    assert ids == [b.name for b in shipped_generators()]
    script = subprocess.run([str(env_dir / "bin" / "medigan-zoo"), "list"], cwd=tmp_path, env=clean,
                            capture_output=True, text=True, timeout=120)
    assert script.returncode == 0, script.stderr
    assert all(b.name in script.stdout for b in shipped_generators())
    # the installed copy runs bundles too (the runtime's properties files and the templates are package data)
    for model in ("chest_xray_cdcgan", "adrenal_ct_3dgan"):
        made = subprocess.run([str(env_dir / "bin" / "medigan-zoo"), "generate", model, "--num_samples", "2",
                               "--output_path", str(tmp_path / model), "--output_format", "npy"], cwd=tmp_path,
                              env=clean, capture_output=True, text=True, timeout=300)
        assert made.returncode == 0, made.stderr
        assert len(list((tmp_path / model).glob("**/sample_*.npy"))) == 2
    checked = subprocess.run([str(env_dir / "bin" / "medigan-zoo"), "validate", "--run=True",
                              str(Path(site) / "medigan_zoo" / "_bundles" / "chest_xray_cdcgan")], cwd=tmp_path,
                             env=clean, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0 and "OK" in checked.stdout, checked.stdout + checked.stderr


@pytest.mark.slow
def test_resolving_the_package_under_the_constraints_picks_the_cpu_torch(tmp_path):
    """What scripts/test.sh installs, resolved (pip --dry-run) against the configured package index."""
    report = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
                             "-c", str(CONSTRAINTS), "--report", str(report), f"{REPO}[test]"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    installs = json.loads(report.read_text())["install"]
    chosen = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}
    assert chosen["torch"] == _pins()["torch"]
    assert not [n for n in chosen if n.startswith("nvidia-")], "a CUDA torch would pull nvidia-* packages"
