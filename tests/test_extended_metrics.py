"""The evaluation's model-separating metrics on tiny inputs where the right answer is known: KID (unbiased, zero for
one distribution), bootstrap intervals, MS-SSIM diversity, near-copy dedup, membership inference, condition
fidelity, 2.5D plane FID and the cross-validated realism test; and their directions (catalog/metrics.py)."""
from __future__ import annotations

import pytest
import torch

from medigan_zoo.catalog.metrics import metric_direction
from medigan_zoo.evaluation.bootstrap import bootstrap_ci
from medigan_zoo.evaluation.classifiers import TrainConfig
from medigan_zoo.evaluation.condition_fidelity import condition_fidelity
from medigan_zoo.evaluation.data import RealData
from medigan_zoo.evaluation.dedup import NEAR_COPY_RMSE, deduplicated, near_copies
from medigan_zoo.evaluation.diversity import diversity, mean_pairwise_ms_ssim, ms_ssim_settings
from medigan_zoo.evaluation.evaluate import deterministic
from medigan_zoo.evaluation.fid import fid_from_features
from medigan_zoo.evaluation.kid import kid_from_features, mmd2_unbiased
from medigan_zoo.evaluation.membership import membership_inference
from medigan_zoo.evaluation.planes import central_plane, plane_fids
from medigan_zoo.evaluation.realism import StrongC2ST, realism_auc_cv


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_kid_is_unbiased_where_fid_is_not():
    """Two samples of one distribution: KID averages ~0 at 20 per side; FID is far above 0 at that size."""
    kids, fids = [], []
    for seed in range(20):
        a, b = torch.randn(20, 8, generator=gen(seed)), torch.randn(20, 8, generator=gen(100 + seed))
        kids.append(kid_from_features(a, b, num_subsets=1, seed=seed))
        fids.append(fid_from_features(a, b))
    mean_kid = sum(kids) / len(kids)
    spread = torch.tensor(kids).std().item() / len(kids) ** 0.5
    assert abs(mean_kid) < 3 * spread  # unbiased: the mean is within its standard error of 0
    assert min(fids) > 1.0  # FID at 20 samples in 8-d is biased well above 0
    shifted = kid_from_features(torch.randn(200, 8, generator=gen(1)) + 1.0, torch.randn(200, 8, generator=gen(2)))
    assert shifted > 20 * abs(mean_kid) + 0.05


def test_mmd2_unbiased_matches_the_definition():
    x, y = torch.randn(5, 3, generator=gen(3)).double(), torch.randn(6, 3, generator=gen(4)).double()

    def k(a, b):
        return (float(a @ b) / 3 + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(6) for j in range(6) if i != j) / 30
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(6)) / 30
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-9)


def test_bootstrap_interval_covers_the_mean_and_narrows_with_samples():
    small = torch.randn(50, generator=gen(5)) + 3.0
    large = torch.randn(5000, generator=gen(6)) + 3.0
    ci_small = bootstrap_ci(lambda v: float(v.mean()), [small], 200, seed=0)
    ci_large = bootstrap_ci(lambda v: float(v.mean()), [large], 200, seed=0)
    assert ci_small["ci_low"] < float(small.mean()) < ci_small["ci_high"]
    assert ci_large["ci_low"] < 3.0 < ci_large["ci_high"]
    assert (ci_large["ci_high"] - ci_large["ci_low"]) < (ci_small["ci_high"] - ci_small["ci_low"]) / 4
    assert ci_small == bootstrap_ci(lambda v: float(v.mean()), [small], 200, seed=0)  # seeded
    assert ci_small["num_resamples"] == 200


def test_ms_ssim_settings_fit_small_images():
    assert ms_ssim_settings((28, 28))["kernel_size"] == 7
    assert ms_ssim_settings((16, 16))["kernel_size"] == 3
    assert ms_ssim_settings((28, 28, 28))["kernel_size"] == 7
    with pytest.raises(ValueError, match="at least 12 px"):
        ms_ssim_settings((8, 8))


def test_diversity_ratio_flags_template_like_samples():
    real = torch.rand(40, 1, 28, 28, generator=gen(7))
    template = torch.rand(1, 1, 28, 28, generator=gen(8))
    collapsed = (template + 0.02 * torch.rand(40, 1, 28, 28, generator=gen(9))).clamp(0, 1)
    assert mean_pairwise_ms_ssim(collapsed, 100) > 0.9
    res = diversity(collapsed, real, num_pairs=100)
    assert res["ratio"] < 0.2 and list(res["per_condition"]) == ["all"]
    varied = diversity(torch.rand(40, 1, 28, 28, generator=gen(10)), real, num_pairs=100)
    assert varied["ratio"] == pytest.approx(1.0, abs=0.15)
    # per condition: class 1 collapsed, class 0 as varied as real
    syn = torch.cat([torch.rand(20, 1, 28, 28, generator=gen(11)), collapsed[:20]])
    labels = torch.tensor([0] * 20 + [1] * 20)
    per = diversity(syn, real, labels, torch.arange(40) % 2, num_pairs=100)["per_condition"]
    assert per["0"]["ratio"] > 0.8 > 0.2 > per["1"]["ratio"]


def test_dedup_drops_exactly_the_near_copies():
    train = torch.rand(30, 1, 16, 16, generator=gen(12))
    fresh = torch.rand(10, 1, 16, 16, generator=gen(13))
    copies = (train[[3, 7]] + (2 / 255) * torch.randn(2, 1, 16, 16, generator=gen(14))).clamp(0, 1)
    test = torch.cat([fresh[:5], copies, fresh[5:]])
    assert near_copies(test, train).nonzero().flatten().tolist() == [5, 6]
    kept = deduplicated(RealData(test, torch.arange(12), "x:test"), RealData(train, None, "x:train"))
    assert len(kept) == 10 and kept.labels.tolist() == [0, 1, 2, 3, 4, 7, 8, 9, 10, 11]
    assert kept.name == "x:test-dedup(2 near copies of train dropped)"
    assert NEAR_COPY_RMSE == 0.02


def test_membership_inference_sees_copied_training_images_only():
    train = torch.rand(40, 1, 8, 8, generator=gen(15))
    held_out = torch.rand(40, 1, 8, 8, generator=gen(16))
    leaky = membership_inference(train + 0.01, train, held_out, num_resamples=50)
    assert leaky["auc"] > 0.99 and leaky["ci_low"] > 0.9
    private = membership_inference(torch.rand(200, 1, 8, 8, generator=gen(17)), train, held_out, num_resamples=50)
    assert abs(private["auc"] - 0.5) < 0.2 and private["ci_low"] < 0.5 < private["ci_high"]


def _two_class_images(n: int, seed: int):
    labels = torch.arange(n) % 2
    images = 0.1 * torch.rand(n, 1, 16, 16, generator=gen(seed))
    images[labels == 1, :, :8] += 0.8  # class 1: bright top half
    return images, labels


def test_condition_fidelity_recovers_requested_labels():
    train_x, train_y = _two_class_images(64, 18)
    test_x, test_y = _two_class_images(32, 19)
    syn_x, syn_y = _two_class_images(32, 20)
    cfg = TrainConfig(epochs=4, size=16)
    with deterministic(0, 1):
        good = condition_fidelity(train_x, train_y, test_x, test_y, syn_x, syn_y, 2, config=cfg)
        wrong = condition_fidelity(train_x, train_y, test_x, test_y, syn_x, 1 - syn_y, 2, config=cfg)
    assert good["accuracy_real_test"] > 0.9 and good["accuracy_synthetic"] > 0.9
    assert wrong["accuracy_synthetic"] < 0.1 and wrong["ratio"] < 0.1
    assert set(good["per_condition"]) == {"0", "1"}


def test_plane_fids_use_each_central_plane():
    from test_metric_groups import tiny_extractor

    vol = torch.zeros(2, 1, 5, 6, 7)
    vol[:, :, 2] = 1.0  # the central axial plane (axis 2, index 2) is bright
    assert central_plane(vol, 2).shape == (2, 1, 6, 7) and float(central_plane(vol, 2).mean()) == 1.0
    assert float(central_plane(vol, 3).mean()) == pytest.approx(1 / 5)
    real = torch.rand(12, 1, 16, 16, 16, generator=gen(21))
    syn = real.clone()
    syn[:, :, :, 7] = 0.0  # the coronal centre plane is black (the other two centre planes lose one line)
    res = plane_fids(real, syn, tiny_extractor())
    assert res["coronal"] > 10 * max(res["axial"], res["sagittal"]) and res["coronal"] > 0.01
    assert res["mean"] == pytest.approx((res["axial"] + res["coronal"] + res["sagittal"]) / 3)


def test_random_shift_moves_each_image_by_at_most_the_shift():
    from medigan_zoo.evaluation.classifiers import random_shift

    x = torch.zeros(6, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    out = random_shift(x, 1, gen(24))
    peaks = [divmod(int(img.flatten().argmax()), 9) for img in out]
    assert all(abs(r - 4) <= 1 and abs(c - 4) <= 1 for r, c in peaks) and len(set(peaks)) > 1
    assert torch.equal(random_shift(x, 0, gen(24)), x)


def test_cross_validated_realism_tells_obvious_fakes_apart_and_scores_every_image():
    real = torch.rand(24, 1, 16, 16, generator=gen(22))
    fake = torch.rand(24, 1, 16, 16, generator=gen(23)) * 0.3  # much darker
    with deterministic(0, 1):
        res = realism_auc_cv(real, fake, config=TrainConfig(epochs=2, size=32), strong=StrongC2ST(folds=3))
    assert res["auc"] > 0.95 and res["n_scored"] == 48 and res["epochs"] == 4 and res["size"] is None
    assert res["ci_low"] <= res["auc"] <= res["ci_high"]


@pytest.mark.parametrize("name,direction", [
    ("KID", "lower"), ("FID_planes", "lower"), ("realism_cv_AUC", "lower"), ("membership_inference.AUC", "lower"),
    ("diversity.MS_SSIM_synthetic", "lower"), ("diversity_ratio", "higher"),
    ("condition_fidelity.accuracy_synthetic", "higher"), ("condition_fidelity_ratio", "higher"),
])
def test_new_metric_directions(name, direction):
    assert metric_direction(name) == direction
