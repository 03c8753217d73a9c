"""Streaming access: a lazy torch Dataset of synthetic samples, and medigan's ``get_generate_function``."""
from __future__ import annotations

import inspect
import operator
import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Union

from torch.utils.data import Dataset

from medigan_zoo.catalog.trust import check_trusted
from medigan_zoo.engine.conditions import resolve_conditions, resolve_options, split_conditions_and_options
from medigan_zoo.engine.runner import MAX_SEED, _check_int, _run_inputs, generate, read_model

if TYPE_CHECKING:  # torch-heavy; loaded on first use
    from medigan_zoo.runtime.sampler import BundleSampler

PathLike = Union[str, Path]


class SyntheticDataset(Dataset):
    """Sample ``i`` of a bundle, made when it is read: ``{"image": (C, *spatial) float32, "seed", "index", ...}``.

    Samples are made ``batch_size`` at a time (the block holding ``i``) and the last ``cache_blocks`` blocks are
    kept, so reading in order costs one forward pass per block and memory does not grow with ``num_samples``.
    Sample ``i`` is the file ``i`` that ``generate`` writes with the same seed and conditions (values in the
    model's value range, tensors in the model's axis order); ``options`` are the model's sampling options (e.g.
    ``{"num_inference_steps": 20}``). The model is loaded on first access in each process,
    so the dataset pickles cheaply into DataLoader workers. Shuffling i.i.d. samples buys nothing and makes every
    read a cache miss; keep ``shuffle=False``.
    """

    def __init__(self, bundle_dir: PathLike, num_samples: Optional[int], seed: int = 0,
                 conditions: Optional[Mapping[str, Any]] = None, device: Optional[str] = None, batch_size: int = 64,
                 cache_blocks: int = 2, start_index: int = 0, options: Optional[Mapping[str, Any]] = None,
                 trusted: Any = None, inputs: Any = None, samples_per_input: int = 1):
        self.trusted = trusted  # extra trust for the bundle's config code (medigan_zoo.catalog.trust)
        self.bundle_dir = Path(bundle_dir).expanduser().resolve()
        info = read_model(self.bundle_dir)
        #: models with image inputs (docs/bundle_contract.md section 5): read and checked now, before any work
        self.inputs = _run_inputs(info, inputs, samples_per_input, None)
        if self.inputs is not None:
            available = self.inputs.num_samples - int(start_index or 0)
            num_samples = available if num_samples is None else min(int(num_samples), available)
        self.num_samples = _check_int("num_samples", num_samples, 1)
        self.seed = _check_int("seed", seed, 0, MAX_SEED)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.cache_blocks = _check_int("cache_blocks", cache_blocks, 1)
        self.start_index = _check_int("start_index", start_index, 0)
        self.device = device
        if device is not None:
            from medigan_zoo.runtime.sampler import resolve_device

            resolve_device(device)  # a bad device fails here, not in the first worker
        check_trusted(self.bundle_dir, trusted)  # fail here, not at the first sample
        self.plan = resolve_conditions(info.conditions, conditions, info.id)
        self.options = resolve_options(info.options, options, info.id)
        self._sampler: Optional[BundleSampler] = None
        self._pid: Optional[int] = None
        self._cache: "OrderedDict[int, Dict[str, Any]]" = OrderedDict()

    def __len__(self) -> int:
        return self.num_samples

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_sampler=None, _pid=None, _cache=OrderedDict())
        return state

    @property
    def sampler(self):
        """The loaded bundle sampler of this process (loaded on first use)."""
        if self._sampler is None or self._pid != os.getpid():
            from medigan_zoo.runtime.bundle import load_bundle_sampler

            self._sampler = load_bundle_sampler(self.bundle_dir, device=self.device, options=self.options,
                                                trusted=self.trusted)
            self._pid = os.getpid()
            self._cache.clear()
        return self._sampler

    def _block(self, block: int) -> Dict[str, Any]:
        cached = self._cache.get(block)
        if cached is not None:
            self._cache.move_to_end(block)
            return cached
        first = self.start_index + block * self.batch_size
        last = min(first + self.batch_size, self.start_index + self.num_samples)
        from medigan_zoo.runtime.sample import sample

        made = sample(self.sampler, range(first, last), self.plan, self.seed, self.inputs)
        entry = {"outs": made.outputs, "seeds": made.seeds, "conds": made.conditions, "first": first}
        self._cache[block] = entry
        while len(self._cache) > self.cache_blocks:
            self._cache.popitem(last=False)
        return entry

    def __getitem__(self, i: int) -> Dict[str, Any]:
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise TypeError(f"dataset indices must be integers, got {i!r} ({type(i).__name__})")
        i = operator.index(i)
        if i < 0:
            i += self.num_samples
        if not 0 <= i < self.num_samples:
            raise IndexError(f"sample {i} out of range for a dataset of {self.num_samples}")
        entry = self._block(i // self.batch_size)
        b = self.start_index + i - entry["first"]
        # clone: an item must not keep the whole block's storage alive (nor ship it to the main process)
        item: Dict[str, Any] = {name: t[b].clone() for name, t in entry["outs"].items()}
        item.update(seed=entry["seeds"][b], index=self.start_index + i, **entry["conds"][b])
        if self.inputs is not None:
            for name, source in self.inputs.record(self.start_index + i).items():
                item[f"{name}_path"] = source["path"]
        return item


class GenerateFunction:
    """A reusable generate call with bound defaults (medigan's ``get_generate_function``).

    Each call makes the next ``num_samples`` samples of the sequence (``start_index`` continues where the previous
    call stopped unless given), so repeated calls give new samples and a fresh function repeats the sequence.
    Without ``output_path`` the samples come back as arrays (``save_images=False``). The model is loaded once.
    Keywords that are not ``generate`` parameters are the model's conditions or sampling options
    (``class_label=1``, ``num_inference_steps=20``), as in medigan.
    """

    def __init__(self, bundle_dir: PathLike, **defaults: Any):
        self.bundle_dir = Path(bundle_dir).expanduser().resolve()
        self.info = read_model(self.bundle_dir)  # fail now on a path that is not a bundle
        self.defaults = self._sorted(defaults)
        check_trusted(self.bundle_dir, self.defaults.get("trusted"))  # fail here, not at the first call
        self.next_index = int(self.defaults.pop("start_index", 0))
        self._sampler: Optional[BundleSampler] = None

    def _sorted(self, kwargs: Mapping[str, Any]) -> Dict[str, Any]:
        """``kwargs`` with model-specific keywords moved into ``conditions`` / ``options``."""
        params = set(inspect.signature(generate).parameters)
        out = {k: v for k, v in kwargs.items() if k in params}
        extra = {k: v for k, v in kwargs.items() if k not in params}
        if extra:
            conditions, options = split_conditions_and_options(self.info, extra)
            out["conditions"] = {**(out.get("conditions") or {}), **conditions}
            out["options"] = {**(out.get("options") or {}), **options}
        return out

    def __call__(self, **overrides: Any):
        kwargs = {"num_samples": 30, **self.defaults}
        for key, value in self._sorted(overrides).items():
            kwargs[key] = {**(kwargs.get(key) or {}), **value} if key in ("conditions", "options") else value
        kwargs.setdefault("save_images", kwargs.get("output_path") is not None)
        start = kwargs.pop("start_index", self.next_index)
        from medigan_zoo.runtime.bundle import load_bundle_sampler
        from medigan_zoo.runtime.sampler import resolve_device

        options = resolve_options(self.info.options, kwargs.get("options"), self.info.id)
        if (self._sampler is None or resolve_device(kwargs.get("device")) != self._sampler.device
                or dict(self._sampler.options) != options):
            self._sampler = load_bundle_sampler(self.bundle_dir, device=kwargs.get("device"), options=options,
                                                trusted=kwargs.get("trusted"))
        result = generate(self.bundle_dir, start_index=start, sampler=self._sampler, **kwargs)
        self.next_index = start + int(kwargs["num_samples"])
        return result


def get_generate_function(bundle_dir: PathLike, **defaults: Any) -> GenerateFunction:
    """A callable that generates with ``bundle_dir`` using ``defaults`` (any ``generate`` argument)."""
    return GenerateFunction(bundle_dir, **defaults)
