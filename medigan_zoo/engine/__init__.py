"""Generation engine: run any MONAI bundle of the zoo (or a foreign one) and save, stream or return its samples.

    >>> from medigan_zoo.engine import generate, SyntheticDataset
    >>> result = generate("bundles/chest_xray_cdcgan", num_samples=100, output_path="out", seed=0,
    ...                   conditions={"class_label": [0, 1]}, output_format="png")
    >>> ds = SyntheticDataset("bundles/chest_xray_cdcgan", num_samples=10_000, conditions={"class_label": 1})

Sample ``i`` of a run always comes from seed ``medigan_zoo.core.seeding.sample_seed(seed, i)``: the same whatever the
batch size, DataLoader workers or number of processes. See docs/generation.md.
"""
from medigan_zoo.engine.conditions import (
    ConditionPlan,
    resolve_conditions,
    resolve_options,
    split_conditions_and_options,
)
from medigan_zoo.engine.dataset import GenerateFunction, SyntheticDataset, get_generate_function
from medigan_zoo.engine.formats import EXTENSIONS as OUTPUT_FORMATS
from medigan_zoo.engine.runner import GenerationResult, generate
from medigan_zoo.runtime.bundle import load_bundle_sampler, open_bundle
from medigan_zoo.runtime.sampler import BundleSampler, LatentSampler

__all__ = [
    "BundleSampler", "LatentSampler", "load_bundle_sampler", "open_bundle", "ConditionPlan", "resolve_conditions",
    "resolve_options", "split_conditions_and_options",
    "GenerateFunction", "SyntheticDataset", "get_generate_function", "GenerationResult", "generate",
    "OUTPUT_FORMATS",
]
