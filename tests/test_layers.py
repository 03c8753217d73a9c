"""The torch-free layers stay torch-free: every module of core (but seeding), catalog, query and medigan, and the
CLI's list/search/info/rank, import neither torch nor monai nor numpy.

One subprocess test (a fresh interpreter: nothing imported by other tests can hide an import). The packages are
walked with pkgutil, so a module added to one of them is covered without touching this test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO
from zoo_fixtures import metadata, write_metadata_bundle

LIGHT_PACKAGES = ("medigan_zoo.core", "medigan_zoo.catalog", "medigan_zoo.query", "medigan_zoo.medigan")
#: per-sample seeding draws numpy's SeedSequence; only the runtime layers (generate, evaluate, train) use it
HEAVY_ALLOWED = ("medigan_zoo.core.seeding",)
HEAVY = ("torch", "monai", "numpy")

CHECK = """
import importlib, json, pkgutil, sys
packages, skip, heavy, bundles = json.loads(sys.argv[1])
imported = []
for name in packages:
    package = importlib.import_module(name)
    imported.append(name)
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        if module.name not in skip:
            importlib.import_module(module.name)
            imported.append(module.name)
from medigan_zoo.cli import main
for command in (["list"], ["search", "mammography", "modality=MG"], ["info", "breast_mg_toygan"],
                ["rank", "--metric", "FID"], ["rank", "mammography", "--metric", "FID"]):
    main(command + ["--bundle_dirs", bundles, "--include_builtin", "False"])
imported.append("medigan_zoo.cli")
loaded = [m for m in heavy if m in sys.modules]
print("LAYERS " + json.dumps({"imported": imported, "heavy": loaded}))
"""


def test_light_layers_import_neither_torch_nor_monai_nor_numpy(tmp_path):
    write_metadata_bundle(tmp_path, "breast_mg_toygan", metadata())
    args = json.dumps([LIGHT_PACKAGES, HEAVY_ALLOWED, HEAVY, str(tmp_path)])
    out = subprocess.run([sys.executable, "-c", CHECK, args], capture_output=True, text=True, cwd=REPO, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.rsplit("LAYERS ", 1)[-1])
    assert report["heavy"] == [], f"heavy modules imported on the light path: {report['heavy']}"
    imported = set(report["imported"])
    for must in ("medigan_zoo.catalog.fields", "medigan_zoo.catalog.index", "medigan_zoo.query.ranking",
                 "medigan_zoo.medigan.compat", "medigan_zoo.medigan.importer", "medigan_zoo.core.errors",
                 "medigan_zoo.cli"):
        assert must in imported, must  # the walk really covered the layers
    assert "breast_mg_toygan" in out.stdout  # the CLI commands ran and printed
