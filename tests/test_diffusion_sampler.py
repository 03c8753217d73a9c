"""The diffusion pieces behind v-prediction, trailing DDIM steps and classifier-free guidance (seconds).

The conversion and timestep tests use MONAI's own schedulers; the guidance test samples the shipped
``chest_xray_ddpm`` weights with 3 steps through the engine's ``load_bundle_sampler`` (what ``generate`` uses).
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from conftest import REPO  # noqa: E402
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler  # noqa: E402

from medigan_zoo.samplers.diffusion import DiffusionSampler, predicted_x0_eps  # noqa: E402
from medigan_zoo.training.diffusion import ClassDiffusionPrepareBatch  # noqa: E402

BUNDLE = REPO / "bundles" / "chest_xray_ddpm"


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_training_target_and_sampler_conversion_agree(prediction_type):
    """The target the recipe trains on, read back by the sampler, gives the clean image and the noise again."""
    sched = DDPMScheduler(1000, schedule="linear_beta", prediction_type=prediction_type)
    prep = ClassDiffusionPrepareBatch(1000, "class_label", null_class=2, drop_prob=0.0, scheduler=sched)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1
    noise = torch.randn(4, 1, 8, 8, generator=g)
    t = torch.tensor([0, 10, 500, 999])
    target = prep.get_target(x0, noise, t)
    expected = sched.get_velocity(x0, noise, t) if prediction_type == "v_prediction" else noise
    assert torch.allclose(target, expected)
    noisy = sched.add_noise(x0, noise, t)
    alpha = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    x0_back, eps_back = predicted_x0_eps(target, noisy, alpha, prediction_type)
    assert torch.allclose(x0_back, x0, atol=1e-3) and torch.allclose(eps_back, noise, atol=2e-2)


def test_unsupported_prediction_type_is_refused():
    with pytest.raises(ValueError, match="prediction_type"):
        ClassDiffusionPrepareBatch(1000, scheduler=DDPMScheduler(1000, prediction_type="sample"))


@pytest.mark.parametrize("steps", [1, 3, 5, 10, 25, 50])
def test_trailing_timesteps_land_where_the_step_goes(steps):
    """Trailing spacing starts at t = T - 1 and each DDIM step (jump T // steps) lands on the next timestep."""
    sampler = DiffusionSampler(torch.nn.Identity(), DDIMScheduler(1000), num_inference_steps=steps,
                               condition_names=(), timestep_spacing="trailing")
    ts = sampler._timesteps().tolist()
    assert ts[0] == 999 and len(ts) == steps
    jump = 1000 // steps
    assert all(a - jump == b for a, b in zip(ts, ts[1:]))
    assert ts[-1] - jump < jump  # the last step ends at (or next to) the clean image


def _bundle_samples(guidance_scale: float):
    from medigan_zoo.runtime.bundle import load_bundle_sampler

    sampler = load_bundle_sampler(BUNDLE, device="cpu",
                                  options={"num_inference_steps": 3, "guidance_scale": guidance_scale})
    labels = torch.tensor([0, 0, 1, 1])
    return sampler([0, 1, 2, 3], {"class_label": labels})["image"]


def test_few_step_guided_sample_differs_from_unguided():
    torch.set_num_threads(1)
    plain, guided = _bundle_samples(1.0), _bundle_samples(3.0)
    for out in (plain, guided):
        assert out.shape == (4, 1, 28, 28) and torch.isfinite(out).all()
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    diff = (plain - guided).abs()
    assert float(diff.mean()) > 1e-3, "guidance scale 3 gave the same samples as no guidance"
    again = _bundle_samples(3.0)
    assert torch.allclose(again, guided), "same seeds and options must give the same samples"
