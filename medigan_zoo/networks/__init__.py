"""Generator (and discriminator) networks of the zoo's own bundles, referenced from their configs.

* ``gan2d``: small class-conditional DCGAN for 2D images of 28-64 px (``CondDCGANGenerator``,
  ``ProjectionDiscriminator``); TorchScript-scriptable generator ``(latent, labels) -> image in [-1, 1]``.
* ``wgan``, ``projection_discriminator``, ``gan3d``: the WGAN-GP, projection-critic and 3D GAN networks of other bundles.

Modules are imported by their full name (``medigan_zoo.networks.gan2d.CondDCGANGenerator``), so importing this
package loads nothing heavy.
"""
