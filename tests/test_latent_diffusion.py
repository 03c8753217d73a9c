"""Latent diffusion bundles in the shapes of MONAI's published ones, on the zoo's fast path, checked against MONAI.

Two tiny bundles are written here with the ids and structure of Project-MONAI/model-zoo's
``brats_mri_axial_slices_generative_diffusion`` (2D: ``autoencoder_def``, ``network_def`` = the UNet,
``load_autoencoder_path``/``load_diffusion_path``, ``noise_scheduler``, ``latent_shape``, ``noise``, ``set_timesteps``,
``inferer``, run id ``run``; here the inferer is MONAI's ``LatentDiffusionInferer`` with a ``scale_factor``) and
``brain_image_synthesis_latent_diffusion_model`` (3D: ``network_def`` = ``@autoencoder_def``, ``diffusion_def`` = the
UNet taking latent + 4 condition channels and the conditions as cross-attention context, ``load_old``,
``gender``/``age``/``ventricular_vol``/``brain_vol`` stacked by ``conditioning``, and a ``sampler`` id that is a plain
class of the bundle's scripts). Sizes: 2D 32x32 from an 8x8 latent, 3D 16^3 from a 4^3 latent, 3 DDIM steps.
Weights are created from each config with a fixed seed; every parameter gets seeded noise so that the UNets'
zero-initialised output layers do not make the denoising trivial.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_cli import run_cli

from medigan_zoo import engine
from medigan_zoo.catalog.bundle_reader import read_bundle
from medigan_zoo.catalog.foreign import assess
from medigan_zoo.core.errors import BundleLoadError
from medigan_zoo.runtime.bundle import open_bundle

STEPS = 3

LDM_2D = {
    "imports": ["$import torch", "$from pathlib import Path"],
    "bundle_root": ".",
    "model_dir": "$@bundle_root + '/models'",
    "output_dir": "$@bundle_root + '/output'",
    "create_output_dir": "$Path(@output_dir).mkdir(exist_ok=True)",
    "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
    "spatial_dims": 2,
    "image_channels": 1,
    "latent_channels": 1,
    "latent_shape": ["@latent_channels", 8, 8],
    "autoencoder_def": {
        "_target_": "monai.networks.nets.autoencoderkl.AutoencoderKL", "spatial_dims": "@spatial_dims",
        "in_channels": "@image_channels", "out_channels": "@image_channels", "latent_channels": "@latent_channels",
        "channels": [8, 8, 8], "num_res_blocks": 1, "norm_num_groups": 4, "norm_eps": 1e-06,
        "attention_levels": [False, False, False], "with_encoder_nonlocal_attn": False,
        "with_decoder_nonlocal_attn": False, "include_fc": False},
    "network_def": {
        "_target_": "monai.networks.nets.diffusion_model_unet.DiffusionModelUNet", "spatial_dims": "@spatial_dims",
        "in_channels": "@latent_channels", "out_channels": "@latent_channels", "channels": [8, 16],
        "attention_levels": [False, True], "num_head_channels": [0, 8], "num_res_blocks": 1, "norm_num_groups": 8,
        "include_fc": False, "use_combined_linear": False},
    "load_autoencoder_path": "$@bundle_root + '/models/model_autoencoder.pt'",
    "load_autoencoder": "$@autoencoder_def.load_state_dict(torch.load(@load_autoencoder_path))",
    "autoencoder": "$@autoencoder_def.to(@device)",
    "load_diffusion_path": "$@model_dir + '/model.pt'",
    "load_diffusion": "$@network_def.load_state_dict(torch.load(@load_diffusion_path))",
    "diffusion": "$@network_def.to(@device)",
    "noise_scheduler": {
        "_target_": "monai.networks.schedulers.ddim.DDIMScheduler",
        "_requires_": ["@load_diffusion", "@load_autoencoder"], "num_train_timesteps": 1000, "beta_start": 0.0015,
        "beta_end": 0.0195, "schedule": "scaled_linear_beta", "clip_sample": False},
    "noise": "$torch.randn([1]+@latent_shape).to(@device)",
    "set_timesteps": f"$@noise_scheduler.set_timesteps(num_inference_steps={STEPS})",
    "scale_factor": 0.5,
    "inferer": {"_target_": "monai.inferers.LatentDiffusionInferer", "_requires_": "@set_timesteps",
                "scheduler": "@noise_scheduler", "scale_factor": "@scale_factor"},
    "sample": "$@inferer.sample(input_noise=@noise, autoencoder_model=@autoencoder, diffusion_model=@diffusion, "
              "scheduler=@noise_scheduler, verbose=False)",
    "run": ["$@create_output_dir", "$torch.save(@sample.cpu(), @output_dir + '/sample.pt')"],
}

LDM_3D = {
    "imports": ["$import torch", "$from pathlib import Path"],
    "bundle_root": ".",
    "inferer": "",
    "load_old": 1,
    "model_dir": "$@bundle_root + '/models'",
    "output_dir": "$@bundle_root + '/output'",
    "create_output_dir": "$Path(@output_dir).mkdir(exist_ok=True)",
    "gender": 0.0,
    "age": 0.1,
    "ventricular_vol": 0.2,
    "brain_vol": 0.4,
    "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
    "conditioning": "$torch.tensor([[@gender, @age, @ventricular_vol, @brain_vol]]).to(@device).unsqueeze(1)",
    "autoencoder_def": {
        "_target_": "monai.networks.nets.AutoencoderKL", "spatial_dims": 3, "in_channels": 1, "out_channels": 1,
        "latent_channels": 3, "channels": [8, 8, 8], "num_res_blocks": 1, "norm_num_groups": 4, "norm_eps": 1e-06,
        "attention_levels": [False, False, False], "with_encoder_nonlocal_attn": False,
        "with_decoder_nonlocal_attn": False},
    "network_def": "@autoencoder_def",
    "load_autoencoder_path": "$@model_dir + '/autoencoder.pt'",
    "load_autoencoder_func": "$@autoencoder_def.load_old_state_dict if bool(@load_old) else "
                             "@autoencoder_def.load_state_dict",
    "load_autoencoder": "$@load_autoencoder_func(torch.load(@load_autoencoder_path))",
    "autoencoder": "$@autoencoder_def.to(@device)",
    "diffusion_def": {
        "_target_": "monai.networks.nets.DiffusionModelUNet", "spatial_dims": 3, "in_channels": 7, "out_channels": 3,
        "channels": [8, 16], "num_res_blocks": 1, "attention_levels": [False, True], "norm_num_groups": 8,
        "norm_eps": 1e-06, "resblock_updown": True, "num_head_channels": [0, 16], "with_conditioning": True,
        "transformer_num_layers": 1, "cross_attention_dim": 4, "upcast_attention": True,
        "use_flash_attention": False},
    "load_diffusion_path": "$@model_dir + '/model.pt'",
    "load_diffusion_func": "$@diffusion_def.load_old_state_dict if bool(@load_old) else @diffusion_def.load_state_dict",
    "load_diffusion": "$@load_diffusion_func(torch.load(@load_diffusion_path))",
    "diffusion": "$@diffusion_def.to(@device)",
    "scheduler": {
        "_target_": "monai.networks.schedulers.DDIMScheduler", "_requires_": ["@load_diffusion", "@load_autoencoder"],
        "beta_start": 0.0015, "beta_end": 0.0205, "num_train_timesteps": 1000, "schedule": "scaled_linear_beta",
        "clip_sample": False},
    "noise": "$torch.randn((1, 3, 4, 4, 4)).to(@device)",
    "set_timesteps": f"$@scheduler.set_timesteps(num_inference_steps={STEPS})",
    "sampler": {"_target_": "scripts.sampler.Sampler", "_requires_": "@set_timesteps"},
    "sample": "$@sampler.sampling_fn(@noise, @autoencoder, @diffusion, @scheduler, @conditioning)",
    "run": ["$@create_output_dir", "$torch.save(@sample.cpu(), @output_dir + '/sample.pt')"],
}

#: the 3D bundle's own sampler (a plain class, as the published bundle's scripts/sampler.py): concatenates the
#: conditions to the latent as channels and gives them as context, then decodes as is
SAMPLER_3D = '''import torch


class Sampler:
    @torch.no_grad()
    def sampling_fn(self, input_noise, autoencoder_model, diffusion_model, scheduler, conditioning):
        latent = input_noise
        channels = conditioning.reshape(conditioning.shape[0], -1, 1, 1, 1).expand(-1, -1, *input_noise.shape[2:])
        for t in scheduler.timesteps:
            out = diffusion_model(torch.cat((latent, channels), dim=1), timesteps=torch.Tensor((t,)).long(),
                                  context=conditioning)
            latent, _ = scheduler.step(out, t, latent)
        return autoencoder_model.decode_stage_2_outputs(latent)
'''


def _metadata(name: str, latent: list, image_channels: int, inputs: dict) -> dict:
    """MONAI-style metadata whose output description gives the *latent* shape (the zoo must not take it)."""
    return {"version": "0.1.0", "monai_version": "1.6.1", "name": name, "task": f"{name} synthesis",
            "description": "A latent diffusion model for brain MRI synthesis (test bundle)",
            "eval_metrics": {"fid": 0.0076},
            "network_data_format": {"inputs": inputs, "outputs": {"pred": {
                "type": "image", "format": "image", "num_channels": image_channels, "spatial_shape": latent,
                "dtype": "float32", "value_range": [0, 1], "modality": "MR", "is_patch_data": False}}}}


def _write_bundle(root: Path, name: str, config: dict, metadata: dict, weights: dict) -> Path:
    """A bundle folder with its config, metadata and weights created from the config (seed 0, perturbed)."""
    from monai.bundle import ConfigParser

    bundle = root / name
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    (bundle / "configs" / "inference.json").write_text(json.dumps(config, indent=1))
    (bundle / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=1))
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    torch.manual_seed(0)
    for net_id, file in weights.items():
        net = parser.get_parsed_content(net_id)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        state = net.state_dict()
        if config.get("load_old"):  # MONAI GenerativeModels' layout, which the config loads with load_old_state_dict
            state = {k.replace("postconv", "conv"): v for k, v in state.items()}
        torch.save(state, bundle / "models" / file)
    return bundle


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """One torch thread for this module (conftest.one_thread)."""


@pytest.fixture(scope="module")
def ldm_2d(tmp_path_factory) -> Path:
    meta = _metadata("tiny_brats_axial_ldm", [1, 8, 8], 1, {"image": {
        "type": "noise", "format": "image", "num_channels": 1, "spatial_shape": [8, 8], "dtype": "float32",
        "value_range": [0, 1], "is_patch_data": False}})
    return _write_bundle(tmp_path_factory.mktemp("ldm"), "tiny_brats_axial_ldm", LDM_2D, meta,
                         {"autoencoder_def": "model_autoencoder.pt", "network_def": "model.pt"})


@pytest.fixture(scope="module")
def ldm_3d(tmp_path_factory) -> Path:
    meta = _metadata("tiny_brain_ldm", [4, 4, 4], 1, {"image": {
        "type": "tabular", "num_channels": 1, "dtype": "float32", "value_range": [0, 1], "format": "nii",
        "spatial_shape": [16, 16, 16], "is_patch_data": False,
        "channel_def": {"0": "Gender", "1": "Age", "2": "Ventricular volume", "3": "Brain volume"}}})
    root = tmp_path_factory.mktemp("ldm3")
    (root / "tiny_brain_ldm" / "scripts").mkdir(parents=True)
    (root / "tiny_brain_ldm" / "scripts" / "__init__.py").write_text("")
    (root / "tiny_brain_ldm" / "scripts" / "sampler.py").write_text(SAMPLER_3D)
    return _write_bundle(root, "tiny_brain_ldm", LDM_3D, meta,
                         {"autoencoder_def": "autoencoder.pt", "diffusion_def": "model.pt"})


def _sampler(bundle: Path):
    from dataclasses import replace

    return replace(open_bundle(bundle, device="cpu", trusted=[bundle]).sampler(), min_batch=1)


# --- verdict and honest metadata ---------------------------------------------------------------------

def test_2d_verdict_and_decoded_metadata(ldm_2d):
    verdict = assess(ldm_2d)
    assert verdict.runnable and verdict.family == "latent_diffusion", verdict.reason
    assert verdict.ids["autoencoder_def"] == "autoencoder_def" and verdict.ids["diffusion_def"] == "network_def"
    assert verdict.run_id == "run"
    zoo = read_bundle(ldm_2d).zoo
    assert zoo["spatial_shape"] == [32, 32] and zoo["num_channels"] == 1  # decoded, not the 8x8 latent
    assert zoo["options"]["num_inference_steps"]["default"] == STEPS
    assert zoo["architecture"] == "latent diffusion model" and zoo["condition"] == {}


def test_3d_verdict_conditions_and_metadata(ldm_3d):
    verdict = assess(ldm_3d)
    assert verdict.runnable and verdict.family == "latent_diffusion", verdict.reason
    assert verdict.ids["diffusion_def"] == "diffusion_def"  # not network_def (= the autoencoder)
    assert "conditioned on gender, age, ventricular_vol, brain_vol" in verdict.reason
    info = read_bundle(ldm_3d)
    assert info.zoo["spatial_shape"] == [16, 16, 16] and info.zoo["num_channels"] == 1
    assert [(c.name, c.type, c.default) for c in info.conditions] == [
        ("gender", "continuous", 0.0), ("age", "continuous", 0.1), ("ventricular_vol", "continuous", 0.2),
        ("brain_vol", "continuous", 0.4)]
    assert info.conditions[1].description.startswith("Age: a number in [0, 1]")
    assert (info.conditions[1].minimum, info.conditions[1].maximum) == (0.0, 1.0)
    assert info.zoo["metrics"][0]["name"] == "fid"
    # its `sampler` id is a plain class of its scripts, not the zoo's contract: the bundle stays foreign
    assert open_bundle(ldm_3d, device="cpu").foreign


def test_missing_autoencoder_weights_say_which(ldm_2d, tmp_path):
    import shutil

    bundle = Path(shutil.copytree(ldm_2d, tmp_path / "no_ae"))
    (bundle / "models" / "model_autoencoder.pt").unlink()
    verdict = assess(bundle)
    assert not verdict.runnable and verdict.reason.startswith("its weights models/model_autoencoder.pt are absent")
    with pytest.raises(BundleLoadError, match=r"model_autoencoder\.pt not found") as err:
        open_bundle(bundle, device="cpu", trusted=[bundle]).sampler()
    assert "\n" not in str(err.value)


def test_maisi_shaped_config_says_why_not(tmp_path):
    """A config in MAISI's shape (its networks use flash attention and TensorRT, CUDA-only): no, in one line."""
    bundle = tmp_path / "maisi_like"
    (bundle / "configs").mkdir(parents=True)
    maisi = "monai.apps.generation.maisi.networks."
    config = {"autoencoder_def": {"_target_": maisi + "autoencoderkl_maisi.AutoencoderKlMaisi", "spatial_dims": 3},
              "diffusion_unet_def": {"_target_": maisi + "diffusion_model_unet_maisi.DiffusionModelUNetMaisi",
                                     "spatial_dims": 3,
                                     "use_flash_attention": True},
              "noise_scheduler": {"_target_": "monai.networks.schedulers.rectified_flow.RFlowScheduler"},
              "trt_compile": False, "run": ["$@ldm_sampler.sample_multiple_images(1)"]}
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    (bundle / "configs" / "metadata.json").write_text(json.dumps(_metadata("maisi_like", [64, 64, 64], 1, {})))
    (bundle / "large_files.yml").write_text("large_files: []\n")
    verdict = assess(bundle)
    assert not verdict.runnable and verdict.family == "latent_diffusion"
    assert "CUDA-only pieces (use_flash_attention" in verdict.reason and "\n" not in verdict.line()
    assert verdict.line().startswith("runs with the zoo: no, because it needs CUDA-only pieces")


# --- checked against MONAI ---------------------------------------------------------------------------

def test_2d_matches_monai_bundle_run(ldm_2d, tmp_path):
    """The zoo's sample for seed s == `monai.bundle run run` (MONAI's LatentDiffusionInferer.sample, scale factor
    included) from the same latent noise, pixel-close."""
    from monai.bundle import run

    seed = 7
    ours = _sampler(ldm_2d)([seed])["image"][0, 0]  # display order (rows, columns)
    assert ours.shape == (32, 32)
    run(run_id="run", config_file=str(ldm_2d / "configs" / "inference.json"),
        meta_file=str(ldm_2d / "configs" / "metadata.json"), logging_file=False, bundle_root=str(ldm_2d),
        output_dir=str(tmp_path), noise=f"$[torch.manual_seed({seed}), torch.randn([1]+@latent_shape)][1]")
    theirs = torch.load(tmp_path / "sample.pt")[0, 0]  # MONAI's (x, y)
    assert theirs.std() > 0.01  # a real image, not a constant
    expected = theirs.T  # MONAI's (x, y) -> display (rows, columns)
    assert torch.allclose(ours, expected, atol=1e-4), (ours - expected).abs().max()


def test_3d_matches_the_bundles_own_sampler_and_monai_inferer(ldm_3d):
    """Conditioned 3D: the zoo's sample == the bundle's own `sample` (its scripts' Sampler) and == MONAI's
    LatentDiffusionInferer.sample (crossattn, the condition channels concatenated as the bundle does), same noise."""
    from monai.bundle import ConfigParser
    from monai.inferers import LatentDiffusionInferer

    seed, cond = 5, {"gender": 1.0, "age": 0.5, "ventricular_vol": 0.3, "brain_vol": 0.7}
    ours = _sampler(ldm_3d)([seed], {k: torch.tensor([v]) for k, v in cond.items()})["image"][0, 0]
    assert ours.shape == (16, 16, 16)
    parser = ConfigParser()
    parser.read_config(str(ldm_3d / "configs" / "inference.json"))
    parser.update({"bundle_root": str(ldm_3d), "device": "$torch.device('cpu')", **cond,
                   "noise": f"$[torch.manual_seed({seed}), torch.randn((1, 3, 4, 4, 4))][1]"})
    import sys
    for key in [k for k in sys.modules if k.split(".")[0] == "scripts"]:  # another bundle's scripts, as a fresh
        del sys.modules[key]                                               # `monai.bundle run` process has none
    sys.path.insert(0, str(ldm_3d))
    try:
        theirs = parser.get_parsed_content("sample")[0, 0]
    finally:
        sys.path.remove(str(ldm_3d))
        sys.modules.pop("scripts.sampler", None)
        sys.modules.pop("scripts", None)
    expected = theirs.permute(2, 1, 0)  # MONAI's (x, y, z) -> display (D, H, W)
    assert theirs.std() > 0.01
    assert torch.allclose(ours, expected, atol=1e-4), (ours - expected).abs().max()

    unet, autoencoder = parser.get_parsed_content("diffusion"), parser.get_parsed_content("autoencoder")
    context = parser.get_parsed_content("conditioning")
    channels = context.reshape(1, 4, 1, 1, 1).expand(-1, -1, 4, 4, 4)

    class Concat(torch.nn.Module):
        def forward(self, x, timesteps, context=None):
            return unet(torch.cat((x, channels), dim=1), timesteps=timesteps, context=context)

    scheduler = parser.get_parsed_content("scheduler")
    scheduler.set_timesteps(STEPS)
    noise = torch.randn((1, 3, 4, 4, 4), generator=torch.Generator().manual_seed(seed))
    monai = LatentDiffusionInferer(scheduler, scale_factor=1.0).sample(
        noise, autoencoder, Concat(), scheduler, conditioning=context, mode="crossattn", verbose=False)[0, 0]
    assert torch.allclose(ours, monai.permute(2, 1, 0), atol=1e-4)


def test_conditions_change_the_sample_and_are_per_sample(ldm_3d):
    sampler = _sampler(ldm_3d)
    a = {"gender": torch.tensor([0.0, 1.0]), "age": torch.tensor([0.1, 0.9]),
         "ventricular_vol": torch.tensor([0.2, 0.2]), "brain_vol": torch.tensor([0.4, 0.4])}
    both = sampler([3, 3], a)["image"]
    alone = sampler([3], {k: v[1:] for k, v in a.items()})["image"]
    assert torch.allclose(both[1], alone[0], atol=1e-5) and not torch.allclose(both[0], both[1])


# --- generate, dataset, info, validate ---------------------------------------------------------------

def test_generate_and_dataset_for_3d_ldm(ldm_3d, tmp_path):
    result = engine.generate(ldm_3d, 2, tmp_path / "out", seed=3, conditions={"gender": 1, "age": 0.5},
                             num_workers=0, quiet=True, device="cpu", trusted=[ldm_3d], output_format="npy")
    files = sorted((tmp_path / "out").rglob("*.npy"))
    assert len(files) == 2, result
    import numpy as np

    first = np.load(files[0])
    dataset = engine.SyntheticDataset(ldm_3d, 2, seed=3, conditions={"gender": 1, "age": 0.5}, device="cpu",
                                      trusted=[ldm_3d])
    item = dataset[0]
    image = item["image"] if isinstance(item, dict) else item
    assert np.allclose(np.asarray(image).reshape(first.shape), first, atol=1e-5)


def test_cli_info_validate_generate_2d_and_3d(ldm_2d, ldm_3d, tmp_path):
    out = run_cli("--bundle_dirs", f"{ldm_2d},{ldm_3d}", "info", "tiny_brain_ldm")
    assert out.returncode == 0, out.stderr
    assert '"runnable": true' in out.stdout and '"family": "latent_diffusion"' in out.stdout
    for bundle in (ldm_2d, ldm_3d):
        out = run_cli("validate", "--foreign", bundle)
        assert out.returncode == 0 and "runs with the zoo: yes, because it is a latent diffusion model" in out.stdout
    out = run_cli("--bundle_dirs", ldm_3d, "--trust", ldm_3d, "generate", "tiny_brain_ldm", "--num_samples", "1",
                  "--gender", "1", "--age", "0.5", "--num_inference_steps", "2", "--output_path", tmp_path / "g",
                  "--output_format", "npy", "--quiet")
    assert out.returncode == 0, out.stderr
    assert len(list((tmp_path / "g").rglob("*.npy"))) == 1


def test_old_layout_checkpoints_load_only_where_the_config_says_so(ldm_3d):
    """The 3D bundle's autoencoder checkpoint is in GenerativeModels' layout (its config loads it with
    load_old_state_dict, as the published bundle does): a plain load is one line naming that cause; the zoo converts
    it because the config says so (the pixel checks above use it)."""
    from monai.bundle import ConfigParser

    from medigan_zoo.runtime.weights import fit_weights, load_weights

    parser = ConfigParser()
    parser.read_config(str(ldm_3d / "configs" / "inference.json"))
    state = load_weights(ldm_3d / "models" / "autoencoder.pt")
    with pytest.raises(BundleLoadError, match="load_old_state_dict") as err:
        fit_weights(parser.get_parsed_content("autoencoder_def"), state, "autoencoder.pt")
    assert "\n" not in str(err.value)
    fit_weights(parser.get_parsed_content("autoencoder_def"), state, "autoencoder.pt", old_layout=True)
    assert open_bundle(ldm_3d, device="cpu")._loads_old_layout("autoencoder_def")
    unrelated = {k: v for k, v in list(state.items())[:-1]}
    with pytest.raises(BundleLoadError, match="not even with its load_old_state_dict"):
        fit_weights(parser.get_parsed_content("autoencoder_def"), unrelated, "autoencoder.pt", old_layout=True)


def test_conditions_out_of_range_are_one_line(ldm_3d, tmp_path):
    out = run_cli("--bundle_dirs", ldm_3d, "--trust", ldm_3d, "generate", "tiny_brain_ldm", "--num_samples", "1",
                  "--age", "1.5", "--output_path", tmp_path / "bad", "--quiet")
    assert out.returncode == 2 and "age" in out.stderr and "from 0.0 to 1.0, got 1.5" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_get_as_torch_dataset_takes_the_conditions(ldm_3d):
    from medigan_zoo import Generators

    generators = Generators(bundle_dirs=[str(ldm_3d)], trust_bundles=[str(ldm_3d)])
    dataset = generators.get_as_torch_dataset("tiny_brain_ldm", num_samples=2, gender=1, age=0.5,
                                              num_inference_steps=2)
    item = dataset[1]
    assert item["image"].shape == (1, 16, 16, 16)
    assert (item["gender"], item["age"], item["brain_vol"]) == (1.0, 0.5, 0.4)


@pytest.mark.parametrize("inferer_scale, expected", [(0.25, 0.25), (None, 1.0)])
def test_scale_factor_from_the_inferer_else_one(ldm_2d, tmp_path, inferer_scale, expected):
    """Without a `scale_factor` id: the LatentDiffusionInferer's own scale_factor, else 1.0 (the published samplers
    decode the latent as is)."""
    import shutil

    bundle = Path(shutil.copytree(ldm_2d, tmp_path / "scaled"))
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    del config["scale_factor"]
    if inferer_scale is None:
        config["inferer"] = {"_target_": "monai.inferers.DiffusionInferer", "scheduler": "@noise_scheduler"}
    else:
        config["inferer"]["scale_factor"] = inferer_scale
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    assert assess(bundle).runnable
    module = open_bundle(bundle, device="cpu", trusted=[bundle]).sampler().module
    assert module.scale_factor == expected


# --- a mapping file for a latent diffusion bundle with other ids ---------------------------------------

#: the 2D bundle's latent-diffusion ids -> the names of a bundle that calls them otherwise
LDM_RENAMES = {"autoencoder_def": "vae_def", "network_def": "unet_def", "load_autoencoder_path": "vae_ckpt",
               "load_diffusion_path": "unet_ckpt", "latent_shape": "z_shape", "noise": "z",
               "scale_factor": "vae_scale", "noise_scheduler": "sched"}


def _renamed_ldm(ldm_2d: Path, where: Path) -> Path:
    """The 2D bundle with every latent-diffusion id renamed (LDM_RENAMES) and its weights under weights/."""
    import shutil

    bundle = Path(shutil.copytree(ldm_2d, where / "renamed_ldm"))
    path = bundle / "configs" / "inference.json"
    text = path.read_text()
    for old, new in LDM_RENAMES.items():
        text = text.replace(f'"{old}"', f'"{new}"').replace(f"@{old}", f"@{new}")
    text = text.replace("/models/model_autoencoder.pt", "/weights/vae.pt").replace("'/model.pt'", "'/unet.pt'")
    text = text.replace("$@model_dir + '/unet.pt'", "$@bundle_root + '/weights/unet.pt'")
    path.write_text(text)
    (bundle / "weights").mkdir()
    (bundle / "models" / "model_autoencoder.pt").rename(bundle / "weights" / "vae.pt")
    (bundle / "models" / "model.pt").rename(bundle / "weights" / "unet.pt")
    return bundle


def test_mapping_file_renames_latent_diffusion_ids(ldm_2d, tmp_path):
    bundle = _renamed_ldm(ldm_2d, tmp_path)
    verdict = assess(bundle)
    assert not verdict.runnable and "it has no noise, autoencoder_ckpt, diffusion_ckpt id" in verdict.reason
    mapping = {"description": "the 2D LDM with its own names",
               "ids": {"autoencoder_def": "vae_def", "diffusion_def": "unet_def", "load_autoencoder_path": "vae_ckpt",
                       "load_diffusion_path": "unet_ckpt", "latent_shape": "z_shape", "noise": "z",
                       "scale_factor": "vae_scale", "scheduler": "sched"}}
    (bundle / "medigan_zoo.json").write_text(json.dumps(mapping))
    verdict = assess(bundle)
    assert verdict.runnable, verdict.reason
    assert {verdict.ids[k] for k in ("autoencoder_def", "diffusion_def", "autoencoder_ckpt", "diffusion_ckpt",
                                     "noise", "scale_factor", "latent_shape", "scheduler")} == \
        {"vae_def", "unet_def", "vae_ckpt", "unet_ckpt", "z", "vae_scale", "z_shape", "sched"}
    info = read_bundle(bundle)
    assert info.zoo["spatial_shape"] == [32, 32] and info.zoo["options"]["num_inference_steps"]["default"] == STEPS
    original = _sampler(ldm_2d)([4, 9])["image"]
    renamed = _sampler(bundle)([4, 9])["image"]
    assert torch.equal(original, renamed)  # same networks, weights, scale factor and steps under other names
