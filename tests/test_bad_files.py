"""Bad files read by the zoo end in one MetadataError/ZooError naming the file (core/jsonio, bundle_reader)."""
from __future__ import annotations

import os
import shutil

import pytest
from conftest import BUNDLES

from medigan_zoo.catalog.bundle_reader import check_config_json, read_bundle
from medigan_zoo.core.errors import MetadataError, ZooError
from medigan_zoo.core.jsonio import MAX_DEPTH, load_json
from medigan_zoo.core.paths import find_bundles


@pytest.mark.parametrize("data, message", [
    (b'{"a": "caf\xe9"}', r"not UTF-8 text \(byte 0xe9 at line 1\)"),
    (b'{\n"a": 1,\n"b": "\xff"}', r"not UTF-8 text \(byte 0xff at line 3\)"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply to parse"),
    (b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5), f"nested more than {MAX_DEPTH} levels deep"),
    (b'{"a": 1,\n "b": }', r"malformed test file: Expecting value \(line 2, column 7\)"),
])
def test_load_json_errors_name_file_and_line(tmp_path, data, message):
    path = tmp_path / "f.json"
    path.write_bytes(data)
    with pytest.raises(MetadataError, match=message) as caught:
        load_json(path, "test file")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.__cause__ is None and (caught.value.__context__ is None or caught.value.__suppress_context__)


def test_load_json_accepts_what_real_files_nest(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert load_json(path) is not None


def test_load_json_on_a_folder(tmp_path):
    with pytest.raises(MetadataError, match="is a folder, not a file"):
        load_json(tmp_path)


def test_metadata_linked_to_another_bundle_is_refused(tmp_path):
    bundle = tmp_path / "impostor"
    shutil.copytree(BUNDLES / "chest_xray_cdcgan" / "configs", bundle / "configs")
    (bundle / "configs" / "metadata.json").unlink()
    (bundle / "configs" / "metadata.json").symlink_to(BUNDLES / "brain_mri_cdcgan" / "configs" / "metadata.json")
    with pytest.raises(MetadataError, match="metadata.json is a link to .*brain_mri_cdcgan.*outside the bundle"):
        read_bundle(bundle)


def test_links_inside_the_bundle_are_fine(tmp_path):
    bundle = tmp_path / "linked_inside"
    shutil.copytree(BUNDLES / "chest_xray_cdcgan" / "configs", bundle / "configs")
    (bundle / "configs" / "metadata.json").rename(bundle / "meta.json")
    (bundle / "configs" / "metadata.json").symlink_to(bundle / "meta.json")
    assert read_bundle(bundle).id == "linked_inside"


def test_broken_config_json_names_file_and_line(tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(BUNDLES / "chest_xray_cdcgan" / "configs", bundle / "configs")
    config = bundle / "configs" / "inference.json"
    config.write_text(config.read_text().replace("{", "{,", 2).replace("{,", "{", 1))
    with pytest.raises(MetadataError, match=r"inference.json: malformed bundle config: .*\(line \d+, column \d+\)"):
        check_config_json(bundle)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="permission bits do not stop root (this test needs a non-root user)")
def test_unreadable_bundle_folder_is_one_error(tmp_path):
    folder = tmp_path / "locked"
    shutil.copytree(BUNDLES / "chest_xray_cdcgan" / "configs", folder / "b" / "configs")
    folder.chmod(0)
    try:
        with pytest.raises(ZooError, match="Cannot read bundle folder .*locked"):
            find_bundles(folder)
    finally:
        folder.chmod(0o755)
