"""Every shipped generator bundle (bundles/*, role generator, with weights), checked the way users run it.

What a bundle supports comes from its own files: conditions and sampling options from its zoo block, the
training data from the zoo block's ``dataset`` (``medigan_zoo.evaluation.data.dataset_file``), the shape, dtype and
value range from ``network_data_format``. Sampling goes through the engine's ``load_bundle_sampler`` (what
``generate`` and ``SyntheticDataset`` use); diffusion bundles run with few DDIM steps to stay fast. A bundle
added to bundles/ is tested without editing this file.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from conftest import DATA_DIR, REPO, shipped_generators  # noqa: E402

from medigan_zoo.core.seeding import sample_seeds  # noqa: E402

GENERATORS = [b for b in shipped_generators() if (b / "models" / "model.pt").is_file()]
IDS = [b.name for b in GENERATORS]


def _meta(bundle: Path) -> dict:
    return json.loads((bundle / "configs" / "metadata.json").read_text())


def _zoo(bundle: Path) -> dict:
    return _meta(bundle)["medigan_zoo"]


CONDITIONAL = [b for b in GENERATORS if _zoo(b).get("condition")]
WITH_OPTIONS = [b for b in GENERATORS if _zoo(b).get("options")]
#: sampling options that keep a test fast, used where the bundle declares them
FAST_OPTIONS = {"num_inference_steps": 3}
#: train.json overrides for one tiny iteration, used where the recipe declares the id
ONE_ITERATION = {"max_epochs": 1, "epoch_length": 1, "batch_size": 4, "num_train": 32, "bn_batches": 2,
                 "preview_every": 1, "num_threads": 1}


def _fast_options(bundle: Path) -> dict:
    declared = _zoo(bundle).get("options") or {}
    return {k: v for k, v in FAST_OPTIONS.items() if k in declared}


def _conditions(bundle: Path, n: int, value=None) -> dict:
    """name -> (n,) tensor: ``value`` for every sample, else each condition's default."""
    out = {}
    for name, spec in (_zoo(bundle).get("condition") or {}).items():
        chosen = spec.get("default", 0) if value is None else value
        out[name] = torch.full((n,), int(chosen), dtype=torch.long)
    return out


_SAMPLERS: dict = {}


def _sampler(bundle: Path):
    if bundle.name not in _SAMPLERS:
        from medigan_zoo.engine import load_bundle_sampler

        _SAMPLERS[bundle.name] = load_bundle_sampler(bundle, device="cpu", options=_fast_options(bundle))
    return _SAMPLERS[bundle.name]


def _required_inputs(bundle: Path) -> list:
    return [spec for spec in _zoo(bundle).get("inputs") or [] if spec.get("optional") is not True]


def _inputs(bundle: Path, seeds) -> dict:
    """name -> (n, C, *spatial) images for bundles that declare required image inputs: input b is uniform noise in
    the declared value range drawn from seeds[b] (so a sample still depends on its own seed only); {} for the others
    (optional inputs are left out: those bundles are tested from noise here, tests/test_image_input_bundles.py
    gives them inputs)."""
    out = {}
    for spec in _required_inputs(bundle):
        low, high = spec.get("value_range") or (0.0, 1.0)
        shape = (int(spec.get("num_channels") or 1), *spec["spatial_shape"])
        rows = [torch.rand(shape, generator=torch.Generator().manual_seed(int(s) + 1)) for s in seeds]
        out[spec["name"]] = torch.stack(rows) * (high - low) + low
    return out


def _generate(bundle: Path, seeds, value=None) -> torch.Tensor:
    torch.manual_seed(123)  # the global RNG must not matter: every draw comes from the per-sample seeds
    inputs = _inputs(bundle, seeds)
    if inputs:
        return _sampler(bundle)(list(seeds), _conditions(bundle, len(seeds), value), inputs=inputs)["image"]
    return _sampler(bundle)(list(seeds), _conditions(bundle, len(seeds), value))["image"]


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_the_zoo_ships_its_generators():
    assert len(GENERATORS) >= 6, IDS
    assert len(CONDITIONAL) >= 5 and WITH_OPTIONS, "conditional bundles and a bundle with sampling options"


@pytest.mark.parametrize("bundle", GENERATORS, ids=IDS)
def test_model_pt_is_a_plain_generator_state_dict(bundle):
    state = torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())
    assert not any(k.startswith(("discriminator", "critic", "d_")) for k in state), "generator weights only"


@pytest.mark.parametrize("bundle", GENERATORS, ids=IDS)
def test_two_samples_have_declared_shape_dtype_and_range(bundle):
    meta = _meta(bundle)
    pred = meta["network_data_format"]["outputs"]["pred"]
    out = _generate(bundle, sample_seeds(0, 0, 2))
    assert tuple(out.shape) == (2, pred["num_channels"], *pred["spatial_shape"])
    assert list(pred["spatial_shape"]) == meta["medigan_zoo"]["spatial_shape"]
    assert pred["num_channels"] == meta["medigan_zoo"]["num_channels"]
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    low, high = pred["value_range"]
    assert float(out.min()) >= low and float(out.max()) <= high
    assert float(out.std()) > 0.05, "flat output"
    assert not torch.allclose(out[0], out[1]), "two seeds gave the same sample"


@pytest.mark.parametrize("bundle", GENERATORS, ids=IDS)
def test_same_seed_gives_identical_samples_whatever_the_batch_and_threads(bundle):
    seeds = sample_seeds(7, 0, 5)
    together = _generate(bundle, seeds)
    assert torch.equal(together, _generate(bundle, seeds))
    one_by_one = torch.cat([_generate(bundle, seeds[i:i + 1]) for i in range(5)])
    in_twos = torch.cat([_generate(bundle, seeds[i:i + 2]) for i in range(0, 5, 2)])
    assert torch.equal(together, one_by_one) and torch.equal(together, in_twos)  # bit-identical, not close
    torch.set_num_threads(2)  # generation lanes run torch single-threaded, a user's dataset may not
    assert torch.equal(together, _generate(bundle, seeds))


#: mean |difference| (images in [0, 1], same seeds) below which a condition value counts as ignored (half a grey level)
IGNORED = 0.002
#: the same, averaged over every pair of condition values: how much the condition must matter overall
MATTERS = 0.01


@pytest.mark.parametrize("bundle", CONDITIONAL, ids=[b.name for b in CONDITIONAL])
def test_each_condition_value_changes_the_image(bundle):
    """Every condition value is taken (each pair of values gives different images for the same seeds) and the
    condition matters (mean difference over all pairs > MATTERS). Two neighbouring values may be close: with these
    seeds retina_fundus_ddpm's grades 2 and 3 differ by 0.0085, as real grades 2 and 3 are hard to tell apart (its
    card, condition fidelity)."""
    (name, spec), = _zoo(bundle)["condition"].items()
    seeds = sample_seeds(0, 0, 4)
    outs = {v: _generate(bundle, seeds, int(v)) for v in spec["values"]}
    values = sorted(outs)
    diffs = []
    for i, a in enumerate(values):
        for b in values[i + 1:]:
            diff = float((outs[a] - outs[b]).abs().mean())
            assert diff > IGNORED, f"{name}={a} and {b} give (almost) the same images (mean |diff| {diff:.4f})"
            diffs.append(diff)
    assert sum(diffs) / len(diffs) > MATTERS, f"{name} barely changes the images (mean |diff| {diffs})"


@pytest.mark.parametrize("bundle", WITH_OPTIONS, ids=[b.name for b in WITH_OPTIONS])
def test_each_sampling_option_is_taken_and_changes_the_samples(bundle):
    from medigan_zoo.engine import generate

    options = _zoo(bundle)["options"]
    base = {**{k: spec["default"] for k, spec in options.items()}, **_fast_options(bundle)}

    def sample(opts):
        return generate(bundle, 1, save_images=False, options=opts, device="cpu")[0]

    reference = sample(base)
    for name, spec in options.items():
        if spec["type"] not in ("integer", "number"):
            continue
        value = base[name] + 1 if base[name] + 1 <= spec.get("maximum", float("inf")) else base[name] - 1
        assert not np.array_equal(sample({**base, name: value}), reference), f"{name}={value} changed nothing"


@pytest.mark.parametrize("bundle", GENERATORS, ids=IDS)
def test_torchscript_gives_the_state_dict_output(bundle):
    from medigan_zoo.runtime.export import TOLERANCE, torchscript_difference

    assert (bundle / "models" / "model.ts").is_file(), \
        f"models/model.ts missing: python scripts/export_torchscript.py {bundle.relative_to(REPO)}"
    assert torchscript_difference(bundle) <= TOLERANCE


def card_command(bundle: Path, workflow: str) -> list:
    """The ``python -m monai.bundle run <workflow>`` command of the bundle's model card, as written (a shell
    command over continuation lines), split into arguments."""
    import shlex

    lines = (bundle / "docs" / "README.md").read_text().splitlines()
    start = next((k for k, line in enumerate(lines) if line.startswith(f"python -m monai.bundle run {workflow} ")),
                 None)
    assert start is not None, f"docs/README.md has no `python -m monai.bundle run {workflow}` command"
    text = lines[start]
    while text.endswith("\\"):
        start += 1
        text = text[:-1] + " " + lines[start].strip()
    return shlex.split(text)


@pytest.mark.parametrize("bundle", GENERATORS, ids=IDS)
def test_the_model_card_inferring_command_works_as_written(bundle, tmp_path):
    """The card's command, run from the repository root, with a small sample count and a temporary output folder."""
    cmd = card_command(bundle, "inferring")
    assert cmd[0] == "python"
    cmd[0] = sys.executable
    extra = [f"--{k}={v}" for k, v in _fast_options(bundle).items()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd + ["--num_samples", "2", "--output_dir", str(tmp_path), *extra], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    ext = parser.get("output_ext")
    files = sorted(p for p in tmp_path.rglob("*") if p.name.endswith(ext))
    names = [o["name"] for o in _zoo(bundle).get("outputs") or [{"name": "image"}]]
    if _zoo(bundle).get("outputs"):  # declared outputs: count the main output's files
        files = [p for p in files if p.name.endswith(f"_{names[0]}{ext}")]
    if _required_inputs(bundle):  # one sample per file of the card's default input_dir (docs/example_inputs)
        expected = len([p for p in (bundle / "docs" / "example_inputs").iterdir() if p.is_file()])
    else:
        expected = 2
    assert len(files) == expected, sorted(p.name for p in tmp_path.rglob("*"))
    shape = tuple(_meta(bundle)["network_data_format"]["outputs"]["pred"]["spatial_shape"])
    if ext == ".nii.gz":
        import nibabel as nib

        image = nib.load(str(files[0]))
        spacing = _meta(bundle)["network_data_format"]["outputs"]["pred"].get("spacing") or [1.0, 1.0, 1.0]
        assert image.shape[:len(shape)] == shape  # the NIfTI carries the declared voxel spacing
        assert tuple(float(z) for z in image.header.get_zooms()[:3]) == tuple(float(v) for v in spacing)
    else:
        from PIL import Image

        assert Image.open(files[0]).size == shape[::-1]


def _with(cmd: list, flag: str, value: str) -> list:
    """``cmd`` with ``flag``'s value replaced (or the flag appended)."""
    if flag in cmd:
        cmd = list(cmd)
        cmd[cmd.index(flag) + 1] = value
        return cmd
    return cmd + [flag, value]


@pytest.mark.parametrize("bundle", GENERATORS, ids=IDS)
def test_the_model_card_training_command_runs_one_iteration_on_real_data(bundle, tmp_path):
    """The card's training command with the data path of this machine, a temporary output folder and the
    overrides of a single tiny iteration; the weights it writes fit the inference network."""
    from monai.bundle import ConfigParser

    from medigan_zoo.evaluation.data import dataset_file

    zoo = _zoo(bundle)
    data = DATA_DIR / dataset_file(zoo["dataset"], zoo["spatial_shape"])
    if not data.is_file():
        pytest.skip(f"training data {data} not found (../shared/data is absent; set MEDIGAN_ZOO_DATA)")
    cmd = card_command(bundle, "training")
    cmd[0] = sys.executable
    cmd = _with(_with(cmd, "--data_path", str(data)), "--output_dir", str(tmp_path))
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    for key, value in ONE_ITERATION.items():
        if key in parser:
            cmd = _with(cmd, f"--{key}", str(value))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd + ["--device", "$torch.device('cpu')"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    inference = ConfigParser()
    inference.read_config(str(bundle / "configs" / "inference.json"))
    inference["bundle_root"] = str(bundle)
    net = inference.get_parsed_content("network_def")
    net.load_state_dict(torch.load(tmp_path / "model.pt", map_location="cpu", weights_only=True))  # fits the network
