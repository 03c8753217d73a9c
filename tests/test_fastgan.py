"""FastGAN-style 128x128 networks, DiffAugment, the FastGAN training step and checkpoint/resume (tiny sizes)."""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
pytest.importorskip("ignite")

from medigan_zoo.networks.fastgan import FastGANDiscriminator, FastGANGenerator  # noqa: E402
from medigan_zoo.training.augment import DiffAugment, cutout  # noqa: E402
from medigan_zoo.training.checkpoint import TimedCheckpoint  # noqa: E402
from medigan_zoo.training.fastgan import FastGANIteration  # noqa: E402
from medigan_zoo.training.gan import hinge_d_loss, hinge_g_loss  # noqa: E402

TINY_G = dict(latent_size=8, num_classes=4, channels=(16, 8, 8, 8, 4, 4), embed_size=4, upsample_mode="bilinear",
              double_conv_up_to=8, glu_up_to=16)
TINY_D = dict(in_channels=1, num_classes=4, channels=(4, 4, 8, 8, 8), full_res_stem=True)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_generator_shape_range_and_conditioning():
    from medigan_zoo.networks.fastgan import ConditionalBatchNorm2d

    torch.manual_seed(0)
    gen = FastGANGenerator(**TINY_G)
    for m in gen.modules():  # per-class scales/shifts as after training (they start at zero)
        if isinstance(m, ConditionalBatchNorm2d):
            torch.nn.init.normal_(m.embed.weight, std=0.5)
    gen(torch.randn(8, 8), torch.arange(8) % 4)  # one training-mode pass moves the batch-norm statistics
    gen.eval()
    z = torch.randn(3, 8)
    with torch.no_grad():
        outs = [gen(z, torch.full((3,), k)) for k in range(4)]
    for out in outs:
        assert out.shape == (3, 1, 128, 128) and out.min() >= -1 and out.max() <= 1
    for a in range(4):
        for b in range(a + 1, 4):
            assert float((outs[a] - outs[b]).abs().mean()) > 1e-3, f"classes {a} and {b} give the same image"
    assert not torch.allclose(outs[0][0], outs[0][1]), "two latents gave the same image"


def test_generator_is_scriptable_and_matches_eager():
    gen = FastGANGenerator(**TINY_G).eval()
    z, y = torch.randn(2, 8), torch.tensor([0, 3])
    scripted = torch.jit.script(gen)
    with torch.no_grad():
        assert torch.equal(scripted(z, y), gen(z, y))


def test_generator_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="6 entries"):
        FastGANGenerator(channels=(8, 8, 8))


def test_discriminator_score_and_reconstruction():
    disc = FastGANDiscriminator(**TINY_D)
    x, y = torch.rand(2, 1, 128, 128) * 2 - 1, torch.tensor([1, 2])
    assert disc(x, y).shape == (2,)
    score, recon = disc(x, y, return_recon=True)
    assert score.shape == (2,) and recon.shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="recon=True"):
        FastGANDiscriminator(**TINY_D, recon=False)(x, y, return_recon=True)


def test_minibatch_stddev_sees_a_collapsed_batch():
    from medigan_zoo.networks.fastgan import MinibatchStdDev

    layer = MinibatchStdDev(4)
    same = torch.randn(1, 3, 4, 4).repeat(8, 1, 1, 1)
    varied = torch.randn(8, 3, 4, 4)
    assert layer(same).shape == (8, 4, 4, 4)
    assert float(layer(same)[:, -1].abs().max()) < 1e-3 < float(layer(varied)[:, -1].min())
    assert torch.equal(layer(torch.randn(6, 3, 4, 4))[:, -1], torch.zeros(6, 4, 4))  # 6 % 4 != 0: groups of 1
    disc = FastGANDiscriminator(**TINY_D, mbstd_group=4)
    assert disc(torch.rand(4, 1, 128, 128), torch.arange(4)).shape == (4,)


def test_diffaugment_keeps_shape_is_differentiable_and_is_one_op_for_real_and_fake():
    aug = DiffAugment(brightness=0.3, contrast=0.3, translation=0.125, cutout=0.25)
    real = torch.rand(4, 1, 32, 32) * 2 - 1
    fake = real.clone().requires_grad_(True)
    torch.manual_seed(5)
    a = aug(real)
    torch.manual_seed(5)
    b = aug(fake)
    assert a.shape == real.shape
    assert torch.equal(a, b.detach()), "the same op with the same random draws must treat real and fake alike"
    b.sum().backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    torch.manual_seed(6)
    assert not torch.equal(aug(real), a), "new random draws must change the augmentation"
    assert torch.equal(DiffAugment()(real), real), "all strengths 0 is the identity"
    with pytest.raises(ValueError, match="cutout"):
        DiffAugment(cutout=1.5)


def test_cutout_blanks_one_square_per_image():
    x = torch.zeros(3, 1, 16, 16)
    out = cutout(x, 0.25, background=-1.0)
    assert ((out == -1).sum(dim=(1, 2, 3)) == 16).all()  # a 4x4 square each


class _Engine:
    """The attributes of MONAI's GanTrainer that FastGANIteration reads."""

    def __init__(self, gen, disc):
        from types import SimpleNamespace

        self.state = SimpleNamespace(device=torch.device("cpu"), iteration=16)
        self.non_blocking = False
        self.g_network, self.d_network = gen, disc
        self.g_optimizer = torch.optim.Adam(gen.parameters(), 1e-3)
        self.d_optimizer = torch.optim.Adam(disc.parameters(), 1e-3)
        self.d_loss_function, self.g_loss_function = hinge_d_loss, hinge_g_loss


def test_fastgan_iteration_updates_both_networks_with_r1_and_reconstruction():
    torch.manual_seed(0)
    gen, disc = FastGANGenerator(**TINY_G), FastGANDiscriminator(**TINY_D)
    engine = _Engine(gen, disc)
    g0 = [p.detach().clone() for p in gen.parameters()]
    d0 = [p.detach().clone() for p in disc.parameters()]
    step = FastGANIteration(8, "sequence", augment=DiffAugment(0.2, 0.2, 0.125, 0.25), r1_gamma=0.1, r1_interval=16)
    out = step(engine, {"image": torch.rand(4, 1, 128, 128) * 2 - 1, "sequence": torch.tensor([0, 1, 2, 3])})
    assert set(out) == {"g_loss", "d_loss", "d_real", "d_fake", "recon", "r1", "ms"}
    assert all(torch.isfinite(torch.tensor(v)) for v in out.values()) and out["r1"] > 0 and out["recon"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(g0, gen.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, disc.parameters()))
    assert all(p.requires_grad for p in disc.parameters())


def test_mode_seeking_term_pairs_fakes_of_the_same_label():
    torch.manual_seed(0)
    gen, disc = FastGANGenerator(**TINY_G), FastGANDiscriminator(**TINY_D)
    seen = []
    gen.register_forward_hook(lambda m, args, out: seen.append(args[1].clone()))
    step = FastGANIteration(8, "sequence", mode_seeking=1.0)
    batch = {"image": torch.rand(4, 1, 128, 128) * 2 - 1, "sequence": torch.tensor([0, 1, 2, 3])}
    out = step(_Engine(gen, disc), batch)
    assert out["ms"] > 0 and torch.isfinite(torch.tensor(out["ms"]))
    assert seen[0].tolist() == [0, 1, 0, 1], "the second half repeats the first half's labels"


def _trainer(output_dir: Path, max_epochs: int, interval_s: float = 1e9):
    """A tiny GanTrainer with the recipe's handlers (EMA, TimedCheckpoint); counts the iterations it runs."""
    from ignite.engine import Events
    from ignite.handlers import EMAHandler
    from monai.engines import GanTrainer

    torch.manual_seed(0)
    gen, disc = FastGANGenerator(**TINY_G), FastGANDiscriminator(**TINY_D)
    g_opt, d_opt = torch.optim.Adam(gen.parameters(), 1e-3), torch.optim.Adam(disc.parameters(), 1e-3)
    from torch.utils.data import DataLoader

    items = [{"image": torch.rand(1, 128, 128) * 2 - 1, "sequence": k % 4} for k in range(4)]
    data = DataLoader(items, batch_size=2, shuffle=False)
    ema = EMAHandler(gen, momentum=0.1)
    checkpoint = TimedCheckpoint({"generator": gen, "ema_generator": ema.ema_model, "discriminator": disc,
                                  "g_optimizer": g_opt, "d_optimizer": d_opt}, output_dir, interval_s=interval_s)
    trainer = GanTrainer(device=torch.device("cpu"), max_epochs=max_epochs, epoch_length=2, train_data_loader=data,
                         g_network=gen, g_optimizer=g_opt, g_loss_function=hinge_g_loss, d_network=disc,
                         d_optimizer=d_opt, d_loss_function=hinge_d_loss, latent_shape=8,
                         iteration_update=FastGANIteration(8, "sequence", augment=DiffAugment(translation=0.125)),
                         train_handlers=[ema, checkpoint], decollate=False)
    trainer.ran = 0

    def count(engine):
        engine.ran += 1

    trainer.add_event_handler(Events.ITERATION_COMPLETED, count)
    return trainer, checkpoint


def _states(checkpoint: TimedCheckpoint) -> dict:
    return {name: obj.state_dict() for name, obj in checkpoint.objects.items()}


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_resume_continues_from_the_saved_iteration_with_identical_state(tmp_path):
    first, saver = _trainer(tmp_path, max_epochs=2)
    first.run()  # 4 iterations; the COMPLETED checkpoint holds them
    saved = _states(saver)
    after_save = torch.rand(3)  # what the RNG gives right after the checkpoint
    assert (tmp_path / "checkpoint_latest.pt").is_file() and (tmp_path / "run_log.txt").is_file()

    torch.manual_seed(123)
    second, loader = _trainer(tmp_path, max_epochs=3)
    assert not _equal(_states(loader)["discriminator"], saved["discriminator"])  # fresh weights before resume
    assert loader.resume(tmp_path / "checkpoint_latest.pt", second) == 4
    assert _equal(_states(loader), saved), "resume must restore G, D, EMA G and both optimizers exactly"
    assert torch.equal(torch.rand(3), after_save), "resume must restore the RNG states"
    assert (second.state.iteration, second.state.epoch) == (4, 2)
    second.run()
    assert second.ran == 2 and second.state.iteration == 6, "resume must continue, not restart"
    assert "resumed from" in (tmp_path / "run_log.txt").read_text()


def test_resume_from_mid_epoch_finishes_that_epoch(tmp_path):
    import shutil

    first, saver = _trainer(tmp_path / "a", max_epochs=2, interval_s=0.0)  # a checkpoint after every iteration
    from ignite.engine import Events

    first.add_event_handler(Events.ITERATION_COMPLETED(once=3), lambda e: e.terminate())
    first.run()
    shutil.copy(tmp_path / "a" / "checkpoint_latest.pt", tmp_path / "mid.pt")
    second, loader = _trainer(tmp_path / "b", max_epochs=2)
    assert loader.resume(tmp_path / "mid.pt", second) == 3
    second.run()
    assert second.ran == 1 and second.state.iteration == 4 and second.state.epoch == 2


def test_resume_names_a_missing_checkpoint(tmp_path):
    trainer, saver = _trainer(tmp_path, max_epochs=1)
    with pytest.raises(FileNotFoundError, match="resume_from"):
        saver.resume(tmp_path / "nope.pt", trainer)


def test_max_run_s_ends_the_run_with_a_checkpoint(tmp_path):
    trainer, saver = _trainer(tmp_path, max_epochs=50)
    saver.max_run_s = 1e-9  # reached after the first iteration
    trainer.run()
    assert trainer.ran == 1
    state = torch.load(tmp_path / "checkpoint_latest.pt", map_location="cpu", weights_only=False)
    assert state["iteration"] == 1 and "max_run_s" in (tmp_path / "run_log.txt").read_text()


def test_sample_grid_saver_names_files_by_iteration_when_asked(tmp_path):
    from types import SimpleNamespace

    from medigan_zoo.training.gan import SampleGridSaver

    gen = FastGANGenerator(**TINY_G)
    engine = SimpleNamespace(state=SimpleNamespace(epoch=3, iteration=250))
    SampleGridSaver(gen, 8, 4, tmp_path, per_class=2)(engine)  # default name: by epoch
    SampleGridSaver(gen, 8, 4, tmp_path, per_class=2, name_format="samples_iter_{iteration:06d}.png", scale=1)(engine)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples_epoch_003.png", "samples_iter_000250.png"]
    assert gen.training, "the generator's mode is restored"


def test_generator_64px_unconditional_scriptable():
    gen = FastGANGenerator(latent_size=8, num_classes=1, channels=(16, 8, 8, 8, 4), out_channels=3, embed_size=4,
                           upsample_mode="bilinear", double_conv_up_to=8, glu_up_to=16, image_size=64)
    assert gen.up128 is None and gen.se128 is None
    gen(torch.randn(4, 8))  # training-mode pass without labels (unconditional call)
    gen.eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        out = gen(z)
        assert out.shape == (2, 3, 64, 64) and out.min() >= -1 and out.max() <= 1
        assert torch.equal(out, gen(z, torch.zeros(2, dtype=torch.long)))  # None means class 0
        assert torch.equal(torch.jit.script(gen)(z), out)
    disc = FastGANDiscriminator(in_channels=3, num_classes=1, channels=(4, 4, 8, 8, 8), full_res_stem=True,
                                mbstd_group=2)
    score, recon = disc(out, torch.zeros(2, dtype=torch.long), return_recon=True)
    assert score.shape == (2,) and recon.shape == (2, 3, 16, 16)


def test_generator_rejects_unknown_size_and_channels_for_size():
    with pytest.raises(ValueError, match="image_size"):
        FastGANGenerator(**{**TINY_G, "image_size": 32})
    with pytest.raises(ValueError, match="5 entries"):
        FastGANGenerator(**{**TINY_G, "image_size": 64})  # six channel entries given for a 64 px generator


def test_diffaugment_saturation_changes_colour_only():
    from medigan_zoo.training.augment import saturation

    x = torch.rand(4, 3, 8, 8) * 2 - 1
    y = saturation(x, 0.5, torch.Generator().manual_seed(0))
    assert torch.allclose(y.mean(dim=1), x.mean(dim=1), atol=1e-6)  # grey level kept
    assert not torch.allclose(y, x)
    gray = x[:, :1].expand(-1, 3, -1, -1)
    assert torch.allclose(saturation(gray, 0.5), gray)  # grey images are unchanged
    assert torch.equal(saturation(x, 0.0), x)
    with pytest.raises(ValueError, match="saturation"):
        DiffAugment(saturation=1.5)
