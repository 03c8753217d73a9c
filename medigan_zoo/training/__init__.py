"""Training support for the zoo's bundles (used from configs/train.json).

* ``data``: npz files -> records / MONAI Datasets (MedMNIST splits; TCIA brain MRI slices with a patient split).
* ``gan``: conditional GAN training on MONAI's ``GanTrainer`` (hinge loss, DiffAugment translation, sample
  grids during training).
* ``wgan_gp``: WGAN-GP training step (unconditional or class-conditional, 2D or 3D).
* ``fastgan``: FastGAN-style training step (hinge loss, D reconstruction loss, lazy R1, mode seeking).
* ``augment``: DiffAugment (brightness, contrast, translation, cutout) for real and fake images alike.
* ``checkpoint``: time-based full-state checkpoints (models, optimizers, RNGs, iteration) and resume.
* ``diffusion``: DDPM prepare-batch and inferer for class-conditional ``DiffusionModelUNet`` bundles.
* ``weights``: the end of every recipe: batch-norm re-estimation of an averaged generator, ``model.pt`` export.

Modules are imported by their full name, so importing this package loads nothing heavy.
"""
