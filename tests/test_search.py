"""Ranked free-text search (BM25F + synonyms + filters) over medigan's 23 reference models."""
from __future__ import annotations

import dataclasses
import json
import time

import pytest
from conftest import MEDIGAN_GLOBAL  # medigan's global.json, a test fixture

from medigan_zoo.core.errors import ZooError
from medigan_zoo.query.ranking import FIELDS, SearchHit, SearchIndex, fields_from_medigan_config, parse_filters

MG_DCGAN_128 = {"00001_DCGAN_MMG_CALC_ROI", "00002_DCGAN_MMG_MASS_ROI", "00005_DCGAN_MMG_MASS_ROI",
                "00008_C-DCGAN_MMG_MASSES", "00012_C-DCGAN_MMG_MASSES"}
XRAY = {"00017_DCGAN_XRAY_LUNG_NODULES", "00018_WGANGP_XRAY_LUNG_NODULES", "00019_PGGAN_CHEST_XRAY",
        "00020_PGGAN_CHEST_XRAY"}
POLYP = {"00009_PGGAN_POLYP_PATCHES_W_MASKS", "00010_FASTGAN_POLYP_PATCHES_W_MASKS",
         "00011_SINGAN_POLYP_PATCHES_W_MASKS"}
DENSITY = {"00003_CYCLEGAN_MMG_DENSITY_FULL", "00013_CYCLEGAN_MMG_DENSITY_OPTIMAM_MLO",
           "00014_CYCLEGAN_MMG_DENSITY_OPTIMAM_CC", "00015_CYCLEGAN_MMG_DENSITY_CSAW_MLO",
           "00016_CYCLEGAN_MMG_DENSITY_CSAW_CC"}


@pytest.fixture(scope="module")
def medigan_config() -> dict:
    return json.loads(MEDIGAN_GLOBAL.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def index(medigan_config) -> SearchIndex:
    return SearchIndex([(k, fields_from_medigan_config(k, c)) for k, c in medigan_config.items()])


def ids(hits):
    return [h.model_id for h in hits]


# --- ranking -------------------------------------------------------------------------------------
def test_medigan_readme_example_finds_the_inbreast_dcgan_first(index):
    hits = index.search(["dcgan", "mMg", "ClF", "modalities", "inbreast"])
    assert hits[0].model_id == "00001_DCGAN_MMG_CALC_ROI"
    assert hits[0].score > hits[1].score
    matched = hits[0].matched
    assert matched["dataset"] == ("inbreast",)
    assert matched["architecture"] == ("dcgan",)
    assert "mmg" in matched["modality"] and "clf" in matched["use_cases"] and "modalities" in matched["keys"]


def test_mammography_128_dcgan(index):
    hits = index.search("mammography 128x128 dcgan")
    assert set(ids(hits[:5])) == MG_DCGAN_128
    assert all("128x128" in h.matched["shape"] for h in hits[:5])
    assert ids(index.search("Mammography, 128 x 128, DCGAN")[:5]) == ids(hits[:5])


@pytest.mark.parametrize("query", ["chest x-ray", "CXR", "Chest X-Rays", "chest radiograph", "thoracic xray"])
def test_chest_xray(index, query):
    hits = index.search(query)
    assert set(ids(hits[:4])) == XRAY
    assert set(ids(hits[:2])) == {"00019_PGGAN_CHEST_XRAY", "00020_PGGAN_CHEST_XRAY"} or query == "thoracic xray"


def test_brain_mr(index):
    hits = index.search("brain MR")
    assert set(ids(hits[:2])) == {"00007_INPAINT_BRAIN_MRI", "00021_CYCLEGAN_BRAIN_MRI_T1_T2"}
    assert set(ids(index.search("magnetic resonance brain")[:2])) == set(ids(hits[:2]))


def test_polyp_finds_only_polyp_models(index):
    assert set(ids(index.search("polyp"))) == POLYP
    assert set(ids(index.search("Polyps"))) == POLYP


def test_cyclegan_density(index):
    hits = index.search("cycleGAN density")
    assert set(ids(hits[:5])) == DENSITY
    assert hits[5].model_id == "00021_CYCLEGAN_BRAIN_MRI_T1_T2"


def test_no_match_is_empty(index):
    assert index.search("xyzzy") == []
    assert index.search("") == []
    assert index.search("the of and") == []
    assert index.search([]) == []


def test_synonyms_case_and_plurals(index):
    assert set(ids(index.search("WGAN-GP")[:2])) == {"00006_WGANGP_MMG_MASS_ROI", "00018_WGANGP_XRAY_LUNG_NODULES"}
    assert ids(index.search("wgangp")[:2]) == ids(index.search("WGAN-GP")[:2])
    assert ids(index.search("MAMMOGRAMS")) == ids(index.search("mammogram")) == ids(index.search("MMG"))
    assert index.search("calcifications")[0].model_id == "00001_DCGAN_MMG_CALC_ROI"
    assert set(ids(index.search("progressive growing GAN")[:3])) >= {"00019_PGGAN_CHEST_XRAY", "00020_PGGAN_CHEST_XRAY"}
    assert set(ids(index.search("pix2pix")[:3])) == {"00004_PIX2PIX_MMG_MASSES_W_MASKS", "00022_WGAN_CARDIAC_AGING",
                                                     "00023_PIX2PIXHD_BREAST_DCEMRI"}
    assert index.search("T1 T2 translation")[0].model_id == "00021_CYCLEGAN_BRAIN_MRI_T1_T2"


def test_prefix_fallback(index):
    hits = index.search("calcif")  # not a word of the index: matches the words it begins
    assert hits and hits[0].model_id == "00001_DCGAN_MMG_CALC_ROI"


def test_keys_are_matched_like_medigan(index, medigan_config):
    assert len(index.search("modalities")) == len(medigan_config)  # every model has a modality value


def test_limit_and_ties_by_id():
    entries = [("b", {"id": "b", "architecture": "DCGAN"}), ("a", {"id": "a", "architecture": "DCGAN"}),
               ("c", {"id": "c", "architecture": "WGAN"})]
    index = SearchIndex(entries)
    assert ids(index.search("dcgan")) == ["a", "b"]
    assert ids(index.search("gan")) == ["a", "b", "c"]
    assert ids(index.search("gan", limit=2)) == ["a", "b"]
    assert index.search("gan", limit=0) == []


def test_search_hit_is_frozen(index):
    hit = index.search("polyp")[0]
    assert isinstance(hit, SearchHit)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hit.score = 0.0  # type: ignore[misc]


# --- filters -------------------------------------------------------------------------------------
def test_filters(index):
    mg = ids(index.search("", filters={"modality": "MG"}))
    assert len(mg) == 12 and mg == sorted(mg)
    assert ids(index.search("", filters={"modality": "mammography"})) == mg
    assert set(ids(index.search("", filters={"modality": "x-ray"}))) == XRAY
    assert set(ids(index.search("", filters={"modality": "DX"}))) == XRAY
    assert set(ids(index.search("", filters={"modality": "US,ES"}))) == POLYP
    assert set(ids(index.search("mammography", filters={"architecture": "dcgan"}))) == MG_DCGAN_128
    assert set(ids(index.search("", filters={"dataset": "CBIS-DDSM"}))) == {"00008_C-DCGAN_MMG_MASSES",
                                                                            "00012_C-DCGAN_MMG_MASSES"}
    assert len(index.search("", filters={"dims": "2"})) == 23
    assert index.search("", filters={"dims": "3D"}) == []
    assert set(ids(index.search("", filters={"license": "BSD"}))) == DENSITY | {"00004_PIX2PIX_MMG_MASSES_W_MASKS",
                                                                                 "00023_PIX2PIXHD_BREAST_DCEMRI"}
    assert "00017_DCGAN_XRAY_LUNG_NODULES" in ids(index.search("", filters={"anatomy": "thorax", "license": "MIT"}))
    assert index.search("polyp", filters={"modality": "MG"}) == []
    hits = index.search("nodules", filters={"modality": "DX", "shape": "128 x 128"})
    assert set(ids(hits)) == {"00017_DCGAN_XRAY_LUNG_NODULES", "00018_WGANGP_XRAY_LUNG_NODULES"}


def test_bad_filters_are_user_errors(index):
    with pytest.raises(ZooError, match="Valid filter fields: id, name") as err:
        index.search("mammography", filters={"colour": "red"})
    assert "modality" in str(err.value) and "dims" in str(err.value)
    with pytest.raises(ZooError, match="Unknown modality"):
        index.search("", filters={"modality": "xyzzy"})


def test_parse_filters():
    assert parse_filters(["modality=MG", "dims=2"]) == {"modality": "MG", "dims": "2"}
    assert parse_filters(["organ=chest", "Type=DCGAN", "license='CC-BY-4.0'"]) == {
        "anatomy": "chest", "architecture": "DCGAN", "license": "CC-BY-4.0"}
    assert parse_filters(["modality=MG", "modality=CT"]) == {"modality": "MG,CT"}
    assert parse_filters([]) == {}
    for bad in (["modality"], ["=MG"], ["modality="], ["colour=red"]):
        with pytest.raises(ZooError):
            parse_filters(bad)


# --- fields from medigan configs -----------------------------------------------------------------
def test_fields_from_medigan_config(medigan_config):
    fields = fields_from_medigan_config("00001_DCGAN_MMG_CALC_ROI", medigan_config["00001_DCGAN_MMG_CALC_ROI"])
    assert set(fields) == set(FIELDS)
    assert fields["id"] == ["00001_DCGAN_MMG_CALC_ROI"]
    assert {"MMG", "x-ray mammography", "MG", "mammography"} <= set(fields["modality"])
    assert fields["anatomy"] == ["breast", "breasts", "chest"]
    assert fields["architecture"] == ["DCGAN"] and fields["dataset"] == ["INbreast"]
    assert fields["shape"] == ["128x128"] and fields["dims"] == ["2"] and fields["year"] == ["2021"]
    assert "FID" in fields["metrics"] and "FID_no_images" not in fields["metrics"]
    assert {"modality", "organ", "use_cases", "type"} <= set(fields["keys"]) and "vendors" not in fields["keys"]
    polyp = fields_from_medigan_config("p", medigan_config["00009_PGGAN_POLYP_PATCHES_W_MASKS"])
    assert polyp["shape"] == ["256x256"] and polyp["dims"] == ["2"]  # medigan's depth 4 = channels
    brain = fields_from_medigan_config("b", medigan_config["00021_CYCLEGAN_BRAIN_MRI_T1_T2"])
    assert brain["shape"] == ["224x192"] and "MR" in brain["modality"]


def test_fields_from_zoo_style_config():
    config = {"selection": {"modality": ["CT", "computed tomography"], "organ": ["lung"], "height": 28, "width": 28,
                            "depth": 28, "type": "WGAN-GP", "condition": ["class_label", "nodule"],
                            "performance": {"FID": 12.3, "CLF": {"trained_on_fake": {"accuracy": 0.8}}}},
              "description": {"title": "Lung CT WGAN-GP", "comment": "3D lung nodule volumes"}}
    fields = fields_from_medigan_config("lung_ct_wgangp", config)
    assert fields["shape"] == ["28x28x28"] and fields["dims"] == ["3"]
    assert fields["metrics"] == ["FID", "CLF.trained_on_fake.accuracy"]
    index = SearchIndex([("lung_ct_wgangp", fields), ("other", {"id": "other", "dims": "2"})])
    assert ids(index.search("3d")) == ["lung_ct_wgangp"]
    assert ids(index.search("", filters={"dims": "3"})) == ["lung_ct_wgangp"]
    assert ids(index.search("wasserstein gan", filters={"modality": "CT"})) == ["lung_ct_wgangp"]
    assert ids(index.search("conditional nodule")) == ["lung_ct_wgangp"]


# --- speed ---------------------------------------------------------------------------------------
def test_ten_thousand_entries_answer_in_milliseconds(medigan_config):
    base = [(k, fields_from_medigan_config(k, c)) for k, c in medigan_config.items()]
    entries = []
    for i in range(10_000):
        model_id, fields = base[i % len(base)]
        fields = dict(fields, id=[f"{i:05d}_{model_id}"], tags=fields["tags"] + [f"tag{i}"])
        entries.append((f"{i:05d}_{model_id}", fields))
    index = SearchIndex(entries)
    for query in ("mammography 128x128 dcgan", ["dcgan", "mMg", "ClF", "modalities", "inbreast"], "xyzzy"):
        # CPU time of this process, best of 5: other processes on a shared machine stretch wall time, not this
        best = float("inf")
        for _ in range(5):
            start = time.process_time()
            hits = index.search(query, limit=10)
            best = min(best, time.process_time() - start)
        assert best < 0.05, (query, best)  # a few ms on a free core
        assert query == "xyzzy" or hits[0].model_id.endswith("00001_DCGAN_MMG_CALC_ROI")
