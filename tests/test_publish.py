"""``medigan-zoo publish``: the Hub layout and model card header checked field by field, the upload sequence with
``huggingface_hub.HfApi`` replaced at its boundary by a recorder (no network here), the printed catalog entry taken
by ``--catalogs`` and ``download`` (``snapshot_download`` replaced by the recorder's uploaded folder), and the
missing-token stop before anything is read or sent."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import yaml
from conftest import BUNDLES

from medigan_zoo import Generators
from medigan_zoo.byod.package import bundle_files
from medigan_zoo.byod.publish import card_tags, model_card, pipeline_tag, publish
from medigan_zoo.catalog.catalogs import read_catalog
from medigan_zoo.catalog.download import VERIFIED_MARKER
from medigan_zoo.catalog.metrics import metric_direction
from medigan_zoo.cli import main
from medigan_zoo.core.errors import ZooError
from medigan_zoo.runtime.validate import validate

BUNDLE = BUNDLES / "chest_xray_cdcgan"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _meta(bundle: Path = BUNDLE) -> dict:
    return json.loads((bundle / "configs" / "metadata.json").read_text(encoding="utf-8"))


def _header(card: str) -> dict:
    assert card.startswith("---\n")
    head, _, _ = card[4:].partition("\n---\n")
    return yaml.safe_load(head)


class FakeHub:
    """Stands in for ``huggingface_hub.HfApi``: records every call and keeps a copy of each uploaded folder."""

    calls: list = []
    uploaded: dict = {}

    def __init__(self, token=None):
        FakeHub.calls.append(("init", {"token": token}))

    def create_repo(self, **kwargs):
        FakeHub.calls.append(("create_repo", kwargs))
        return f"https://huggingface.co/{kwargs['repo_id']}"

    def upload_folder(self, **kwargs):
        FakeHub.calls.append(("upload_folder", kwargs))
        keep = Path(FakeHub.root) / kwargs["repo_id"].replace("/", "--")
        shutil.copytree(kwargs["folder_path"], keep)
        FakeHub.uploaded[kwargs["repo_id"]] = keep
        return SimpleNamespace(oid=COMMIT, commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/{COMMIT}")

    def create_tag(self, repo_id, **kwargs):
        FakeHub.calls.append(("create_tag", {"repo_id": repo_id, **kwargs}))


@pytest.fixture
def hub(monkeypatch, tmp_path):
    FakeHub.calls, FakeHub.uploaded, FakeHub.root = [], {}, str(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no stored login
    return FakeHub


def test_card_header_every_field():
    meta = _meta()
    zoo = meta["medigan_zoo"]
    card = model_card(BUNDLE, meta, BUNDLE.name)
    head = _header(card)
    assert set(head) == {"library_name", "license", "tags", "pipeline_tag", "datasets", "model-index"}
    assert head["library_name"] == "monai"
    assert zoo["license"] == "CC-BY-4.0" and head["license"] == "cc-by-4.0"  # MONAI's helper writes "unknown"
    assert head["tags"] == ["monai", "medical", "medigan-zoo", "synthetic-data", "dx", "digital-radiography", "2d"]
    assert head["pipeline_tag"] == "unconditional-image-generation"
    assert head["datasets"] == ["PneumoniaMNIST"]
    index, = head["model-index"]
    assert index["name"] == BUNDLE.name
    published = {}
    for result in index["results"]:
        assert result["task"] == {"type": "unconditional-image-generation"}
        assert result["dataset"]["name"] == "PneumoniaMNIST" and result["dataset"]["type"] == "pneumoniamnist"
        for metric in result["metrics"]:
            assert metric["type"] == metric["name"] and metric["verified"] is False
            published[metric["name"]] = (metric["value"], result["dataset"]["split"], metric["config"])
    expected = {m["name"]: (m["value"], " vs ".join(p.split(":")[1] for p in m["reference_split"].split(" vs ")),
                            f"direction={m['direction']}")
                for m in zoo["metrics"]}
    assert published == expected and len(published) == len(zoo["metrics"]) > 10
    assert all(cfg == f"direction={metric_direction(name)}" for name, (_, _, cfg) in published.items())
    # the body is the bundle's own card, unchanged
    assert card.endswith((BUNDLE / "docs" / "README.md").read_text(encoding="utf-8"))


def test_card_header_license_task_and_tags_follow_the_zoo_block():
    meta = _meta()
    zoo = meta["medigan_zoo"]
    for given, hub in (("CC BY-NC 4.0", "cc-by-nc-4.0"), ("Apache 2.0", "apache-2.0"), (None, "unknown")):
        head = _header(model_card(BUNDLE, {**meta, "medigan_zoo": {**zoo, "license": given}}, "x"))
        assert head["license"] == hub and "license_name" not in head
    head = _header(model_card(BUNDLE, {**meta, "medigan_zoo": {**zoo, "license": "Lab Data Use Agreement v2"}}, "x"))
    assert head["license"] == "other" and head["license_name"] == "LicenseRef-Lab-Data-Use-Agreement-v2"
    extractor = _meta(BUNDLES / "medmnist_feature_extractor")["medigan_zoo"]
    assert pipeline_tag(extractor) == "image-feature-extraction" and "synthetic-data" not in card_tags(extractor)
    assert pipeline_tag({**zoo, "function": ["image to image translation"]}) == "image-to-image"
    three_d = _meta(BUNDLES / "adrenal_ct_3dgan")["medigan_zoo"]
    assert card_tags(three_d)[-3:] == ["ct", "computed-tomography", "3d"]


def test_publish_uploads_the_monai_layout_and_pins_the_commit(hub, tmp_path, capsys):
    main(["publish", str(BUNDLE), "--repo", "my-lab/chest-xray-cdcgan", "--revision_tag", "v0.2.0",
          "--token", "hf_test", "-o", str(tmp_path / "dist")])
    out = capsys.readouterr().out
    assert [name for name, _ in hub.calls] == ["init", "create_repo", "upload_folder", "create_tag"]
    assert hub.calls[0][1] == {"token": "hf_test"}
    assert hub.calls[1][1] == {"repo_id": "my-lab/chest-xray-cdcgan", "private": False, "repo_type": "model",
                               "exist_ok": True}
    upload = hub.calls[2][1]
    assert upload["repo_id"] == "my-lab/chest-xray-cdcgan" and upload["repo_type"] == "model"
    assert upload["commit_message"] == "chest_xray_cdcgan 0.2.0 (medigan-zoo publish)"
    assert hub.calls[3][1] == {"repo_id": "my-lab/chest-xray-cdcgan", "tag": "v0.2.0", "revision": COMMIT,
                               "repo_type": "model", "tag_message": "chest_xray_cdcgan 0.2.0", "exist_ok": True}
    # layout: the bundle's files at the root (as push_to_hf_hub) plus the model card README.md
    sent = hub.uploaded["my-lab/chest-xray-cdcgan"]
    files = sorted(p.relative_to(sent).as_posix() for p in sent.rglob("*") if p.is_file())
    assert files == sorted([p.relative_to(BUNDLE).as_posix() for p in bundle_files(BUNDLE)] + ["README.md"])
    for rel in (f for f in files if f != "README.md"):
        assert (sent / rel).read_bytes() == (BUNDLE / rel).read_bytes(), rel
    assert (sent / "README.md").read_text() == model_card(BUNDLE, _meta(), BUNDLE.name)
    assert not validate(sent).failed
    # printed: commit, tag, and the catalog entry pinning that commit (also written to -o)
    assert f"commit: {COMMIT}" in out and "tag: v0.2.0" in out and "(public)" in out
    catalog_file = tmp_path / "dist" / "chest_xray_cdcgan-0.2.0.hf.catalog.json"
    printed = json.loads(out[out.index("catalog entry pinning this commit"):].split("\n", 1)[1])
    assert printed == json.loads(catalog_file.read_text())
    info, = read_catalog(catalog_file)
    assert info.id == BUNDLE.name and info.zoo == _meta()["medigan_zoo"]
    assert info.download == {"url": "hf://my-lab/chest-xray-cdcgan", "revision": COMMIT, "format": "hf-hub",
                             "max_bytes": sum(p.stat().st_size for p in sent.rglob("*") if p.is_file())}


def test_published_catalog_downloads_the_pinned_commit(hub, tmp_path, monkeypatch):
    result = publish(BUNDLE, "my-lab/cxr", token="hf_test", model_id="cxr_published", output=tmp_path)
    asked = []

    def snapshot_download(repo_id, revision=None, local_files_only=False):  # the Hub's download boundary
        asked.append((repo_id, revision, local_files_only))
        if local_files_only:
            raise FileNotFoundError("not cached")
        return str(hub.uploaded[repo_id])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    path = Generators(catalogs=[str(result.catalog_path)], include_builtin=False).download("cxr_published",
                                                                                            progress=False)
    assert asked == [("my-lab/cxr", COMMIT, True), ("my-lab/cxr", COMMIT, False)]
    assert json.loads((path / VERIFIED_MARKER).read_text())["revision"] == COMMIT
    assert (path / "models" / "model.pt").read_bytes() == (BUNDLE / "models" / "model.pt").read_bytes()


def test_private_flag_reaches_create_repo(hub, capsys):
    main(["publish", str(BUNDLE), "--repo", "my-lab/x", "--private", "--token", "hf_test"])
    assert hub.calls[1][1]["private"] is True and "(private)" in capsys.readouterr().out
    assert [name for name, _ in hub.calls] == ["init", "create_repo", "upload_folder"]  # no tag asked


def test_no_token_stops_before_anything(hub, tmp_path, capsys):
    with pytest.raises(ZooError, match=r"^publish: no Hugging Face token; run `hf auth login`"):
        publish(tmp_path / "not_even_a_bundle", "my-lab/x")
    with pytest.raises(SystemExit) as exit_info:
        main(["publish", str(BUNDLE), "--repo", "my-lab/x"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and "no Hugging Face token" in err
    assert hub.calls == []  # HfApi never even constructed


def test_bad_repo_and_invalid_bundle_refused_before_sending(hub, tmp_path):
    with pytest.raises(ZooError, match="is not a Hugging Face repo id; write owner/name"):
        publish(BUNDLE, "no-owner", token="hf_test")
    broken = tmp_path / BUNDLE.name
    shutil.copytree(BUNDLE, broken)
    (broken / "models" / "model.pt").unlink()
    with pytest.raises(ZooError, match=r"does not pass validate .*model\.pt.*Nothing was sent"):
        publish(broken, "my-lab/x", token="hf_test")
    assert hub.calls == []


def test_hub_refusal_is_one_line(hub, monkeypatch):
    def refuse(self, **kwargs):
        import httpx

        response = httpx.Response(403, request=httpx.Request("POST", "https://huggingface.co/api/repos/create"))
        raise huggingface_hub.errors.HfHubHTTPError("403 Forbidden: you cannot write to my-lab/x\nmore detail",
                                                    response=response)

    monkeypatch.setattr(FakeHub, "create_repo", refuse)
    with pytest.raises(ZooError, match=r"^publish: could not push to my-lab/x on the Hugging Face Hub: "
                                       r"HfHubHTTPError: 403 Forbidden: you cannot write to my-lab/x$"):
        publish(BUNDLE, "my-lab/x", token="hf_test")
