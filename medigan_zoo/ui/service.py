"""What each panel of the web UI does, through the zoo's Python API (no gradio here).

Search and model pages read the index (``Generators.search`` / ``get_model_info``: no torch). Generation is
``medigan_zoo.engine.generate`` with a loaded sampler kept between requests (as ``Generators.get_generate_function``
does), so a batch made in the page is the batch ``medigan-zoo generate`` makes with the same seed, conditions and
options, files, manifest and synthetic labels included. Compare draws ``engine.visualize``'s grid; interpolation is
``engine.interpolation.interpolate``. Every bad input raises the zoo's own ``ZooError`` with its one-line message.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from medigan_zoo.catalog.model_info import ModelInfo
from medigan_zoo.core.errors import GenerationError, ZooError
from medigan_zoo.ui import cards
from medigan_zoo.ui.settings import UISettings

ANY = "any"


@dataclass
class SearchResult:
    """One search hit as the page shows it."""

    info: ModelInfo
    score: float
    thumbnail: str  # data URI of docs/samples.png ("" when absent)

    @property
    def html(self) -> str:
        return cards.card_html(self.info, self.thumbnail, self.score)


@dataclass
class Batch:
    """A generated batch: its folder (files, manifest.jsonl, manifest.json), files in index order, and how it was
    made."""

    model_id: str
    folder: Path
    files: List[Path]
    seed: int
    conditions: Dict[str, Any]
    options: Dict[str, Any]
    dims: int
    value_range: Tuple[float, float]
    seconds: float
    zip_path: Optional[Path] = None
    _arrays: Optional[List[Any]] = field(default=None, repr=False)

    def arrays(self) -> List[Any]:
        """The samples as (C, *spatial) float arrays in [0, 1], read back from the files (cached)."""
        if self._arrays is None:
            import numpy as np

            from medigan_zoo.engine.formats import read_nifti, read_pil

            low, high = self.value_range
            out = []
            for path in self.files:
                if path.name.endswith(".nii.gz"):
                    arr = (read_nifti(path) - low) / (high - low)
                else:
                    pixels = read_pil(path)
                    arr = np.moveaxis(pixels, -1, 0) / (65535.0 if pixels.dtype == np.uint16 else 255.0)
                out.append(np.clip(arr.astype(np.float32), 0.0, 1.0))
            self._arrays = out
        return self._arrays


def _split_of(info: ModelInfo) -> str:
    """The real split a model's metrics compare against (the FID's ``reference_split``, e.g. "x.npz:test")."""
    for metric in info.metrics:
        if metric.reference_split and metric.name.startswith("FID"):
            return metric.reference_split.rsplit(":", 1)[-1]
    return "test"


class ZooService:
    """The web UI's actions over one ``Generators`` index.

    Args:
        generators: the index and defaults (device, trusted folders); default ``Generators()``.
        settings: request bounds.
        work_dir: where generated batches and their zips go (default: a new temporary folder).
    """

    def __init__(self, generators: Any = None, settings: Optional[UISettings] = None,
                 work_dir: Optional[Path] = None):
        if generators is None:
            from medigan_zoo.generators import Generators

            generators = Generators()
        self.gens = generators
        self.settings = settings or UISettings()
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="medigan-zoo-ui-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._samplers: "OrderedDict[Tuple[str, Tuple], Any]" = OrderedDict()
        self._locks: Dict[Tuple[str, Tuple], threading.Lock] = {}
        self._guard = threading.Lock()
        self._real: "OrderedDict[str, Any]" = OrderedDict()
        self._batches: "OrderedDict[str, Batch]" = OrderedDict()

    # --- index (no torch) ---------------------------------------------------------------------------------
    def model_ids(self) -> List[str]:
        """Ids of the generators in the index."""
        return list(self.gens.list_models())

    def info(self, model_id: str) -> ModelInfo:
        return self.gens.get_model_info(model_id)

    def filter_choices(self) -> Dict[str, List[str]]:
        """Values offered by the search filters: modalities, dims and licenses present in the index."""
        infos = [self.info(m) for m in self.model_ids()]
        return {"modality": [ANY] + sorted({code for i in infos for code in i.modality}),
                "dims": [ANY] + sorted({str(i.dims) for i in infos if i.dims}),
                "license": [ANY] + sorted({i.license for i in infos})}

    def search(self, query: str = "", modality: str = ANY, dims: str = ANY, license: str = ANY,
               limit: int = 20) -> List[SearchResult]:
        """Ranked free-text search with filters (``Generators.search``); no text and no filter lists every model."""
        from medigan_zoo.ui.images import thumbnail_uri

        filters = {k: str(v) for k, v in (("modality", modality), ("dims", dims), ("license", license))
                   if v and str(v) != ANY}
        text = (query or "").strip()
        if text or filters:
            hits = [(h.model_id, h.score) for h in self.gens.search(text, filters=filters or None, limit=limit)]
        else:
            hits = [(m, 0.0) for m in self.model_ids()[:limit]]
        results = []
        for model_id, score in hits:
            info = self.info(model_id)
            thumb = thumbnail_uri(info.bundle_dir / "docs" / "samples.png") if info.bundle_dir else ""
            results.append(SearchResult(info=info, score=float(score), thumbnail=thumb))
        return results

    def interpolable(self, model_id: str) -> bool:
        """True for GAN-like models, read from files only (no torch): a zoo bundle whose sampler is
        ``GANSampler``, or a foreign bundle of the ``gan`` family. The loaded sampler has the final word
        (``BundleSampler.has_latents``)."""
        info = self.info(model_id)
        if info.runnable is not None:
            return info.runnable.get("family") == "gan"
        config = info.bundle_dir / "configs" / "inference.json" if info.bundle_dir is not None else None
        return bool(config and config.is_file() and "GANSampler" in config.read_text(encoding="utf-8"))

    # --- models ---------------------------------------------------------------------------------------------
    def sampler(self, model_id: str, options: Optional[Mapping[str, Any]] = None) -> Tuple[Any, Dict[str, Any]]:
        """The loaded sampler of a model for ``options`` (checked by the zoo) and the resolved options; kept in an
        LRU cache of ``settings.max_loaded_models``."""
        from medigan_zoo import engine

        info = self.info(model_id)
        opts = engine.resolve_options(info.options, {k: v for k, v in (options or {}).items() if v is not None},
                                      info.id)
        key = (info.id, tuple(sorted(opts.items())))
        with self._guard:
            if key in self._samplers:
                self._samplers.move_to_end(key)
                return self._samplers[key], opts
        sampler = engine.load_bundle_sampler(self.gens.bundle_dir(info.id), device=self.gens.device or "cpu",
                                             options=opts, trusted=self.gens.trust_bundles)
        with self._guard:
            self._samplers[key] = sampler
            self._locks.setdefault(key, threading.Lock())
            while len(self._samplers) > self.settings.max_loaded_models:
                old, _ = self._samplers.popitem(last=False)
                self._locks.pop(old, None)
        return sampler, opts

    def _lock(self, sampler: Any) -> threading.Lock:
        key = (sampler.model_id, tuple(sorted(dict(sampler.options).items())))
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def check_count(self, name: str, value: Any, maximum: int, minimum: int = 1) -> int:
        """A whole number in [minimum, maximum] or the zoo's one-line error naming the field and the limit."""
        from medigan_zoo.engine.runner import _check_int

        return _check_int(name, value, minimum, maximum)

    def generate(self, model_id: str, seed: Any = 0, num_samples: Any = 16,
                 conditions: Optional[Mapping[str, Any]] = None,
                 options: Optional[Mapping[str, Any]] = None) -> Batch:
        """``engine.generate`` into a fresh folder of the work dir (PNG for 2D models, NIfTI for 3D), with the
        model's conditions and options as the CLI takes them; at most ``settings.max_samples`` samples."""
        from medigan_zoo import engine

        num = self.check_count("num_samples", num_samples, self.settings.max_samples)
        info = self.info(model_id)
        if not info.available:
            self.gens.bundle_dir(info.id)  # raises BundleNotAvailableError saying how to get it
        conds = {k: v for k, v in (conditions or {}).items() if v is not None and v != ""}
        sampler, opts = self.sampler(info.id, options)
        folder = self.work_dir / "batches" / f"{info.id}-{uuid.uuid4().hex[:8]}"
        fmt = "nii.gz" if len(sampler.spatial_shape) == 3 else "png"
        start = time.perf_counter()
        with self._lock(sampler):
            result = engine.generate(sampler.bundle_dir, num_samples=num, output_path=folder, seed=seed,
                                     output_format=fmt, conditions=conds, options=opts, sampler=sampler,
                                     num_workers=0, quiet=False)
        batch = Batch(model_id=info.id, folder=Path(result.output_path), files=list(result.files),
                      seed=int(seed), conditions=conds, options=opts, dims=len(sampler.spatial_shape),
                      value_range=tuple(sampler.value_range), seconds=time.perf_counter() - start)
        self._keep(batch)
        return batch

    def views_folder(self, batch: Batch) -> Path:
        """Where the page's slice images of a 3D batch go (beside the batch, not in it: the zip holds the batch)."""
        return batch.folder.parent / f"{batch.folder.name}.views"

    def _keep(self, batch: Batch) -> None:
        """Remember ``batch`` for download; remove the oldest batches beyond ``settings.max_batches``."""
        with self._guard:
            self._batches[str(batch.folder)] = batch
            while len(self._batches) > self.settings.max_batches:
                _, old = self._batches.popitem(last=False)
                shutil.rmtree(old.folder, ignore_errors=True)
                shutil.rmtree(self.views_folder(old), ignore_errors=True)
                if old.zip_path is not None:
                    old.zip_path.unlink(missing_ok=True)

    def batch(self, folder: Any) -> Batch:
        """A batch made by this server, by its folder (refuses anything else)."""
        batch = self._batches.get(str(folder)) if folder else None
        if batch is None:
            raise ZooError("No generated batch: press Generate first (batches older than the last "
                           f"{self.settings.max_batches} are removed).")
        return batch

    def zip_batch(self, folder: Any) -> Path:
        """The batch's files with manifest.jsonl and manifest.json as one zip (every file labelled synthetic by
        the engine: PNG/NIfTI metadata and the manifests)."""
        batch = self.batch(folder)
        if batch.zip_path is None or not batch.zip_path.is_file():
            path = batch.folder.parent / f"synthetic_{batch.model_id}_seed{batch.seed}_{batch.folder.name[-8:]}.zip"
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for file in sorted(p for p in batch.folder.rglob("*") if p.is_file()):
                    zf.write(file, f"{batch.folder.name}/{file.relative_to(batch.folder).as_posix()}")
            batch.zip_path = path
        return batch.zip_path

    # --- real images --------------------------------------------------------------------------------------------
    def real_images(self, model_id: str, conditions: Optional[Mapping[str, Any]] = None,
                    count: Optional[int] = None) -> Tuple[List[Any], str]:
        """Up to ``count`` real images of the split the model's metrics compare against (with the chosen class when
        the model's class condition matches the data's labels), as (C, *spatial) arrays in [0, 1], and a caption.
        No images and the reason when the shared data folder is absent."""
        from medigan_zoo.evaluation.data import load_reference
        from medigan_zoo.evaluation.evaluate import _class_condition

        info = self.info(model_id)
        split = _split_of(info)
        count = count or self.settings.num_real
        try:
            key = f"{info.id}:{split}"
            data = self._real.get(key)
            if data is None:
                data = load_reference(list(info.zoo.get("dataset") or []), split, spatial_shape=info.spatial_shape)
                self._real[key] = data
                while len(self._real) > 2:
                    self._real.popitem(last=False)
        except ZooError as err:
            return [], f"Real images not shown: {err}"
        images, labels = data.images, data.labels
        name = _class_condition(info, labels)
        chosen = (conditions or {}).get(name) if name else None
        if name and labels is not None:
            spec = next(c for c in info.conditions if c.name == name)
            value = spec.default if chosen in (None, "") else chosen
            if value is not None:
                from medigan_zoo.engine.conditions import resolve_conditions

                value = resolve_conditions([spec], {name: value}, info.id).at(0)[name]
                images = images[labels == int(value)]
        shown = [images[i].numpy() for i in range(min(count, int(images.shape[0])))]
        label = f", {name}={value}" if name and labels is not None else ""
        return shown, f"REAL images from {data.name}{label} (first {len(shown)})"

    # --- compare and interpolation ------------------------------------------------------------------------------
    def compare(self, model_ids: Sequence[str], seed: Any = 0, num_per_row: Any = 6) -> Tuple[List[Tuple[str, Any]],
                                                                                                List[List[str]]]:
        """2..max_compare models on the same seeds: one ``engine.visualize`` grid each (a row per condition value)
        and their metrics side by side."""
        from medigan_zoo.engine.runner import MAX_SEED, _check_int
        from medigan_zoo.engine.visualize import sample_grid_image

        ids = list(dict.fromkeys(self.info(m).id for m in model_ids or []))
        if not 2 <= len(ids) <= self.settings.max_compare:
            raise ZooError(f"Compare takes 2 to {self.settings.max_compare} different models, got {len(ids)}.")
        num = self.check_count("num_per_row", num_per_row, self.settings.max_compare_samples)
        seed = _check_int("seed", seed, 0, MAX_SEED)
        grids = []
        for model_id in ids:
            sampler, _ = self.sampler(model_id)
            with self._lock(sampler):
                grids.append((model_id, sample_grid_image(sampler, num_per_row=num, seed=seed, scale=2)))
        return grids, cards.compare_rows([self.info(m) for m in ids])

    def interpolate(self, model_id: str, seed_a: Any = 0, seed_b: Any = 1, steps: Any = 8,
                    conditions: Optional[Mapping[str, Any]] = None) -> List[Any]:
        """``engine.interpolation.interpolate`` as (C, *spatial) arrays in [0, 1]."""
        from medigan_zoo.engine.interpolation import interpolate

        steps = self.check_count("steps", steps, self.settings.max_interpolation_steps, minimum=2)
        sampler, _ = self.sampler(model_id)
        if not sampler.has_latents:
            raise GenerationError(f"Model {sampler.model_id!r} is not a GAN-like bundle (no latent per sample), so "
                                  "there is nothing to interpolate.")
        conds = {k: v for k, v in (conditions or {}).items() if v is not None and v != ""}
        with self._lock(sampler):
            images = interpolate(sampler, seed_a, seed_b, steps, conds)
        return [x.numpy() for x in images]
