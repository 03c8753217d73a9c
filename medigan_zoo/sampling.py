"""Historic path of the GAN sampler, named by shipped bundle configs and ``model.ts`` archives: re-exports
:mod:`medigan_zoo.samplers.gan`."""
from medigan_zoo.samplers.gan import GANSampler, prepare_seed_batch, seed_records, seeded_noise

__all__ = ["GANSampler", "prepare_seed_batch", "seed_records", "seeded_noise"]
