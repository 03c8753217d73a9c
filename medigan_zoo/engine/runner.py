"""``generate``: a bundle's samples into files (with a manifest), resumable, shardable, overlapped with writing."""
from __future__ import annotations

import contextlib
import copy
import os
import time
from collections import abc, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from medigan_zoo.catalog.model_info import ModelInfo
from medigan_zoo.catalog.trust import check_trusted
from medigan_zoo.core.errors import GenerationError
from medigan_zoo.core.seeding import sample_seed
from medigan_zoo.core.version import __version__
from medigan_zoo.engine import formats
from medigan_zoo.engine.conditions import ConditionPlan, resolve_conditions, resolve_options
from medigan_zoo.engine.formats import EXTENSIONS, RASTER, SampleInfo, atomic_write
from medigan_zoo.engine.manifest import (
    ManifestPart,
    ensure_header,
    file_fields,
    finished,
    merge,
    output_folder,
    remove_unused_folder,
)
from medigan_zoo.runtime.bundle import load_bundle_sampler
from medigan_zoo.runtime.sample import index_batches, sample
from medigan_zoo.runtime.sampler import output_formats, value_range

PathLike = Union[str, Path]
FILE_PREFIX = "sample_"


class FileList(abc.Sequence):
    """The files of a run, computed on access (a million-sample run does not hold a million Paths)."""

    def __init__(self, folder: Path, layout: "Layout", indices: range, output: str = "image"):
        self.folder, self.layout, self.indices, self.output = folder, layout, indices, output

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return self.folder / self.layout.relative(self.indices[i], self.output)

    def __repr__(self) -> str:
        return f"FileList({len(self)} files in {self.folder})"


@dataclass
class GenerationResult:
    """What a ``generate`` run left in ``output_path``.

    ``files`` lists the image file of every sample of the run (written now or found from an earlier run), in index
    order; ``mask_files`` the masks of image+mask models. ``manifest`` is ``manifest.jsonl`` (one JSON line per
    file); ``header`` is ``manifest.json`` (the run's parameters). Under torchrun the counts cover all ranks.
    """

    output_path: Path
    files: Sequence[Path]
    manifest: Path
    num_written: int
    num_skipped: int
    header: Optional[Path] = None
    mask_files: Sequence[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)


#: largest integer a float argument (fire turns ``1e3`` into 1000.0) may stand for exactly
_EXACT_FLOAT_INT = 2 ** 53
#: seeds are 63-bit (torch.Generator.manual_seed)
MAX_SEED = 2 ** 63 - 1


def _check_int(name: str, value: Any, minimum: int, maximum: Optional[int] = None) -> int:
    """``value`` as an int in [minimum, maximum]; a float only when it is a whole number a float holds exactly."""
    ok = False
    if isinstance(value, int) and not isinstance(value, bool):
        ok = True
    elif isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_FLOAT_INT:
        value, ok = int(value), True
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value, ok = int(value), True
    if not ok or value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise GenerationError(f"{name} must be an integer {bound}, got {value!r}.")
    return value


def read_model(bundle_dir: PathLike) -> ModelInfo:
    """The metadata of a generator bundle (cheap: no torch model is built)."""
    from medigan_zoo.catalog.bundle_reader import check_config_json, read_bundle

    bundle_dir = Path(bundle_dir).expanduser()
    if not (bundle_dir / "configs" / "metadata.json").is_file():
        raise GenerationError(f"{bundle_dir} is not a bundle folder: configs/metadata.json is missing.")
    info = read_bundle(bundle_dir)
    check_config_json(bundle_dir)  # malformed configs: one error naming file and line, before monai reads them
    role = info.zoo.get("role", "generator")
    if role != "generator":
        raise GenerationError(f"Bundle {info.id!r} is a {role.replace('_', ' ')}, not a generator; it has no "
                              "samples to generate.")
    return info


def output_names(info: ModelInfo) -> Tuple[str, ...]:
    """Outputs a model makes: the zoo block's ``outputs`` when declared, else "image" (the bundle's ``pred``) plus
    e.g. "mask" when network_data_format declares one (those go into ``image/`` and ``mask/`` folders)."""
    if info.declares_outputs:
        return tuple(o.name for o in info.outputs)
    return ("image",) + tuple(k for k in output_formats(info.monai_metadata) if k not in ("pred", "image"))


def mask_outputs(info: ModelInfo) -> Tuple[str, ...]:
    """The declared outputs of kind mask (written as uint8 label maps, never intensity-scaled)."""
    return tuple(o.name for o in info.outputs if o.is_mask) if info.declares_outputs else ()


def _native_16bit(info: ModelInfo) -> bool:
    pred = output_formats(info.monai_metadata).get("pred") or {}
    low, high = value_range(pred)
    return str(pred.get("dtype", "")).lower() in ("uint16", "int16") or high - low > 255


@dataclass(frozen=True)
class Layout:
    """Where sample ``i`` goes: ``[<output>/][<condition>/]sample_<i:06d><ext>`` under the output folder."""

    fmt: str
    plan: ConditionPlan
    split_by_condition: bool
    outputs: Tuple[str, ...]
    #: declared outputs (zoo block ``outputs``): side by side, ``sample_<i>_<output><ext>``
    paired: bool = False

    def relative(self, index: int, output: str = "image") -> str:
        parts = [output] if len(self.outputs) > 1 and not self.paired else []
        if self.split_by_condition and self.plan.specs:
            parts.append(self.plan.folder(self.plan.at(index)))
        suffix = f"_{output}" if self.paired else ""
        parts.append(f"{FILE_PREFIX}{index:06d}{suffix}{EXTENSIONS[self.fmt]}")
        return "/".join(parts)

    @property
    def pattern(self) -> str:
        """The layout as a pattern, e.g. ``class_label_{class_label}/sample_{index:06d}.png``."""
        parts = ["{output}"] if len(self.outputs) > 1 and not self.paired else []
        if self.split_by_condition and self.plan.specs:
            parts.append("/".join(f"{name}_{{{name}}}" for name in self.plan.names))
        suffix = "_{output}" if self.paired else ""
        parts.append(f"{FILE_PREFIX}{{index:06d}}{suffix}{EXTENSIONS[self.fmt]}")
        return "/".join(parts)


def _write_sample(fmt: str, path: Path, array: Any, info: SampleInfo) -> None:
    """Encode one sample into ``path`` atomically."""
    atomic_write(path, lambda tmp: formats.ENCODERS[fmt](tmp, array, info), suffix=EXTENSIONS[fmt])


def _default_lanes(device: Any) -> int:
    """Threads that each make and write whole batches.

    On CPU, one per core (at most 8), each running the model single-threaded on its own batch: for the small
    networks of this field that beats one multi-threaded forward pass followed by the writes (independent batches
    need no synchronisation, and the writes of one lane overlap the forward passes of the others). On a GPU, 4:
    one forward pass at a time, the others encode and write.
    """
    if getattr(device, "type", "cpu") == "cuda":
        return 4
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


@contextlib.contextmanager
def _single_threaded_torch(enabled: bool):
    """Run torch ops single-threaded inside the block (lanes parallelise instead); restore the setting after."""
    import torch

    before = torch.get_num_threads()
    if enabled and before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def generate(bundle_dir: PathLike, num_samples: Optional[int], output_path: Optional[PathLike] = None, seed: int = 0,
             batch_size: int = 64, output_format: str = "png", conditions: Optional[Mapping[str, Any]] = None,
             split_by_condition: bool = False, device: Optional[str] = None, quiet: bool = False,
             save_images: bool = True, num_workers: Optional[int] = None, *, bit_depth: Optional[int] = None,
             start_index: int = 0, sampler: Any = None, options: Optional[Mapping[str, Any]] = None,
             trusted: Any = None, mapping: Optional[PathLike] = None, input_path: Any = None,
             samples_per_input: int = 1, inputs: Any = None):
    """Generate samples ``start_index .. start_index + num_samples - 1`` of a bundle.

    Sample ``i`` is made from seed ``medigan_zoo.core.seeding.sample_seed(seed, i)`` and condition ``i`` of the
    conditions plan (a value, or a list of values cycled over the samples), so every file is the same whatever
    ``batch_size``, ``num_workers`` or number of processes. With ``save_images`` the files go to ``output_path``
    with a manifest, a rerun with the same arguments skips finished samples, and ``torchrun`` shards the samples
    across processes; without it the samples are returned as a list of channel-last numpy arrays (medigan's
    convention; ``(image, mask)`` tuples for image+mask models).

    Args:
        conditions: condition id -> value or list of values (cycled), e.g. ``{"class_label": [0, 1]}``.
        split_by_condition: one sub-folder per condition value (``class_label_1/``).
        output_format: png, jpg, nii.gz, npy or dcm. bit_depth: 8 or 16 for png/dcm (None: 16 only when the
            model's outputs do not fit 8 bits).
        num_workers: threads that each make and write whole batches, so that writing overlaps the forward passes
            (None: one per CPU core, each running torch single-threaded, or 4 on a GPU with one forward pass at a
            time; 0: everything on the calling thread, with torch's own thread setting).
        start_index: index of the first sample (files and seeds follow the index).
        sampler: an already loaded ``BundleSampler`` of this bundle (skips loading it again).
        options: sampling options of the model's zoo block, e.g. ``{"num_inference_steps": 20}`` (``medigan-zoo info
            MODEL`` lists them); they become monai.bundle config overrides and are recorded in the manifest.
        trusted: extra trust for the bundle's config code (paths or True; medigan_zoo.catalog.trust).
        mapping: a mapping file of a foreign bundle's ids (default: its ``medigan_zoo.json``;
            docs/foreign_bundles.md).
        input_path: models with image inputs (docs/bundle_contract.md section 5): a file or folder (PNG, NIfTI,
            npy, DICOM series), or a mapping input name -> path; every input is read and checked before any work.
            ``num_samples`` (None: all) counts from input ``start_index // samples_per_input``.
        samples_per_input: samples made from each input (each with its own seed).
        inputs: an :class:`~medigan_zoo.engine.inputs.InputSet` already read (instead of ``input_path``).
    Raises:
        GenerationError: bad arguments (checked before any work), unwritable folder, full disk.
    """
    info = sampler.info if sampler is not None else read_model(bundle_dir)
    inputs = _run_inputs(info, input_path, samples_per_input, inputs)
    if num_samples is None and inputs is not None:
        num_samples = inputs.num_samples - int(start_index or 0)
    num_samples = _check_int("num_samples", num_samples, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0, MAX_SEED)
    start_index = _check_int("start_index", start_index, 0)
    workers = None if num_workers is None else _check_int("num_workers", num_workers, 0)
    fmt = formats.normalize_format(output_format)
    if inputs is not None and start_index + num_samples > inputs.num_samples:
        raise GenerationError(f"{len(inputs)} input(s) x samples_per_input {inputs.samples_per_input} make "
                              f"{inputs.num_samples} samples, but samples {start_index} .. "
                              f"{start_index + num_samples - 1} were asked for; leave num_samples out to make one "
                              "per input, or raise samples_per_input.")
    plan = resolve_conditions(info.conditions, conditions, info.id)
    opts = resolve_options(info.options, options, info.id)
    if sampler is not None and dict(sampler.options) != opts:
        raise GenerationError(f"The sampler passed in was loaded with options {dict(sampler.options)}, not {opts}; "
                              "load it with load_bundle_sampler(..., options=...) or leave sampler out.")
    layout = Layout(fmt=fmt, plan=plan, split_by_condition=bool(split_by_condition), outputs=output_names(info),
                    paired=info.declares_outputs)
    dims = len(info.spatial_shape)
    channels = int(info.zoo.get("num_channels") or 1)
    bits = (formats.check_format(fmt, dims, channels, bit_depth, _native_16bit(info), masks=mask_outputs(info))
            if save_images else 32)
    folder = None
    if save_images:
        if output_path is None:
            raise GenerationError("output_path is needed when save_images=True (or pass save_images=False to get "
                                  "the samples back as arrays).")
        if sampler is None:
            check_trusted(bundle_dir, trusted)  # refuse before any folder is created
        existed = Path(str(output_path)).expanduser().exists()
        folder = output_folder(output_path)  # refuses numbers, "" and folders of the user's own files

    from medigan_zoo.engine.distributed import default_device, join

    indices = range(start_index, start_index + num_samples)
    if not save_images:
        if sampler is None:
            sampler = load_bundle_sampler(bundle_dir, device=device, options=opts, trusted=trusted, mapping=mapping)
        return _arrays(sampler, plan, seed, indices, batch_size, inputs)
    assert folder is not None  # set above whenever save_images
    empty = not any(True for _ in folder.iterdir())  # output_folder made it, or it was empty
    try:
        if sampler is None:
            sampler = load_bundle_sampler(bundle_dir, device=default_device(device), options=opts, trusted=trusted,
                                          mapping=mapping)
        if workers is None:
            workers = _default_lanes(sampler.device)
        shard = join(sampler.device)
        try:
            return _run(sampler, folder, layout, bits, seed, indices, batch_size, workers, quiet, shard, inputs)
        finally:
            shard.close()
    except BaseException:
        if empty:  # a run that failed before its first sample leaves no (or an empty) folder behind
            remove_unused_folder(folder, keep_folder=existed)
        raise


def _run_inputs(info: ModelInfo, input_path: Any, samples_per_input: Any, inputs: Any) -> Any:
    """The run's :class:`~medigan_zoo.engine.inputs.InputSet`, read and checked: None for models without inputs,
    and for models whose inputs are all optional when none is given (they generate from noise)."""
    per_input = _check_int("samples_per_input", samples_per_input, 1)
    if inputs is not None:
        return replace(inputs, samples_per_input=per_input) if inputs.samples_per_input != per_input else inputs
    if input_path is None:
        if info.required_inputs:
            names = ", ".join(s.name for s in info.required_inputs)
            raise GenerationError(f"Model {info.id!r} makes its samples from image inputs ({names}); give input_path "
                                  "(a file or folder of PNG, NIfTI, npy or DICOM files; `medigan-zoo info "
                                  f"{info.id}` shows what it takes).")
        return None
    from medigan_zoo.engine.inputs import read_inputs

    return read_inputs(info, input_path, per_input)


def license_block(info: ModelInfo) -> Dict[str, Any]:
    """The manifest's ``license``: the licenses of the model's weights, training data and code (SPDX ids or
    "unknown"), whether any of them forbids commercial use, and a sentence saying what that means for the files.

    Synthetic images made by a model inherit the terms of its weights (which follow its training data), so a
    CC BY-NC 4.0 model's outputs are for non-commercial use only; the sentence says so."""
    from medigan_zoo.catalog.licenses import UNKNOWN, non_commercial

    parts = info.license_parts
    restricted = sorted({v for v in parts.values() if non_commercial(v)})
    if restricted:
        note = (f"NON-COMMERCIAL: the model's weights and/or training data are licensed {', '.join(restricted)}; "
                "these synthetic files carry the same restriction (research and education, no commercial use). "
                "Credit the model and its training data.")
    elif parts["weights"] != UNKNOWN:
        note = f"The model's weights are licensed {parts['weights']}; its terms apply to these synthetic files."
    else:
        note = "The model states no license for its weights; ask its authors before reusing these files."
    return {"weights": parts["weights"], "data": parts["data"], "code": parts["code"],
            "non_commercial": bool(restricted), "note": note}


def _header(sampler: Any, layout: Layout, bits: int, seed: int, indices: range,
            inputs: Any = None) -> Dict[str, Any]:
    import monai
    import torch

    header: Dict[str, Any] = {
        "synthetic": True,
        "note": "Every file in this folder is SYNTHETIC, made by a generative model; none shows a real patient.",
        "model_id": sampler.model_id, "bundle_name": sampler.name, "version": sampler.version,
        "weights_sha256": sampler.weights_sha256, "weights_file": str(sampler.weights_path),
        "zoo_version": __version__, "seed": seed, "sample_seed": "medigan_zoo.core.seeding.sample_seed(seed, index)",
        "output_format": layout.fmt, "bit_depth": bits, "conditions": layout.plan.to_json(),
        "options": dict(sampler.options),
        "condition_spec": {s.name: {"type": s.type, "values": dict(s.values)} for s in layout.plan.specs},
        "split_by_condition": layout.split_by_condition, "file_pattern": layout.pattern,
        "outputs": list(layout.outputs), "spatial_shape": list(sampler.spatial_shape),
        "num_channels": sampler.num_channels, "value_range": list(sampler.value_range),
        "spacing": list(sampler.spacing), "spatial_order": "display",
        "inputs": inputs.to_json() if inputs is not None else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": str(sampler.device),
        "torch_version": torch.__version__, "monai_version": monai.__version__,
        "regenerate": (f"medigan_zoo.engine.generate({str(sampler.bundle_dir)!r}, num_samples={len(indices)}, "
                       f"output_path=<folder>, seed={seed}, output_format={layout.fmt!r}, bit_depth={bits}, "
                       f"conditions={layout.plan.to_json()!r}, options={dict(sampler.options)!r}, "
                       f"start_index={indices.start})"),
    }
    info = getattr(sampler, "info", None)
    if info is not None:
        header["license"] = license_block(info)
    if getattr(sampler, "seeding", ""):  # a foreign bundle run through its own workflow: what its seeds guarantee
        header["seeding"] = sampler.seeding
    if layout.fmt == "dcm":
        from pydicom.uid import generate_uid

        header["dicom"] = {"study": generate_uid(), "series": generate_uid(),
                           **{f"series_{name}": generate_uid() for name in layout.outputs[1:] if layout.paired}}
    return header


def shard_indices(indices: range, shard: Any, inputs: Any = None) -> Sequence[int]:
    """The samples of ``indices`` this process makes: ``i % world_size == rank``, or for models with image inputs
    every sample of the inputs ``k`` with ``k % world_size == rank`` (an input is read on one rank only)."""
    if inputs is not None and shard.world_size > 1:
        return [i for i in indices if inputs.input_of(i) % shard.world_size == shard.rank]
    return range(indices.start + (shard.rank - indices.start) % shard.world_size, indices.stop, shard.world_size)


def _run(sampler: Any, folder: Path, layout: Layout, bits: int, seed: int, indices: range, batch_size: int,
         workers: int, quiet: bool, shard: Any, inputs: Any = None) -> GenerationResult:
    from tqdm.auto import tqdm

    header = ensure_header(folder, _header(sampler, layout, bits, seed, indices, inputs))
    done = finished(folder)
    mine = shard_indices(indices, shard, inputs)
    pending = (i for i in mine if i not in done)
    mine_set = mine if isinstance(mine, range) else set(mine)
    num_pending = len(mine) - sum(1 for i in done if i in mine_set)
    dirs = {(folder / layout.relative(i, out)).parent for i in indices[: len(layout.plan.combos)]
            for out in layout.outputs}
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    formats.remove_stale_temps(dirs)
    modality = (sampler.info.modality or ["OT"])[0]
    base = dict(model_id=sampler.model_id, model_name=sampler.name, version=sampler.version,
                weights_sha256=sampler.weights_sha256, zoo_version=__version__, bit_depth=bits,
                spacing=sampler.spacing, modality=modality, dicom_uids=header.get("dicom") or {},
                options=dict(sampler.options), masks=mask_outputs(sampler.info), inputs=inputs)
    bar = tqdm(total=len(mine), initial=len(mine) - num_pending, unit="img", desc=sampler.model_id,
               disable=quiet or shard.rank != 0, dynamic_ncols=True)
    part = ManifestPart(folder, tag=f"r{shard.rank}-" if shard.distributed else "")
    error: Optional[BaseException] = None
    try:
        _pipeline(sampler, folder, layout, bits, seed, pending, num_pending, batch_size, workers, base, part, bar)
    except OSError as err:
        error = formats.as_generation_error(err, Path(err.filename or folder))
    except BaseException as err:  # noqa: BLE001 - re-raised below, after the other ranks heard of it
        error = err
    finally:
        part.close()
        bar.close()
    ok = shard.all_ok(error is None)
    manifest_path = folder / "manifest.jsonl"
    if ok and shard.rank == 0:
        manifest_path, _ = merge(folder, own_part=part.path)
    written, skipped = shard.total(num_pending if error is None else 0, len(mine) - num_pending)
    shard.barrier()
    if error is not None:
        raise error
    if not ok:
        raise GenerationError(f"Another process of this torchrun job failed; rerun the same command to finish "
                              f"{folder} (finished samples are kept and skipped).")
    return GenerationResult(
        output_path=folder, files=FileList(folder, layout, indices), manifest=manifest_path,
        num_written=written, num_skipped=skipped, header=folder / "manifest.json",
        mask_files=FileList(folder, layout, indices, "mask") if "mask" in layout.outputs else [])


def _pipeline(sampler: Any, folder: Path, layout: Layout, bits: int, seed: int, pending: Iterable[int],
              num_pending: int, batch_size: int, lanes: int, base: Mapping[str, Any], part: ManifestPart,
              bar: Any) -> None:
    """Make and write the pending samples, a batch per task, on ``lanes`` threads (0: on this thread).

    On CPU every lane has its own copy of the sampler and torch runs single-threaded while the lanes work; on a
    GPU the lanes share the sampler, one forward pass at a time. At most ``lanes + 1`` batches are in flight.
    ``pending`` is consumed lazily (``num_pending`` of them), so memory does not grow with the run's length.
    Records go to the manifest in batch order, each once its sample's files are in place; when a write fails,
    the samples already written are still recorded (a rerun skips them) before the error is raised.
    """
    import queue

    plan = layout.plan
    inputs, masks = base["inputs"], base["masks"]
    info_base = {k: v for k, v in base.items() if k not in ("inputs", "masks")}
    batches = index_batches(pending, batch_size)
    cuda = getattr(sampler.device, "type", "cpu") == "cuda"
    free: "queue.Queue[Any]" = queue.Queue()  # the samplers not in use; one per lane on CPU
    for k in range(1 if cuda or not lanes else max(1, min(lanes, -(-num_pending // batch_size)))):
        free.put(sampler if k == 0 else replace(sampler, module=copy.deepcopy(sampler.module)))

    def make_and_write(batch: Sequence[int], done: List[bool]) -> List[Dict[str, Any]]:
        lane = free.get()
        try:
            made = sample(lane, batch, plan, seed, inputs)
        finally:
            free.put(lane)
        outs, seeds, conds = made.outputs, made.seeds, made.conditions
        missing = [name for name in layout.outputs if name not in outs]
        if missing:
            raise GenerationError(f"The sampler of {sampler.model_id} returned {sorted(outs)} but its metadata "
                                  f"declares the outputs {list(layout.outputs)}.")
        arrays = {name: formats.mask_arrays(layout.fmt, outs[name]) if name in masks else
                  formats.batch_arrays(layout.fmt, outs[name], sampler.normalized(name, outs[name])
                                       if layout.fmt in RASTER else None, bits)
                  for name in layout.outputs}
        for b, index in enumerate(batch):
            geometry = _geometry(inputs, index)
            written: Dict[str, Any] = {}
            for name in layout.outputs:
                info = SampleInfo(index=index, seed=seeds[b], condition=conds[b], output=name,
                                  label_names=_labels_of(sampler.info, name),
                                  **{**info_base, **geometry, **({"bit_depth": 8} if name in masks else {})})
                path = folder / layout.relative(index, name)
                if name in masks and layout.fmt == "dcm" and "image" in written and formats.seg_writer():
                    formats.write_seg_file(path, written["image"], arrays[name][b], info)
                else:
                    _write_sample(layout.fmt, path, arrays[name][b], info)
                written[name] = path
            done[b] = True
        return [_manifest_record(index, layout, seed, base, folder) for index in batch]

    def record(records: List[Dict[str, Any]]) -> None:
        part.append(records)
        bar.update(len(records))

    if not lanes:
        for batch in batches:
            done = [False] * len(batch)
            try:
                record(make_and_write(batch, done))
            except BaseException:
                _record_written(part, batch, done, layout, seed, base)
                raise
        return
    inflight: Deque[Tuple[Sequence[int], List[bool], Future]] = deque()
    pool = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="medigan-zoo-lane")
    try:
        with _single_threaded_torch(not cuda and lanes > 1):
            for batch in batches:
                done = [False] * len(batch)
                inflight.append((batch, done, pool.submit(make_and_write, batch, done)))
                while len(inflight) > lanes:
                    record(inflight[0][2].result())
                    inflight.popleft()
            while inflight:
                record(inflight[0][2].result())
                inflight.popleft()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for unrecorded, unrecorded_done, _ in inflight:  # after a failure: what did get written before it
            _record_written(part, unrecorded, unrecorded_done, layout, seed, base)


def _manifest_record(index: int, layout: Layout, seed: int, base: Mapping[str, Any],
                     folder: Optional[Path] = None) -> Dict[str, Any]:
    """The manifest line of sample ``index``: its files (with size and sha256 when ``folder`` holds them, so a
    resume redoes a damaged file), seed, condition, options and the model's identity."""
    rec: Dict[str, Any] = {"index": index}
    for name in layout.outputs:
        key, relative = "file" if name == "image" else f"{name}_file", layout.relative(index, name)
        rec.update(file_fields(folder, key, relative) if folder is not None else {key: relative})
    rec.update(seed=sample_seed(seed, index), condition=layout.plan.at(index), model_id=base["model_id"],
               bundle=base["model_name"], version=base["version"], weights_sha256=base["weights_sha256"],
               zoo_version=__version__, synthetic=True)
    if base["options"]:
        rec["options"] = base["options"]
    if base.get("inputs") is not None:
        rec["inputs"] = base["inputs"].record(index)
    return rec


def _geometry(inputs: Any, index: int) -> Dict[str, Any]:
    """SampleInfo fields that make an output keep its input's geometry (none for models without inputs)."""
    if inputs is None:
        return {}
    geo = inputs.geometry(index)
    out: Dict[str, Any] = {}
    if geo.affine is not None:
        out["affine"] = geo.affine
    if geo.dicom:
        out["dicom_geometry"] = dict(geo.dicom)
    if geo.spacing:
        out["spacing"] = tuple(geo.spacing)
    return out


def _labels_of(info: ModelInfo, name: str) -> Dict[int, str]:
    spec = next((o for o in info.outputs if o.name == name), None) if info.declares_outputs else None
    return dict(spec.labels) if spec is not None else {}


def _record_written(part: ManifestPart, batch: Sequence[int], done: Sequence[bool], layout: Layout, seed: int,
                    base: Mapping[str, Any]) -> None:
    """Append the records of the samples of a failed batch whose files are in place (the error is raised after)."""
    with contextlib.suppress(GenerationError, OSError):  # the original error is the one to report
        records = [_manifest_record(index, layout, seed, base, part.folder) for index, ok in zip(batch, done) if ok]
        if records:
            part.append(records)


def _arrays(sampler: Any, plan: ConditionPlan, seed: int, indices: range, batch_size: int,
            inputs: Any = None) -> List[Any]:
    """The samples as channel-last numpy arrays in the model's value range (``(image, mask)`` tuples with masks,
    in the order of the declared outputs)."""
    samples: List[Any] = []
    names = output_names(sampler.info) if sampler.info.declares_outputs else ("image", "mask")
    for batch in index_batches(indices, batch_size):
        outs = sample(sampler, batch, plan, seed, inputs).outputs
        per_output = [outs[k].movedim(1, -1).numpy() for k in names if k in outs]
        for b in range(len(batch)):
            items = [arr[b].copy() for arr in per_output]
            samples.append(items[0] if len(items) == 1 else tuple(items))
    return samples
