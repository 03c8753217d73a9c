"""The index: shipped + extra bundles + catalogs, id/alias resolution, foreign bundles, bad JSON."""
from __future__ import annotations

import copy

import pytest
from zoo_fixtures import ZOO_BLOCK, metadata, write_catalog, write_metadata_bundle

from medigan_zoo import Generators, MetadataError, ModelNotFoundError, ZooError
from medigan_zoo.catalog.index import ZooIndex


def test_extra_bundle_is_indexed_with_typed_metadata(tmp_path):
    write_metadata_bundle(tmp_path, "breast_mg_toygan", metadata())
    index = ZooIndex(bundle_dirs=[tmp_path], include_builtin=False)
    info = index.get("breast_mg_toygan")
    assert info.available and info.source == "bundle"
    assert info.alias == 901 and info.spatial_shape == [32, 32] and info.dims == 2
    assert info.metric("fid").value == 20.0 and info.metric("FID").direction == "lower"
    assert [c.name for c in info.conditions] == ["class_label"]
    assert info.conditions[0].values == {"0": "benign", "1": "malignant"}
    assert info.missing_zoo_fields == ()


def test_alias_and_short_ids_resolve(tmp_path):
    write_metadata_bundle(tmp_path, "breast_mg_toygan", metadata())
    catalog = write_catalog(tmp_path / "cat.json",
                            [{"id": "00005_DCGAN_MMG_MASS_ROI", "zoo": ZOO_BLOCK | {"alias": 5}}])
    index = ZooIndex(bundle_dirs=[tmp_path / "breast_mg_toygan"], catalogs=[catalog], include_builtin=False)
    assert index.resolve_id(901) == "breast_mg_toygan"
    assert index.resolve_id(5) == "00005_DCGAN_MMG_MASS_ROI"
    assert index.resolve_id("5") == "00005_DCGAN_MMG_MASS_ROI"
    assert index.resolve_id("00005") == "00005_DCGAN_MMG_MASS_ROI"
    assert index.resolve_id("BREAST_MG_TOYGAN") == "breast_mg_toygan"


def test_unknown_id_lists_closest_ids(tmp_path):
    write_metadata_bundle(tmp_path, "breast_mg_toygan", metadata())
    index = ZooIndex(bundle_dirs=[tmp_path], include_builtin=False)
    with pytest.raises(ModelNotFoundError) as err:
        index.get("breast_mg_toygn")
    assert "breast_mg_toygan" in str(err.value)


def test_malformed_metadata_names_file_and_line(tmp_path):
    """A broken extra bundle is left out with a warning (the others stay usable); asking for it gives the error."""
    bundle = write_metadata_bundle(tmp_path, "broken", metadata())
    write_metadata_bundle(tmp_path, "breast_mg_toygan", metadata())
    (bundle / "configs" / "metadata.json").write_text('{"version": "0.1.0",\n  "name": }')
    index = ZooIndex(bundle_dirs=[tmp_path], include_builtin=False)
    assert index.ids() == ["breast_mg_toygan"]
    assert len(index.warnings) == 1 and "'broken'" in index.warnings[0] and "line 2" in index.warnings[0]
    with pytest.raises(MetadataError) as err:
        index.get("broken")
    assert "metadata.json" in str(err.value) and "line 2" in str(err.value)


def test_schema_violation_names_json_path(tmp_path):
    bad = copy.deepcopy(ZOO_BLOCK)
    bad["modality"] = ["MAMMO"]
    write_metadata_bundle(tmp_path, "bad_modality", metadata(zoo=bad))
    index = ZooIndex(bundle_dirs=[tmp_path], include_builtin=False)
    with pytest.raises(MetadataError) as err:
        index.get("bad_modality")
    assert "$.medigan_zoo.modality[0]" in str(err.value) and "metadata.json" in str(err.value)
    assert "$.medigan_zoo.modality[0]" in index.warnings[0]


def test_malformed_catalog_names_file_and_json_path(tmp_path):
    catalog = write_catalog(tmp_path / "cat.json", [{"id": "x", "zoo": ZOO_BLOCK | {"spatial_shape": "big"}}])
    with pytest.raises(MetadataError) as err:
        ZooIndex(catalogs=[catalog], include_builtin=False)
    assert "cat.json" in str(err.value) and "$.models[0].zoo.spatial_shape" in str(err.value)


def test_duplicate_catalog_ids_rejected(tmp_path):
    catalog = write_catalog(tmp_path / "cat.json", [{"id": "x", "zoo": ZOO_BLOCK}, {"id": "x", "zoo": ZOO_BLOCK}])
    with pytest.raises(MetadataError, match=r"\$\.models\[1\]\.id"):
        ZooIndex(catalogs=[catalog], include_builtin=False)


def test_bundle_dir_without_bundles_is_a_clear_error(tmp_path):
    with pytest.raises(ZooError, match="holds no MONAI bundle"):
        ZooIndex(bundle_dirs=[tmp_path], include_builtin=False)


def test_environment_variables_add_bundles_and_catalogs(tmp_path, monkeypatch):
    write_metadata_bundle(tmp_path / "b", "breast_mg_toygan", metadata())
    catalog = write_catalog(tmp_path / "cat.json", [{"id": "cat_model", "zoo": ZOO_BLOCK | {"alias": 7}}])
    monkeypatch.setenv("MEDIGAN_ZOO_BUNDLE_PATH", str(tmp_path / "b"))
    monkeypatch.setenv("MEDIGAN_ZOO_CATALOGS", str(catalog))
    assert ZooIndex(include_builtin=False).ids() == ["breast_mg_toygan", "cat_model"]


def test_catalog_model_without_bundle_says_where_to_download(tmp_path):
    catalog = write_catalog(tmp_path / "cat.json", [{
        "id": "remote_model", "zoo": ZOO_BLOCK,
        "download": {"url": "https://example.org/remote_model.zip", "sha256": None, "format": "monai-bundle-zip"}}])
    gens = Generators(catalogs=[catalog], include_builtin=False)
    info = gens.get_model_info("remote_model")
    assert not info.available
    with pytest.raises(ZooError) as err:
        gens.generate("remote_model", num_samples=1, output_path=tmp_path / "out")
    assert "https://example.org/remote_model.zip" in str(err.value) and "not on disk" in str(err.value)


def test_bundle_on_disk_wins_over_catalog_entry(tmp_path):
    write_metadata_bundle(tmp_path / "b", "same_id", metadata())
    catalog = write_catalog(tmp_path / "cat.json", [{"id": "same_id", "zoo": ZOO_BLOCK}])
    index = ZooIndex(bundle_dirs=[tmp_path / "b"], catalogs=[catalog], include_builtin=False)
    assert index.get("same_id").available


def test_foreign_bundle_is_indexed_with_derived_fields(mednist_gan):
    index = ZooIndex(bundle_dirs=[mednist_gan], include_builtin=False)
    info = index.get("mednist_gan")
    assert info.name == "MedNIST GAN" and info.version == "0.4.2"
    assert info.spatial_shape == [64, 64] and info.zoo["num_channels"] == 1
    assert info.architecture == "GAN" and info.license == "Apache-2.0"
    assert "anatomy" in info.missing_zoo_fields and "metrics" in info.missing_zoo_fields
    assert "spatial_shape" not in info.missing_zoo_fields
    assert info.medigan_config["selection"]["height"] == 64


def test_zoo_bundles_get_a_medigan_view(tmp_path):
    write_metadata_bundle(tmp_path, "breast_mg_toygan", metadata())
    gens = Generators(bundle_dirs=[tmp_path], include_builtin=False)
    config = gens.get_config_by_id("breast_mg_toygan")
    assert config["selection"]["performance"]["FID"] == 20.0
    assert "Mammography".lower() in [m.lower() for m in config["selection"]["modality"]]
    assert gens.get_config_by_id(901, config_key="selection.height") == 32
