"""``Generators.visualize`` / ``medigan-zoo visualize``: a sample grid with one row per condition value."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import torch


def condition_rows(conditions) -> List[Dict[str, Any]]:
    """One condition dict per grid row: every value of the first categorical condition, defaults for the rest."""
    rows: List[Dict[str, Any]] = [{}]
    for spec in conditions:
        if spec.type == "categorical" and spec.values and len(rows) == 1 and not rows[0]:
            rows = [{spec.name: int(v) if str(v).lstrip("-").isdigit() else v} for v in spec.values]
    for spec in conditions:
        for row in rows:
            if spec.name not in row and spec.default is not None:
                row[spec.name] = spec.default
    return rows


def write_sample_grid(bundle_dir: Path, output_path: Path, num_per_row: int = 8, seed: int = 0,
                      device: Optional[str] = None, scale: int = 2, trusted: Any = None,
                      input_path: Any = None) -> Path:
    """Generate ``num_per_row`` samples per condition value (the same seeds in every row) and save a grid PNG.

    Masks (declared outputs of kind mask) are drawn over their images as coloured overlays. A model with image inputs
    needs ``input_path`` (unless its inputs are all optional): its grid then has a row of the first ``num_per_row``
    inputs above the row of their outputs."""
    from medigan_zoo.engine.preview import synthetic_png_info
    from medigan_zoo.runtime.bundle import load_bundle_sampler

    sampler = load_bundle_sampler(bundle_dir, device=device, trusted=trusted)
    image = sample_grid_image(sampler, num_per_row=num_per_row, seed=seed, scale=scale, input_path=input_path)
    path = Path(output_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, pnginfo=synthetic_png_info())
    return path


def sample_grid_image(sampler: Any, num_per_row: int = 8, seed: int = 0, scale: int = 2, input_path: Any = None):
    """The grid of ``write_sample_grid`` as a PIL image, from an already loaded ``BundleSampler``: samples
    ``0 .. num_per_row - 1`` of base ``seed`` in every row, one row per condition value (the web UI's compare)."""
    from medigan_zoo.engine.preview import sample_grid
    from medigan_zoo.runtime.sample import condition_plan, sample

    info = sampler.info
    mask_name = next((o.name for o in info.outputs if o.is_mask), None) if info.declares_outputs else None
    images: List[torch.Tensor] = []
    masks: List[Any] = []
    labels: List[str] = []
    if info.inputs and (input_path is not None or info.required_inputs):
        from medigan_zoo.engine.runner import _run_inputs

        inputs = _run_inputs(info, input_path, 1, None)
        count = min(num_per_row, len(inputs))
        made = sample(sampler, range(count), condition_plan(sampler), seed, inputs)
        spec = inputs.specs[0]  # the first input given (an optional one may be left out)
        low, high = spec.value_range
        given = inputs.batch(range(count))[spec.name]
        shown = given.float() / max(1.0, float(given.max())) if spec.kind == "mask" else (given - low) / (high - low)
        images += [shown.clamp(0, 1)[:, :1] if shown.shape[1] != made.outputs["image"].shape[1] else shown.clamp(0, 1),
                   made.normalized()]
        masks += [None] * count + (list(made.outputs[mask_name]) if mask_name else [None] * count)
        labels += [f"input {spec.name}", "output"]
        return sample_grid(torch.cat(images), nrow=count, row_labels=labels, scale=scale, masks=masks)
    spec_values = {c.name: c.values for c in sampler.conditions}
    for row in condition_rows(sampler.conditions):
        made = sample(sampler, range(num_per_row), condition_plan(sampler, row), seed)
        images.append(made.normalized())
        masks += list(made.outputs[mask_name]) if mask_name else [None] * num_per_row
        labels.append(", ".join(str(spec_values.get(k, {}).get(str(v), v)) for k, v in row.items()) or "")
    return sample_grid(torch.cat(images), nrow=num_per_row, row_labels=labels if any(labels) else None, scale=scale,
                       masks=masks if mask_name else None)
