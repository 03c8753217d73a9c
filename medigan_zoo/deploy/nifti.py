"""The optional NIfTI output of a deploy request: one ``.nii.gz`` per sample with a manifest, from the samples the
generator operator already made (no second forward pass)."""
from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Dict

import numpy as np

from medigan_zoo.core.version import __version__
from medigan_zoo.engine import formats
from medigan_zoo.engine.manifest import LOCK, ManifestPart, ensure_header, file_fields, merge


def write_nifti_folder(folder: Path, job: Any) -> Dict[str, Any]:
    """Write ``job``'s samples to ``folder/sample_<i>.nii.gz`` (``engine.formats.write_nifti``) plus
    ``manifest.json``/``manifest.jsonl``; return ``{"files": count}``."""
    sampler, request = job.sampler, job.request
    folder.mkdir(parents=True, exist_ok=True)
    ensure_header(folder, {
        "synthetic": True,
        "note": "Every file in this folder is SYNTHETIC, made by a generative model; none shows a real patient.",
        "model_id": sampler.model_id, "bundle_name": sampler.name, "version": sampler.version,
        "weights_sha256": sampler.weights_sha256, "zoo_version": __version__, "seed": request.seed,
        "sample_seed": "medigan_zoo.core.seeding.sample_seed(seed, index)", "output_format": "nii.gz",
        "bit_depth": 32, "conditions": job.plan.to_json(), "options": dict(sampler.options),
        "spatial_shape": list(sampler.spatial_shape), "spacing": list(sampler.spacing),
        "value_range": list(sampler.value_range), "spatial_order": "display", "request": request.to_json(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    records = []
    for index, seed, condition, image in zip(job.indices, job.seeds, job.conditions, job.images):
        relative = f"sample_{index:06d}.nii.gz"
        info = formats.SampleInfo(index=index, seed=seed, condition=condition, model_id=sampler.model_id,
                                  model_name=sampler.name, version=sampler.version,
                                  weights_sha256=sampler.weights_sha256, zoo_version=__version__, bit_depth=32,
                                  spacing=tuple(sampler.spacing), options=dict(sampler.options))
        formats.atomic_write(folder / relative, functools.partial(_write, array=image, info=info), suffix=".nii.gz")
        records.append({**file_fields(folder, "file", relative), "index": index, "seed": seed,
                        "condition": dict(condition), "model_id": sampler.model_id, "version": sampler.version,
                        "weights_sha256": sampler.weights_sha256, "zoo_version": __version__, "synthetic": True})
    part = ManifestPart(folder)
    try:
        part.append(records)
    finally:
        part.close()
    merge(folder, own_part=part.path)
    (folder / LOCK).unlink(missing_ok=True)  # the staging folder is this request's alone
    return {"files": len(records)}


def _write(path: Path, array: np.ndarray, info: formats.SampleInfo) -> None:
    formats.write_nifti(path, array, info)
