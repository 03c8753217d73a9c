"""`info` and `validate --foreign` on the generative families MONAI ships that the zoo does not run: one line each,
"runs with the zoo: no, because ...". Configs are written in the shapes of the published ones (MAISI's
``maisi_ct_generative`` inference.json ids and classes, trimmed; MONAI-core VQVAE, ControlNet, PNDM and RFlow in the
layout of the published DDPM/LDM bundles); no weights are needed for a "no".
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict

import pytest
from test_cli import run_cli

from medigan_zoo.catalog.bundle_reader import read_bundle
from medigan_zoo.catalog.foreign import assess

MAISI = "monai.apps.generation.maisi.networks."
#: maisi_ct_generative's configs/inference.json as published (Project-MONAI/model-zoo), its networks and sampler
MAISI_CONFIG: Dict[str, Any] = {
    "imports": ["$import torch", "$from pathlib import Path", "$import scripts"],
    "bundle_root": ".", "model_dir": "$@bundle_root + '/models'", "output_dir": "$@bundle_root + '/output'",
    "trained_autoencoder_path": "$@model_dir + '/autoencoder_epoch273.pt'",
    "trained_diffusion_path": "$@model_dir + '/diff_unet_ckpt_epoch19350.pt'",
    "trained_controlnet_path": "$@model_dir + '/controlnet_current.pt'",
    "num_output_samples": 1, "num_inference_steps": 30, "random_seed": 10, "spatial_dims": 3, "image_channels": 1,
    "latent_channels": 4, "output_size": [256, 256, 256],
    "latent_shape": ["@latent_channels", "$@output_size[0]//4", "$@output_size[1]//4", "$@output_size[2]//4"],
    "autoencoder_def": {"_target_": MAISI + "autoencoderkl_maisi.AutoencoderKlMaisi", "spatial_dims": "@spatial_dims",
                        "in_channels": "@image_channels", "out_channels": "@image_channels",
                        "latent_channels": "@latent_channels", "num_channels": [64, 128, 256]},
    "diffusion_unet_def": {"_target_": MAISI + "diffusion_model_unet_maisi.DiffusionModelUNetMaisi",
                           "spatial_dims": "@spatial_dims", "in_channels": "@latent_channels",
                           "out_channels": "@latent_channels", "use_flash_attention": True},
    "controlnet_def": {"_target_": MAISI + "controlnet_maisi.ControlNetMaisi", "spatial_dims": "@spatial_dims",
                       "in_channels": "@latent_channels", "use_flash_attention": True},
    "noise_scheduler": {"_target_": "scripts.rectified_flow.RFlowScheduler", "num_train_timesteps": 1000},
    "ldm_sampler": {"_target_": "scripts.sample.LDMSampler", "autoencoder": "@autoencoder_def",
                    "diffusion_unet": "@diffusion_unet_def", "controlnet": "@controlnet_def",
                    "noise_scheduler": "@noise_scheduler", "output_dir": "@output_dir"},
    "run": ["$monai.utils.set_determinism(seed=@random_seed)",
            "$@ldm_sampler.sample_multiple_images(@num_output_samples)"],
    "evaluator": None,
}

#: brats_mri_axial_slices_generative_diffusion's layout (AutoencoderKL, UNet, DDPM scheduler, latent noise,
#: each network's checkpoint id, run id `run` saving a tensor); variants below swap one piece
LDM: Dict[str, Any] = {
    "imports": ["$import torch"], "bundle_root": ".", "model_dir": "$@bundle_root + '/models'",
    "latent_shape": [1, 8, 8],
    "autoencoder_def": {"_target_": "monai.networks.nets.autoencoderkl.AutoencoderKL", "spatial_dims": 2,
                        "in_channels": 1, "out_channels": 1, "latent_channels": 1, "channels": [8, 8, 8]},
    "network_def": {"_target_": "monai.networks.nets.diffusion_model_unet.DiffusionModelUNet", "spatial_dims": 2,
                    "in_channels": 1, "out_channels": 1, "channels": [8, 16]},
    "load_autoencoder_path": "$@bundle_root + '/models/model_autoencoder.pt'",
    "load_diffusion_path": "$@model_dir + '/model.pt'",
    "noise_scheduler": {"_target_": "monai.networks.schedulers.ddpm.DDPMScheduler", "num_train_timesteps": 1000},
    "noise": "$torch.randn([1]+@latent_shape)",
    "inferer": {"_target_": "monai.inferers.LatentDiffusionInferer", "scheduler": "@noise_scheduler"},
    "sample": "$@inferer.sample(input_noise=@noise, autoencoder_model=@autoencoder_def, "
              "diffusion_model=@network_def, scheduler=@noise_scheduler)",
    "run": ["$torch.save(@sample, 'sample.pt')"],
}

#: MedNIST DDPM's layout (DiffusionInferer, scheduler, UNet, noise) with a run id that saves a tensor
DDPM: Dict[str, Any] = {
    "imports": ["$import torch"], "bundle_root": ".", "ckpt_path": "$@bundle_root + '/models/model.pt'",
    "network_def": {"_target_": "monai.networks.nets.DiffusionModelUNet", "spatial_dims": 2, "in_channels": 1,
                    "out_channels": 1, "channels": [8, 16]},
    "network": "$@network_def",
    "scheduler": {"_target_": "monai.networks.schedulers.PNDMScheduler", "num_train_timesteps": 1000},
    "inferer": {"_target_": "monai.inferers.DiffusionInferer", "scheduler": "@scheduler"},
    "noise": "$torch.rand(1, 1, 32, 32)",
    "testing": ["$torch.save(@inferer.sample(input_noise=@noise, diffusion_model=@network, "
                "scheduler=@scheduler), 'out.pt')"],
}


def _variant(base: Dict[str, Any], **changes: Any) -> Dict[str, Any]:
    config = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        elif isinstance(value, dict) and isinstance(config.get(key), dict) and "_target_" not in value:
            config[key].update(value)
        else:
            config[key] = value
    return config


def _no_flash(config: Dict[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(config)
    for value in out.values():
        if isinstance(value, dict) and "use_flash_attention" in value:
            value["use_flash_attention"] = False
    return out


CASES = {
    "maisi_ct_generative": (MAISI_CONFIG, "it needs CUDA-only pieces (use_flash_attention of `diffusion_unet_def`: "
                                          "DiffusionModelUNetMaisi, use_flash_attention of `controlnet_def`: "
                                          "ControlNetMaisi) the zoo's CPU path cannot build; it has no single "
                                          "generator network: it chains 3 (`autoencoder_def`, `diffusion_unet_def`, "
                                          "`controlnet_def`)"),
    "maisi_without_flash_attention": (_no_flash(MAISI_CONFIG), "it steers its diffusion network with a ControlNet "
                                                               "(`controlnet_def`: ControlNetMaisi)"),
    "controlnet_ldm": (_variant(LDM, controlnet_def={"_target_": "monai.networks.nets.ControlNet", "spatial_dims": 2,
                                                     "in_channels": 1, "channels": [8, 16]},
                                inferer={"_target_": "monai.inferers.ControlNetLatentDiffusionInferer",
                                         "scheduler": "@noise_scheduler"}),
                       "it steers its diffusion network with a ControlNet (`controlnet_def`: ControlNet)"),
    "vqvae_ldm": (_variant(LDM, autoencoder_def={"_target_": "monai.networks.nets.VQVAE", "spatial_dims": 2,
                                                 "in_channels": 1, "out_channels": 1, "channels": [8, 8]}),
                  "its autoencoder `autoencoder_def` is a VQVAE (a vector-quantised latent)"),
    "rflow_ldm": (_variant(LDM, noise_scheduler={"_target_": "monai.networks.schedulers.rectified_flow.RFlowScheduler",
                                                 "num_train_timesteps": 1000}),
                  "its latent diffusion scheduler `noise_scheduler` is one the zoo cannot seed per sample "
                  "(RFlowScheduler"),
    "generative_models_ldm": (_variant(LDM, autoencoder_def={"_target_": "generative.networks.nets.AutoencoderKL"},
                                       network_def={"_target_": "generative.networks.nets.DiffusionModelUNet"}),
                              "its config builds MONAI GenerativeModels classes (generative.networks.nets."
                              "AutoencoderKL and 1 more) and that package (`generative`) is not installed"),
    "pndm_ddpm": (DDPM, "its DiffusionInferer `inferer` uses a scheduler the zoo cannot seed per sample "
                        "(PNDMScheduler; it seeds DDPMScheduler, DDIMScheduler); its run id testing saves no image "
                        "through MONAI's SaveImage/SaveImaged, so the zoo cannot collect the output of its own "
                        "workflow either"),
}


def _metadata(shape):
    return {"version": "0.1.0", "task": "test", "network_data_format": {
        "inputs": {"latent": {"type": "noise", "num_channels": 1, "spatial_shape": shape}},
        "outputs": {"pred": {"type": "image", "num_channels": 1, "spatial_shape": shape, "value_range": [0, 1]}}}}


@pytest.fixture(scope="module")
def published_shapes(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("verdicts")
    for name, (config, _) in CASES.items():
        (where / name / "configs").mkdir(parents=True)
        (where / name / "configs" / "inference.json").write_text(json.dumps(config, indent=1))
        (where / name / "configs" / "metadata.json").write_text(json.dumps(_metadata([32, 32])))
    return where


@pytest.mark.parametrize("name", sorted(CASES))
def test_info_says_no_and_why(published_shapes, name):
    bundle = published_shapes / name
    verdict = assess(bundle)
    assert not verdict.runnable and CASES[name][1] in verdict.reason, verdict.reason
    assert verdict.line().startswith("runs with the zoo: no, because ") and "\n" not in verdict.line()
    info = read_bundle(bundle)
    assert info.runs == "no" and info.summary()["runnable"]["reason"] == verdict.reason


def test_validate_foreign_answers_each_in_one_line(published_shapes):
    names = sorted(CASES)
    out = run_cli("validate", "--foreign", *[published_shapes / n for n in names])
    assert out.returncode == 1, out.stdout + out.stderr  # none of them runs
    for name in names:
        lines = [line for line in out.stdout.splitlines() if line.startswith(f"{published_shapes / name}: FOREIGN")]
        assert len(lines) == 1 and "runs with the zoo: no, because " in lines[0], out.stdout
        assert CASES[name][1] in lines[0]
    assert f"{published_shapes / 'maisi_ct_generative'}: FOREIGN BUNDLE: runs with the zoo: no, because it needs " \
           "CUDA-only pieces" in out.stdout and "runs with monai.bundle: run id run" in out.stdout


def test_flash_attention_of_monai_core_networks_is_not_cuda_only(tmp_path):
    """brats_mri_generative_diffusion's layout (3D, latent [4, 48, 48, 32], autoencoder channels [64, 128, 256], a
    DiffusionModelUNet with use_flash_attention, MONAI-core classes): runnable once its weights are there (MONAI's
    core networks run flash attention on CPU); the decoded image is 128x192x192, one channel."""
    config = _variant(LDM, latent_shape=[4, 48, 48, 32],
                      autoencoder_def={"_target_": "monai.networks.nets.AutoencoderKL", "spatial_dims": 3,
                                       "latent_channels": 4, "channels": [64, 128, 256]},
                      network_def={"_target_": "monai.networks.nets.DiffusionModelUNet", "spatial_dims": 3,
                                   "in_channels": 4, "out_channels": 4, "use_flash_attention": True})
    bundle = tmp_path / "brats_mri_generative_diffusion"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    (bundle / "configs" / "metadata.json").write_text(json.dumps(_metadata([36, 44, 28])))
    verdict = assess(bundle)
    assert verdict.reason.startswith("its weights models/model_autoencoder.pt are absent; otherwise it is a latent "
                                     "diffusion model"), verdict.reason
    info = read_bundle(bundle)
    assert info.zoo["spatial_shape"] == [128, 192, 192] and info.zoo["num_channels"] == 1
