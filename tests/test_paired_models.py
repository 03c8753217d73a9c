"""Paired brain MRI models: slice pairing and patient split, networks, training steps, sampler, evaluation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA_DIR, require, zoo_bundle

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from medigan_zoo.training.brain_pairs import (  # noqa: E402
    brain_mri_translation_pairs,
    brain_mri_tumor_pairs,
    study_pairs,
)


def _series(key, patient, date, kind, n=4):
    return {"key": key, "patient": patient, "study_date": date, "series": kind, "n_slices": n}


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """Two patients; patient A has two studies, B one; T2 of study A/2 missing; masks in A/1 and B/1. Each
    series' slice k holds the value 1000 * study + 10 * k + series code, so a pair's origin can be read back."""
    meta, arrays = [], {}
    studies = [("A", "2001", 1), ("A", "2002", 2), ("B", "2003", 3)]
    codes = {"T1pre_reg": 1, "T2_reg": 2, "T1post": 3, "Mask_Tumor": 4}
    k = 0
    for patient, date, study in studies:
        for kind, code in codes.items():
            if kind == "T2_reg" and study == 2:
                continue
            if kind == "Mask_Tumor" and study == 2:
                continue
            key = f"s{k:03d}"
            k += 1
            if kind == "Mask_Tumor":
                vol = np.zeros((4, 8, 8), np.uint16)
                vol[1, 2:6, 2:6] = 1  # a tumor in slice 1 only
            else:
                vol = np.stack([np.full((8, 8), 1000 * study + 10 * s + code, np.uint16) for s in range(4)])
                vol[:, 0, 0] = 0  # so the percentile is not the value itself
            arrays[key] = vol
            meta.append(_series(key, patient, date, kind))
    path = tmp_path / "pgbm_tiny.npz"
    np.savez(path, **arrays)
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def test_study_pairs_match_series_of_one_study_only(tiny_data):
    meta = json.loads(tiny_data.with_suffix(".json").read_text())
    pairs = study_pairs(meta, "T1pre_reg", "T2_reg")
    assert [(p.patient, p.study_date) for p in pairs] == [("A", "2001"), ("B", "2003")]  # A/2002 has no T2
    by_key = {m["key"]: m for m in meta}
    for p in pairs:
        src, tgt = by_key[p.source_key], by_key[p.target_key]
        assert (src["patient"], src["study_date"]) == (tgt["patient"], tgt["study_date"])
        assert (src["series"], tgt["series"]) == ("T1pre_reg", "T2_reg")


def test_translation_pairs_keep_slice_order_and_split_by_patient(tiny_data):
    src, tgt, index = brain_mri_translation_pairs(tiny_data, size=8, split="train", test_patients=("B",),
                                                  min_foreground=0.0, percentile=100)
    assert {i[0] for i in index} == {"A"} and src.shape == tgt.shape == (4, 1, 8, 8)
    test_src, _, test_index = brain_mri_translation_pairs(tiny_data, size=8, split="test", test_patients=("B",),
                                                          min_foreground=0.0, percentile=100)
    assert {i[0] for i in test_index} == {"B"} and len(test_src) == 4
    # slice k of T1 pairs with slice k of T2 of the same study: the values (normalised by the series max) agree
    raw = np.load(tiny_data)
    meta = {m["key"]: m for m in json.loads(tiny_data.with_suffix(".json").read_text())}
    t2 = next(k for k, m in meta.items() if m["series"] == "T2_reg" and m["patient"] == "A")
    for (patient, date, k), target in zip(index, tgt):
        assert target[0, 4, 4] == pytest.approx(raw[t2][k, 4, 4] / raw[t2].max())


def test_tumor_pairs_are_binary_and_aligned(tiny_data):
    img, mask, index = brain_mri_tumor_pairs(tiny_data, size=4, split="all", min_foreground=0.0, percentile=100)
    assert img.shape == mask.shape == (8, 1, 4, 4)  # A/2001 and B/2003 have masks; 4 slices each, 8 -> 4 px
    assert set(np.unique(mask)) == {0.0, 1.0}
    with_tumor = [index[i] for i in range(len(mask)) if mask[i].max() > 0]
    assert [k for _, _, k in with_tumor] == [1, 1]  # slice 1 of each study


def test_pairs_errors_name_the_problem(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        brain_mri_translation_pairs(tiny_data, size=8, split="val")
    with pytest.raises(ValueError, match="no study .* has both 'T1pre_reg' and 'FLAIR_reg'"):
        brain_mri_translation_pairs(tiny_data, size=8, target="FLAIR_reg")
    lonely = tmp_path / "lonely.npz"
    np.savez(lonely, s000=np.zeros((1, 8, 8)))
    with pytest.raises(FileNotFoundError, match="series metadata of lonely.npz is missing"):
        brain_mri_translation_pairs(lonely)


def test_real_data_split_holds_out_whole_patients():
    path = require(DATA_DIR / "brain_mri_pgbm_128.npz", "TCIA brain MRI data")
    _, _, train = brain_mri_translation_pairs(path, size=64, split="train")
    src, tgt, test = brain_mri_translation_pairs(path, size=64, split="test")
    assert {p for p, _, _ in test} == {"PGBM-006", "PGBM-009"}
    assert not {p for p, _, _ in train} & {p for p, _, _ in test}
    # co-registered: the head outlines of T1 and T2 overlap far more than those of mismatched slices
    fg_s, fg_t = src > 0.1, tgt > 0.1
    matched = (fg_s & fg_t).sum((1, 2, 3)) / (fg_s | fg_t).sum((1, 2, 3))
    shifted = (fg_s & np.roll(fg_t, 5, axis=0)).sum((1, 2, 3)) / (fg_s | np.roll(fg_t, 5, axis=0)).sum((1, 2, 3))
    assert matched.mean() > 0.8 and matched.mean() > shifted.mean() + 0.05
    _, masks, tumor = brain_mri_tumor_pairs(path, size=64, split="test")
    assert {p for p, _, _ in tumor} == {"PGBM-008"} and masks.max() == 1.0


def test_networks_shapes_and_torchscript():
    from medigan_zoo.networks.paired import TumorPairGenerator, UNetTranslator

    net = UNetTranslator(channels=(4, 8, 16), strides=(2, 2)).eval()
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    y = net(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert torch.allclose(torch.jit.script(net)(x), y, atol=1e-5)
    gen = TumorPairGenerator(latent_size=8, mask_channels=(8, 4, 4), image_channels=(8, 4, 4)).eval()
    z = torch.randn(3, 16)
    image, mask = gen(z)
    assert image.shape == mask.shape == (3, 1, 16, 16) and set(mask.unique().tolist()) <= {0.0, 1.0}
    scripted = torch.jit.script(gen)
    assert torch.allclose(scripted(z)[0], image, atol=1e-5)
    given = torch.zeros(3, 1, 16, 16)
    assert torch.allclose(scripted.image_from_mask(z, given), gen.image_from_mask(z, given), atol=1e-5)


def _trainer(gen, disc, iteration, batch):
    from monai.engines import GanTrainer

    from medigan_zoo.training.gan import hinge_d_loss, hinge_g_loss

    loader = torch.utils.data.DataLoader([batch], batch_size=None)  # yields the batch as it is
    return GanTrainer(device=torch.device("cpu"), max_epochs=1, train_data_loader=loader, g_network=gen,
                      g_optimizer=torch.optim.Adam(gen.parameters(), 1e-3), g_loss_function=hinge_g_loss,
                      d_network=disc, d_optimizer=torch.optim.Adam(disc.parameters(), 1e-3),
                      d_loss_function=hinge_d_loss, latent_shape=1, iteration_update=iteration, epoch_length=1,
                      decollate=False)


def test_training_steps_update_both_networks():
    from monai.networks.nets import PatchDiscriminator

    from medigan_zoo.networks.paired import TumorPairGenerator, UNetTranslator
    from medigan_zoo.training.paired import Pix2PixIteration, TumorPairDiscriminator, TumorPairIteration

    torch.manual_seed(0)
    gen = UNetTranslator(channels=(4, 8, 16), strides=(2, 2))
    disc = PatchDiscriminator(spatial_dims=2, num_layers_d=2, channels=4, in_channels=2, out_channels=1)
    g_before = [p.detach().clone() for p in gen.parameters()]
    d_before = [p.detach().clone() for p in disc.parameters()]
    batch = {"source": torch.rand(2, 1, 16, 16) * 2 - 1, "target": torch.rand(2, 1, 16, 16) * 2 - 1}
    trainer = _trainer(gen, disc, Pix2PixIteration(l1_weight=10.0), batch)
    trainer.run()
    out = trainer.state.output
    assert {"g_loss", "l1", "d_loss"} <= set(out) and out["g_loss"] == pytest.approx(out["g_adv"] + 10 * out["l1"])
    assert any(not torch.equal(a, b) for a, b in zip(g_before, gen.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, disc.parameters()))

    gen2 = TumorPairGenerator(latent_size=8, mask_channels=(8, 4, 4), image_channels=(8, 4, 4))
    disc2 = TumorPairDiscriminator(pair_channels=(4, 8), mask_channels=(4, 8))
    mask = torch.zeros(4, 1, 16, 16)
    mask[:2, :, 4:8, 4:8] = 1
    m_before = [p.detach().clone() for p in gen2.mask_generator.parameters()]
    trainer = _trainer(gen2, disc2, TumorPairIteration(latent_size=8, translation=0.125),
                       {"image": torch.rand(4, 1, 16, 16) * 2 - 1, "mask": mask})
    trainer.run()
    assert trainer.state.output["dm_loss"] > 0  # two tumor masks: the mask discriminator was trained
    assert any(not torch.equal(a, b) for a, b in zip(m_before, gen2.mask_generator.parameters()))


def test_tumor_oversampling_weights():
    from medigan_zoo.training.paired import tumor_oversampling_weights

    records = [{"mask": np.ones((1, 2, 2))}] + [{"mask": np.zeros((1, 2, 2))}] * 3
    w = tumor_oversampling_weights(records, tumor_fraction=0.5)
    assert float(w[0]) == pytest.approx(0.5) and float(w[1:].sum()) == pytest.approx(0.5)
    assert torch.equal(tumor_oversampling_weights(records[1:]), torch.ones(3))  # no tumor: uniform


def test_mask_pair_sampler_is_seeded_per_sample_and_keeps_user_masks():
    from medigan_zoo.networks.paired import TumorPairGenerator
    from medigan_zoo.samplers.mask_pairs import MaskPairSampler

    torch.manual_seed(0)
    gen = TumorPairGenerator(latent_size=8, mask_channels=(8, 4, 4), image_channels=(8, 4, 4)).eval()
    sampler = MaskPairSampler(gen, [16])
    both = sampler(torch.tensor([5, 6]))
    one = sampler(torch.tensor([6]))
    assert torch.allclose(both["image"][1:], one["image"], atol=1e-6) and torch.equal(both["mask"][1:], one["mask"])
    assert both["image"].min() >= 0 and both["image"].max() <= 1
    user = torch.zeros(2, 1, 16, 16)
    user[0, :, 3:9, 3:9] = 1
    out = sampler(torch.tensor([5, 6]), inputs={"mask": user})
    assert torch.equal(out["mask"], user) and not torch.allclose(out["image"], both["image"])
    with pytest.raises(ValueError, match="1 masks for 2 seeds"):
        sampler(torch.tensor([5, 6]), inputs={"mask": user[:1]})


def test_translation_scores_and_dice():
    from medigan_zoo.evaluation.paired import SegConfig, dice_score, segmentation_gain, translation_scores

    y = torch.rand(3, 1, 16, 16)
    same = translation_scores(y, y)
    assert same["SSIM"] == pytest.approx(1.0, abs=1e-4) and same["MAE"] == 0.0
    worse = translation_scores((y + 0.2).clamp(0, 1), y)
    assert worse["SSIM"] < 1 and worse["PSNR"] < 40 and worse["MAE"] > 0.05

    class Oracle(torch.nn.Module):  # predicts the tumor where the image is bright
        def forward(self, x):
            return torch.cat([-x, x], 1)

    images = torch.zeros(2, 1, 8, 8)
    images[0, :, 2:4, 2:4] = 1
    assert dice_score(Oracle(), images, (images > 0.5).float()) == pytest.approx(1.0)
    gain = segmentation_gain((images, (images > 0.5).float()), (images, (images > 0.5).float()),
                             (images, (images > 0.5).float()), seeds=(0,),
                             config=SegConfig(channels=(4, 8), strides=(2,), iterations=2, batch_size=2))
    assert set(gain) >= {"SEG.trained_on_real.dice", "SEG.trained_on_synthetic.dice",
                         "SEG.trained_on_real_and_synthetic.dice", "SEG_delta"}
    assert gain["SEG_delta"] == pytest.approx(gain["SEG.trained_on_real_and_synthetic.dice"]
                                              - gain["SEG.trained_on_real.dice"])
    assert "SEG_mask_conditioned_delta" not in gain
    two = segmentation_gain((images, (images > 0.5).float()), (images, (images > 0.5).float()),
                            (images, (images > 0.5).float()), seeds=(0, 1),
                            config=SegConfig(channels=(4, 8), strides=(2,), iterations=2, batch_size=2))
    for name in ("SEG.trained_on_real.dice", "SEG_delta"):
        assert two[f"{name}_ci_low"] <= two[name] <= two[f"{name}_ci_high"]
    with_masks = segmentation_gain((images, (images > 0.5).float()), (images, (images > 0.5).float()),
                                   (images, (images > 0.5).float()), seeds=(0,),
                                   config=SegConfig(channels=(4, 8), strides=(2,), iterations=2, batch_size=2),
                                   mask_conditioned=(images, (images > 0.5).float()))
    assert with_masks["SEG_mask_conditioned_delta"] == pytest.approx(
        with_masks["SEG.trained_on_real_and_mask_conditioned.dice"] - with_masks["SEG.trained_on_real.dice"])


def test_mean_ci_is_the_student_t_interval_and_seg_augmentation_keeps_pairs_aligned():
    from medigan_zoo.evaluation.paired import SegConfig, _random_affine, mean_ci

    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.302653 / 3 ** 0.5, rel=1e-5) and mean - low == high - mean
    assert mean_ci([0.5]) == (0.5, 0.5, 0.5)
    mask = torch.zeros(8, 1, 32, 32)
    mask[:, :, 10:20, 12:22] = 1
    x, y = _random_affine(mask.clone(), mask.clone(), torch.Generator().manual_seed(0), SegConfig())
    assert set(y.unique().tolist()) <= {0.0, 1.0} and not torch.equal(y, mask)
    assert ((x > 0.5).float() != y).float().mean() < 0.01  # the image moved with its mask


def test_images_for_masks_keep_the_masks_and_are_seeded_per_mask():
    from medigan_zoo.evaluation.paired import images_for_masks
    from medigan_zoo.networks.paired import TumorPairGenerator

    torch.manual_seed(0)
    gen = TumorPairGenerator(latent_size=8, mask_channels=(8, 4, 4), image_channels=(8, 4, 4)).eval()
    masks = torch.zeros(5, 1, 16, 16)
    masks[1:3, :, 4:8, 4:8] = 1
    images = images_for_masks(gen, masks, seed=3, batch_size=2)
    assert images.shape == masks.shape and 0 <= float(images.min()) and float(images.max()) <= 1
    again = images_for_masks(gen, masks[:3], seed=3, batch_size=3)  # batch size does not change sample i
    assert torch.allclose(images[:3], again, atol=1e-6)
    assert not torch.allclose(images[1], images[2])  # same mask, other seed


TRANSLATOR = zoo_bundle("brain_mri_t1_to_t2_pix2pix")


def test_translation_bundle_generates_from_png_folder_and_nifti_volume_with_geometry(tmp_path):
    """The real T1 -> T2 bundle through the engine: a folder of its example PNGs (one output per input, the
    manifest records each input's sha256) and a NIfTI volume of 64x64 slices (outputs keep the slice geometry)."""
    import hashlib

    import nibabel as nib

    from medigan_zoo.engine import generate

    require(TRANSLATOR / "models" / "model.pt", "trained weights of the translation draft")
    examples = sorted((TRANSLATOR / "docs" / "example_inputs").glob("*.png"))
    result = generate(TRANSLATOR, None, tmp_path / "png", input_path=TRANSLATOR / "docs" / "example_inputs",
                      quiet=True, num_workers=0, trusted=True)
    assert len(result.files) == len(examples) == 4
    lines = [json.loads(line) for line in (tmp_path / "png" / "manifest.jsonl").read_text().splitlines()]
    lines = [ln for ln in lines if ln.get("inputs")]  # the sample lines (not the run header)
    assert [ln["inputs"]["t1"]["sha256"] for ln in lines] == \
        [hashlib.sha256(p.read_bytes()).hexdigest() for p in examples]
    volume = np.random.default_rng(0).random((64, 64, 2)).astype(np.float32)  # (x, y, z)
    affine = np.diag([0.9, 0.9, 5.0, 1.0])
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "t1.nii.gz"))
    result = generate(TRANSLATOR, None, tmp_path / "nii", input_path=tmp_path / "t1.nii.gz", output_format="nii.gz",
                      quiet=True, num_workers=0, trusted=True)
    second = nib.load(str(result.files[1]))
    assert second.shape[:2] == (64, 64)
    assert np.allclose(second.affine, affine @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]]))


def test_translation_bundle_refuses_a_dicom_series_of_another_size_before_any_work(tmp_path):
    from medigan_zoo.core.errors import ZooError
    from medigan_zoo.engine import generate

    require(TRANSLATOR / "models" / "model.pt", "trained weights of the translation draft")
    series = require(DATA_DIR / "dicom_mri_series", "the TCIA DICOM series")
    with pytest.raises(ZooError, match="64, 64"):
        generate(TRANSLATOR, None, tmp_path / "out", input_path=series, quiet=True, num_workers=0, trusted=True)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.png"))


def test_tumor_iteration_shows_binary_masks_and_seeks_modes():
    """straight_through: the mask discriminator sees the generated masks as {-1, 1} (what the generator outputs),
    yet the mask generator still gets a gradient; mode_seeking: a positive term that reaches the image generator."""
    from medigan_zoo.networks.paired import TumorPairGenerator
    from medigan_zoo.training.paired import TumorPairDiscriminator, TumorPairIteration

    torch.manual_seed(0)
    gen = TumorPairGenerator(latent_size=8, mask_channels=(8, 4, 4), image_channels=(8, 4, 4))
    disc = TumorPairDiscriminator(pair_channels=(4, 8), mask_channels=(4, 8))
    seen = []
    score_mask = disc.score_mask
    disc.score_mask = lambda m: seen.append(m.detach().clone()) or score_mask(m)  # type: ignore[method-assign]
    mask = torch.zeros(4, 1, 16, 16)
    mask[:2, :, 4:8, 4:8] = 1
    m_before = [p.detach().clone() for p in gen.mask_generator.parameters()]
    i_before = [p.detach().clone() for p in gen.image_generator.parameters()]
    iteration = TumorPairIteration(latent_size=8, straight_through=True, mode_seeking=1.0, mask_r1_gamma=1.0)
    trainer = _trainer(gen, disc, iteration, {"image": torch.rand(4, 1, 16, 16) * 2 - 1, "mask": mask})
    trainer.run()
    fakes = [m for m in seen if not torch.equal(m, mask[:2] * 2 - 1)]
    assert fakes and all(set(m.unique().tolist()) <= {-1.0, 1.0} for m in fakes)
    assert trainer.state.output["ms"] > 0 and trainer.state.output["mask_r1"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(m_before, gen.mask_generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(i_before, gen.image_generator.parameters()))
    soft = TumorPairIteration(latent_size=8)
    assert soft.straight_through is False and soft.mode_seeking == 0.0


def _bank(n=5, size=32):
    """``n`` distinct square masks of a ``size`` x ``size`` image (mask k: side 3 + k at a k-dependent place)."""
    bank = torch.zeros(n, 1, size, size)
    for k in range(n):
        bank[k, 0, 8 + k:11 + 2 * k, 6 + 2 * k:9 + 3 * k] = 1
    return bank


def test_mask_bank_is_a_pure_function_of_the_latent_and_never_empty():
    """Same latent, same mask; masks binary and non-empty (also a 1-pixel bank mask under strong deformation); every
    bank mask is reachable (index = floor(Phi(z_0) * N)); with no deformation the bank mask comes back exactly."""
    from medigan_zoo.networks.paired import DeformedMaskBank

    bank = _bank()
    bank[0] = 0
    bank[0, 0, 16, 16] = 1  # a one-pixel tumor: the deformation may erase it, the bank keeps it
    layer = DeformedMaskBank(5, (32, 32), elastic_grid=3, elastic_sd=3.0, max_rotation=1.0).set_masks(bank)
    z = torch.randn(400, layer.latent_used, generator=torch.Generator().manual_seed(0))
    a, b = layer(z), layer(z.clone())
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0.0, 1.0}
    assert (a.flatten(1).amax(1) > 0).all()
    # each of the N bank masks is picked for some latents: with the deformation off (and z_1 < 0: no mirror) the
    # output is exactly a bank mask
    still = DeformedMaskBank(5, (32, 32), max_rotation=0.0, scale_sd=0.0, max_shift=0.0, elastic_sd=0.0).set_masks(bank)
    z0 = torch.zeros(5, still.latent_used)
    z0[:, 0] = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    z0[:, 1] = -1.0
    assert torch.equal(still(z0), bank)
    z0[:, 1] = 1.0  # z_1 > 0 mirrors left-right
    assert torch.equal(still(z0), bank.flip(-1))
    # deformation changes masks, yet they stay near the bank mask they come from (overlap with the source)
    moved = layer(z)
    index = (0.5 * (1 + torch.erf(z[:, 0] / 2 ** 0.5)) * 5).long().clamp(0, 4)
    source = torch.where((z[:, 1] > 0)[:, None, None, None], bank[index].flip(-1), bank[index])
    assert not torch.equal(moved, source)
    assert moved.sum() > 0.4 * source.sum()
    with pytest.raises(ValueError, match="bank size"):
        layer.set_masks(torch.ones(4, 1, 32, 32))
    with pytest.raises(ValueError, match="latent values"):
        layer(torch.zeros(2, 3))


def test_bank_pair_generator_torchscript_and_its_checkpoint_carries_the_bank(tmp_path):
    from medigan_zoo.networks.paired import TumorBankPairGenerator

    torch.manual_seed(0)
    gen = TumorBankPairGenerator(5, latent_size=24, image_channels=(8, 4, 4, 4), spatial_shape=(32, 32),
                                 elastic_grid=2).set_masks(_bank()).eval()
    z = torch.randn(6, 48)
    image, mask = gen(z)
    assert image.shape == mask.shape == (6, 1, 32, 32) and image.abs().max() <= 1
    scripted = torch.jit.script(gen)
    s_image, s_mask = scripted(z)
    assert torch.equal(mask, s_mask) and torch.allclose(image, s_image, atol=1e-6)
    assert torch.allclose(scripted.image_from_mask(z, mask), image, atol=1e-6)
    torch.save(gen.state_dict(), tmp_path / "model.pt")
    fresh = TumorBankPairGenerator(5, latent_size=24, image_channels=(8, 4, 4, 4), spatial_shape=(32, 32),
                                   elastic_grid=2)
    fresh.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert torch.equal(fresh.eval()(z)[1], mask)
    with pytest.raises(ValueError, match="latent_size 8 < the"):
        TumorBankPairGenerator(5, latent_size=8)


def test_tumor_iteration_without_mask_learning_trains_the_image_generator_only():
    """mask_weight 0 (a mask bank): no mask discriminator exists or is asked, the bank is unchanged, the image
    generator and the pair discriminator learn."""
    from medigan_zoo.networks.paired import TumorBankPairGenerator
    from medigan_zoo.training.paired import TumorPairDiscriminator, TumorPairIteration, nonempty_masks

    torch.manual_seed(0)
    records = [{"mask": m} for m in _bank(4, 16)] + [{"mask": torch.zeros(1, 16, 16)}]
    bank = nonempty_masks(records)
    assert bank.shape == (4, 1, 16, 16)
    gen = TumorBankPairGenerator(4, latent_size=8, image_channels=(8, 4, 4), spatial_shape=(16, 16),
                                 elastic_grid=1).set_masks(bank)
    disc = TumorPairDiscriminator(pair_channels=(4, 8), mask_channels=[])
    assert disc.mask is None
    with pytest.raises(ValueError, match="mask_weight 0"):
        disc.score_mask(bank)
    i_before = [p.detach().clone() for p in gen.image_generator.parameters()]
    d_before = [p.detach().clone() for p in disc.parameters()]
    iteration = TumorPairIteration(latent_size=8, mask_weight=0.0, mode_seeking=1.0)
    mask = torch.cat([bank[:2], torch.zeros(2, 1, 16, 16)])
    trainer = _trainer(gen, disc, iteration, {"image": torch.rand(4, 1, 16, 16) * 2 - 1, "mask": mask})
    trainer.run()
    assert trainer.state.output["g_mask"] == 0 and trainer.state.output["dm_loss"] == 0
    assert torch.equal(gen.mask_bank.masks, bank)
    assert any(not torch.equal(a, b) for a, b in zip(i_before, gen.image_generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, disc.parameters()))
    with pytest.raises(ValueError, match="no record has a non-empty mask"):
        nonempty_masks([{"mask": torch.zeros(1, 4, 4)}])
