"""Training support for the zoo's bundles (used from configs/train.json).

* ``data``: npz files -> records / MONAI Datasets (MedMNIST splits; TCIA brain MRI slices with a patient split).
* ``gan``: conditional GAN training on MONAI's ``GanTrainer`` (hinge loss, DiffAugment translation, EMA
  batch-norm re-estimation, sample grids during training).
* ``wgan_gp``, ``hinge_gan``, ``diffusion``: the training steps of the other bundles.

Modules are imported by their full name, so importing this package loads nothing heavy.
"""
