"""The zoo's trained 2D conditional GAN bundles (chest_xray_cdcgan, retina_fundus_cdcgan, brain_mri_cdcgan).

For every bundle that ships weights: the sampler's shape / dtype / range, seed reproducibility, the effect of the
condition, TorchScript parity, ``weights_only`` loading, ``monai.bundle run inferring`` in a subprocess, and one
training iteration of ``train.json`` on a tiny subset of the real data (skipped when the data is absent).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = ROOT / "bundles"
DATA_DIR = Path(os.environ.get("MEDIGAN_ZOO_DATA", ROOT.parent / "shared" / "data"))
NAMES = ["chest_xray_cdcgan", "retina_fundus_cdcgan", "brain_mri_cdcgan"]
DATA_FILES = {"chest_xray_cdcgan": "pneumoniamnist.npz", "retina_fundus_cdcgan": "retinamnist.npz",
              "brain_mri_cdcgan": "brain_mri_pgbm_128.npz"}


def _bundle(name: str) -> Path:
    path = BUNDLES / name
    if not (path / "models" / "model.pt").is_file():
        pytest.skip(f"{name}: bundle or its models/model.pt is not there yet (not trained)")
    return path


class Loaded:
    """A bundle's metadata, state-dict generator and sampler on CPU."""

    def __init__(self, path: Path):
        from monai.bundle import ConfigParser

        self.path = path
        self.meta = json.loads((path / "configs" / "metadata.json").read_text())
        self.zoo = self.meta["medigan_zoo"]
        parser = ConfigParser()
        parser.read_config(str(path / "configs" / "inference.json"))
        parser["bundle_root"] = str(path)
        parser["device"] = "$torch.device('cpu')"
        self.parser = parser
        self.network = parser.get_parsed_content("network")
        state = torch.load(path / "models" / "model.pt", map_location="cpu", weights_only=True)
        self.network.load_state_dict(state)
        self.network.eval()
        self.sampler = parser.get_parsed_content("sampler").eval()
        (self.cond_name, spec), = self.zoo["condition"].items()
        self.cond_values = sorted(int(v) for v in spec["values"])
        self.latent_size = int(parser.get_parsed_content("latent_size"))

    def generate(self, seeds, label: int) -> torch.Tensor:
        seeds = torch.as_tensor(seeds, dtype=torch.long)
        with torch.no_grad():
            return self.sampler(seeds, **{self.cond_name: torch.full((len(seeds),), label, dtype=torch.long)})


_CACHE: dict = {}


@pytest.fixture(params=NAMES)
def loaded(request) -> Loaded:
    name = request.param
    if name not in _CACHE:
        _CACHE[name] = Loaded(_bundle(name))
    return _CACHE[name]


def test_sampler_shape_dtype_range(loaded):
    from medigan_zoo.seeding import sample_seeds

    out = loaded.generate(sample_seeds(0, 0, 2), loaded.cond_values[-1])
    pred = loaded.meta["network_data_format"]["outputs"]["pred"]
    assert tuple(out.shape) == (2, pred["num_channels"], *pred["spatial_shape"])
    assert tuple(pred["spatial_shape"]) == tuple(loaded.zoo["spatial_shape"])
    assert pred["num_channels"] == loaded.zoo["num_channels"]
    assert out.dtype == torch.float32
    low, high = pred["value_range"]
    assert float(out.min()) >= low and float(out.max()) <= high
    assert float(out.std()) > 0.05, "flat output"
    assert not torch.allclose(out[0], out[1]), "two seeds gave the same image"


def test_same_seed_same_output_any_batch(loaded):
    from medigan_zoo.seeding import sample_seeds

    seeds = sample_seeds(3, 0, 3)
    a = loaded.generate(seeds, loaded.cond_values[0])
    b = torch.cat([loaded.generate(seeds[i:i + 1], loaded.cond_values[0]) for i in range(3)])
    assert torch.equal(a, loaded.generate(seeds, loaded.cond_values[0]))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_condition_changes_image(loaded):
    from medigan_zoo.seeding import sample_seeds

    seeds = sample_seeds(0, 0, 4)
    outs = [loaded.generate(seeds, v) for v in loaded.cond_values]
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            diff = float((outs[i] - outs[j]).abs().mean())
            assert diff > 0.01, f"{loaded.cond_name}={i} and {j} give (almost) the same images ({diff:.4f})"


def test_torchscript_matches_state_dict(loaded):
    ts_path = loaded.path / "models" / "model.ts"
    assert ts_path.is_file(), "models/model.ts missing"
    scripted = torch.jit.load(str(ts_path), map_location="cpu").eval()
    gen = torch.Generator().manual_seed(0)
    latent = torch.randn(2, loaded.latent_size, generator=gen)
    labels = torch.tensor(loaded.cond_values[:2], dtype=torch.long)
    with torch.no_grad():
        torch.testing.assert_close(scripted(latent, labels), loaded.network(latent, labels), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_model_pt_weights_only(name):
    state = torch.load(_bundle(name) / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())
    assert not any(k.startswith(("discriminator", "critic", "d_")) for k in state), "generator weights only"


@pytest.mark.parametrize("name", NAMES)
def test_monai_bundle_run_inferring(name, tmp_path):
    path = _bundle(name)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "inferring",
           "--config_file", str(path / "configs" / "inference.json"),
           "--meta_file", str(path / "configs" / "metadata.json"),
           "--logging_file", str(path / "configs" / "logging.conf"),
           "--bundle_root", str(path), "--num_samples", "2", "--output_dir", str(out)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=str(ROOT))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) == 2, files


@pytest.mark.parametrize("name", NAMES)
def test_train_json_one_iteration(name, tmp_path):
    from monai.bundle import ConfigWorkflow

    path = BUNDLES / name
    if not (path / "configs" / "train.json").is_file():
        pytest.skip(f"{name}: no configs/train.json yet")
    data = DATA_DIR / DATA_FILES[name]
    if not data.is_file():
        pytest.skip(f"training data {data} is absent (set MEDIGAN_ZOO_DATA to the shared data folder)")
    threads = torch.get_num_threads()
    wf = ConfigWorkflow(config_file=str(path / "configs" / "train.json"), workflow_type="train", run_id="training", init_id="initialize",
                        meta_file=str(path / "configs" / "metadata.json"), bundle_root=str(path))
    overrides = {"data_path": str(data), "output_dir": str(tmp_path), "max_epochs": 1, "epoch_length": 1,
                 "batch_size": 4, "num_train": 16, "bn_batches": 2, "preview_every": 1}
    for key, value in overrides.items():
        if key in wf.parser:
            wf.parser[key] = value
    try:
        wf.initialize()
        wf.run()
    finally:
        torch.set_num_threads(threads)
    state = torch.load(tmp_path / "model.pt", map_location="cpu", weights_only=True)
    assert set(state) == set(wf.parser.get_parsed_content("network").state_dict())
