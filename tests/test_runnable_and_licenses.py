"""The `runnable` flag of every model (list, info, search filter, ranking; torch-free) and the licenses of a
foreign bundle's code, weights and training data as its files state them (info, license filters)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import MEDNIST_GAN, REFERENCE_DIR, SHARED, require
from test_cli import run_cli

from medigan_zoo.catalog.index import ZooIndex
from medigan_zoo.catalog.licenses import license_mentioned, license_terms
from medigan_zoo.core.errors import ZooError
from medigan_zoo.query.ranking import parse_filters

MEDNIST_DDPM = SHARED / "bundles" / "mednist_ddpm"
NVIDIA = "LicenseRef-NVIDIA-OneWay-Noncommercial"


# --- licenses ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, spdx", [
    ("made available ... under the Creative Commons [CC BY-SA 4.0 license](https://creativecommons.org/...)",
     "CC-BY-SA-4.0"),
    ("The model weights are released under the NVIDIA OneWay Noncommercial License.", NVIDIA),
    ("weights: CC-BY-NC-4.0", "CC-BY-NC-4.0"), ("CC BY-NC-SA 4.0", "CC-BY-NC-SA-4.0"),
    ("we submit and permit this", ""), ("Apache License, Version 2.0", "Apache-2.0"),
])
def test_license_mentioned(text, spdx):
    assert license_mentioned(text) == spdx


def test_license_terms_read_each_part_where_it_is_stated():
    apache = "Apache License\nVersion 2.0, January 2004\n"
    readme = (REFERENCE_DIR / "monai_mednist_gan_readme.md")
    mednist = license_terms({"copyright": "Copyright (c) MONAI Consortium"}, apache,
                            readme.read_text() if readme.is_file() else
                            "The dataset is made available under the Creative Commons CC BY-SA 4.0 license.")
    assert (mednist.code, mednist.weights, mednist.data) == ("Apache-2.0", "unknown", "CC-BY-SA-4.0")
    assert mednist.effective == "Apache-2.0" and mednist.sources == {"code": "LICENSE", "data": "docs/README.md"}
    nvidia = license_terms({}, apache + "\nThe model weights are licensed under the NVIDIA OneWay Noncommercial "
                                        "License.\n")
    assert (nvidia.code, nvidia.weights, nvidia.effective) == ("Apache-2.0", NVIDIA, NVIDIA)
    keys = license_terms({"license": "MIT", "weights_license": "CC BY-NC 4.0", "data_license": "CC BY 4.0"})
    assert (keys.code, keys.weights, keys.data) == ("MIT", "CC-BY-NC-4.0", "CC-BY-4.0")
    assert keys.sources == {"code": "metadata license", "weights": "metadata weights_license",
                            "data": "metadata data_license"}
    brats = license_terms({"copyright": "Copyright (c) MONAI Consortium", "data_source": "http://medicaldecathlon.com/"},
                          apache)  # brats_mri_generative_diffusion as published: one license for all
    assert (brats.code, brats.weights, brats.data) == ("Apache-2.0", "unknown", "unknown")


@pytest.fixture
def nc_weights_gan(tmp_path) -> Path:
    """MedNIST GAN whose LICENSE also says its weights are NVIDIA OneWay Noncommercial (as VISTA3D's does)."""
    bundle = Path(shutil.copytree(require(MEDNIST_GAN, "MONAI's MedNIST GAN bundle"), tmp_path / "nc_gan"))
    with (bundle / "LICENSE").open("a") as handle:
        handle.write("\n\nThe model weights are released under the NVIDIA OneWay Noncommercial License.\n")
    return bundle


def test_weights_license_is_the_models_and_filters_see_each_part(nc_weights_gan):
    index = ZooIndex(bundle_dirs=[nc_weights_gan], include_builtin=False)
    info = index.get("nc_gan")
    assert info.license == NVIDIA and info.licenses is not None
    assert (info.licenses["code"], info.licenses["weights"]) == ("Apache-2.0", NVIDIA)
    assert info.summary()["licenses"]["sources"]["weights"] == "LICENSE"
    search = index.search_index

    def ids(**filters):
        return [h.model_id for h in search.search("", filters=filters)]

    assert ids(license=NVIDIA) == ["nc_gan"] and ids(license="Apache-2.0") == []
    assert ids(code_license="apache 2.0") == ["nc_gan"] and ids(weights_license=NVIDIA) == ["nc_gan"]
    assert [h.model_id for h in search.search("yes")] == []  # filter-only fields (runnable) are not searched as text


# --- runnable ------------------------------------------------------------------------------------------

@pytest.fixture
def two_foreign(tmp_path) -> ZooIndex:
    """MedNIST GAN (runs) and MedNIST DDPM as published (no weights: does not run), plus the shipped bundles."""
    require(MEDNIST_DDPM, "MONAI's MedNIST DDPM bundle")
    return ZooIndex(bundle_dirs=[require(MEDNIST_GAN, "MONAI's MedNIST GAN bundle"), MEDNIST_DDPM])


def test_every_model_has_a_runnable_flag_with_a_reason(two_foreign):
    gan, ddpm = two_foreign.get("mednist_gan"), two_foreign.get("mednist_ddpm")
    assert gan.runs == "yes" and gan.run_status["route"] == "fast path"
    assert ddpm.runs == "no" and ddpm.run_status["reason"].startswith("its weights models/model.pt are absent")
    shipped = [i for i in two_foreign if i.source == "bundle" and i.runnable is None]
    assert shipped and all(i.runs == "yes" and "zoo bundle" in i.run_status["reason"] for i in shipped)
    assert all(i.summary()["runnable"]["reason"] for i in two_foreign)


def test_catalog_entries_are_unknown_until_downloaded(tmp_path):
    from medigan_zoo.catalog.model_info import ModelInfo

    entry = ModelInfo(id="x", name="x", version="1", description="", source="catalog", zoo={})
    assert entry.runs == "unknown" and "medigan-zoo download x" in entry.run_status["reason"]


def test_runnable_filter_and_ranking(two_foreign):
    search = two_foreign.search_index
    hits = [h.model_id for h in search.search("hand")]
    assert hits == ["mednist_gan", "mednist_ddpm"]  # ddpm scores higher but does not run: ranked after
    assert [h.model_id for h in search.search("hand", filters={"runnable": "yes"})] == ["mednist_gan"]
    assert [h.model_id for h in search.search("hand", filters={"runnable": "no"})] == ["mednist_ddpm"]
    listed = [h.model_id for h in search.search("", filters={"modality": "DX"})]
    assert listed.index("mednist_ddpm") == len(listed) - 1
    assert parse_filters(["runnable=yes"]) == {"runnable": "yes"}
    with pytest.raises(ZooError, match="runnable takes yes, no or unknown"):
        parse_filters(["runnable=maybe"])


def test_cli_list_info_and_search_show_it():
    require(MEDNIST_DDPM, "MONAI's MedNIST DDPM bundle")
    dirs = f"{require(MEDNIST_GAN, 'MedNIST GAN')},{MEDNIST_DDPM}"
    listed = run_cli("--bundle_dirs", dirs, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[2:]}
    assert rows["mednist_gan"].endswith("yes (fast path)") and rows["mednist_ddpm"].endswith("no")
    assert listed.stdout.splitlines()[0].split()[-1] == "runs"
    found = run_cli("--bundle_dirs", dirs, "search", "hand", "runnable=yes", "--json")
    assert [h["model_id"] for h in json.loads(found.stdout)] == ["mednist_gan"], found.stderr
    shown = json.loads(run_cli("--bundle_dirs", dirs, "info", "mednist_ddpm").stdout)
    assert shown["runnable"]["runnable"] is False and shown["licenses"]["code"] == "Apache-2.0"
