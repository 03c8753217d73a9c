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



def _npz(path, shape, labels):
    import numpy as np

    rng = np.random.default_rng(0)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1, 1)
    np.savez(path, train_images=rng.integers(0, 256, (len(labels), *shape), dtype=np.uint8), train_labels=labels)
    return path


def _configs(bundle):
    return {name: json.loads((bundle / "configs" / f"{name}.json").read_text())
            for name in ("inference", "train", "metadata")}


def test_data_fits_a_ddpm_to_colour_images_of_another_size_and_class_count(tmp_path):
    """--data: RGB 32x32 with 4 classes -> the RGB starting bundle, 5 class embeddings (null class 4), 32x32
    output, the most common class as default; the bundle validates, trains and generates that shape."""
    import subprocess
    import sys

    data = _npz(tmp_path / "my_set.npz", (32, 32, 3), [0, 1, 2, 3, 3, 3, 2, 1])
    result = init_bundle("my_rgb_ddpm", "ddpm", output=tmp_path / "zoo" / "my_rgb_ddpm", data=data)
    assert result.started_from.name == "skin_dermatoscopy_ddpm" and result.data.majority == 3
    report = validate(result.bundle)
    assert not report.failed and not [line for line in report.lines() if "WARNING" in line]
    c = _configs(result.bundle)
    assert c["inference"]["network_def"]["num_class_embeds"] == c["train"]["network_def"]["num_class_embeds"] == 5
    assert c["inference"]["null_class"] == c["train"]["null_class"] == 4
    assert c["inference"]["spatial_shape"] == [32, 32] and c["inference"]["class_label"] == 3
    assert c["train"]["data_path"] == "$@data_dir + '/my_set.npz'"
    zoo = c["metadata"]["medigan_zoo"]
    assert zoo["spatial_shape"] == [32, 32] and zoo["dataset"] == ["my_set"]
    assert zoo["condition"]["class_label"]["values"] == {str(i): f"class {i}" for i in range(4)}
    assert zoo["condition"]["class_label"]["default"] == 3
    assert c["metadata"]["network_data_format"]["outputs"]["pred"]["spatial_shape"] == [32, 32]
    # the text that described the starting bundle's data now describes this data (nothing about skin lesions)
    assert c["metadata"]["task"] == "Class-conditional generation of 32x32 RGB images of my_set (4 classes)"
    assert c["metadata"]["image_classes"] == "RGB image, 32x32, intensities in [0, 1]"
    assert c["metadata"]["data_source"].startswith("my_set (my_set.npz); say where")
    lines = "\n".join(result.lines())
    assert "4 class(es)" in lines and "license: CC-BY-NC-4.0 (from skin_dermatoscopy_ddpm)" in lines
    assert "tags, intended_use and copyright in configs/metadata.json still describe skin_dermatoscopy_ddpm" in lines
    run = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "training",
                          "--config_file", "configs/train.json", "--meta_file", "configs/metadata.json",
                          "--bundle_root", ".", "--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "out"),
                          "--max_iterations", "2", "--batch_size", "4", "--num_threads", "1"],
                         cwd=result.bundle, capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "MEDIGAN_ZOO_TRUSTED_PATHS": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-2000:]
    run = subprocess.run([sys.executable, "-m", "medigan_zoo", "--bundle_dirs", str(tmp_path / "zoo"),
                          "--include_builtin", "False", "--trust", str(tmp_path), "generate", "my_rgb_ddpm",
                          "--num_samples", "2", "--output_path", str(tmp_path / "gen"), "--num_inference_steps", "2",
                          "--class_label", "0"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    from PIL import Image

    with Image.open(tmp_path / "gen" / "sample_000000.png") as image:
        assert (image.size, image.mode) == ((32, 32), "RGB")


def test_data_names_the_classes_of_a_prepared_folder_for_a_cgan(tmp_path):
    folder = tmp_path / "prepared"
    folder.mkdir()
    _npz(folder / "dataset.npz", (28, 28), [0] * 2 + [1] * 5 + [2] * 3)
    (folder / "dataset.json").write_text(json.dumps({"label_names": ["benign", "malignant", "normal"]}))
    result = init_bundle("my_cgan", "cgan", output=tmp_path / "b", data=folder)
    assert not validate(result.bundle).failed
    c = _configs(result.bundle)
    assert c["inference"]["network_def"]["num_classes"] == c["train"]["num_classes"] == 3
    assert c["inference"]["class_label"] == 1 and c["train"]["data_path"] == "$@data_dir + '/dataset.npz'"
    zoo = c["metadata"]["medigan_zoo"]
    assert zoo["condition"]["class_label"]["values"] == {"0": "benign", "1": "malignant", "2": "normal"}
    assert zoo["dataset"] == ["prepared"]
    label_input = c["metadata"]["network_data_format"]["inputs"]["class_label"]
    assert label_input["value_range"] == [0, 2] and label_input["channel_def"]["2"] == "normal"
    assert f"--data {folder}" in result.lines()[-1]


@pytest.mark.parametrize("template,shape,labels,message", [
    ("ddpm", (30, 30), [0, 1], "divisible by 4"),
    ("cgan", (32, 32), [0, 1], "networks make 28x28; prepare the data with --size 28"),
    ("wgan_gp", (28, 28, 3), [0, 0], "has no colour starting bundle"),
    ("cgan", (28, 28), [0, 2], "must be 0..K-1"),
    ("ddpm", (8, 28, 28), [0, 1], "make 2D images"),
])
def test_data_that_cannot_fit_is_refused_in_one_line(tmp_path, template, shape, labels, message):
    data = _npz(tmp_path / "d.npz", shape, labels)
    with pytest.raises(ZooError, match=message) as err:
        init_bundle("no_fit", template, output=tmp_path / "b", data=data)
    assert "\n" not in str(err.value) and not (tmp_path / "b").exists()
