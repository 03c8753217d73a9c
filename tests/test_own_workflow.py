"""Foreign bundles the fast path does not understand, run through their OWN workflow (docs/foreign_bundles.md).

The test bundle is written in the shape of MONAI's published MedNIST GAN (``SupervisedEvaluator`` over a
``Dataset`` of latents, ``Activationsd`` + ``SaveImaged`` PNG postprocessing, ``CheckpointLoader``, run id
``inferring``), tiny (8-long latent -> 16x16), with its generator under ids the fast path does not know
(``generator_def``/``generator``, no ``network``) and the latent drawn in its config. With a ``seed`` id its
``initialize`` seeds it (``monai.utils.set_determinism(seed=@seed)``); without one, the zoo seeds torch before each
run. Each output is compared with what ``python -m monai.bundle run inferring`` writes for the same seed.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
import torch
from test_cli import run_cli

from medigan_zoo import engine
from medigan_zoo.catalog.bundle_reader import read_bundle
from medigan_zoo.catalog.foreign import OWN_WORKFLOW, PER_RUN, PER_SAMPLE, assess
from medigan_zoo.core.errors import BundleLoadError, GenerationError, UntrustedBundleError
from medigan_zoo.core.seeding import sample_seed
from medigan_zoo.runtime.bundle import open_bundle

LATENT = 8


def workflow_config(seeded: bool = True) -> Dict[str, Any]:
    """MedNIST GAN's inference.json shape with other ids (module docstring)."""
    config: Dict[str, Any] = {
        "imports": ["$import glob", "$import torch", "$import numpy as np", "$import monai"],
        "bundle_root": ".",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "ckpt_path": "$@bundle_root + '/models/model.pt'",
        "output_dir": "./outputs",
        "latent_size": LATENT,
        "num_samples": 3,
        "generator_def": {"_target_": "Generator", "latent_shape": "@latent_size", "start_shape": [8, 4, 4],
                          "channels": [4, 1], "strides": [2, 2]},
        "generator": "$@generator_def.to(@device)",
        "dataset": {"_target_": "Dataset", "data": "$[torch.randn(@latent_size) for i in range(@num_samples)]"},
        "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 1, "shuffle": False,
                       "num_workers": 0},
        "inferer": {"_target_": "SimpleInferer"},
        "postprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "Activationsd", "keys": "pred", "sigmoid": True},
            {"_target_": "ToTensord", "keys": "pred", "track_meta": False},
            {"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir", "output_ext": "png",
             "separate_folder": False, "scale": 255, "output_dtype": "$np.uint8", "meta_key_postfix": None}]},
        "handlers": [{"_target_": "CheckpointLoader", "load_path": "@ckpt_path", "load_dict": {"model": "@generator"}}],
        "evaluator": {"_target_": "SupervisedEvaluator", "device": "@device", "val_data_loader": "@dataloader",
                      "network": "@generator", "inferer": "@inferer", "postprocessing": "@postprocessing",
                      "prepare_batch": "$lambda batchdata, *_,**__: (batchdata.to(@device),None,(),{})",
                      "val_handlers": "@handlers"},
        "inferring": ["$@evaluator.run()"],
    }
    if seeded:
        config["seed"] = 0
        config["initialize"] = ["$monai.utils.set_determinism(seed=@seed)"]
    return config


METADATA = {
    "version": "0.1.0", "name": "Tiny workflow GAN", "task": "tiny hand x-ray generation (test)",
    "description": "A GAN bundle in MedNIST GAN's shape whose ids the zoo's fast path does not know",
    "network_data_format": {
        "inputs": {"latent": {"type": "tuples", "format": "latent", "num_channels": 0, "spatial_shape": [LATENT],
                              "dtype": "float32", "value_range": [0, 1]}},
        "outputs": {"pred": {"type": "image", "format": "magnitude", "modality": "xray", "num_channels": 1,
                             "spatial_shape": [16, 16], "dtype": "float32", "value_range": [0, 1],
                             "channel_def": {"0": "image"}}}},
}


def write_workflow_bundle(where: Path, name: str = "tiny_workflow_gan", seeded: bool = True,
                          config: Dict[str, Any] = None) -> Path:
    """The test bundle with weights created from its own config (seed 0)."""
    from monai.bundle import ConfigParser

    bundle = where / name
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    (bundle / "configs" / "inference.json").write_text(json.dumps(config or workflow_config(seeded), indent=1))
    (bundle / "configs" / "metadata.json").write_text(json.dumps(METADATA, indent=1))
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    torch.manual_seed(0)
    torch.save(parser.get_parsed_content("generator_def").state_dict(), bundle / "models" / "model.pt")
    return bundle


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    where = tmp_path_factory.mktemp("own_workflow")
    return write_workflow_bundle(where), write_workflow_bundle(where, "tiny_workflow_gan_unseeded", seeded=False)


def _png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path), dtype=np.int16)


def test_verdict_is_yes_through_its_own_workflow(bundles):
    seeded, unseeded = bundles
    verdict = assess(seeded)
    assert verdict.runnable and verdict.route == OWN_WORKFLOW and verdict.seeding == PER_SAMPLE, verdict.line()
    assert verdict.run_id == "inferring" and verdict.ids["saver"] == "postprocessing"
    assert {verdict.ids[k] for k in ("output_dir", "num_samples", "seed")} == {"output_dir", "num_samples", "seed"}
    assert "run id inferring once per sample (`num_samples` set to 1)" in verdict.reason
    assert "fast path cannot (its config declares no `network`" in verdict.reason
    other = assess(unseeded)
    assert other.runnable and other.seeding == PER_RUN and "torch, numpy and random are seeded" in other.reason
    info = read_bundle(seeded)
    assert info.runnable is not None and info.runnable["route"] == OWN_WORKFLOW


def test_matches_monai_bundle_run_for_the_same_seed(bundles, tmp_path):
    """The zoo's PNG of sample 0 == the PNG `python -m monai.bundle run inferring --seed S` writes (its first)."""
    bundle = bundles[0]
    result = engine.generate(bundle, 2, tmp_path / "zoo", seed=5, quiet=True, num_workers=0)
    seed = sample_seed(5, 0)
    monai_out = tmp_path / "monai"
    done = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "inferring", "--config_file", "configs/inference.json",
         "--meta_file", "configs/metadata.json", "--bundle_root", ".", "--seed", str(seed), "--output_dir",
         str(monai_out), "--device", "$torch.device('cpu')"],
        cwd=bundle, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = sorted(monai_out.glob("*.png"))
    assert len(theirs) == 3  # the bundle's own num_samples
    ours, first = _png(result.files[0]), _png(theirs[0])
    assert ours.shape == first.shape == (16, 16) and first.std() > 1
    assert np.abs(ours - first).max() <= 1, np.abs(ours - first).max()  # same pixels, same orientation
    assert not np.array_equal(ours, _png(result.files[1]))  # sample 1 has a seed of its own
    header = json.loads(result.header.read_text())
    assert header["seeding"].startswith("per sample: sample i is the first image the bundle's own workflow")
    assert "`seed` id set to sample_seed(seed, i)" in header["seeding"] and header["synthetic"] is True
    line = json.loads(result.manifest.read_text().splitlines()[1])
    assert line["seed"] == sample_seed(5, 1)


def test_seeded_per_run_without_a_seed_id(bundles, tmp_path):
    """Without a seed id the zoo seeds torch itself: sample 0 == monai.bundle's run after torch.manual_seed(S)."""
    from monai.bundle import run

    bundle = bundles[1]
    result = engine.generate(bundle, 1, tmp_path / "zoo", seed=2, quiet=True, num_workers=0)
    assert json.loads(result.header.read_text())["seeding"].startswith("seeded per run: ")
    torch.manual_seed(sample_seed(2, 0))
    run("inferring", config_file=str(bundle / "configs" / "inference.json"), logging_file=False,
        meta_file=str(bundle / "configs" / "metadata.json"), bundle_root=str(bundle),
        output_dir=str(tmp_path / "monai"), device="$torch.device('cpu')")
    first = sorted((tmp_path / "monai").glob("*.png"))[0]
    assert np.abs(_png(result.files[0]) - _png(first)).max() <= 1
    again = engine.generate(bundle, 1, tmp_path / "again", seed=2, quiet=True, num_workers=0)
    assert np.array_equal(_png(again.files[0]), _png(result.files[0]))  # reproducible


def test_dataset_and_nifti_from_the_own_workflow(bundles, tmp_path):
    dataset = engine.SyntheticDataset(bundles[0], 2, seed=5, device="cpu")
    item = dataset[0]["image"]
    assert item.shape == (1, 16, 16) and 0.0 <= float(item.min()) and float(item.max()) <= 1.0
    result = engine.generate(bundles[0], 1, tmp_path / "nii", seed=5, output_format="nifti", quiet=True,
                             num_workers=0)
    assert result.files[0].name.endswith(".nii.gz")


def test_untrusted_own_workflow_runs_nothing(bundles, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDIGAN_ZOO_TRUSTED_PATHS", raising=False)
    with pytest.raises(UntrustedBundleError):
        engine.generate(bundles[0], 1, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()
    with pytest.raises(UntrustedBundleError):
        open_bundle(bundles[0], device="cpu").sampler()


@pytest.mark.parametrize("change, message", [
    (lambda c: c["postprocessing"]["transforms"][2].update(output_dir="/tmp/fixed_place"),
     "its saver `postprocessing` writes to the fixed folder /tmp/fixed_place"),
    (lambda c: c["postprocessing"]["transforms"].pop(2), "its config declares no `network`/`network_def`"),
    (lambda c: c.update(ckpt_path="$@bundle_root + '/models/absent.pt'"), "its weights models/absent.pt are absent"),
    (lambda c: c.update(generator="$trt_compile(@generator_def.to(@device), @ckpt_path)"),
     "it needs CUDA-only pieces (trt_compile)"),
])
def test_own_workflow_refusals_are_one_line(tmp_path, change, message):
    config = workflow_config()
    change(config)
    if "CUDA" in message:  # the network cannot be built with that keyword: weights from the plain config
        bundle = write_workflow_bundle(tmp_path)
        (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    else:
        bundle = write_workflow_bundle(tmp_path, config=config)
    verdict = assess(bundle)
    assert not verdict.runnable and message in verdict.reason, verdict.reason
    with pytest.raises(BundleLoadError, match="monai.bundle run inferring") as err:
        open_bundle(bundle, device="cpu").sampler()
    assert message in str(err.value) and "\n" not in str(err.value)
    out = tmp_path / "out"
    with pytest.raises(BundleLoadError):
        engine.generate(bundle, 1, out, quiet=True)
    assert not out.exists()


def test_large_files_not_downloaded(tmp_path):
    bundle = write_workflow_bundle(tmp_path)
    (bundle / "large_files.yml").write_text("large_files:\n  - path: \"models/extra.pt\"\n"
                                            "    url: \"https://example.org/extra.pt\"\n")
    verdict = assess(bundle)
    assert not verdict.runnable
    assert "large_files.yml lists models/extra.pt, which is not downloaded (https://example.org/extra.pt)" in \
        verdict.reason


def test_a_failing_workflow_is_one_line_and_leaves_no_folder(tmp_path):
    config = workflow_config()
    config["inferring"] = ["$@evaluator.run()", "$int('not a number')"]
    bundle = write_workflow_bundle(tmp_path, config=config)
    out = tmp_path / "out"
    with pytest.raises(GenerationError, match=r"own workflow of bundle 'tiny_workflow_gan' \(run id inferring, "
                                              r"inference\.json\) failed for seed \d+: ValueError") as err:
        engine.generate(bundle, 1, out, quiet=True, num_workers=0)
    assert "\n" not in str(err.value) and not out.exists()


def test_cli_info_validate_and_generate(bundles, tmp_path):
    bundle = bundles[0]
    out = run_cli("validate", "--foreign", bundle)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "runs with the zoo: yes, because the zoo runs the bundle's own workflow" in out.stdout
    shown = json.loads(run_cli("--bundle_dirs", bundle, "info", "tiny_workflow_gan").stdout)
    assert shown["runnable"]["route"] == OWN_WORKFLOW and shown["runnable"]["seeding"] == PER_SAMPLE
    made = run_cli("--bundle_dirs", bundle, "generate", "tiny_workflow_gan", "--num_samples", 1, "--output_path",
                   tmp_path / "cli", "--quiet")
    assert made.returncode == 0, made.stderr
    names = sorted(p.name for p in (tmp_path / "cli").iterdir() if not p.name.startswith("."))
    assert names == ["manifest.json", "manifest.jsonl", "sample_000000.png"]
