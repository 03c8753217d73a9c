"""Evaluation machinery: FID (+ ratio), PRDC, realism classifier, downstream gain, memorization, extractors,
normalization, writing results into bundles, the CLI, and the shipped feature extractor.

Fast tests run on synthetic features and on a toy generator bundle written into a tmp folder (blurred noise, its
zoo block names PneumoniaMNIST); tests needing ../shared/data skip when it is absent. The comparison of the
documented command with stored reference figures is in tests/test_evaluation_reference.py.
"""
from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import BUNDLES, DATA_DIR, REPO
from zoo_fixtures import ZOO_BLOCK, metadata

from medigan_zoo.catalog.schema import ZOO_BLOCK_SCHEMA, schema_problems
from medigan_zoo.core.errors import ZooError
from medigan_zoo.evaluation.classifiers import roc_auc
from medigan_zoo.evaluation.downstream import labels_like
from medigan_zoo.evaluation.evaluate import _Context, evaluate_bundle, evaluate_images, feature_metrics
from medigan_zoo.evaluation.features import Normalization, load_feature_extractor
from medigan_zoo.evaluation.fid import fid_from_features, fid_ratio, frechet_distance_eigh
from medigan_zoo.evaluation.prdc import precision_recall_density_coverage
from medigan_zoo.evaluation.realism import prepare_classifier_data
from medigan_zoo.evaluation.report import (
    MARK_END,
    MARK_START,
    card_with_metrics,
    merge_metrics,
    metric_entry,
    write_results,
)

EXTRACTOR = BUNDLES / "medmnist_feature_extractor"
PNEUMONIA = DATA_DIR / "pneumoniamnist.npz"


def need_data():
    if not PNEUMONIA.is_file():
        pytest.skip(f"the shared medical data folder is absent ({DATA_DIR}); set MEDIGAN_ZOO_DATA to run this test")


def need_extractor():
    if not (EXTRACTOR / "models" / "model.pt").is_file():
        pytest.skip("bundles/medmnist_feature_extractor has no weights yet")


# --- a toy generator bundle ------------------------------------------------------------------------

CARD = "# Toy chest GAN\n\nWritten by the bundle developer.\n\n## Metrics\n\nDeveloper note kept.\n\n## Other\n\nmore\n"

SAMPLER = textwrap.dedent('''
    import torch
    from torch import nn


    class ToyEvalSampler(nn.Module):
        """Blurred uniform noise plus a class-dependent brightness, one torch.Generator per sample."""

        def __init__(self, network, shape=(1, 28, 28)):
            super().__init__()
            self.network = network
            self.shape = tuple(shape)

        def forward(self, seeds, **conditions):
            z = torch.stack([torch.rand(self.shape, generator=torch.Generator().manual_seed(int(s)))
                             for s in seeds.tolist()])
            x = self.network(z)
            label = conditions.get("class_label")
            if label is not None:
                x = x + 0.15 * label.float().view(-1, 1, 1, 1)
            return x.clamp(0, 1)
''')


def make_toy_bundle(root: Path, name: str = "toy_chest_evalgan", dims: int = 2) -> Path:
    """2D: a class-conditional "PneumoniaMNIST" model; 3D: an unconditional "AdrenalMNIST3D" 28^3 model."""
    bundle = root / name
    for sub in ("configs", "models", "docs"):
        (bundle / sub).mkdir(parents=True, exist_ok=True)
    (bundle / "toy_eval_sampler.py").write_text(SAMPLER)
    conv = (torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d)(1, 1, 5, padding=2)
    with torch.no_grad():
        conv.weight.fill_(1 / 5.0 ** dims)
        conv.bias.fill_(0.0)
    torch.save(conv.state_dict(), bundle / "models" / "model.pt")
    config = {
        "imports": ["$import torch"], "bundle_root": ".", "device": "$torch.device('cpu')", "num_samples": 4,
        "batch_size": 4, "seed": 0, "output_dir": "$@bundle_root + '/outputs'", "output_ext": ".png",
        "class_label": 0,
        "network_def": {"_target_": f"torch.nn.Conv{dims}d", "in_channels": 1, "out_channels": 1, "kernel_size": 5,
                        "padding": 2},
        "network": "$@network_def.to(@device)", "ckpt_path": "$@bundle_root + '/models/model.pt'",
        "sampler": {"_target_": "toy_eval_sampler.ToyEvalSampler", "network": "@network",
                    "shape": [1] + [28] * dims},
    }
    if dims == 3:
        del config["class_label"]
    zoo = copy.deepcopy(ZOO_BLOCK)
    zoo.pop("alias", None)
    zoo.update(spatial_shape=[28] * dims, num_channels=1, modality=["DX"] if dims == 2 else ["CT"],
               dataset=["PneumoniaMNIST"] if dims == 2 else ["AdrenalMNIST3D"],
               metrics=[{"name": "FID", "value": 99.0, "direction": "lower"},
                        {"name": "SSIM", "value": 0.5, "direction": "higher"}],
               condition={"class_label": {"type": "categorical", "values": {"0": "normal", "1": "pneumonia"},
                                          "default": 0}} if dims == 2 else {})
    pred = {"type": "image", "num_channels": 1, "spatial_shape": [28] * dims, "dtype": "float32", "value_range": [0, 1]}
    meta = metadata(name=f"Toy {name}", zoo=zoo, network_data_format={"inputs": {}, "outputs": {"pred": pred}})
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    (bundle / "configs" / "inference.json").write_text(json.dumps(config, indent=2))
    (bundle / "docs" / "README.md").write_text(CARD)
    (bundle / "LICENSE").write_text("CC-BY-4.0 (test weights)\n")
    return bundle


@pytest.fixture
def toy_bundle(tmp_path):
    return make_toy_bundle(tmp_path / "bundles")


def gaussian(n, dim=8, shift=0.0, seed=0):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


# --- FID ---------------------------------------------------------------------------------------------

def test_fid_monai_and_eigh_agree_and_behave():
    a, b = gaussian(400, seed=1), gaussian(300, seed=2)
    assert fid_from_features(a, b) == pytest.approx(frechet_distance_eigh(a, b), rel=1e-6, abs=1e-9)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6)
    # a pure mean shift of 1.0 in each of 8 dimensions adds 8 to the FID of two equal covariances
    assert fid_from_features(a + 1.0, a) == pytest.approx(8.0, rel=1e-6)
    # rank-deficient covariances (fewer samples than features) still give a finite, non-negative value
    assert 0 <= fid_from_features(gaussian(10, dim=32, seed=3), gaussian(10, dim=32, seed=4)) < float("inf")
    with pytest.raises(ZooError):
        fid_from_features(a, gaussian(10, dim=4))


def test_fid_ratio_is_near_one_for_real_like_samples():
    real = gaussian(600, seed=5)
    ratio, real_real, real_syn = fid_ratio(real, gaussian(600, seed=6), seed=0)
    assert 0.5 < ratio < 2.0 and real_real > 0
    bad, _, _ = fid_ratio(real, gaussian(600, shift=1.5, seed=6), seed=0)
    assert bad < 0.1
    assert fid_ratio(real, gaussian(600, seed=6), seed=0) == (ratio, real_real, real_syn)  # seeded halves


# --- precision / recall / density / coverage ------------------------------------------------------------

def naive_prdc(real, fake, k):
    """Per-sample loops, straight from the papers' definitions (reference for the batched version)."""
    def radius(x, i):
        d = sorted(float((x[i] - x[j]).norm()) for j in range(len(x)))
        return d[k]  # d[0] is the point itself

    rr = [radius(real, i) for i in range(len(real))]
    fr = [radius(fake, j) for j in range(len(fake))]
    dist = [[float((real[i] - fake[j]).norm()) for j in range(len(fake))] for i in range(len(real))]
    precision = sum(any(dist[i][j] < rr[i] for i in range(len(real))) for j in range(len(fake))) / len(fake)
    recall = sum(any(dist[i][j] < fr[j] for j in range(len(fake))) for i in range(len(real))) / len(real)
    density = sum(sum(dist[i][j] < rr[i] for i in range(len(real))) for j in range(len(fake))) / (k * len(fake))
    coverage = sum(min(dist[i]) < rr[i] for i in range(len(real))) / len(real)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def test_prdc_matches_the_definitions():
    real, fake = gaussian(40, dim=4, seed=7), gaussian(30, dim=4, shift=0.4, seed=8)
    expected = naive_prdc(real, fake, k=3)
    for block in (7, 2048):  # block-wise distances give the same answer
        got = precision_recall_density_coverage(real, fake, k=3, block=block)
        assert got == pytest.approx(expected, abs=1e-12)
    same = precision_recall_density_coverage(real, real, k=3)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = precision_recall_density_coverage(real, real + 100.0, k=3)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    with pytest.raises(ZooError, match="more than 5"):
        precision_recall_density_coverage(real[:5], fake, k=5)


# --- classifiers, AUC, data preparation ----------------------------------------------------------------

def test_roc_auc_matches_pairwise_count_with_ties():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.2])
    labels = torch.tensor([0, 0, 1, 1, 1, 0, 1, 0])
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p in pos for n in neg]
    assert roc_auc(scores, labels) == pytest.approx(sum(pairs) / len(pairs))
    assert roc_auc(torch.tensor([0.0, 1.0]), torch.tensor([0, 1])) == 1.0
    assert math.isnan(roc_auc(torch.tensor([0.3, 0.4]), torch.tensor([1, 1])))


def test_prepare_classifier_data_mixes_at_the_chosen_percentage():
    real = torch.zeros(100, 1, 4, 4)
    fake = torch.ones(60, 1, 4, 4)
    mix = prepare_classifier_data(real, fake, percent_generated=30, seed=0)
    assert len(mix.labels) == 142 and mix.percent_generated == pytest.approx(30.0, abs=0.5)  # 100 real / 0.7
    assert torch.equal(mix.images.flatten(1).mean(1), mix.labels.float())  # label 1 = generated image
    small = prepare_classifier_data(real, fake, percent_generated=25, total=40, seed=3)
    assert int(small.labels.sum()) == 10 and len(small.labels) == 40
    again = prepare_classifier_data(real, fake, percent_generated=25, total=40, seed=3)
    assert torch.equal(small.labels, again.labels)
    assert int(prepare_classifier_data(real, fake, 100, seed=0).labels.sum()) == 60
    assert int(prepare_classifier_data(real, fake, 0, seed=0).labels.sum()) == 0
    with pytest.raises(ZooError, match="at most"):
        prepare_classifier_data(real, fake, 50, total=500)
    with pytest.raises(ZooError):
        prepare_classifier_data(real, fake, 120)


def test_labels_like_keeps_the_class_proportions():
    ref = torch.tensor([0] * 30 + [1] * 70)
    lab = labels_like(ref, 33, seed=1)
    assert len(lab) == 33 and int((lab == 1).sum()) == 23
    assert torch.equal(lab, labels_like(ref, 33, seed=1))


# --- normalization and extractors ------------------------------------------------------------------------

def test_normalization_options():
    gray = torch.rand(2, 1, 28, 28)
    x = Normalization().apply(gray)
    assert x.shape == (2, 3, 32, 32) and torch.equal(x[:, 0], x[:, 2])
    imagenet = Normalization(size=None, intensity="imagenet").apply(torch.full((1, 1, 8, 8), 0.485))
    assert imagenet[0, 0].abs().max() < 1e-6 and imagenet.shape == (1, 3, 8, 8)
    assert Normalization(channels="gray", size=16).apply(torch.rand(1, 3, 28, 28)).shape == (1, 1, 16, 16)
    assert Normalization(intensity="[-1,1]", size=None).apply(torch.ones(1, 1, 4, 4)).max() == 1.0
    assert Normalization().describe([28, 28], 1) == "[0,1], gray->RGB, resize 28x28 -> 32x32 bilinear"
    assert "ImageNet" in Normalization(intensity="imagenet").describe([28, 28], 3)
    assert Normalization.from_any({"size": "none", "intensity": "imagenet"}).size is None
    with pytest.raises(ZooError):
        Normalization(intensity="zscore")
    with pytest.raises(ZooError, match="Unknown normalization"):
        Normalization.from_any({"colour": "rgb"})


def scripted_extractor(path: Path) -> Path:
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)

        def forward(self, x):
            return torch.relu(self.conv(x))  # (B, 6, h, w): the extractor average-pools it

    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(Tiny()), str(path))
    return path


def test_user_torchscript_extractor_2d_and_3d(tmp_path):
    path = scripted_extractor(tmp_path / "tiny.ts")
    ext = load_feature_extractor(path, normalization={"size": 16, "intensity": "imagenet"})
    assert ext.name.startswith("torchscript:tiny.ts(sha256 ") and ext.normalization.size == 16
    images = torch.rand(5, 1, 28, 28)
    feats = ext(images, batch_size=2)
    assert feats.shape == (5, 6) and feats.dtype == torch.float32
    assert torch.allclose(feats, ext(images, batch_size=5), atol=1e-6)  # batching does not change features
    vol = ext(torch.rand(3, 1, 12, 12, 12))
    assert vol.shape == (3, 18)  # 3 axes x 6 features, slices averaged per axis
    ctx = _Context(seed=0, command="test")
    entries = feature_metrics(torch.rand(40, 1, 28, 28), torch.rand(30, 1, 28, 28), ext, ("fid", "prdc"), ctx,
                              "random:test")
    names = [e["name"] for e in entries]
    assert names == ["FID", "precision", "recall", "density", "coverage"]
    assert entries[0]["feature_extractor"] == ext.name
    assert entries[0]["normalization"] == "ImageNet mean/std, gray->RGB, resize 28x28 -> 16x16 bilinear"
    with pytest.raises(ZooError, match="not a TorchScript"):
        (tmp_path / "bad.ts").write_text("nope")
        load_feature_extractor(tmp_path / "bad.ts")
    with pytest.raises(ZooError, match="Unknown feature extractor"):
        load_feature_extractor(tmp_path / "missing.ts")


def test_torchvision_extractor_needs_local_weights():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ZooError, match="torchvision is not installed"):
            load_feature_extractor("torchvision:inception_v3", weights="/nonexistent.pth")
    else:
        with pytest.raises(ZooError, match="weights=PATH"):
            load_feature_extractor("torchvision:inception_v3")


def test_torchvision_extractor_with_local_weights(tmp_path):
    """A torchvision model with a local state dict (here random ResNet-18 weights made in the test; RadImageNet or
    ImageNet weights in practice): head removed, ImageNet normalization at 224 px, weights named with their sha256."""
    torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed (it does not import "
                                      "beside the pinned CPU torch 2.13.0 on the development machine)")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18.pth")
    ext = load_feature_extractor("torchvision:resnet18", weights=tmp_path / "resnet18.pth")
    assert ext.name.startswith("torchvision:resnet18(resnet18.pth, sha256 ")
    assert ext.normalization == Normalization(size=224, resize_mode="bilinear", channels="rgb", intensity="imagenet")
    feats = ext(torch.rand(5, 1, 28, 28), batch_size=2)
    assert feats.shape == (5, 512) and float(feats.std(0).mean()) > 0


def test_shipped_extractor_matches_its_card():
    need_extractor()
    need_data()
    from medigan_zoo.evaluation.extractor import test_accuracy

    ext = load_feature_extractor()
    assert ext.name == "medmnist_feature_extractor@0.1.0"
    assert ext.normalization == Normalization(size=32, resize_mode="bilinear", channels="rgb", intensity="[0,1]")
    recorded = json.loads((EXTRACTOR / "docs" / "test_accuracy.json").read_text())
    measured = test_accuracy(ext.module, DATA_DIR)
    for name, figures in recorded.items():
        assert measured[name]["class_accuracy"] == pytest.approx(figures["class_accuracy"], abs=0.003), name
    assert measured["pneumoniamnist"]["class_accuracy"] > 0.8
    scripted = torch.jit.load(str(EXTRACTOR / "models" / "model.ts"))
    x = torch.rand(4, 3, 32, 32)
    assert torch.allclose(scripted.features(x), ext.module.features(x), atol=1e-5)


# --- writing results ----------------------------------------------------------------------------------

def test_card_markers_and_metric_merge():
    table = "| metric |"
    fresh = card_with_metrics("# Card\n\n## Metrics\n\nnotes\n\n## Usage\n", table)
    assert fresh == f"# Card\n\n## Metrics\n\n{MARK_START}\n{table}\n{MARK_END}\n\nnotes\n\n## Usage\n"
    again = card_with_metrics(fresh, "| new |")
    assert again.count(MARK_START) == 1 and "| new |" in again and "| metric |" not in again and "notes" in again
    appended = card_with_metrics("# Card\n\nno metrics section\n", table)
    assert appended.endswith(f"## Metrics\n\n{MARK_START}\n{table}\n{MARK_END}\n")
    old = [{"name": "FID", "value": 9.0, "direction": "lower"}, {"name": "SSIM", "value": 0.4, "direction": "higher"},
           {"name": "FID", "value": 8.0, "direction": "lower"}]
    new = [metric_entry("FID", 1.23456789, "lower", seed=0), metric_entry("recall", 0.5, "higher")]
    merged = merge_metrics(old, new)
    assert [m["name"] for m in merged] == ["FID", "SSIM", "recall"] and merged[0]["value"] == 1.23457
    assert merged[0]["zoo_version"] and merged[0]["seed"] == 0
    with pytest.raises(ValueError):
        metric_entry("X", 1.0, "up")


def test_write_results_keeps_developer_text_and_validates(toy_bundle):
    entries = [metric_entry("FID", 12.5, "lower", num_samples=10, command="c"),
               metric_entry("realism_AUC", float("nan"), "lower")]  # non-finite values are not written
    write_results(toy_bundle, entries)
    meta = json.loads((toy_bundle / "configs" / "metadata.json").read_text())
    metrics = meta["medigan_zoo"]["metrics"]
    assert [(m["name"], m["value"]) for m in metrics] == [("FID", 12.5), ("SSIM", 0.5)]
    assert schema_problems(meta["medigan_zoo"], ZOO_BLOCK_SCHEMA) == []
    card = (toy_bundle / "docs" / "README.md").read_text()
    assert "Written by the bundle developer." in card and "Developer note kept." in card and "## Other" in card
    assert card.index("## Metrics") < card.index(MARK_START) < card.index("| FID | 12.5 |") < card.index(MARK_END)
    assert (toy_bundle / "configs" / "metadata.json").read_text().startswith('{\n  "version"')  # indent kept


# --- whole runs on the toy bundle ----------------------------------------------------------------------

def _snapshot(bundle: Path):
    return {p: p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()}


def test_evaluate_bundle_is_deterministic_and_dry_run_writes_nothing(toy_bundle):
    need_data()
    need_extractor()
    before = _snapshot(toy_bundle)
    kwargs = dict(metrics="all", num_samples=128, seed=3, train_split="val", classifier_epochs=1,
                  downstream_samples=64, write=False, log=lambda *a: None)
    first = evaluate_bundle(toy_bundle, **kwargs)
    second = evaluate_bundle(toy_bundle, **kwargs)
    assert first.values() == second.values()
    assert _snapshot(toy_bundle) == before and not first.written
    values = first.values()
    assert set(values) >= {"FID", "FID_ratio", "precision", "recall", "density", "coverage", "realism_AUC",
                           "CLF.trained_on_real.accuracy", "CLF.trained_on_fake.accuracy",
                           "CLF.trained_on_real_and_fake.accuracy", "CLF_delta", "NN_L2.synthetic_to_train",
                           "NN_L2.real_test_to_train", "NN_L2_ratio"}
    assert values["FID"] > 5 and values["FID_ratio"] < 0.5 and values["realism_AUC"] > 0.8  # blurred noise is bad
    assert values["CLF_delta"] == pytest.approx(values["CLF.trained_on_real_and_fake.accuracy"]
                                                - values["CLF.trained_on_real.accuracy"], abs=2e-6)
    fid = next(m for m in first.metrics if m["name"] == "FID")
    assert fid["reference_split"] == "pneumoniamnist.npz:test" and fid["num_samples"] == 128 and fid["seed"] == 3
    assert fid["feature_extractor"] == "medmnist_feature_extractor@0.1.0"
    assert fid["normalization"] == "[0,1], gray->RGB, resize 28x28 -> 32x32 bilinear"
    assert fid["command"].startswith("medigan-zoo evaluate toy_chest_evalgan --num_samples 128 --seed 3")
    other_seed = evaluate_bundle(toy_bundle, metrics="fid", num_samples=128, seed=4, write=False, log=lambda *a: None)
    assert other_seed.values()["FID"] != values["FID"]


def test_evaluate_3d_bundle(tmp_path):
    need_data()
    need_extractor()
    bundle = make_toy_bundle(tmp_path, name="toy_adrenal_evalgan", dims=3)
    report = evaluate_bundle(bundle, metrics="all", num_samples=64, seed=0, train_split="val", classifier_epochs=1,
                             write=False, log=lambda *a: None)
    values = report.values()
    assert "CLF_delta" not in values  # unconditional: no downstream gain
    assert values["FID"] > 0 and 0 <= values["realism_AUC"] <= 1 and values["NN_L2_ratio"] > 0
    fid = report.metrics[0]
    assert fid["reference_split"] == "adrenalmnist3d.npz:test" and "3 slices/axis" in fid["normalization"]
    realism = next(m for m in report.metrics if m["name"] == "realism_AUC")
    assert realism["normalization"].startswith("[-1,1], resize to 16x16x16")


def test_evaluate_images_api():
    need_extractor()
    real = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    report = evaluate_images(real, real.flip(-1), metrics="fid,prdc", seed=0)
    assert report.values()["FID"] >= 0 and report.values()["precision"] > 0.5


def test_cli_dry_run_and_write(toy_bundle):
    need_data()
    need_extractor()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    base = [sys.executable, "-m", "medigan_zoo", "--bundle_dirs", str(toy_bundle.parent), "--include_builtin",
            "False", "evaluate", "toy_chest_evalgan", "--metrics", "fid,prdc", "--num_samples", "64"]
    before = _snapshot(toy_bundle)
    out = subprocess.run(base + ["--dry_run"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "| FID |" in out.stdout and "dry run: no file was changed" in out.stdout
    assert _snapshot(toy_bundle) == before
    out = subprocess.run(base + ["--json"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["written"] and {m["name"] for m in report["metrics"]} == {"FID", "precision", "recall", "density",
                                                                          "coverage"}
    meta = json.loads((toy_bundle / "configs" / "metadata.json").read_text())
    fid = [m for m in meta["medigan_zoo"]["metrics"] if m["name"] == "FID"]
    assert len(fid) == 1 and fid[0]["value"] != 99.0
    assert fid[0]["command"] == "medigan-zoo evaluate toy_chest_evalgan --metrics fid,prdc --num_samples 64 --seed 0"
    # the ranking reads the new value (direction-aware)
    from medigan_zoo import Generators

    ranked = Generators(bundle_dirs=str(toy_bundle.parent), include_builtin=False).rank_models_by_performance(
        metric="FID")
    assert ranked[0]["FID"] == fid[0]["value"]
    bad = subprocess.run(base + ["--colour", "red"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "unknown option(s) --colour" in bad.stderr
