"""The controlled vocabulary: modality codes, the normalizer and the search synonyms."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import MEDIGAN_GLOBAL  # medigan's global.json, a test fixture

from medigan_zoo.core.errors import ZooError
from medigan_zoo.query import vocabulary as v

REPO = Path(__file__).resolve().parents[1]


def _medigan_global() -> dict:
    return json.loads(MEDIGAN_GLOBAL.read_text(encoding="utf-8"))


# --- modalities ----------------------------------------------------------------------------------
def test_every_medigan_modality_string_maps_to_a_code():
    config = _medigan_global()
    strings = {s for entry in config.values() for s in entry["selection"]["modality"]}
    unmapped = sorted(s for s in strings if v.canonical_modality(s) is None)
    assert not unmapped, unmapped


def test_medigan_models_get_the_expected_codes():
    config = _medigan_global()
    expected = {"MMG": ["MG"], "MRI": ["MR"], "XRAY": ["DX"], "POLYP": ["ES"]}
    for model_id, entry in config.items():
        codes = v.modality_codes(entry["selection"]["modality"])
        for marker, want in expected.items():
            if marker in model_id:
                assert codes == want, (model_id, codes)
        assert codes, model_id
    # the cardiac model lists "Cardiac imaging" and "full-field digital" next to "MRI": MR only
    assert v.modality_codes(config["00022_WGAN_CARDIAC_AGING"]["selection"]["modality"]) == ["MR"]


@pytest.mark.parametrize("text, code", [
    ("Full-Field Mammography", "MG"), ("MMG", "MG"), ("mMg", "MG"), ("x-ray mammography", "MG"),
    ("full-field digital MMG", "MG"), ("FFDM", "MG"), ("digital breast tomosynthesis", "MG"), ("Mammograms", "MG"),
    ("T1", "MR"), ("t1-weighted", "MR"), ("FLAIR", "MR"), ("DCE-MRI", "MR"), ("cardiac MRI", "MR"), ("MR", "MR"),
    ("Brain MRI", "MR"), ("magnetic resonance imaging", "MR"), ("T1 contrast-enhanced", "MR"),
    ("Chest X-Ray", "DX"), ("CXR", "DX"), ("xray", "DX"), ("X-rays", "DX"), ("radiography", "DX"),
    ("computed radiography", "CR"), ("CT", "CT"), ("computed tomography", "CT"),
    ("ultrasound", "US"), ("sonography", "US"), ("USG", "US"), ("US", "US"), ("breast US", "US"),
    ("fundus", "OP"), ("retinal fundus photography", "OP"), ("ophthalmic photography", "OP"),
    ("dermoscopy", "XC"), ("Dermatoscopy", "XC"), ("skin", "XC"),
    ("whole slide image", "SM"), ("H&E", "SM"), ("histopathology", "SM"), ("WSI", "SM"),
    ("endoscopy", "ES"), ("gastrointestinal endoscopy", "ES"), ("colonoscopy", "ES"), ("polyp", "ES"),
    ("PET", "PT"), ("positron emission tomography", "PT"), ("nuclear medicine", "NM"), ("SPECT", "NM"),
    ("OT", "OT"), ("other", "OT"),
])
def test_canonical_modality(text, code):
    assert v.canonical_modality(text) == code


def test_unknown_modality_and_running_text():
    assert v.canonical_modality("xyzzy") is None
    assert v.canonical_modality("") is None
    assert v.modality_codes(["A GAN trained by us on 5 mg of data and other things"]) == []
    assert v.modality_codes(["PET/CT"]) == ["CT", "PT"]
    assert v.modality_codes(["MRI", "Cardiac imaging", "full-field digital"]) == ["MR"]
    assert v.canonical_modality("full-field digital") == "MG"  # vague, but the only hint there is
    assert v.modality_codes("Mammography") == ["MG"]  # a single string is one term, not characters
    assert v.modality_codes(["mammography", "CT", "mammogram"]) == ["CT", "MG"]  # sorted, unique


def test_modality_names():
    assert v.modality_names("MG")[0] == "mammography"
    assert v.modality_names("mr")[0] == "MRI"
    for code in v.MODALITY_CODES:
        names = v.modality_names(code)
        assert names, code
        for name in names:  # every name maps back (CR's generic names are DX's too)
            got = v.canonical_modality(name)
            assert got == code or {got, code} <= {"CR", "DX"}, (code, name, got)
    with pytest.raises(ZooError, match="Known codes"):
        v.modality_names("XX")


# --- normalizer ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, tokens", [
    ("128x128", ["128x128"]), ("128 x 128", ["128x128"]), ("128 X 128 images", ["128x128", "image"]),
    ("28x28x28", ["28x28x28"]), ("256\u00d7256", ["256x256"]),
    ("Modalities", ["modality"]), ("masses", ["mass"]), ("calcifications", ["calcification"]),
    ("MRIs", ["mri"]), ("ROIs", ["roi"]), ("patches", ["patch"]), ("X-rays", ["x", "ray"]),
    ("thorax", ["thorax"]), ("diagnosis", ["diagnosis"]), ("mass", ["mass"]), ("CBIS-DDSM", ["cbis", "ddsm"]),
    ("t1-weighted", ["t1", "weighted"]), ("WGAN-GP", ["wgan", "gp"]), ("", []),
])
def test_tokenize(text, tokens):
    assert v.tokenize(text) == tokens


def test_normalize_and_fold_plural():
    assert v.normalize("Full-Field  MMGs!") == "full field mmg"
    assert v.fold_plural("studies") == "study"
    assert v.fold_plural("t1s") == "t1s"  # tokens with digits are left alone
    assert v.fold_plural("gas") == "gas"


# --- synonyms ------------------------------------------------------------------------------------
@pytest.mark.parametrize("term, equivalents", [
    ("MMG", {"mmg", "mammography", "mammogram"}), ("mammography", {"mmg", "mammogram"}),
    ("CXR", {"cxr", "chest xray", "chest x ray"}), ("MR", {"mr", "mri", "magnetic resonance"}),
    ("ClF", {"clf", "classification"}), ("SEG", {"seg", "segmentation"}), ("DET", {"det", "detection"}),
    ("WGAN-GP", {"wgangp", "wgan gp"}), ("PGGAN", {"pggan", "progressive growing gan", "progan"}),
    ("cGAN", {"cgan", "conditional gan"}), ("CycleGAN", {"cyclegan", "cycle gan"}),
    ("DDPM", {"ddpm", "denoising diffusion probabilistic model"}), ("DDIM", {"ddim"}),
    ("ROI", {"roi", "region of interest"}), ("regions of interest", {"roi"}),
    ("CBIS-DDSM", {"cbisddsm", "cbis ddsm"}), ("thorax", {"chest"}), ("head", {"brain"}),
    ("fundus", {"retina", "eye"}), ("3-D", {"3d", "volumetric"}), ("xyzzy", {"xyzzy"}),
])
def test_expand_term(term, equivalents):
    got = v.expand_term(term)
    assert equivalents <= got, (term, got)


def test_analyze():
    assert v.analyze("DCGAN", broader=True) == ["dcgan", "gan"]
    assert v.analyze("DCGAN") == ["dcgan"]
    assert v.analyze("C-DCGAN") == ["conditional", "dcgan"]
    assert v.analyze("Chest X-Ray of the lungs") == ["chest", "xray", "lung"]
    assert v.analyze("T1", broader=True) == ["t1", "mri"]
    assert "ultrasound" not in v.analyze("let us see")
    assert v.analyze("breast US") == ["breast", "ultrasound"]
    assert v.analyze_groups("CXR, 128 x 128") == [("cxr", ("chest", "xray")), ("128 x 128", ("128x128",))]


def test_modality_terms_expands_codes_once():
    assert v.modality_terms(["MG"]) == ["MG", *v.modality_names("MG")]
    medigan = v.modality_terms(["MMG", "x-ray mammography"])
    assert medigan[:2] == ["MMG", "x-ray mammography"] and "MG" in medigan and "mammography" in medigan
    both = v.modality_terms(["CR", "DX"])
    assert len(both) == len(set(both)) and both.index("CR") < both.index("DX")
    assert v.modality_terms([]) == [] and v.modality_terms("CT")[0] == "CT"
