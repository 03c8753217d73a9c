"""No user file is written over, output paths are checked before any work, and resume checks content."""
from __future__ import annotations

import hashlib

import pytest
from test_engine import folder_bytes, manifest_lines, one_torch_thread, tiny_bundle  # noqa: F401

from medigan_zoo.core.errors import GenerationError

engine = pytest.importorskip("medigan_zoo.engine")


def test_a_folder_of_the_users_own_files_is_refused(tiny_bundle, tmp_path):
    own = tmp_path / "mine"
    own.mkdir()
    (own / "sample_000000.png").write_bytes(b"my own picture")
    (own / "notes.txt").write_text("keep me")
    with pytest.raises(GenerationError, match=r"not a zoo output folder \(no manifest.json\): notes.txt, "
                                              r"sample_000000.png"):
        engine.generate(tiny_bundle, 2, own, quiet=True)
    assert (own / "sample_000000.png").read_bytes() == b"my own picture"
    assert sorted(p.name for p in own.iterdir()) == ["notes.txt", "sample_000000.png"]


def test_a_zoo_output_folder_is_resumed_and_an_empty_one_used(tiny_bundle, tmp_path):
    (tmp_path / "empty").mkdir()
    first = engine.generate(tiny_bundle, 2, tmp_path / "empty", quiet=True)
    again = engine.generate(tiny_bundle, 3, tmp_path / "empty", quiet=True)
    assert first.num_written == 2 and again.num_written == 1 and again.num_skipped == 2


@pytest.mark.parametrize("value, message", [
    ("", "output_path is empty"),
    ("   ", "output_path is empty"),
    (123, r"output_path must be a path, got 123 \(a number\)"),
    (1.5, r"output_path must be a path, got 1.5 \(a number\)"),
    (True, r"output_path must be a path, got True \(bool\)"),
    (["a"], r"output_path must be a path, got \['a'\] \(list\)"),
])
def test_output_path_values_that_are_not_paths(tiny_bundle, value, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GenerationError, match=message):
        engine.generate(tiny_bundle, 1, value, quiet=True)
    assert list(tmp_path.iterdir()) == []  # nothing written into the current folder


def test_output_path_that_is_a_file(tiny_bundle, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(GenerationError, match="is a file, not a folder"):
        engine.generate(tiny_bundle, 1, tmp_path / "f", quiet=True)


def test_manifest_records_size_and_sha256(tiny_bundle, tmp_path):
    result = engine.generate(tiny_bundle, 3, tmp_path / "o", quiet=True)
    for rec, path in zip(manifest_lines(tmp_path / "o"), result.files):
        data = path.read_bytes()
        assert rec["size"] == len(data) and rec["sha256"] == hashlib.sha256(data).hexdigest()


def test_resume_redoes_damaged_and_missing_files(tiny_bundle, tmp_path):
    clean = engine.generate(tiny_bundle, 4, tmp_path / "clean", quiet=True)
    out = tmp_path / "out"
    result = engine.generate(tiny_bundle, 4, out, quiet=True)
    files = list(result.files)
    files[0].write_bytes(files[0].read_bytes()[:-7])  # truncated
    damaged = bytearray(files[1].read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size, one byte changed
    files[1].write_bytes(bytes(damaged))
    files[2].unlink()  # missing
    again = engine.generate(tiny_bundle, 4, out, quiet=True)
    assert (again.num_written, again.num_skipped) == (3, 1)
    assert folder_bytes(out) == folder_bytes(clean.output_path)
    assert manifest_lines(out) == manifest_lines(clean.output_path)


def test_manifests_without_digests_are_still_resumed(tiny_bundle, tmp_path):
    """Manifests written before size/sha256 existed: presence is all that can be checked."""
    import json

    out = tmp_path / "old"
    engine.generate(tiny_bundle, 2, out, quiet=True)
    lines = [{k: v for k, v in rec.items() if k not in ("size", "sha256")} for rec in manifest_lines(out)]
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    again = engine.generate(tiny_bundle, 2, out, quiet=True)
    assert again.num_written == 0 and again.num_skipped == 2
