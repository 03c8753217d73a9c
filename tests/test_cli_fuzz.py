"""Every CLI verb fed bad values: exit status 2, exactly one line on stderr, no traceback anywhere.

Runs ``medigan_zoo.cli.main`` in-process (fast); a handful of cases also run as real subprocesses. Bad values
that the zoo checks before any model is loaded keep the table fast.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLES, REPO

from medigan_zoo.cli import main

LONG = "x" * 120_000
CHEST = "chest_xray_cdcgan"


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    """Broken files and bundles the table points at (placeholders like {bad}/name are filled with this folder)."""
    root = tmp_path_factory.mktemp("bad")
    (root / "latin1.json").write_bytes('{"models": [{"id": "caf\xe9"}]}'.encode("latin-1"))
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "broken.json").write_text('{"models": [\n  {"id": "a",,}\n]}')
    (root / "not_json.json").write_bytes(b"\x89PNG\r\n\x1a\n")
    bundles = root / "bundles"
    for name in ("latin1_bundle", "broken_config", "linked_meta"):
        shutil.copytree(BUNDLES / CHEST, bundles / name, ignore=shutil.ignore_patterns("models", "*.md"))
        meta = bundles / name / "configs" / "metadata.json"  # the copies must not claim the shipped alias 101
        meta.write_bytes(meta.read_bytes().replace(b'"alias": 101,', b"", 1))
    meta = bundles / "latin1_bundle" / "configs" / "metadata.json"
    meta.write_bytes(meta.read_bytes().replace(b'"description": "', b'"description": "\xe9\xff', 1))
    config = bundles / "broken_config" / "configs" / "inference.json"
    lines = config.read_text().splitlines()
    lines[3] += " ,,"
    config.write_text("\n".join(lines))
    (bundles / "broken_config" / "models").mkdir()
    os.symlink(BUNDLES / CHEST / "models" / "model.pt", bundles / "broken_config" / "models" / "model.pt")
    linked = bundles / "linked_meta" / "configs" / "metadata.json"
    linked.unlink()
    linked.symlink_to(BUNDLES / "brain_mri_cdcgan" / "configs" / "metadata.json")
    (root / "user_folder").mkdir()
    (root / "user_folder" / "sample_000000.png").write_bytes(b"mine")
    return root


OUT = "{tmp}/out"
#: verb -> argument lists that must each end in exit 2 with one line on stderr
BAD = {
    "list": [["list", "--json", "maybe"], ["--include_builtin", "maybe", "list"],
             ["--catalogs", "{bad}/latin1.json", "list"],
             ["--catalogs", "{bad}/deep.json", "list"], ["--catalogs", "{bad}/broken.json", "list"],
             ["--catalogs", "{bad}/not_json.json", "list"], ["--catalogs", "{bad}/nope.json", "list"],
             ["--bundle_dirs", "/nonexistent", "list"], ["list", LONG], ["nosuchverb"]],
    "search": [["search"], ["search", ""], ["search", "  "], ["search", "--limit", "abc", "chest"],
               ["search", "--limit", "-1", "chest"], ["search", "--limit", "0", "chest"],
               ["search", "--limit", "2.5", "chest"], ["search", "dims=abc"], ["search", "dims=2x"],
               ["search", "nofield=3"], ["search", "=x"], ["search", "modality="], ["search", LONG],
               ["search", "--json=maybe", "chest"]],
    "info": [["info"], ["info", "nope_model"], ["info", "99999"], ["info", LONG]],
    "rank": [["rank", "--metric", "NOPE"], ["rank", "--order", "sideways"], ["rank", "--model_ids", "nope"],
             ["rank", "--json=maybe"], ["rank", "--metric", LONG]],
    "generate": [["generate"], ["generate", "nope_model"],
                 ["generate", CHEST, "--num_samples", "abc", "--output_path", OUT],
                 ["generate", CHEST, "--num_samples", "-3", "--output_path", OUT],
                 ["generate", CHEST, "--num_samples", "2.5", "--output_path", OUT],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", "123"],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", ""],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", "{bad}/user_folder"],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", "{bad}/latin1.json"],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", OUT, "--output_format", "gif"],
                 ["generate", "adrenal_ct_3dgan", "--num_samples", "1", "--output_path", OUT, "--output_format", "png"],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", OUT, "--batch_size", "0"],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", OUT, "--class_label", "7"],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", OUT, "--nonsense", "7"],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", OUT, "--quiet", "maybe"],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", OUT, "--seed", "abc"],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", OUT, "--split_by_condition", "2"],
                 ["generate", CHEST, "--num_samples", "1", "--output_path", "/proc/nope/out"],
                 ["--bundle_dirs", "{bad}/bundles/broken_config", "generate", "broken_config", "--num_samples", "1",
                  "--output_path", OUT]],
    "visualize": [["visualize"], ["visualize", "nope_model"],
                  ["visualize", CHEST, "--output_path", "/proc/nope/x.png"],
                  ["visualize", CHEST, "--output_path", "{tmp}"], ["visualize", CHEST, "--output_path", "{tmp}/x.what"],
                  ["visualize", CHEST, "--output_path", "123"], ["visualize", CHEST, "--num_per_row", "abc"],
                  ["visualize", CHEST, "--num_per_row", "0"], ["visualize", CHEST, "--seed", "-1"],
                  ["--bundle_dirs", "{bad}/bundles/broken_config", "visualize", "broken_config", "--output_path",
                   "{tmp}/v.png"]],
    "validate": [["validate"], ["validate", LONG]],
    "download": [["download"], ["download", "nope_model"], ["download", LONG]],
    "evaluate": [["evaluate"], ["evaluate", "nope_model"],
                 ["evaluate", CHEST, "--metrics", "nope", "--dry_run", "True"],
                 ["evaluate", CHEST, "--num_samples", "abc", "--dry_run", "True"],
                 ["evaluate", CHEST, "--num_samples", "0", "--dry_run", "True"],
                 ["evaluate", CHEST, "--dry_run", "maybe"], ["evaluate", CHEST, "--bogus_option", "1"]],
    "prepare": [["prepare"], ["prepare", "{tmp}/nope", "--output", OUT],
                ["prepare", "{bad}/latin1.json", "--output", OUT],
                ["prepare", "{bad}", "--output", "{bad}/user_folder"],
                ["prepare", "{bad}/user_folder", "--output", OUT, "--size", "abc"],
                ["prepare", "{bad}/user_folder", "--output", OUT, "--val", "0.9", "--test", "0.2"],
                ["prepare", "{bad}/user_folder", "--output", OUT, "--val", "lots"],
                ["prepare", "{bad}/user_folder", "--output", OUT, "--labels", "{bad}/broken.json"],
                ["prepare", "{bad}/user_folder", "--output", OUT], ["prepare", LONG, "--output", OUT]],
    "package": [["package"], ["package", str(BUNDLES / CHEST)], ["package", "{bad}/bundles/broken_config", "-o", OUT],
                ["package", "{bad}/bundles/linked_meta", "-o", OUT], ["package", "{bad}/user_folder", "-o", OUT],
                ["package", LONG, "-o", OUT]],
    "ui": [["ui", "--port", "abc"], ["ui", "--port", "-1"], ["ui", "--port", "70000"], ["ui", "--max_samples", "0"],
           ["ui", "--port", "1.5"]],
    "import-medigan": [["import-medigan"], ["import-medigan", "/nonexistent.json"],
                       ["import-medigan", "{bad}/latin1.json"], ["import-medigan", "{bad}/deep.json"],
                       ["import-medigan", "{bad}/broken.json"], ["import-medigan", LONG]],
}
CASES = [pytest.param(verb, n, args, id=f"{verb}-{n}") for verb, table in BAD.items() for n, args in enumerate(table)]


def _fill(args, bad: Path, tmp: Path):
    return [a.replace("{bad}", str(bad)).replace("{tmp}", str(tmp)) for a in args]


@pytest.mark.parametrize("verb, n, args", CASES)
def test_bad_values_end_in_one_line_and_exit_2(verb, n, args, bad_files, tmp_path, capsys):
    argv = _fill(args, bad_files, tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_.value.code == 2, (argv[:6], out[-500:], err[-500:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medigan-zoo: error: "), err[-2000:]
    assert "Traceback" not in out + err
    assert len(lines[0]) <= 2100  # values echoed in messages are cut
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("sample_*"))


def test_users_files_are_untouched(bad_files):
    assert (bad_files / "user_folder" / "sample_000000.png").read_bytes() == b"mine"
    assert sorted(p.name for p in (bad_files / "user_folder").iterdir()) == ["sample_000000.png"]


@pytest.mark.parametrize("name, reason", [("latin1_bundle", "not UTF-8 text"), ("linked_meta", "outside the bundle")])
def test_a_broken_extra_bundle_is_left_out_with_one_warning(name, reason, bad_files, tmp_path, capsys):
    """Other models stay usable (one warning line names the broken bundle); `info` on it gives its error, exit 2."""
    try:
        main(_fill(["--bundle_dirs", f"{{bad}}/bundles/{name}", "list"], bad_files, tmp_path))
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    out, err = capsys.readouterr()
    assert "chest_xray_cdcgan" in out and "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1 and "warning" in err and name in err and reason in err
    with pytest.raises(SystemExit) as exit_:
        main(_fill(["--bundle_dirs", f"{{bad}}/bundles/{name}", "info", name], bad_files, tmp_path))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert "error" in err.strip().splitlines()[-1] and reason in err.strip().splitlines()[-1]


def test_messages_name_the_problem(bad_files, tmp_path, capsys):
    """A few messages, word for word where it matters: the file and line of a broken config, the typed text."""
    def error(args):
        with pytest.raises(SystemExit):
            main(_fill(args, bad_files, tmp_path))
        return capsys.readouterr().err

    message = error(["--bundle_dirs", "{bad}/bundles/broken_config", "generate", "broken_config", "--num_samples", "1",
                     "--output_path", "{tmp}/o"])
    assert "broken_config/configs/inference.json" in message and "(line 4," in message
    assert "not UTF-8 text (byte 0xe9 at line 1)" in error(["--catalogs", "{bad}/latin1.json", "list"])
    assert "nested too deeply" in error(["--catalogs", "{bad}/deep.json", "list"])
    assert "outside the bundle folder" in error(["--bundle_dirs", "{bad}/bundles/linked_meta", "info", "linked_meta"])
    assert "sample_000000.png" in error(["generate", CHEST, "--num_samples", "1", "--output_path",
                                         "{bad}/user_folder"])
    assert error(["search", ""]) == error(["search"])


def test_search_keeps_the_typed_text(capsys):
    """fire would turn 1e5 into 100000.0 (and match every model through '0'); search sees '1e5'."""
    main(["search", "1e5", "--json"])
    assert capsys.readouterr().out.strip() == "[]"
    main(["search", "--json", "chest"])  # --json before the query: the query is still "chest"
    assert '"chest_xray_cdcgan"' in capsys.readouterr().out


@pytest.mark.parametrize("args", [
    ["search", "--limit", "abc", "chest"],
    ["generate", CHEST, "--num_samples", "1", "--output_path", "123"],
    ["info"],
    ["search", LONG],
])
def test_as_a_real_process(args, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MEDIGAN_ZOO_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-m", "medigan_zoo", *args], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert run.returncode == 2, run.stderr[-1000:]
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stdout + run.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "home"] or not any(tmp_path.glob("sample_*"))
