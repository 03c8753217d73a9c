"""Hostile bundles (docs/security.md): nothing in an untrusted bundle runs, validate runs nothing, the refusal is
one line naming the bundle and the flag, trusted bundles (flag, env var, keyword) do run, bundles never shadow the
standard library, and no extra bundle can take a shipped model's id or alias.

Every hostile config tries to create a file PWNED; its absence proves that no config code ran.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import BUNDLES, REPO
from test_cli import run_cli

from medigan_zoo import Generators
from medigan_zoo.catalog.code_scan import scan_bundle
from medigan_zoo.catalog.index import IndexWarning, ZooIndex
from medigan_zoo.catalog.trust import ENV_TRUSTED, VERIFIED_MARKER, check_trusted, is_trusted, trust_decision
from medigan_zoo.core.errors import UntrustedBundleError
from medigan_zoo.runtime.validate import validate

SOURCE = BUNDLES / "chest_xray_cdcgan"


@pytest.fixture(autouse=True)
def _no_trusted_paths(monkeypatch):
    """These tests decide trust themselves: no folder is trusted through the environment."""
    monkeypatch.delenv(ENV_TRUSTED, raising=False)


def _copy_bundle(root: Path, name: str, keep_alias: bool = False) -> Path:
    bundle = shutil.copytree(SOURCE, root / name, ignore=shutil.ignore_patterns("model.ts", "*.png", "*.gif"))
    meta_path = bundle / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    if not keep_alias:
        meta["medigan_zoo"].pop("alias", None)
    meta_path.write_text(json.dumps(meta))
    return bundle


def _edit_config(bundle: Path, change) -> None:
    path = bundle / "configs" / "inference.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config, indent=1))


@pytest.fixture
def pwned(tmp_path) -> Path:
    return tmp_path / "PWNED"


@pytest.fixture
def hostile(tmp_path, pwned) -> Path:
    """A runnable generator bundle whose config creates PWNED from a `$` expression (latent_size still ends up 64)
    and from a `_requires_` without any `$`, plus a stray sqlite3.py and json.py."""
    bundle = _copy_bundle(tmp_path / "extra", "hostile_gan")

    def change(config):
        config["latent_size"] = f"$__import__('os').system('touch {pwned}') + 64"
        config["sampler"]["_requires_"] = {"_target_": "os.system", "command": f"touch {pwned}"}
    _edit_config(bundle, change)
    for name in ("sqlite3.py", "json.py"):
        (bundle / name).write_text(f"open({str(pwned)!r}, 'w').close()\n")
    return bundle


# --- the static scan and validate -------------------------------------------------------------------

def test_scan_lists_every_piece_of_code_without_running_it(hostile, pwned):
    scan = scan_bundle(hostile)
    by_where = {f.where: f for f in scan.findings}
    latent = by_where["inference.json#latent_size"]
    assert latent.kind == "expression" and "__import__" in latent.outside
    requires = by_where["inference.json#sampler::_requires_"]
    assert requires.kind == "target" and requires.outside == ("os.system",)
    expected = "code: inference.json#sampler runs medigan_zoo.sampling.GANSampler"
    assert str(by_where["inference.json#sampler"]) == expected
    assert not by_where["inference.json#postprocessing"].outside  # MONAI's bare name Compose
    assert "shadows the module sqlite3" in by_where["sqlite3.py"].outside
    assert "shadows the module json" in by_where["json.py"].outside
    assert not pwned.exists()


def test_shipped_bundles_reach_nothing_outside_the_allow_list():
    for bundle in sorted(p for p in BUNDLES.iterdir() if (p / "configs").is_dir()):
        scan = scan_bundle(bundle)
        assert scan.findings and not scan.warnings and not scan.unreadable, (bundle.name, scan.warnings)


@pytest.mark.parametrize("expression, reaches", [
    ("$eval('1')", "eval"),
    ("$open('/etc/passwd').read()", "open"),
    ("$torch.os.system('id')", "torch.os.system"),
    ("$().__class__.__bases__[0].__subclasses__()", "attribute .__class__"),
    ("$import subprocess", "subprocess"),
    ("$[f(x) for f, x in [(print, 1)]]", None),  # names bound in the expression are not globals
])
def test_expression_names_come_from_the_syntax_tree(tmp_path, expression, reaches):
    bundle = tmp_path / "b"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "configs" / "inference.json").write_text(json.dumps({"x": expression, "y": {"_target_": "eval"}}))
    findings = {f.where: f for f in scan_bundle(bundle).findings}
    outside = findings["inference.json#x"].outside
    assert (reaches in outside) if reaches else not outside
    assert findings["inference.json#y"].outside  # a bare _target_ that is no MONAI component: builtins.eval


def test_yaml_configs_are_scanned(tmp_path):
    pytest.importorskip("yaml")
    bundle = tmp_path / "b"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "configs" / "inference.yaml").write_text("net:\n  _target_: subprocess.Popen\n  args: [id]\n")
    assert [f.outside for f in scan_bundle(bundle).findings] == [("subprocess.Popen",)]


def test_id_in_parser_does_not_evaluate(hostile, pwned):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(hostile / "configs" / "inference.json"))
    assert "latent_size" in parser and "sampler" in parser
    assert parser.get("latent_size").startswith("$__import__")
    assert not pwned.exists()


def test_validate_is_static_and_lists_the_code(hostile, pwned):
    out = run_cli("validate", hostile)
    assert not pwned.exists()
    assert out.returncode == 0 and "Traceback" not in out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith(f"{hostile}: WARNING: code: inference.json#latent_size evaluates") and
               "__import__" in line for line in lines)
    assert any("inference.json#sampler::_requires_ runs os.system" in line for line in lines)
    assert any("code: inference.json#sampler runs medigan_zoo.sampling.GANSampler" in line for line in lines)
    assert "nothing was run" in lines[-1] and "code findings listed" in lines[-1]


def test_validate_run_refuses_an_untrusted_bundle_in_one_line(hostile, pwned):
    out = run_cli("validate", hostile, "--run")
    assert out.returncode == 2 and not pwned.exists()
    assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
    assert "hostile_gan" in out.stderr and f"--trust {hostile}" in out.stderr
    with pytest.raises(UntrustedBundleError):
        validate(hostile, run=True)
    assert not pwned.exists()


def test_validate_run_evaluates_a_trusted_bundle(hostile, pwned):
    out = run_cli("--trust", hostile.parent, "validate", hostile, "--run")
    assert pwned.exists(), out.stdout + out.stderr
    assert "config evaluated (--run)" in out.stdout.splitlines()[-1]


# --- the trust gate on every path that evaluates a config ---------------------------------------------

def _entry_points(gens: Generators, model_id: str, tmp_path: Path):
    from medigan_zoo import engine
    from medigan_zoo.evaluation.evaluate import evaluate_bundle
    from medigan_zoo.runtime.export import export_torchscript

    folder = gens.bundle_dir(model_id)
    return {
        "generate": lambda: gens.generate(model_id, num_samples=1, output_path=tmp_path / "out"),
        "generate arrays": lambda: gens.generate(model_id, num_samples=1, save_images=False),
        "dataset": lambda: gens.get_as_torch_dataset(model_id, num_samples=2)[0],
        "dataloader": lambda: next(iter(gens.get_as_torch_dataloader(model_id, num_samples=2, batch_size=2))),
        "generate function": lambda: gens.get_generate_function(model_id)(num_samples=1),
        "visualize": lambda: gens.visualize(model_id, output_path=tmp_path / "grid.png", num_per_row=1),
        "engine.generate": lambda: engine.generate(folder, num_samples=1, output_path=tmp_path / "out2"),
        "load_bundle_sampler": lambda: engine.load_bundle_sampler(folder),
        "evaluate": lambda: evaluate_bundle(folder, metrics="memorization", num_samples=2, write=False),
        "export": lambda: export_torchscript(folder, tmp_path / "model.ts"),
    }


@pytest.mark.parametrize("entry", ["generate", "generate arrays", "dataset", "dataloader", "generate function",
                                   "visualize", "engine.generate", "load_bundle_sampler", "evaluate", "export"])
def test_nothing_runs_before_trust(hostile, pwned, tmp_path, entry):
    gens = Generators(bundle_dirs=[hostile.parent], include_builtin=False)
    with pytest.raises(UntrustedBundleError) as err:
        _entry_points(gens, "hostile_gan", tmp_path)[entry]()
    assert not pwned.exists()
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()  # not even a folder is made
    assert "\n" not in str(err.value)


def test_the_refusal_is_one_line_naming_bundle_findings_and_flags(hostile, pwned):
    with pytest.raises(UntrustedBundleError) as err:
        check_trusted(hostile)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"Bundle 'hostile_gan' ({hostile.resolve()}) is not trusted: it is not shipped")
    assert "code findings (" in text and "inference.json#latent_size evaluates" in text
    assert f"--trust {hostile.resolve()}" in text and "trust_bundles=[" in text and ENV_TRUSTED in text
    out = run_cli("--bundle_dirs", hostile.parent, "--include_builtin", "False", "generate", "hostile_gan",
                  "--num_samples", "1", "--output_path", hostile.parent / "out")
    assert out.returncode == 2 and not pwned.exists() and "Traceback" not in out.stderr
    assert out.stderr.startswith("medigan-zoo: error: Bundle 'hostile_gan'") and len(out.stderr.splitlines()) == 1


@pytest.mark.parametrize("how", ["keyword", "keyword True", "env", "cli"])
def test_trusted_bundles_run(hostile, pwned, tmp_path, monkeypatch, how):
    if how == "cli":
        out = run_cli("--bundle_dirs", hostile.parent, "--include_builtin", "False", "--trust", hostile.parent,
                      "generate", "hostile_gan", "--num_samples", "1", "--output_path", tmp_path / "out", "--quiet")
        assert out.returncode == 0, out.stderr
    else:
        trust = {"keyword": [hostile.parent], "keyword True": True, "env": None}[how]
        if how == "env":
            monkeypatch.setenv(ENV_TRUSTED, os.pathsep.join(["/nonexistent", str(hostile.parent)]))
        gens = Generators(bundle_dirs=[hostile.parent], include_builtin=False, trust_bundles=trust)
        gens.generate("hostile_gan", num_samples=1, output_path=tmp_path / "out", quiet=True)
    assert pwned.exists()
    assert (tmp_path / "out").is_dir()


def test_shipped_bundles_need_no_flag():
    for bundle in sorted(p for p in BUNDLES.iterdir() if (p / "configs" / "metadata.json").is_file()):
        assert trust_decision(bundle).reason == "shipped with medigan_zoo"


def test_symlinks_are_resolved(hostile, tmp_path):
    trusted_root = tmp_path / "trusted"
    trusted_root.mkdir()
    (trusted_root / "link").symlink_to(hostile, target_is_directory=True)
    assert not is_trusted(trusted_root / "link", trusted=[trusted_root])  # the link resolves outside the root
    assert is_trusted(trusted_root / "link", trusted=[hostile.parent])


def test_symlinked_metadata_does_not_borrow_trust(tmp_path, pwned):
    """A bundle inside the shipped folder's look-alike or a trusted root that links a shipped bundle's files is
    judged by where it is, and a bundle whose files link elsewhere is trusted by no location."""
    bundle = _copy_bundle(tmp_path, "chest_xray_cdcgan")
    meta = bundle / "configs" / "metadata.json"
    meta.unlink()
    meta.symlink_to(SOURCE / "configs" / "metadata.json")
    decision = trust_decision(bundle, trusted=[tmp_path])
    assert not decision.trusted and "links files from elsewhere" in decision.reason
    assert is_trusted(bundle, trusted=True)  # the caller may still trust everything explicitly


def test_verified_downloads_are_trusted(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("MEDIGAN_ZOO_HOME", str(home))
    entry = home / "bundles" / "hostile_gan" / "0123456789abcdef"
    bundle = _copy_bundle(entry / "bundle", "hostile_gan")
    decision = trust_decision(bundle)
    assert not decision.trusted and VERIFIED_MARKER in decision.reason
    (bundle / VERIFIED_MARKER).write_text(json.dumps({"sha256": "ab" * 32, "source": "https://x", "revision": None,
                                                      "verified_at": "2026-12-02T00:00:00Z"}))
    assert trust_decision(bundle).trusted
    (bundle / VERIFIED_MARKER).write_text(json.dumps({"source": "https://x"}))  # no pin: not a verification
    assert not is_trusted(bundle)
    (bundle / VERIFIED_MARKER).unlink()
    (entry / VERIFIED_MARKER).write_text(json.dumps({"revision": "c" * 40, "source": "hf://o/n"}))  # cache entry
    assert is_trusted(bundle)
    (entry / VERIFIED_MARKER).unlink()
    (home / "bundles" / VERIFIED_MARKER).write_text(json.dumps({"sha256": "ab" * 32, "source": "x"}))
    assert not is_trusted(bundle)  # a marker above the cache entries vouches for nothing


# --- no lasting sys.path change ------------------------------------------------------------------------

def test_bundle_code_never_shadows_the_standard_library(tmp_path):
    """The bundle root is importable while its config is instantiated (scripts/ works), never ahead of the
    standard library (its sqlite3.py / json.py are not imported), and sys.path is unchanged afterwards."""
    bundle = _copy_bundle(tmp_path, "shadow_gan")
    shadowed = tmp_path / "SHADOWED"
    for name in ("sqlite3.py", "json.py"):
        (bundle / name).write_text(f"open({str(shadowed)!r}, 'w').close()\n")
    (bundle / "scripts").mkdir()
    (bundle / "scripts" / "helper.py").write_text("LATENT = 64\n")

    def change(config):
        config["imports"] += ["$import sqlite3", "$import json", "$from scripts.helper import LATENT"]
        config["latent_size"] = "$LATENT"
    _edit_config(bundle, change)
    script = (
        "import sys\n"
        "from medigan_zoo.engine import load_bundle_sampler\n"
        "before = list(sys.path)\n"
        f"sampler = load_bundle_sampler({str(bundle)!r}, device='cpu', trusted=True)\n"
        "import sqlite3\n"
        "assert sys.path == before, (sys.path, before)\n"
        "assert 'site-packages' not in sqlite3.__file__ and 'shadow_gan' not in sqlite3.__file__, sqlite3.__file__\n"
        "assert 'scripts.helper' not in sys.modules  # imported while instantiated (latent 64), then set aside\n"
        "print('ok', sampler.module.network.latent_size)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0 and out.stdout.strip() == "ok 64", out.stderr[-2000:]
    assert not shadowed.exists()


# --- the index: no silent replacement, broken bundles skipped ----------------------------------------------

def test_an_extra_bundle_cannot_replace_a_shipped_model(tmp_path):
    fake = _copy_bundle(tmp_path, "chest_xray_cdcgan", keep_alias=True)
    other = _copy_bundle(tmp_path, "evil_model", keep_alias=True)  # claims the shipped alias 101
    for bundle in (fake, other):
        meta_path = bundle / "configs" / "metadata.json"
        meta = json.loads(meta_path.read_text())
        meta["medigan_zoo"]["metrics"] = [{"name": "FID", "value": 0.0001, "direction": "lower", "num_samples": 9}]
        meta_path.write_text(json.dumps(meta))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gens = Generators(bundle_dirs=[tmp_path])
    messages = [str(w.message) for w in caught if issubclass(w.category, IndexWarning)]
    assert gens.get_model_info("chest_xray_cdcgan").bundle_dir == SOURCE.resolve()
    assert gens.index.resolve_id(101) == "chest_xray_cdcgan"
    assert any("'chest_xray_cdcgan'" in m and str(SOURCE.resolve()) in m and str(fake.resolve()) in m
               for m in messages), messages
    assert any("Alias 101" in m and "'evil_model'" in m for m in messages), messages
    shipped_fid = gens.get_model_info("chest_xray_cdcgan").metric("FID").value
    ranked = {r["model_id"]: r["FID"] for r in gens.rank_models_by_performance(metric="FID")}
    assert shipped_fid != 0.0001 and ranked["chest_xray_cdcgan"] == shipped_fid
    out = run_cli("--bundle_dirs", tmp_path, "info", "101")
    assert out.returncode == 0 and json.loads(out.stdout)["location"] == str(SOURCE.resolve())
    assert "medigan-zoo: warning: Model id 'chest_xray_cdcgan' is claimed by the shipped bundle" in out.stderr


def test_one_broken_bundle_in_the_bundle_path_breaks_no_other_command(tmp_path, monkeypatch):
    good = _copy_bundle(tmp_path / "extra", "good_gan")
    broken = _copy_bundle(tmp_path / "extra", "broken_gan")
    (broken / "configs" / "metadata.json").write_text('{"name": ')
    env = {"MEDIGAN_ZOO_BUNDLE_PATH": str(good.parent)}
    listed = run_cli("list", "--json", env=env)
    assert listed.returncode == 0 and "good_gan" in {m["id"] for m in json.loads(listed.stdout)}
    assert listed.stderr.count("\n") == 1 and "'broken_gan'" in listed.stderr and "metadata.json" in listed.stderr
    info = run_cli("info", "broken_gan", env=env)
    assert info.returncode == 2 and "metadata.json" in info.stderr and "Traceback" not in info.stderr
    checked = run_cli("validate", broken, env=env)
    assert checked.returncode == 1 and "configs/metadata.json" in checked.stdout
    monkeypatch.setenv("MEDIGAN_ZOO_BUNDLE_PATH", str(good.parent))
    index = ZooIndex(include_builtin=False)  # the Python API: the same, with the warning kept on the index
    assert "good_gan" in index.ids() and len(index.warnings) == 1


def test_trust_and_scan_are_torch_free(hostile):
    script = ("import sys\n"
              "from medigan_zoo.catalog.code_scan import scan_bundle\n"
              "from medigan_zoo.catalog.trust import is_trusted\n"
              f"assert scan_bundle({str(hostile)!r}).warnings and not is_trusted({str(hostile)!r})\n"
              "print(sorted(m for m in ('torch', 'monai', 'numpy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]
