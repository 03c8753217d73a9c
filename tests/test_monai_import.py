"""``import monai`` after ``import medigan_zoo`` leaves the MONAI Deploy SDK (and Holoscan) unimported, and the SDK
still imports on demand (core/monai_import.py)."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def _deploy_installed() -> bool:
    spec = importlib.util.find_spec("monai")
    return bool(spec and any((Path(p) / "deploy").is_dir() for p in spec.submodule_search_locations or ()))


def test_monai_imports_fully_without_the_deploy_sdk():
    out = _run(
        "import sys, medigan_zoo, monai, monai.networks.nets, monai.bundle\n"
        "print('monai.deploy' in sys.modules, 'holoscan' in sys.modules, hasattr(monai, 'transforms'),"
        " type(monai.__spec__.loader).__name__)"
    )
    assert out == "False False True SourceFileLoader"


@pytest.mark.skipif(not _deploy_installed(), reason="the MONAI Deploy App SDK (deploy extra) is not installed")
def test_the_deploy_sdk_still_imports_on_demand():
    out = _run(
        "import sys, medigan_zoo, monai\n"
        "from monai.deploy.core import Application\n"
        "print('holoscan' in sys.modules, sys.modules['monai.deploy'].__file__.endswith('deploy/__init__.py'))"
    )
    assert out == "True True"
