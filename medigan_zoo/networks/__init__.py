"""Generator (and discriminator) networks of the zoo's own bundles, referenced from their configs.

* ``gan2d``: small class-conditional DCGAN for 2D images of 28-64 px (``CondDCGANGenerator``,
  ``ProjectionDiscriminator``); TorchScript-scriptable generator ``(latent, labels) -> image in [-1, 1]``.
* ``wgan``: upsampling generator and WGAN-GP critic, 2D or 3D, optionally class-conditional.
* ``gan3d``: 3D presets of ``wgan`` for volumetric bundles.
* ``fastgan``: lightweight FastGAN-style class-conditional GAN for 128x128 images (skip-layer excitation,
  conditional batch norm; spectral-norm projection discriminator with minibatch std and a reconstruction head).

Modules are imported by their full name (``medigan_zoo.networks.gan2d.CondDCGANGenerator``), so importing this
package loads nothing heavy.
"""
