"""Bundles breast_ultrasound_wgangp, adrenal_ct_3dgan and chest_xray_ddpm: sampling contract, exports, workflows.

Each bundle is checked through its own configs (monai.bundle), as a user runs it: seeded 2-sample generation
with the declared shape/dtype/range, reproducibility, batch-size independence, TorchScript == state dict,
``monai.bundle run inferring`` writing files, and one training iteration of ``train.json`` on a tiny subset
of the real data (skipped when ../shared/data is absent). Diffusion sampling uses few DDIM steps to stay fast.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from conftest import BUNDLES, DATA_DIR, REPO  # noqa: E402

from medigan_zoo.seeding import sample_seeds  # noqa: E402

#: bundle -> (training data file, extra inferring overrides that keep the test fast)
EXTRA = {
    "breast_ultrasound_wgangp": ("breastmnist.npz", {}),
    "adrenal_ct_3dgan": ("adrenalmnist3d.npz", {"class_label": 1}),
    "chest_xray_ddpm": ("pneumoniamnist.npz", {"num_inference_steps": 3, "class_label": 1}),
}
FAST_STEPS = {"num_inference_steps": 3}  # ignored by bundles without the id
NAMES = sorted(EXTRA)


def _present(name: str) -> Path:
    bundle = BUNDLES / name
    if not (bundle / "models" / "model.pt").is_file():
        pytest.skip(f"{name} has no models/model.pt yet")
    return bundle


def _meta(bundle: Path) -> dict:
    _present(bundle.name)
    return json.loads((bundle / "configs" / "metadata.json").read_text())


def _parser(bundle: Path, **overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.read_meta(str(bundle / "configs" / "metadata.json"))
    parser["bundle_root"] = str(bundle)
    parser["device"] = "$torch.device('cpu')"
    for key, value in overrides.items():
        if key in parser:
            parser[key] = value
    return parser


_SAMPLERS: dict = {}


def _sampler(name: str):
    """(sampler, network) of a bundle with the shipped weights, parsed once per session."""
    if name not in _SAMPLERS:
        bundle = _present(name)
        parser = _parser(bundle, **FAST_STEPS)
        network = parser.get_parsed_content("network")
        network.load_state_dict(torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True))
        sampler = parser.get_parsed_content("sampler").eval()
        _SAMPLERS[name] = (sampler, network.eval())
    return _SAMPLERS[name]


def _conditions(name: str, n: int, value: int = 1) -> dict:
    zoo = _meta(BUNDLES / name)["medigan_zoo"]
    return {key: torch.full((n,), value, dtype=torch.long) for key in zoo.get("condition") or {}}


def _generate(name: str, seeds, value: int = 1) -> torch.Tensor:
    sampler, _ = _sampler(name)
    torch.manual_seed(123)  # the global RNG must not matter: every draw comes from the per-sample seeds
    with torch.no_grad():
        return sampler(torch.as_tensor(seeds, dtype=torch.long), **_conditions(name, len(seeds), value))


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.mark.parametrize("name", NAMES)
def test_model_pt_is_a_plain_state_dict(name):
    bundle = _present(name)
    state = torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())


@pytest.mark.parametrize("name", NAMES)
def test_two_samples_have_declared_shape_dtype_and_range(name):
    pred = _meta(BUNDLES / name)["network_data_format"]["outputs"]["pred"]
    out = _generate(name, sample_seeds(0, 0, 2))
    assert out.shape == (2, pred["num_channels"], *pred["spatial_shape"])
    assert out.dtype == torch.float32
    low, high = pred["value_range"]
    assert float(out.min()) >= low and float(out.max()) <= high
    assert torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1]), "two seeds gave the same sample"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name):
    seeds = sample_seeds(7, 0, 2)
    assert torch.equal(_generate(name, seeds), _generate(name, seeds))


@pytest.mark.parametrize("name", NAMES)
def test_sample_does_not_depend_on_batch_size(name):
    seeds = sample_seeds(0, 0, 2)
    pair = _generate(name, seeds)
    single = _generate(name, seeds[1:])
    # batched convolutions may round differently in the last float bits; the random draws are identical
    torch.testing.assert_close(single[0], pair[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["adrenal_ct_3dgan", "chest_xray_ddpm"])
def test_condition_changes_the_sample(name):
    assert _meta(BUNDLES / name)["medigan_zoo"]["condition"], f"{name} should be class-conditional"
    seeds = sample_seeds(0, 0, 2)
    assert (_generate(name, seeds, 0) - _generate(name, seeds, 1)).abs().max() > 0.05


@pytest.mark.parametrize("name", NAMES)
def test_torchscript_matches_state_dict(name):
    bundle = _present(name)
    ts_path = bundle / "models" / "model.ts"
    if not ts_path.is_file():
        pytest.fail(f"{ts_path} is missing (scripts/export_torchscript.py {bundle.relative_to(REPO)})")
    scripted = torch.jit.load(str(ts_path), map_location="cpu")
    _, network = _sampler(name)
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1])
    with torch.no_grad():
        if type(network).__name__ == "DiffusionModelUNet":
            zoo = _meta(bundle)["medigan_zoo"]
            x = torch.randn((2, zoo["num_channels"], *zoo["spatial_shape"]), generator=gen)
            t = torch.tensor([5, 800])
            expected, got = network(x, t, class_labels=labels), scripted(x, t, labels)
        else:
            z = torch.randn(2, network.latent_size, generator=gen)
            args = (z, labels) if network.num_classes else (z,)
            expected, got = network(*args), scripted(*args)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def _run_bundle(bundle: Path, workflow: str, config: str, *args: str, timeout: int = 240):
    cmd = [sys.executable, "-m", "monai.bundle", "run", workflow, "--config_file", f"{bundle}/configs/{config}",
           "--meta_file", f"{bundle}/configs/metadata.json", "--logging_file", f"{bundle}/configs/logging.conf",
           "--bundle_root", str(bundle), *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.parametrize("name", NAMES)
def test_monai_bundle_run_inferring_writes_files(name, tmp_path):
    bundle = _present(name)
    overrides = [f"--{k}={v}" for k, v in EXTRA[name][1].items()]
    _run_bundle(bundle, "inferring", "inference.json", "--num_samples", "2", "--output_dir", str(tmp_path),
                "--device", "$torch.device('cpu')", *overrides)
    ext = _parser(bundle).get_parsed_content("output_ext")
    files = sorted(p for p in tmp_path.iterdir() if p.name.endswith(ext))
    assert len(files) == 2, sorted(p.name for p in tmp_path.iterdir())
    shape = tuple(_meta(bundle)["network_data_format"]["outputs"]["pred"]["spatial_shape"])
    if ext == ".nii.gz":
        import nibabel as nib

        image = nib.load(str(files[0]))
        assert image.shape == shape and image.header.get_zooms()[:3] == (1.0, 1.0, 1.0)
    else:
        from PIL import Image

        assert Image.open(files[0]).size == shape[::-1]


@pytest.mark.parametrize("name", NAMES)
def test_train_json_runs_one_iteration(name, tmp_path):
    bundle = _present(name)
    data = DATA_DIR / EXTRA[name][0]
    if not data.is_file():
        pytest.skip(f"training data {data} not found (../shared/data is absent on this machine)")
    _run_bundle(bundle, "training", "train.json", "--data_path", str(data), "--num_train", "32",
                "--batch_size", "4", "--epoch_length", "1", "--max_epochs", "1", "--num_threads", "1",
                "--output_dir", str(tmp_path), "--device", "$torch.device('cpu')")
    weights = tmp_path / "model.pt"
    assert weights.is_file() and (tmp_path / "checkpoint_final.pt").is_file()
    network = _parser(bundle).get_parsed_content("network_def")
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
