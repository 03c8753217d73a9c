"""A foreign bundle run through its own workflow: MONAI's ``ConfigWorkflow`` with the bundle's run id, once per
sample, and the images its own savers write read back as the sample.

For bundles the zoo's fast path does not understand (docs/foreign_bundles.md, "Own workflow"), the zoo runs what
``python -m monai.bundle run RUN_ID`` runs, with only safe overrides (:func:`medigan_zoo.catalog.foreign.own_workflow`
decides them, statically):

* ``bundle_root`` (the bundle) and, when the config has them, ``device``, ``output_dir`` (a fresh folder per run),
  ``num_samples`` (1) and ``seed`` (the sample's seed). The run's working folder is that fresh folder too, so a
  saver writing to ``./`` (MONAI's default) writes there.
* Seeding: with a ``seed`` id, the bundle seeds itself (its ``initialize`` runs, as under ``monai.bundle run``);
  in every case torch, numpy and random are seeded with the sample's seed before the run, and their states are
  restored after it, so the process's own random streams are untouched.

Sample ``i`` is the first image file (PNG, JPEG or NIfTI, by name) the run writes, read with MONAI's ``LoadImage``
(MONAI's ``(C, x, y[, z])`` order, as the bundle's saver wrote it). 8- and 16-bit files are mapped from their full
range onto the output's ``value_range`` (so the zoo's file of the same format has the saver's pixel values);
floating-point files (NIfTI) are taken as they are. One run at a time per process (a lock): a run changes the working
folder.
"""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import nn

from medigan_zoo.core.errors import GenerationError
from medigan_zoo.runtime.imports import bundle_on_sys_path

#: what the zoo collects from a run (lower-case suffixes)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".nii", ".nii.gz")
_RUN_LOCK = threading.RLock()


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """torch (CPU and CUDA), numpy and random seeded with ``seed`` inside the block, their states restored after."""
    np_state, py_state = np.random.get_state(), random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % 2 ** 32)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


@contextlib.contextmanager
def _working_folder(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _images_in(folder: Path) -> List[Path]:
    """Image files under ``folder`` (recursively), by path."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))


def read_saved(path: Path, value_range: Tuple[float, float]) -> torch.Tensor:
    """A file a MONAI saver wrote, as ``(C, x, y[, z])`` float32 in ``value_range`` (module docstring)."""
    from monai.transforms import LoadImage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = LoadImage(image_only=True, ensure_channel_first=True)(str(path))
    array = np.asarray(image.array if hasattr(image, "array") else image)
    if np.issubdtype(array.dtype, np.integer) or path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        full = 65535.0 if array.dtype in (np.uint16, np.int32) and array.max() > 255 else 255.0
        low, high = value_range
        return torch.as_tensor(low + array.astype(np.float64) / full * (high - low), dtype=torch.float32)
    return torch.as_tensor(array, dtype=torch.float32)


class OwnWorkflowSampler(nn.Module):
    """Seeds in, images out, each by one run of the bundle's own workflow (module docstring).

    Args:
        bundle_dir: the bundle root.
        config_file: its inference config (``.json``/``.yaml``/``.yml``).
        run_id: the id ``monai.bundle run`` runs.
        overrides: zoo role -> the bundle's id, from the verdict (``output_dir``, ``num_samples``, ``seed``,
            ``device``; ``saver`` is the saver's id, for messages).
        device: what the ``device`` id is set to.
        value_range: the output's value range (metadata), for 8/16-bit files.
    """

    def __init__(self, bundle_dir: Path, config_file: Path, run_id: str, overrides: Mapping[str, str],
                 device: torch.device, value_range: Tuple[float, float]):
        super().__init__()
        self.bundle_dir = Path(bundle_dir)
        self.config_file = Path(config_file)
        self.run_id = run_id
        self.ids = dict(overrides)
        self.device = device
        self.value_range = value_range

    def _pairs(self, seed: int, folder: Path) -> Dict[str, Any]:
        pairs: Dict[str, Any] = {"bundle_root": str(self.bundle_dir)}
        if "device" in self.ids:
            pairs[self.ids["device"]] = f"$torch.device('{self.device}')"
        if "output_dir" in self.ids:
            pairs[self.ids["output_dir"]] = str(folder)
        if "num_samples" in self.ids:
            pairs[self.ids["num_samples"]] = 1
        if "seed" in self.ids:
            pairs[self.ids["seed"]] = int(seed)
        return pairs

    def run_once(self, seed: int) -> torch.Tensor:
        """One run of the workflow for ``seed``: the first image it saves, ``(C, x, y[, z])``."""
        from monai.bundle import ConfigWorkflow

        folder = Path(tempfile.mkdtemp(prefix="medigan-zoo-workflow-"))
        path_before = list(sys.path)
        try:
            with _RUN_LOCK, _working_folder(folder), _seeded(int(seed)), bundle_on_sys_path(self.bundle_dir), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    workflow = ConfigWorkflow(config_file=str(self.config_file),
                                              meta_file=str(self.bundle_dir / "configs" / "metadata.json"),
                                              logging_file=False, run_id=self.run_id, workflow_type=None,
                                              **self._pairs(seed, folder))
                    workflow.initialize()
                    workflow.run()
                    workflow.finalize()
                except Exception as err:  # noqa: BLE001 - a bundle's own code raises anything
                    root: BaseException = err
                    while root.__cause__ is not None:  # MONAI wraps the bundle's error: report the bundle's
                        root = root.__cause__
                    first = (str(root).strip().splitlines() or [type(root).__name__])[0]
                    raise GenerationError(
                        f"The own workflow of bundle {self.bundle_dir.name!r} (run id {self.run_id}, "
                        f"{self.config_file.name}) failed for seed {seed}: {type(root).__name__}: {first[:300]}"
                    ) from None
                finally:
                    sys.path[:] = path_before  # ConfigWorkflow.run() leaves the bundle root on sys.path
            files = _images_in(folder)
            if not files:
                raise GenerationError(
                    f"The own workflow of bundle {self.bundle_dir.name!r} (run id {self.run_id}) ran but its saver "
                    f"`{self.ids.get('saver', '?')}` wrote no {'/'.join(s.lstrip('.').upper() for s in IMAGE_SUFFIXES)}"
                    " file into its output folder; the zoo has nothing to collect.")
            return read_saved(files[0], self.value_range)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def forward(self, seeds: torch.Tensor, **conditions: Any) -> torch.Tensor:
        """``seeds``: (B,) per-sample seeds -> (B, C, x, y[, z]) float32 (MONAI's order)."""
        if conditions:
            raise GenerationError(f"bundle {self.bundle_dir.name!r} runs through its own workflow, which takes no "
                                  f"zoo conditions (got {sorted(conditions)}).")
        images = [self.run_once(int(s)) for s in torch.as_tensor(seeds).reshape(-1).tolist()]
        shapes = {tuple(i.shape) for i in images}
        if len(shapes) > 1:
            raise GenerationError(f"The own workflow of bundle {self.bundle_dir.name!r} saved images of different "
                                  f"shapes {sorted(shapes)}; the zoo writes one shape per run.")
        return torch.stack(images)


def guarantee(run_id: str, overrides: Mapping[str, str], seeding: str) -> str:
    """The manifest's sentence on how sample ``i`` is made and seeded by the own-workflow route."""
    count = f" with `{overrides['num_samples']}` = 1" if "num_samples" in overrides else ""
    seed = (f"its `{overrides['seed']}` id set to sample_seed(seed, i) and " if "seed" in overrides else "")
    return (f"{seeding}: sample i is the first image the bundle's own workflow (monai.bundle ConfigWorkflow, run id "
            f"{run_id}{count}) saves in a run of its own, with {seed}torch, numpy and random seeded with "
            "sample_seed(seed, i) before the run")


def weights_of(bundle_dir: Path, config: Mapping[str, Any], config_file: Path) -> Path:
    """The file whose sha256 identifies the run's weights: the first weights file the config names that exists,
    else the inference config itself."""
    from medigan_zoo.catalog.foreign import weight_paths

    found: Optional[Path] = next((bundle_dir / p for p in weight_paths(config) if (bundle_dir / p).is_file()), None)
    return found or config_file
