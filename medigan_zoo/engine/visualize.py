"""``Generators.visualize`` / ``medigan-zoo visualize``: a sample grid with one row per condition value."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from medigan_zoo.core.seeding import sample_seed


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
                      device: Optional[str] = None, scale: int = 2, trusted: Any = None) -> Path:
    """Generate ``num_per_row`` samples per condition value (the same seeds in every row) and save a grid PNG."""
    from medigan_zoo.engine import load_bundle_sampler
    from medigan_zoo.engine.preview import save_sample_grid

    sampler = load_bundle_sampler(bundle_dir, device=device, trusted=trusted)
    seeds = [sample_seed(seed, i) for i in range(num_per_row)]
    images, labels = [], []
    for row in condition_rows(sampler.conditions):
        batch = {k: torch.full((num_per_row,), v) for k, v in row.items() if isinstance(v, int)}
        image = sampler.normalized("image", sampler(seeds, batch)["image"])
        if sampler.spatial_order == "monai" and image.ndim == 4:  # MONAI's (x, y) order: show it as written
            image = image.transpose(-1, -2)
        images.append(image)
        spec_values = {c.name: c.values for c in sampler.conditions}
        labels.append(", ".join(str(spec_values.get(k, {}).get(str(v), v)) for k, v in row.items()) or "")
    return save_sample_grid(torch.cat(images), output_path, nrow=num_per_row,
                            row_labels=labels if any(labels) else None, scale=scale)
