"""Bundle config templates: the shared part of the generator bundles' ``inference.json`` once, one ``train.json``
per model family (``cdcgan_train``, ``wgangp_train`` for 2D and 3D, ``ddpm_train``), and the renderer that writes a
bundle's configs from its ``configs/template.json`` (:mod:`medigan_zoo.templates.render`); :func:`new_bundle`
scaffolds a bundle from them. Torch-free."""
from medigan_zoo.templates.render import (
                                          TEMPLATE_FILE,
                                          declared,
                                          load_template,
                                          render,
                                          render_bundle,
                                          rendered_configs,
                                          stale_configs,
                                          template_names,
)
from medigan_zoo.templates.scaffold import new_bundle

__all__ = ["TEMPLATE_FILE", "declared", "load_template", "new_bundle", "render", "render_bundle",
           "rendered_configs", "stale_configs", "template_names"]
