"""Layer 2: samplers (seeds and conditions in, images out) that bundle configs instantiate.

Configs name them by their historic paths ``medigan_zoo.sampling`` and ``medigan_zoo.diffusion`` (kept as re-export
modules, also inside shipped ``model.ts`` archives)."""
