"""Bundle config templates (medigan_zoo.templates): no drift between a shipped config and its rendering, the
rendering rules, the data folder of train.json, and a bundle scaffolded from the templates that validates and runs
``python -m monai.bundle run inferring``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLES, DATA_DIR, REPO, shipped_bundles, shipped_generators

from medigan_zoo.core.errors import ZooError
from medigan_zoo.templates import TEMPLATE_FILE, load_template, render, rendered_configs, template_names
from medigan_zoo.templates.render import TEMPLATES_DIR

GENERATORS = shipped_generators()
IDS = [b.name for b in GENERATORS]


#: the inference template of a generator: models that make their samples from image inputs (zoo block ``inputs``,
#: docs/bundle_contract.md section 5) read ``input_dir``; the others draw from seeds and conditions alone
INFERENCE_TEMPLATES = {False: "generator_inference", True: "image_input_inference"}


def _takes_image_inputs(bundle: Path) -> bool:
    zoo = json.loads((bundle / "configs" / "metadata.json").read_text()).get("medigan_zoo") or {}
    return bool(zoo.get("inputs"))


@pytest.mark.parametrize("bundle", GENERATORS, ids=IDS)
def test_every_generator_declares_templates_for_inference_and_training(bundle):
    spec = json.loads((bundle / TEMPLATE_FILE).read_text())
    assert set(spec) == {"inference.json", "train.json"}
    assert spec["inference.json"]["template"] == INFERENCE_TEMPLATES[_takes_image_inputs(bundle)], \
        "a bundle with image inputs renders from image_input_inference, one without from generator_inference"


def test_the_image_input_template_reads_input_dir_with_one_input_name():
    """Every id that names the input refers to ``input_name``: a bundle sets its input's name once."""
    config = load_template("image_input_inference")
    assert {"input_dir", "input_name", "preprocessing"} <= set(config) and "num_samples" not in config
    named = render("image_input_inference", {"input_name": "t2"})
    assert named["sampler"]["input_name"] == "@input_name" and named["input_name"] == "t2"
    assert "@input_name" in named["dataset"]["data"]
    assert {t["keys"] for t in named["preprocessing"]["transforms"]} == {"@input_name"}
    assert named["postprocessing"]["transforms"][0]["meta_from"] == "@input_name"


@pytest.mark.parametrize("bundle", GENERATORS, ids=IDS)
def test_shipped_configs_equal_their_template_rendering(bundle):
    """Drift test: edit the template or configs/template.json, then run scripts/render_bundle_configs.py."""
    for name, text in rendered_configs(bundle).items():
        assert (bundle / "configs" / name).read_text() == text, \
            f"{bundle.name}/configs/{name} drifted from its template: python scripts/render_bundle_configs.py"


def test_the_render_script_finds_no_drift():
    result = subprocess.run([sys.executable, "scripts/render_bundle_configs.py", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_shipped_bundle_uses_the_template_logging_conf():
    expected = (TEMPLATES_DIR / "logging.conf").read_text()
    for bundle in shipped_bundles():
        assert (bundle / "configs" / "logging.conf").read_text() == expected, bundle.name


@pytest.mark.parametrize("bundle", shipped_bundles(), ids=[b.name for b in shipped_bundles()])
def test_configs_name_no_relative_data_path_and_no_private_monai_state(bundle):
    for config in sorted((bundle / "configs").glob("*.json")):
        text = config.read_text()
        assert "shared/data" not in text, f"{config}: use the data_dir id (default_data_dir()), not a relative path"
        assert "_data_index" not in text, f"{config}: SaveImage's _data_index is private MONAI state"


#: run options of the training recipes: a train.json that declares one must use it (an override of the `training`
#: list once dropped the resume line of both adrenal recipes, so --resume_from was silently ignored)
RUN_OPTIONS = ("resume_from", "init_ckpt", "max_run_s", "checkpoint_interval_s", "seed", "num_threads")


@pytest.mark.parametrize("bundle", shipped_bundles(), ids=[b.name for b in shipped_bundles()])
def test_declared_training_run_options_are_used(bundle):
    train = bundle / "configs" / "train.json"
    if not train.is_file():
        pytest.skip(f"{bundle.name} ships no train.json")
    text = train.read_text()
    for option in RUN_OPTIONS:
        if f'"{option}":' in text:
            assert f"@{option}" in text, f"{train}: declares {option!r} but nothing reads @{option}"


@pytest.mark.parametrize("bundle", GENERATORS, ids=IDS)
def test_inference_sets_determinism_before_inferring(bundle):
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    assert "$monai.utils.set_determinism(seed=@seed)" in config["initialize"]


def test_overrides_replace_nested_ids_add_new_ones_and_remove_first():
    base = load_template("generator_inference")
    out = render("generator_inference", {"num_samples": 3, "sampler::condition_names": [],
                                         "postprocessing::transforms::1::scale": 1, "new_id": "x"},
                 remove=["class_label"])
    assert out["num_samples"] == 3 and out["sampler"]["condition_names"] == []
    assert out["postprocessing"]["transforms"][1]["scale"] == 1 and "class_label" not in out
    assert list(out)[-1] == "new_id" and list(out)[:3] == list(base)[:3]
    assert load_template("generator_inference") == base, "rendering must not change the template"


def test_unknown_template_or_id_is_a_user_error_naming_the_fix():
    with pytest.raises(ZooError, match="Unknown bundle config template 'nope'.*generator_inference"):
        render("nope")
    with pytest.raises(ZooError, match="'sampler::nothing::x'"):
        render("generator_inference", {"sampler::nothing::x": 1})
    with pytest.raises(ZooError, match="'postprocessing::transforms::9'"):
        render("generator_inference", remove=["postprocessing::transforms::9"])


def test_one_train_template_per_model_family():
    assert {"generator_inference", "image_input_inference", "cdcgan_train", "wgangp_train", "ddpm_train",
            "fastgan_train", "pix2pix_train", "tumor_pair_train"} <= set(template_names())
    families = {json.loads((b / TEMPLATE_FILE).read_text())["train.json"]["template"] for b in GENERATORS}
    assert families == {"cdcgan_train", "wgangp_train", "ddpm_train", "fastgan_train", "pix2pix_train",
                        "tumor_pair_train"}


@pytest.mark.parametrize("bundle", GENERATORS, ids=IDS)
def test_train_data_dir_defaults_to_the_shared_folder_and_is_overridable(bundle, tmp_path):
    pytest.importorskip("monai")
    from monai.bundle import ConfigParser

    from medigan_zoo.core.paths import default_data_dir

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    name = Path(parser.get_parsed_content("data_path")).name
    if DATA_DIR.is_dir() or os.environ.get("MEDIGAN_ZOO_DATA"):
        assert parser.get_parsed_content("data_dir") == str(default_data_dir())
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    parser["data_dir"] = str(tmp_path)  # what `--data_dir DIR` does on the monai.bundle command line
    assert parser.get_parsed_content("data_path") == f"{tmp_path}/{name}"


def test_data_dir_without_a_checkout_folder_is_an_error_naming_what_to_set(monkeypatch, tmp_path):
    from medigan_zoo.core import paths

    monkeypatch.delenv(paths.ENV_DATA, raising=False)
    monkeypatch.setattr(paths, "_PACKAGE_DIR", tmp_path / "site-packages" / "medigan_zoo")
    with pytest.raises(ZooError, match=r"--data_dir DIR \(or set MEDIGAN_ZOO_DATA=DIR\)"):
        paths.default_data_dir()
    monkeypatch.setenv(paths.ENV_DATA, str(tmp_path))
    assert paths.default_data_dir() == tmp_path
    assert paths.default_data_dir("/x") == Path("/x")


@pytest.mark.parametrize("file,label", [("breastmnist.npz", None), ("pneumoniamnist.npz", "class_label"),
                                        ("adrenalmnist3d.npz", "class_label")])
def test_npz_uint8_records_equal_the_inline_comprehension_they_replaced(file, label):
    np = pytest.importorskip("numpy")
    from medigan_zoo.training.data import npz_uint8_records

    path = DATA_DIR / file
    if not path.is_file():
        pytest.skip(f"{path} not found (../shared/data is absent; set MEDIGAN_ZOO_DATA)")
    npz = np.load(path)
    if label is None:
        old = [{'image': img[None].astype('float32')} for img in npz['train_images']][:50]
    else:
        old = [{'image': img[None].astype('float32'), 'class_label': int(lab)}
               for img, lab in zip(npz['train_images'], npz['train_labels'].reshape(-1))][:50]
    new = npz_uint8_records(path, "train", label, 50)
    assert len(new) == len(old) == 50
    for a, b in zip(old, new):
        assert a.keys() == b.keys() and a.get("class_label") == b.get("class_label")
        assert a["image"].dtype == b["image"].dtype and np.array_equal(a["image"], b["image"])
    assert len(npz_uint8_records(path, "train", label)) == len(npz["train_images"])


def test_a_bundle_scaffolded_from_the_template_validates_and_runs_inferring(tmp_path):
    """A tiny randomly initialised network as models/model.pt; the rendered inference.json runs as MONAI runs it."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("monai")
    from monai.bundle import ConfigParser

    from medigan_zoo.runtime.validate import validate_bundle
    from medigan_zoo.templates import new_bundle

    metadata = json.loads((BUNDLES / "chest_xray_cdcgan" / "configs" / "metadata.json").read_text())
    metadata["name"] = "Tiny test cGAN"
    metadata["medigan_zoo"]["metrics"] = []  # not evaluated yet
    metadata["medigan_zoo"]["alias"] = 999
    templates = {"inference.json": {"template": "generator_inference",
                                    "overrides": {"network_def::channels": [8, 8, 4], "num_samples": 3}},
                 "train.json": {"template": "cdcgan_train", "overrides": {"network_def::channels": [8, 8, 4]}}}
    bundle = new_bundle(tmp_path / "tiny_cgan", templates, metadata, "CC-BY-4.0 (test)\n")
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    torch.manual_seed(0)
    torch.save(parser.get_parsed_content("network_def").state_dict(), bundle / "models" / "model.pt")

    problems = validate_bundle(bundle)
    assert not [p for p in problems if p.severity == "error"], "\n".join(map(str, problems))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cli = subprocess.run([sys.executable, "-m", "medigan_zoo", "validate", str(bundle)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)  # `medigan-zoo validate`
    assert cli.returncode == 0 and "OK (0 errors" in cli.stdout, cli.stdout + cli.stderr
    cmd = [sys.executable, "-m", "monai.bundle", "run", "inferring",
           "--config_file", str(bundle / "configs" / "inference.json"),
           "--meta_file", str(bundle / "configs" / "metadata.json"),
           "--logging_file", str(bundle / "configs" / "logging.conf"), "--bundle_root", str(bundle),
           "--output_dir", str(out)]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [f"{i}_synthetic.png" for i in range(3)]
    with pytest.raises(ZooError, match="already exists"):
        new_bundle(bundle, templates, metadata, "")


def test_rendering_imports_neither_torch_nor_monai_nor_numpy():
    code = ("import sys; from medigan_zoo.templates import rendered_configs; "
            f"rendered_configs({str(BUNDLES / 'chest_xray_cdcgan')!r}); "
            "heavy = [m for m in ('torch', 'monai', 'numpy') if m in sys.modules]; assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
