"""A model's license travels with what it makes: the manifest header of a generated folder names the licenses of
the weights, training data and code and flags non-commercial terms (DermaMNIST / HAM10000: CC BY-NC 4.0); the
class-balanced sampling weights the dermatoscopy recipe trains with."""
from __future__ import annotations

import json

import pytest
from conftest import REPO

from medigan_zoo.catalog.licenses import non_commercial
from medigan_zoo.catalog.model_info import ModelInfo
from medigan_zoo.training.data import class_balanced_weights

DERMA = REPO / "bundles" / "skin_dermatoscopy_cdcgan"
RETINA = REPO / "bundles" / "retina_fundus_cdcgan"


@pytest.mark.parametrize("value, expected", [
    ("CC-BY-NC-4.0", True), ("CC BY-NC 4.0", True), ("CC BY-NC-SA 4.0", True),
    ("LicenseRef-NVIDIA-OneWay-Noncommercial", True), ("CC-BY-4.0", False), ("Apache-2.0", False),
    ("unknown", False), (None, False),
])
def test_non_commercial(value, expected):
    assert non_commercial(value) is expected


def test_a_zoo_models_data_license_is_the_one_its_data_source_names():
    info = ModelInfo(id="m", name="m", version="0.1.0", description="", source="bundle",
                     zoo={"license": "CC-BY-NC-4.0"},
                     monai_metadata={"data_source": "DermaMNIST (MedMNIST v3, CC BY-NC 4.0; Yang et al. 2023)"})
    assert info.license_parts == {"code": "unknown", "weights": "CC-BY-NC-4.0", "data": "CC-BY-NC-4.0"}
    bare = ModelInfo(id="m", name="m", version="0.1.0", description="", source="bundle", zoo={"license": "MIT"})
    assert bare.license_parts["data"] == "unknown"


def _header(bundle, folder):
    pytest.importorskip("torch")
    if not (bundle / "models" / "model.pt").is_file():
        pytest.skip(f"{bundle.name} has no weights in this checkout")
    from medigan_zoo.engine import generate

    generate(bundle, 2, folder, seed=0, num_workers=0, quiet=True)
    return json.loads((folder / "manifest.json").read_text())


def test_the_dermatoscopy_models_manifest_says_cc_by_nc_and_non_commercial(tmp_path, one_thread):
    header = _header(DERMA, tmp_path / "derma")
    lic = header["license"]
    assert lic["weights"] == "CC-BY-NC-4.0" and lic["data"] == "CC-BY-NC-4.0", lic
    assert lic["non_commercial"] is True and "NON-COMMERCIAL" in lic["note"] and "CC-BY-NC-4.0" in lic["note"]
    assert header["synthetic"] is True


def test_a_cc_by_models_manifest_is_not_flagged_non_commercial(tmp_path, one_thread):
    lic = _header(RETINA, tmp_path / "retina")["license"]
    assert lic["weights"] == "CC-BY-4.0" and lic["data"] == "CC-BY-4.0" and lic["non_commercial"] is False, lic
    assert "NON-COMMERCIAL" not in lic["note"]


def test_class_balanced_weights_draw_classes_in_proportion_to_count_to_the_power():
    records = [{"y": 0}] * 90 + [{"y": 1}] * 10
    for power, share_of_0 in ((1.0, 0.9), (0.0, 0.5), (0.5, 0.75)):
        w = class_balanced_weights(records, "y", power)
        assert sum(w) == pytest.approx(1.0)
        assert sum(w[:90]) == pytest.approx(share_of_0), power
    with pytest.raises(ValueError, match="power"):
        class_balanced_weights(records, "y", 1.5)
