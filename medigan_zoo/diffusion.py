"""Historic path of the diffusion sampler, named by shipped bundle configs and ``model.ts`` archives: re-exports
:mod:`medigan_zoo.samplers.diffusion`."""
from medigan_zoo.samplers.diffusion import ClassUNetExport, DiffusionSampler, trace_unet

__all__ = ["ClassUNetExport", "DiffusionSampler", "trace_unet"]
