"""Generation engine: bundle loading, reproducibility, manifest, conditions, streaming, argument checks.

Runs against tiny zoo-style bundles written into tmp folders (random weights), MONAI's MedNIST GAN bundle from
../shared (skipped when absent) and bundles/chest_xray_cdcgan (skipped until it is in the repository).
File formats, resuming and concurrent writers: tests/test_engine_files.py; torchrun: tests/test_distributed.py.
"""
from __future__ import annotations

import copy
import hashlib
import json
import pickle
import textwrap
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import pytest
import torch
from conftest import BUNDLES, required_input_path, shipped_bundles
from zoo_fixtures import ZOO_BLOCK, metadata

from medigan_zoo.core.errors import GenerationError, ZooError
from medigan_zoo.core.seeding import sample_seed
from medigan_zoo.engine.runner import read_model

engine = pytest.importorskip("medigan_zoo.engine")

CLASSES = {"0": "normal", "1": "pneumonia"}
LATENT = 8

# Zoo bundles wrap their generator in medigan_zoo.samplers.gan.GANSampler; this bundle-local module (imported the way
# `monai.bundle run` imports a bundle's own code: the bundle folder is on sys.path) adds a mask output to it.
MASK_SAMPLER = textwrap.dedent('''
    from torch import nn


    class MaskSampler(nn.Module):
        def __init__(self, sampler):
            super().__init__()
            self.sampler = sampler

        def forward(self, seeds, **conditions):
            image = self.sampler(seeds, **conditions)
            return {"image": image, "mask": (image > 0.5).float()}
''')


def make_bundle(root: Path, name: str = "toy_xray_cgan", dims: int = 2, conditional: bool = True,
                checkpoint_dict: bool = False, spacing: Optional[list] = None, with_mask: bool = False) -> Path:
    """A runnable zoo-style bundle with random weights: 2D: medigan_zoo's UpsampleGenerator (class-conditional),
    3D: a small monai.networks.nets.Generator; both wrapped in medigan_zoo.samplers.gan.GANSampler, whose latent
    distribution is the sampling option ``latent_distribution`` ("normal" or "uniform")."""
    from monai.bundle import ConfigParser

    bundle = root / name
    for sub in ("configs", "models", "docs"):
        (bundle / sub).mkdir(parents=True, exist_ok=True)
    if dims == 2:
        network_def = {"_target_": "medigan_zoo.networks.wgan.UpsampleGenerator", "latent_size": LATENT,
                       "start_size": 4, "channels": [8, 4, 4], "num_classes": len(CLASSES) if conditional else 0,
                       "embed_size": 4, "convs_per_block": 1}
        spatial = [16, 16]
    else:
        network_def = {"_target_": "monai.networks.nets.Generator", "latent_shape": [LATENT],
                       "start_shape": [4, 2, 2, 2], "channels": [4, 1], "strides": [2, 2]}
        spatial = [8, 8, 8]
    sampler = {"_target_": "medigan_zoo.samplers.gan.GANSampler", "network": "@network", "latent_shape": [LATENT],
               "latent_distribution": "@latent_distribution", "output_range": [-1, 1],
               "condition_names": ["class_label"] if conditional else []}
    if with_mask:
        (bundle / "zoo_test_mask_sampler.py").write_text(MASK_SAMPLER)
        sampler = {"_target_": "zoo_test_mask_sampler.MaskSampler", "sampler": sampler}
    torch.manual_seed(len(name) + dims)
    state = ConfigParser({"net": network_def}).get_parsed_content("net").state_dict()
    torch.save({"model": state, "epoch": 3} if checkpoint_dict else state, bundle / "models" / "model.pt")
    config = {
        "imports": ["$import torch"],
        "bundle_root": ".", "device": "$torch.device('cpu')", "num_samples": 4, "batch_size": 4, "seed": 0,
        "output_dir": "$@bundle_root + '/outputs'", "output_ext": ".png" if dims == 2 else ".nii.gz",
        "network_def": network_def,
        "network": "$@network_def.to(@device)",
        "ckpt_path": "$@bundle_root + '/models/model.pt'",
        "sampler": sampler,
        "latent_distribution": "normal",
    }
    if conditional:
        config["class_label"] = 0
    zoo = copy.deepcopy(ZOO_BLOCK)
    zoo.update(spatial_shape=spatial, num_channels=1, modality=["DX"] if dims == 2 else ["CT"],
               condition={"class_label": {"type": "categorical", "values": CLASSES, "default": 0,
                                          "description": "diagnosis"}} if conditional else {},
               options={"latent_distribution": {"type": "string", "default": "normal", "choices": ["normal", "uniform"],
                                                "description": "distribution of the latent"}})
    pred = {"type": "image", "num_channels": 1, "spatial_shape": spatial, "dtype": "float32", "value_range": [0, 1]}
    if spacing:
        pred["spacing"] = spacing
    outputs = {"pred": pred, "mask": {**pred, "type": "segmentation"}} if with_mask else {"pred": pred}
    meta = metadata(name=f"Toy {name}", zoo=zoo, network_data_format={"inputs": {}, "outputs": outputs})
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta, indent=2))
    (bundle / "configs" / "inference.json").write_text(json.dumps(config, indent=2))
    (bundle / "LICENSE").write_text("CC-BY-4.0 (test weights)\n")
    return bundle


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread (the 2 CPU cores are shared by parallel jobs); restored after the module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="session")
def tiny3d_bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundles3d"), name="toy_ct_gan", dims=3, conditional=False,
                       spacing=[2.0, 1.5, 1.0])


def chest_xray_cdcgan() -> Path:
    bundle = BUNDLES / "chest_xray_cdcgan"
    if not (bundle / "models" / "model.pt").is_file():
        pytest.skip(f"bundles/chest_xray_cdcgan is not in the repository yet ({bundle})")
    return bundle


def folder_bytes(folder: Path, pattern: str = "**/sample_*") -> Dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.glob(pattern)) if p.is_file()}


def manifest_lines(folder: Path):
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


# --- loading ------------------------------------------------------------------------------------------------

def test_load_foreign_bundle(mednist_gan, tmp_path):
    sampler = engine.load_bundle_sampler(mednist_gan, device="cpu")
    assert sampler.foreign and isinstance(sampler.module, engine.LatentSampler)
    assert (sampler.name, sampler.version, sampler.model_id) == ("MedNIST GAN", "0.4.2", "mednist_gan")
    assert sampler.spatial_shape == (64, 64) and sampler.num_channels == 1 and sampler.value_range == (0.0, 1.0)
    assert sampler.weights_sha256 == hashlib.sha256((mednist_gan / "models" / "model.pt").read_bytes()).hexdigest()
    assert sampler.device == torch.device("cpu")
    # the latent comes from network_data_format.inputs (64 values in [0, 1] -> uniform noise)
    assert sampler.module.latent_shape == (64,) and sampler.module.uniform
    # the bundle's postprocessing minus SaveImaged: the sigmoid is kept, nothing is written anywhere
    names = [type(t).__name__ for t in sampler.module.postprocessing]
    assert "Activationsd" in names and not any(n.startswith("SaveImage") for n in names)
    out = sampler([1, 2, 3])["image"]
    assert out.shape == (3, 1, 64, 64) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    assert torch.equal(out[1:2], sampler([2])["image"])  # per-sample seeding
    assert not (mednist_gan / "outputs").exists()


def test_load_zoo_bundle_and_checkpoint_dict(tmp_path, tiny_bundle):
    plain = engine.load_bundle_sampler(tiny_bundle)
    assert not plain.foreign and not plain.monai_order
    assert [c.name for c in plain.conditions] == ["class_label"]
    wrapped = engine.load_bundle_sampler(make_bundle(tmp_path, name="toy_xray_cgan", checkpoint_dict=True))
    cond = {"class_label": torch.tensor([0, 1])}
    assert torch.equal(plain([5, 6], cond)["image"], wrapped([5, 6], cond)["image"])  # {"model": state_dict}
    # the sampler runs the loaded weights, not a fresh random init of network_def
    state = torch.load(tiny_bundle / "models" / "model.pt", weights_only=True)
    loaded = plain.module.network.state_dict()
    assert state.keys() == loaded.keys() and all(torch.equal(state[k], loaded[k]) for k in state)


def test_device_choices(tiny_bundle):
    assert engine.load_bundle_sampler(tiny_bundle, device="cpu").device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(GenerationError, match="CUDA is not available"):
            engine.load_bundle_sampler(tiny_bundle, device="cuda:0")
    with pytest.raises(GenerationError, match="Unknown device"):
        engine.load_bundle_sampler(tiny_bundle, device="tpu7")


# --- reproducibility --------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["tiny", "mednist"])
def test_same_files_whatever_the_batch_size(which, tmp_path, request):
    bundle = request.getfixturevalue("tiny_bundle" if which == "tiny" else "mednist_gan")
    outputs = []
    for batch_size, workers in ((1, 0), (7, 2), (64, None)):
        result = engine.generate(bundle, 9, tmp_path / f"b{batch_size}", seed=3, batch_size=batch_size,
                                 quiet=True, num_workers=workers)
        assert result.num_written == 9 and result.num_skipped == 0 and len(result.files) == 9
        outputs.append(folder_bytes(tmp_path / f"b{batch_size}"))
    assert len(outputs[0]) == 9 and outputs[0] == outputs[1] == outputs[2]
    other = engine.generate(bundle, 9, tmp_path / "seed4", seed=4, quiet=True)
    assert folder_bytes(other.output_path) != outputs[0]


def test_dataset_matches_files_and_workers(tiny_bundle, tmp_path):
    from torch.utils.data import DataLoader

    conditions = {"class_label": [0, 1]}
    files = engine.generate(tiny_bundle, 10, tmp_path / "npy", seed=5, output_format="npy", conditions=conditions,
                            quiet=True)
    dataset = engine.SyntheticDataset(tiny_bundle, 10, seed=5, conditions=conditions, batch_size=4)
    assert len(pickle.dumps(dataset)) < 20_000  # no model inside: cheap to send to workers
    loaded = []
    for workers in (0, 2):
        batches = list(DataLoader(dataset, batch_size=3, num_workers=workers))
        loaded.append({k: torch.cat([b[k] for b in batches]) for k in ("image", "seed", "index", "class_label")})
    for key in loaded[0]:
        assert torch.equal(loaded[0][key], loaded[1][key])
    assert loaded[0]["index"].tolist() == list(range(10))
    assert loaded[0]["class_label"].tolist() == [0, 1] * 5
    assert loaded[0]["seed"].tolist() == [sample_seed(5, i) for i in range(10)]
    for i, path in enumerate(files.files):
        assert np.array_equal(np.load(path), loaded[0]["image"][i].numpy())
    item = dataset[-1]
    assert item["index"] == 9 and item["image"].shape == (1, 16, 16)
    item["image"].add_(1)  # items are ordinary tensors (not inference tensors), safe for in-place augmentation
    with pytest.raises(IndexError):
        dataset[10]


def test_dataset_cache_is_bounded(tiny_bundle):
    dataset = engine.SyntheticDataset(tiny_bundle, 1000, batch_size=8, cache_blocks=2)
    for i in range(0, 60, 5):
        dataset[i]
    assert sorted(dataset._cache) == [5, 6]  # the last two blocks read (samples 40..55)


def test_arrays_and_generate_function(tiny_bundle, tmp_path):
    arrays = engine.generate(tiny_bundle, 4, seed=1, save_images=False, conditions={"class_label": 1})
    assert len(arrays) == 4 and arrays[0].shape == (16, 16, 1) and arrays[0].dtype == np.float32
    item = engine.SyntheticDataset(tiny_bundle, 4, seed=1, conditions={"class_label": 1})[2]
    assert np.array_equal(arrays[2], item["image"].permute(1, 2, 0).numpy())
    fn = engine.get_generate_function(tiny_bundle, num_samples=3, seed=1, conditions={"class_label": 1})
    first, second = fn(), fn()
    assert len(first) == 3 and not np.array_equal(first[0], second[0])  # each call: the next samples
    assert np.array_equal(first[2], arrays[2]) and np.array_equal(second[0], arrays[3])
    again = engine.get_generate_function(tiny_bundle, num_samples=3, seed=1, conditions={"class_label": 1})()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    result = fn(output_path=tmp_path / "files", quiet=True)  # with output_path: files
    assert [p.name for p in result.files] == ["sample_000006.png", "sample_000007.png", "sample_000008.png"]


# --- manifest and conditions -------------------------------------------------------------------------------

def test_manifest_traces_every_file(tiny_bundle, tmp_path):
    result = engine.generate(tiny_bundle, 6, tmp_path / "out", seed=7, conditions={"class_label": [0, "pneumonia"]},
                             quiet=True)
    header = json.loads((tmp_path / "out" / "manifest.json").read_text())
    sha = hashlib.sha256((tiny_bundle / "models" / "model.pt").read_bytes()).hexdigest()
    assert header["synthetic"] is True and header["weights_sha256"] == sha and header["seed"] == 7
    assert header["model_id"] == "toy_xray_cgan" and header["version"] == "0.1.0" and header["zoo_version"]
    assert header["conditions"] == [{"class_label": 0}, {"class_label": 1}]
    lines = manifest_lines(tmp_path / "out")
    assert [r["index"] for r in lines] == list(range(6)) and result.manifest == tmp_path / "out" / "manifest.jsonl"
    for rec in lines:
        assert rec["seed"] == sample_seed(7, rec["index"]) and rec["synthetic"] is True
        assert rec["condition"] == {"class_label": rec["index"] % 2}
        assert rec["weights_sha256"] == sha and rec["version"] == "0.1.0" and rec["model_id"] == "toy_xray_cgan"
        assert (tmp_path / "out" / rec["file"]).is_file()
    assert not (tmp_path / "out" / ".manifest-parts").exists()


def test_split_by_condition(tiny_bundle, tmp_path):
    result = engine.generate(tiny_bundle, 6, tmp_path / "out", conditions={"class_label": [0, 1]},
                             split_by_condition=True, quiet=True)
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "class_label_0").iterdir()) == [f"sample_00000{i}.png" for i in (0, 2, 4)]
    assert sorted(p.name for p in (out / "class_label_1").iterdir()) == [f"sample_00000{i}.png" for i in (1, 3, 5)]
    assert [str(p.relative_to(out)) for p in result.files][:2] == ["class_label_0/sample_000000.png",
                                                                  "class_label_1/sample_000001.png"]
    flat = engine.generate(tiny_bundle, 6, tmp_path / "flat", conditions={"class_label": [0, 1]}, quiet=True)
    assert [p.read_bytes() for p in result.files] == [p.read_bytes() for p in flat.files]
    single = engine.generate(tiny_bundle, 2, tmp_path / "one", conditions={"class_label": 1}, quiet=True)
    assert single.files[0].read_bytes() != flat.files[0].read_bytes()  # the condition changes the image
    assert single.files[1].read_bytes() == flat.files[1].read_bytes()  # sample 1 had class 1 in both runs


def test_image_and_mask_folders(tmp_path):
    bundle = make_bundle(tmp_path, name="toy_lesion_gan", with_mask=True)
    result = engine.generate(bundle, 4, tmp_path / "out", conditions={"class_label": [0, 1]},
                             split_by_condition=True, quiet=True)
    out = tmp_path / "out"
    assert str(result.files[1].relative_to(out)) == "image/class_label_1/sample_000001.png"
    assert str(result.mask_files[1].relative_to(out)) == "mask/class_label_1/sample_000001.png"
    assert all(p.is_file() for p in list(result.files) + list(result.mask_files))
    rec = manifest_lines(out)[1]
    assert rec["file"] == "image/class_label_1/sample_000001.png" and rec["mask_file"].startswith("mask/")
    assert set(np.unique(np.array(__import__("PIL.Image").Image.open(result.mask_files[0])))) <= {0, 255}
    pairs = engine.generate(bundle, 2, save_images=False)
    assert isinstance(pairs[0], tuple) and pairs[0][1].shape == (16, 16, 1)
    item = engine.SyntheticDataset(bundle, 2)[0]
    assert set(item) >= {"image", "mask", "seed", "index", "class_label"}


def test_rerun_with_other_parameters_is_refused(tiny_bundle, tmp_path):
    engine.generate(tiny_bundle, 3, tmp_path / "out", seed=0, quiet=True)
    with pytest.raises(GenerationError, match="other parameters.*seed"):
        engine.generate(tiny_bundle, 3, tmp_path / "out", seed=1, quiet=True)
    more = engine.generate(tiny_bundle, 5, tmp_path / "out", seed=0, quiet=True)  # extending a run is fine
    assert (more.num_written, more.num_skipped) == (2, 3)


# --- sampling options -------------------------------------------------------------------------------------

def test_sampling_options_change_samples_and_are_recorded(tiny_bundle, tmp_path):
    normal = engine.generate(tiny_bundle, 3, tmp_path / "normal", quiet=True)
    uniform = engine.generate(tiny_bundle, 3, tmp_path / "uniform", quiet=True,
                              options={"latent_distribution": "uniform"})
    assert folder_bytes(normal.output_path) != folder_bytes(uniform.output_path)
    header = json.loads((tmp_path / "uniform" / "manifest.json").read_text())
    assert header["options"] == {"latent_distribution": "uniform"} and "options={'latent_distribution'" in \
        header["regenerate"]
    assert json.loads((tmp_path / "normal" / "manifest.json").read_text())["options"] == {
        "latent_distribution": "normal"}  # defaults are recorded too
    assert all(line["options"] == {"latent_distribution": "uniform"} for line in manifest_lines(tmp_path / "uniform"))
    from PIL import Image

    provenance = json.loads(Image.open(uniform.files[0]).text["medigan_zoo"])
    assert provenance["options"] == {"latent_distribution": "uniform"}
    with pytest.raises(GenerationError, match="other parameters.*options"):
        engine.generate(tiny_bundle, 3, tmp_path / "uniform", quiet=True)
    # the same samples through the lazy dataset, the generate function and the Generators keywords
    dataset = engine.SyntheticDataset(tiny_bundle, 3, options={"latent_distribution": "uniform"})
    assert np.array_equal(dataset[2]["image"].numpy(), engine.generate(
        tiny_bundle, 3, save_images=False, options={"latent_distribution": "uniform"})[2].transpose(2, 0, 1))
    function = engine.get_generate_function(tiny_bundle, num_samples=3, latent_distribution="uniform", class_label=0)
    assert np.array_equal(function()[2].transpose(2, 0, 1), dataset[2]["image"].numpy())
    from medigan_zoo import Generators

    gens = Generators(bundle_dirs=[tiny_bundle.parent], include_builtin=False)
    again = gens.generate(tiny_bundle.name, 3, tmp_path / "kw", latent_distribution="uniform", class_label=0,
                          quiet=True)
    assert folder_bytes(again.output_path) == folder_bytes(uniform.output_path)
    with pytest.raises(GenerationError, match="takes no condition or sampling option 'steps'. Conditions: "
                       "class_label .*Sampling options: latent_distribution"):
        gens.generate(tiny_bundle.name, 3, tmp_path / "bad", steps=3)
    assert not (tmp_path / "bad").exists()


def test_generators_dataloader_routes_model_arguments(tiny_bundle):
    from medigan_zoo import Generators

    gens = Generators(bundle_dirs=[tiny_bundle.parent], include_builtin=False)
    loader = gens.get_as_torch_dataloader(tiny_bundle.name, num_samples=5, batch_size=2, class_label=1,
                                          latent_distribution="uniform", drop_last=True)  # last one: DataLoader's
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["image"].shape == (2, 1, 16, 16)
    assert batches[1]["class_label"].tolist() == [1, 1]
    dataset = engine.SyntheticDataset(tiny_bundle, 5, conditions={"class_label": 1},
                                      options={"latent_distribution": "uniform"})
    assert torch.equal(batches[1]["image"][1], dataset[3]["image"])


def test_option_defaults_must_match_inference_json(tiny_bundle, tmp_path):
    import shutil

    from medigan_zoo.runtime.validate import validate_bundle

    bundle = tmp_path / tiny_bundle.name
    shutil.copytree(tiny_bundle, bundle)
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    meta["medigan_zoo"]["options"]["latent_distribution"]["default"] = "uniform"
    meta["medigan_zoo"]["options"]["steps"] = {"type": "integer", "default": 3}
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    problems = [str(p) for p in validate_bundle(bundle)]
    assert any("$.latent_distribution: is 'normal' but medigan_zoo.options.latent_distribution.default says "
               "'uniform'" in p for p in problems), problems
    assert any("$.steps: sampling option 'steps' of the zoo block is not an id here" in p for p in problems)


# --- argument checks -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"num_samples": 0}, "num_samples must be an integer >= 1"),
    ({"num_samples": -3}, "num_samples must be an integer >= 1"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"seed": -1}, "seed must be an integer between 0 and"),
    ({"output_format": "tiff"}, "Valid formats: png, jpg, nii.gz, npy, dcm"),
    ({"conditions": {"sex": "F"}}, "takes no condition 'sex'; it takes class_label \\(0 normal, 1 pneumonia\\)"),
    ({"conditions": {"class_label": 5}}, "Valid values: 0 \\(normal\\), 1 \\(pneumonia\\)"),
    ({"conditions": {"class_label": [0, 7]}}, "class_label=7"),
    ({"output_format": "jpg", "bit_depth": 16}, "16-bit output is available for single-channel PNG and DICOM"),
    ({"options": {"steps": 3}}, "has no sampling option 'steps'; it takes latent_distribution \\(string, one of"),
    ({"options": {"latent_distribution": "cauchy"}}, "latent_distribution='cauchy' .* is not an allowed value"),
    ({"options": {"latent_distribution": "$print(1)"}}, "looks like a MONAI config expression"),
])
def test_bad_arguments_rejected_before_work(tiny_bundle, tmp_path, monkeypatch, kwargs, message):
    def no_work(*args, **kw):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr("medigan_zoo.engine.runner.load_bundle_sampler", no_work)
    args = {"num_samples": 4, "output_path": tmp_path / "out", "quiet": True, **kwargs}
    with pytest.raises(GenerationError, match=message) as info:
        engine.generate(tiny_bundle, **args)
    assert isinstance(info.value, ZooError)
    assert not (tmp_path / "out").exists()


def test_bad_bundle_and_dimension_checks(tiny3d_bundle, tmp_path, mednist_gan):
    with pytest.raises(GenerationError, match="holds 2D images but the model makes 3D volumes"):
        engine.generate(tiny3d_bundle, 2, tmp_path / "x", output_format="png")
    with pytest.raises(GenerationError, match="not a bundle folder"):
        engine.generate(tmp_path, 2, tmp_path / "y")
    with pytest.raises(GenerationError, match="takes no condition 'class_label'; it takes no conditions"):
        engine.SyntheticDataset(mednist_gan, 2, conditions={"class_label": 1})
    extractor = make_bundle(tmp_path, name="toy_features")
    meta = json.loads((extractor / "configs" / "metadata.json").read_text())
    meta["medigan_zoo"]["role"] = "feature_extractor"
    (extractor / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(GenerationError, match="is a feature extractor, not a generator"):
        engine.generate(extractor, 2, tmp_path / "z")


def test_unwritable_output_folder(tiny_bundle, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(GenerationError, match="Cannot create output folder"):
        engine.generate(tiny_bundle, 2, blocker / "out", quiet=True)


# --- bundles shipped in bundles/ --------------------------------------------------------------------------------

def test_chest_xray_cdcgan(tmp_path):
    bundle = chest_xray_cdcgan()
    one = engine.generate(bundle, 4, tmp_path / "a", batch_size=1, conditions={"class_label": [0, 1]},
                          split_by_condition=True, quiet=True)
    four = engine.generate(bundle, 4, tmp_path / "b", batch_size=4, conditions={"class_label": [0, 1]},
                           split_by_condition=True, quiet=True)
    assert [p.read_bytes() for p in one.files] == [p.read_bytes() for p in four.files]
    assert {p.parent.name for p in one.files} == {"class_label_0", "class_label_1"}
    assert [r["condition"] for r in manifest_lines(tmp_path / "a")] == [{"class_label": i % 2} for i in range(4)]


def _runnable_shipped():
    """Generator bundles in bundles/ with a zoo block and weights (feature extractors are not generators)."""
    found = []
    for bundle in shipped_bundles():
        meta = json.loads((bundle / "configs" / "metadata.json").read_text())
        if ("medigan_zoo" in meta and meta["medigan_zoo"].get("role", "generator") == "generator"
                and (bundle / "models" / "model.pt").is_file() and (bundle / "configs" / "inference.json").is_file()):
            found.append(bundle)
    return found


@pytest.mark.parametrize("bundle", _runnable_shipped() or [None], ids=lambda b: b.name if b else "none")
def test_shipped_bundle_generates(bundle, tmp_path):
    if bundle is None:
        pytest.skip("no bundle with weights in bundles/ yet")
    sampler = engine.load_bundle_sampler(bundle, device="cpu")
    sampler.min_batch = 1  # a smoke test: no padding to the bit-identity batch (diffusion models are slow on CPU)
    inputs = required_input_path(bundle, tmp_path / "inputs", 2)  # models of image inputs need them (contract 5)
    result = engine.generate(bundle, 2, tmp_path / "out", output_format="npy", sampler=sampler, quiet=True,
                             input_path=inputs)
    assert result.num_written == 2 and len(manifest_lines(tmp_path / "out")) == 2
    low, high = sampler.value_range
    for path in result.files:
        image = np.load(path)
        assert image.shape == (sampler.num_channels, *sampler.spatial_shape)
        assert low - 1e-4 <= image.min() and image.max() <= high + 1e-4


def test_shipped_models_of_image_inputs_get_their_example_inputs_or_synthetic_ones(tmp_path):
    """The shipped-model tests feed a model of required image inputs (zoo block ``inputs``): its own
    docs/example_inputs, or, without enough of them, synthetic npy inputs of the declared shape that the engine
    reads."""
    import shutil

    takes_inputs = [b for b in _runnable_shipped() if read_model(b).required_inputs]
    if not takes_inputs:
        pytest.skip("no shipped bundle takes required image inputs")
    bundle = takes_inputs[0]
    assert required_input_path(bundle, tmp_path / "a", 1) == bundle / "docs" / "example_inputs"
    assert required_input_path(BUNDLES / "chest_xray_cdcgan", tmp_path / "b", 1) is None
    copy_ = shutil.copytree(bundle, tmp_path / bundle.name, ignore=shutil.ignore_patterns("example_inputs"))
    synthetic = required_input_path(copy_, tmp_path / "c", 3)
    info = read_model(copy_)
    assert set(synthetic) == {s.name for s in info.required_inputs}
    sampler = engine.load_bundle_sampler(copy_, device="cpu")
    result = engine.generate(copy_, None, tmp_path / "out", output_format="npy", sampler=sampler, quiet=True,
                             input_path=synthetic)
    assert result.num_written == 3
    assert [r["inputs"][s.name]["path"] for r in manifest_lines(tmp_path / "out") for s in info.required_inputs] == \
        [str(synthetic[s.name] / f"input_{k:03d}.npy") for k in range(3) for s in info.required_inputs]
