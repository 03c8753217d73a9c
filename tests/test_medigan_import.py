"""medigan's global.json -> zoo catalog (``medigan-zoo import-medigan``): every model, every oddity, clear errors."""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from conftest import MEDIGAN_GLOBAL

from medigan_zoo.core.errors import MetadataError
from medigan_zoo.medigan.compat import metric_direction
from medigan_zoo.medigan.importer import CATALOG_FORMAT, convert_medigan_config, write_catalog

GLOBAL_JSON = MEDIGAN_GLOBAL


@pytest.fixture(scope="module")
def global_json() -> Path:
    return GLOBAL_JSON


@pytest.fixture(scope="module")
def original(global_json):
    return json.loads(global_json.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def catalog(global_json):
    return convert_medigan_config(global_json)


@pytest.fixture(scope="module")
def models(catalog):
    return {m["id"]: m for m in catalog["models"]}


def metrics_of(model):
    return {m["name"]: m for m in model["zoo"]["metrics"]}


def test_all_models_converted(catalog, original, global_json):
    assert catalog["catalog_format"] == CATALOG_FORMAT
    assert catalog["name"] == "medigan-1.0.0"
    assert catalog["source"] == {"file": "medigan_global.json",
                                 "sha256": hashlib.sha256(global_json.read_bytes()).hexdigest()}
    assert [m["id"] for m in catalog["models"]] == list(original)
    assert len(catalog["models"]) == 23
    for model in catalog["models"]:
        assert model["medigan_config"] == original[model["id"]]  # verbatim
        assert model["download"]["url"] == original[model["id"]]["execution"]["package_link"]
        assert model["download"]["format"] == "medigan-zip" and model["download"]["sha256"] is None
        assert "not a MONAI bundle" in model["download"]["note"]
        zoo = model["zoo"]
        assert zoo["alias"] == int(model["id"][:5])
        assert zoo["modality"] and zoo["license"] and zoo["architecture"]
        assert all(isinstance(s, int) and s > 0 for s in zoo["spatial_shape"])
        for metric in zoo["metrics"]:
            assert metric["direction"] == metric_direction(metric["name"])
            assert not metric["name"].startswith("downstream_task.")
            assert not metric["name"].endswith("_no_images")
            values = metric["value"] if isinstance(metric["value"], list) else [metric["value"]]
            assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def test_catalog_matches_the_schema(catalog):
    from medigan_zoo.catalog.schema import CATALOG_SCHEMA, schema_problems

    assert schema_problems(catalog, CATALOG_SCHEMA) == []


def test_first_model(models):
    m = models["00001_DCGAN_MMG_CALC_ROI"]
    assert m["name"] == "DCGAN Model for Mammogram Calcification Region of Interest Generation (Trained on INbreast)"
    assert m["version"] == "0.0.1"
    assert m["description"].startswith("A deep convolutional generative adversarial network (DCGAN)")
    zoo = m["zoo"]
    assert zoo["modality"] == ["MG"]
    assert zoo["anatomy"] == ["breast", "breasts", "chest"]
    assert zoo["spatial_shape"] == [128, 128] and "num_channels" not in zoo
    assert zoo["architecture"] == "DCGAN" and zoo["license"] == "MIT" and zoo["dataset_type"] == "public"
    assert zoo["year"] == 2021  # "2021" in medigan's config
    assert zoo["condition"] == {} and zoo["dataset"] == ["INbreast"]
    assert zoo["use_cases"] == ["classification"] and "unconditional generation" in zoo["function"]
    assert "calcification roi" in zoo["generates"] and "128x128" in zoo["tags"]
    metrics = metrics_of(m)
    assert set(metrics) == {"FID", "FID_ratio", "FID_RADIMAGENET", "FID_RADIMAGENET_ratio"}
    assert metrics["FID"] == {"name": "FID", "value": 67.6, "direction": "lower", "num_samples": 1000}
    assert metrics["FID_ratio"]["direction"] == "higher" and metrics["FID_ratio"]["num_samples"] == 1000


def test_list_valued_and_nested_metrics(models):
    m = models["00002_DCGAN_MMG_MASS_ROI"]
    assert m["version"] == "0.0.0"  # null in medigan's config
    metrics = metrics_of(m)
    auc = metrics["turing_test.AUC"]
    assert auc["value"] == [0.56, 0.45] and auc["direction"] == "lower"
    assert auc["num_readers"] == 2 and auc["readers_years_experience"] == [7, 25]
    assert "turing_test.number_radiologists" not in metrics and "turing_test.years_experience" not in metrics
    assert metrics["CLF.trained_on_real.f1"]["value"] == 0.9
    assert metrics["CLF.trained_on_real_and_fake.f1"]["direction"] == "higher"
    assert metrics["CLF_delta"] == {"name": "CLF_delta", "value": 0.06, "direction": "higher"}
    det = metrics_of(models["00003_CYCLEGAN_MMG_DENSITY_FULL"])
    assert det["DET.trained_on_real_and_fake.AUC"]["value"] == 0.89 and det["DET_delta"]["value"] == 0.06
    seg = metrics_of(models["00009_PGGAN_POLYP_PATCHES_W_MASKS"])
    assert seg["SEG.trained_on_fake.dice_loss"]["direction"] == "lower"


def test_channels_and_shapes(models):
    # medigan's "depth" is the channel count of its 2D models
    assert models["00009_PGGAN_POLYP_PATCHES_W_MASKS"]["zoo"]["spatial_shape"] == [256, 256]
    assert models["00009_PGGAN_POLYP_PATCHES_W_MASKS"]["zoo"]["num_channels"] == 4
    assert models["00011_SINGAN_POLYP_PATCHES_W_MASKS"]["zoo"]["num_channels"] == 3
    assert models["00007_INPAINT_BRAIN_MRI"]["zoo"]["num_channels"] == 1
    assert models["00003_CYCLEGAN_MMG_DENSITY_FULL"]["zoo"]["spatial_shape"] == [1332, 800]
    # 00020: selection says 1028x1028, the generator runs at image_size [1024, 1024, 3]
    assert models["00020_PGGAN_CHEST_XRAY"]["zoo"]["spatial_shape"] == [1024, 1024]
    assert models["00020_PGGAN_CHEST_XRAY"]["zoo"]["num_channels"] == 3
    # 00021: height/width are floats (224.0), image_size strings ("224"), year an int, version the int-like "1"
    m21 = models["00021_CYCLEGAN_BRAIN_MRI_T1_T2"]
    assert m21["zoo"]["spatial_shape"] == [224, 192] and m21["zoo"]["year"] == 2021 and m21["version"] == "1"
    assert m21["zoo"]["modality"] == ["MR"] and m21["zoo"]["license"] == "unknown"


def test_conditional_and_empty_performance(models):
    m = models["00022_WGAN_CARDIAC_AGING"]
    assert m["zoo"]["condition"] == {"age": {"type": "text", "description": "age"}}
    assert m["zoo"]["metrics"] == []
    assert m["zoo"]["dataset_type"] == "private"  # "non-public"
    assert m["zoo"]["modality"] == ["MR"]


def test_downstream_task_block_and_string_metrics(models):
    m = models["00023_PIX2PIXHD_BREAST_DCEMRI"]
    metrics = metrics_of(m)
    assert metrics["SSIM"] == {"name": "SSIM", "value": 0.726, "direction": "higher"}
    assert metrics["MSE"]["direction"] == "lower" and metrics["PSNR"]["direction"] == "higher"
    assert "num_samples" not in metrics["FID"]  # no FID_no_images given
    assert metrics["SEG.trained_on_fake.dice"]["value"] == 0.687
    assert metrics["SEG.trained_on_real.dice"]["value"] == 0.79  # "0.790" in medigan's config
    assert "0.790" in metrics["SEG.trained_on_real.dice"]["note"]
    assert "CLF.trained_on_fake.accuracy" not in metrics  # null
    assert m["zoo"]["dataset_type"] == "unknown"  # "DCE-MRI" is no dataset type
    assert m["zoo"]["license"] == "LicenseRef-BSD" and m["version"] == "1.0"


def test_write_catalog_and_read_back(global_json, tmp_path, original):
    out = tmp_path / "sub" / "medigan.json"
    catalog = write_catalog(global_json, out)
    assert json.loads(out.read_text(encoding="utf-8")) == catalog
    assert not list(out.parent.glob("*.tmp"))
    try:
        from medigan_zoo.catalog.catalogs import read_catalog
    except ImportError as err:  # pragma: no cover - the lead's catalog reader
        pytest.skip(f"medigan_zoo.catalog.catalogs is not importable: {err}")
    infos = read_catalog(out)
    assert [i.id for i in infos] == list(original)
    assert infos[0].medigan_config == original["00001_DCGAN_MMG_CALC_ROI"]


# --- malformed input ---------------------------------------------------------------------------------------

FIRST = "00001_DCGAN_MMG_CALC_ROI"


def _set(path, value):
    def edit(data):
        node = data[FIRST]
        for key in path[:-1]:
            node = node[key]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return data
    return edit


MALFORMED = [
    (lambda d: [d], "$", "expected an object"),
    (lambda d: {}, "$", "empty"),
    (lambda d: {**d, FIRST: "oops"}, f"$.{FIRST}", "expected an object"),
    (lambda d: {"bad id!": d[FIRST]}, "$.bad id!", "model id"),
    (_set(["selection"], KeyError), f"$.{FIRST}.selection", "expected an object"),
    (_set(["execution", "package_link"], ""), f"$.{FIRST}.execution.package_link", "package link"),
    (_set(["selection", "height"], "tall"), f"$.{FIRST}.selection.height", "positive integer"),
    (_set(["selection", "width"], 12.5), f"$.{FIRST}.selection.width", "positive integer"),
    (_set(["selection", "year"], "twenty-one"), f"$.{FIRST}.selection.year", "year"),
    (_set(["selection", "year"], 1850), f"$.{FIRST}.selection.year", "out of range"),
    (_set(["selection", "modality"], 5), f"$.{FIRST}.selection.modality", "list of strings"),
    (_set(["selection", "tags"], ["ok", {"a": 1}]), f"$.{FIRST}.selection.tags[1]", "expected a string"),
    (_set(["selection", "performance"], "good"), f"$.{FIRST}.selection.performance", "expected an object"),
    (_set(["selection", "performance", "turing_test"], {"AUC": ["high", "low"]}),
     f"$.{FIRST}.selection.performance.turing_test.AUC", "list of numbers"),
    (_set(["execution", "image_size"], [128, "x"]), f"$.{FIRST}.execution.image_size[1]", "positive integer"),
]


@pytest.mark.parametrize("edit,where,message", MALFORMED, ids=[m[1] + ":" + m[2] for m in MALFORMED])
def test_malformed_input_names_file_and_json_path(original, tmp_path, edit, where, message):
    bad = tmp_path / "global.json"
    bad.write_text(json.dumps(edit(copy.deepcopy(original))), encoding="utf-8")
    with pytest.raises(MetadataError) as err:
        convert_medigan_config(bad)
    text = str(err.value)
    assert str(bad) in text and message in text, text
    assert err.value.json_path == where, text


def test_missing_size_is_an_error(original, tmp_path):
    data = copy.deepcopy(original)
    sel, exe = data[FIRST]["selection"], data[FIRST]["execution"]
    sel["height"] = sel["width"] = None
    exe["image_size"] = []
    bad = tmp_path / "global.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(MetadataError, match="no image size") as err:
        convert_medigan_config(bad)
    assert err.value.json_path == f"$.{FIRST}.selection"


def test_unreadable_files(tmp_path):
    with pytest.raises(MetadataError, match="not found"):
        convert_medigan_config(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": [1, 2,, 3]}', encoding="utf-8")
    with pytest.raises(MetadataError, match=r"malformed .*line 1") as err:
        convert_medigan_config(broken)
    assert str(broken) in str(err.value)


def test_lenient_where_medigan_is(original, tmp_path):
    """Oddities medigan itself accepts convert without errors."""
    data = copy.deepcopy(original)
    sel = data[FIRST]["selection"]
    sel["tags"] = "single tag"  # a bare string is one item
    sel["modality"] = ["something unheard of"]  # no DICOM code -> OT
    sel["license"] = "Some Custom License v2"
    sel["year"] = None
    sel["performance"]["turing_test"] = "not done"
    sel["condition"] = ["age", "Age!", "3 classes"]
    path = tmp_path / "global.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    zoo = convert_medigan_config(path)["models"][0]["zoo"]
    assert zoo["tags"] == ["single tag"] and zoo["modality"] == ["OT"]
    assert zoo["license"] == "LicenseRef-Some-Custom-License-v2" and "year" not in zoo
    assert not any(m["name"].startswith("turing_test") for m in zoo["metrics"])
    assert list(zoo["condition"]) == ["age", "age_2", "c_3_classes"]
