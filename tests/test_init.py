"""``medigan-zoo init`` (medigan_zoo.byod.init): a bundle from each template family that passes validate with
untrained weights and no metrics, and one-line refusals."""
from __future__ import annotations

import json

import pytest

from medigan_zoo.byod.init import STARTING_POINTS, init_bundle
from medigan_zoo.core.errors import ZooError
from medigan_zoo.runtime.validate import validate


@pytest.mark.parametrize("template", ["wgan_gp", "ddpm"])  # cgan: tests/test_byod_pipeline.py
def test_each_template_gives_a_valid_untrained_bundle(tmp_path, template):
    result = init_bundle(f"my_{template}", template, output=tmp_path / "b", dataset="my_data")
    report = validate(result.bundle)
    assert not report.failed and not [line for line in report.lines() if "WARNING" in line]
    meta = json.loads((result.bundle / "configs" / "metadata.json").read_text())
    assert meta["version"] == "0.1.0" and "not trained yet" in meta["changelog"]["0.1.0"]
    assert meta["medigan_zoo"]["metrics"] == [] and "alias" not in meta["medigan_zoo"]
    assert meta["medigan_zoo"]["dataset"] == ["my_data"] and result.started_from.name == STARTING_POINTS[template]


def test_refusals_are_one_line(tmp_path):
    with pytest.raises(ZooError, match="must be 2-64 lower-case"):
        init_bundle("My Bundle", output=tmp_path / "a")
    with pytest.raises(ZooError, match="is not one of cgan, wgan_gp, ddpm"):
        init_bundle("ok_name", "vae", output=tmp_path / "a")
    with pytest.raises(ZooError, match="not 'wgangp_train'"):
        init_bundle("ok_name", "wgan_gp", from_bundle=_shipped("chest_xray_cdcgan"),
                    output=tmp_path / "a")
    (tmp_path / "exists").mkdir()
    with pytest.raises(ZooError, match="already exists"):
        init_bundle("ok_name", output=tmp_path / "exists")
    assert not (tmp_path / "a").exists()


def _shipped(name):
    from medigan_zoo.core.paths import builtin_bundles_root

    return builtin_bundles_root() / name

