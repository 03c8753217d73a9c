"""The operators of the synthetic-study application (MONAI Deploy App SDK / Holoscan), one job each.

A :class:`Job` (one request) flows through them: ``RequestSourceOperator`` (one job per tick, a CountCondition
stops it after the last) -> ``BundleGeneratorOperator`` (the zoo's bundle runtime: ``runtime.open_bundle`` through
``load_bundle_sampler`` and the one sample loop, ``runtime.sample``) -> ``DicomStudyWriterOperator``
(``engine.dicom_study``) -> ``NiftiWriterOperator`` (``engine.formats``' NIfTI encoder) -> ``PublishOperator``.
Writers write into a staging folder next to the output; the publisher renames it to the request's name when every
step succeeded, or deletes it and logs ONE line saying what was wrong, so a failed request leaves no partial study.
"""
from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from monai.deploy.core import Fragment, Operator, OperatorSpec

from medigan_zoo.core.errors import ZooError
from medigan_zoo.deploy.request import Request

logger = logging.getLogger("medigan_zoo.deploy")

JOB = "job"


@dataclass
class Job:
    """One request on its way through the graph; ``error`` set means the later operators only pass it on."""

    request: Optional[Request]
    source: str
    output_root: Path
    error: str = ""
    staging: Optional[Path] = None
    sampler: Any = None
    plan: Any = None
    indices: List[int] = field(default_factory=list)
    seeds: List[int] = field(default_factory=list)
    conditions: List[Dict[str, Any]] = field(default_factory=list)
    images: List[Any] = field(default_factory=list)  # (C, *spatial) float32 numpy, the model's value range
    masks: Dict[str, List[Any]] = field(default_factory=dict)  # mask output -> (1, *spatial) label maps per sample
    written: Dict[str, Any] = field(default_factory=dict)  # output -> what was written

    @property
    def name(self) -> str:
        return self.request.name if self.request else Path(self.source).stem

    @property
    def final(self) -> Path:
        return self.output_root / self.name

    def fail(self, err: BaseException) -> None:
        """Record ``err`` as this job's one-line error (a user error as it is, anything else with its type)."""
        text = " ".join(str(err).split()) or type(err).__name__
        self.error = text if isinstance(err, ZooError) else f"{type(err).__name__}: {text}"
        logger.debug("request %s failed", self.source, exc_info=err)


class RequestSourceOperator(Operator):
    """Emits the app's requests, one :class:`Job` per tick (give it ``CountCondition(app, len(requests))``)."""

    def __init__(self, fragment: Fragment, *args: Any, jobs: Sequence[Job], **kwargs: Any):
        self.jobs = list(jobs)
        self._next = 0
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.output(JOB)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        job = self.jobs[self._next]
        self._next += 1
        if not job.error and job.final.exists():
            job.error = (f"output {job.final} already exists; the app never writes over a study. Remove it or "
                         "give the request another 'name'.")
        if not job.error:
            staging = job.output_root / f".{job.name}.partial-{uuid.uuid4().hex[:8]}"
            try:
                staging.mkdir(parents=True)
                job.staging = staging
            except OSError as err:
                job.error = f"cannot create {staging}: {err.strerror or err}; choose a writable output folder (-o)."
        op_output.emit(job, JOB)


class BundleGeneratorOperator(Operator):
    """Runs the request's bundle through the zoo's runtime: the samples, their seeds and conditions.

    ``model_path`` is the app's model folder (``-m``): a bundle, or a folder of bundles, indexed next to the zoo's
    shipped ones and trusted (the deployer put them there). Loaded bundles are kept for the next requests.
    """

    def __init__(self, fragment: Fragment, *args: Any, model_path: Optional[Path], device: Optional[str] = None,
                 batch_size: int = 16, **kwargs: Any):
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self._samplers: Dict[Tuple[str, str], Any] = {}
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(JOB)
        spec.output(JOB)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        job = op_input.receive(JOB)
        if not job.error:
            try:
                self._generate(job)
            except Exception as err:  # noqa: BLE001 - reported on one line by the publisher
                job.fail(err)
        op_output.emit(job, JOB)

    def _generate(self, job: Job) -> None:
        import json

        from medigan_zoo.deploy.request import resolve_bundle
        from medigan_zoo.engine.conditions import resolve_conditions, resolve_options
        from medigan_zoo.engine.runner import read_model
        from medigan_zoo.runtime.bundle import load_bundle_sampler
        from medigan_zoo.runtime.sample import sample_all

        request = job.request
        assert request is not None
        bundle = resolve_bundle(request, self.model_path)
        info = read_model(bundle)  # a generator (not a feature extractor); cheap
        plan = resolve_conditions(info.conditions, dict(request.conditions), info.id)  # before the model loads
        options = resolve_options(info.options, dict(request.options), info.id)
        key = (str(bundle), json.dumps(options, sort_keys=True, default=str))
        if key not in self._samplers:
            trusted = [self.model_path] if self.model_path else None
            self._samplers[key] = load_bundle_sampler(bundle, device=self.device, options=options, trusted=trusted)
        sampler = self._samplers[key]
        job.sampler, job.plan = sampler, plan
        mask_outputs = [o.name for o in info.outputs if o.is_mask] if info.declares_outputs else []
        for batch in sample_all(sampler, range(request.num_samples), plan, request.seed, self.batch_size):
            job.indices += list(batch.indices)
            job.seeds += batch.seeds
            job.conditions += batch.conditions
            job.images += [batch.outputs["image"][b].numpy() for b in range(len(batch.indices))]
            for name in mask_outputs:
                job.masks.setdefault(name, []).extend(batch.outputs[name][b].numpy() for b in range(len(batch.indices)))
        logger.info("request %s: %d sample(s) of %s v%s made (seed %d)", job.name, len(job.images),
                    sampler.model_id, sampler.version, request.seed)


class DicomStudyWriterOperator(Operator):
    """Writes the job's samples as one synthetic DICOM study (``engine.dicom_study``) into its staging folder."""

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(JOB)
        spec.output(JOB)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        job = op_input.receive(JOB)
        if not job.error and job.request is not None and "dicom" in job.request.outputs:
            try:
                from medigan_zoo.engine.dicom_study import StudySpec, write_study

                spec = StudySpec.of(job.sampler, job.request.seed, job.request.to_json())
                assert job.staging is not None
                result = write_study(job.staging, job.images, job.seeds, job.conditions, spec, job.indices,
                                     conditions_plan=job.plan.to_json())
                job.written["dicom"] = {"study_uid": result.study_uid, "series": result.series_uids,
                                        "files": len(result.files)}
                if job.masks:
                    job.written["seg"] = _write_segs(job, job.staging)
            except Exception as err:  # noqa: BLE001 - reported on one line by the publisher
                job.fail(err)
        op_output.emit(job, JOB)


def _write_segs(job: Job, folder: Path) -> List[str]:
    """A DICOM SEG per sample and mask output (image+mask models), referencing the sample's synthetic image series
    (``seg/sample_<i>_<output>.dcm``, highdicom); returns the written paths relative to ``folder``."""
    import numpy as np
    import pydicom

    from medigan_zoo.engine import formats
    from medigan_zoo.engine.dicom_study import DICOM_FOLDER, read_series, seg_from_label_map

    labels_of = {o.name: dict(o.labels) for o in job.sampler.info.outputs}
    written = []
    for name, masks in job.masks.items():
        for n, (index, mask) in enumerate(zip(job.indices, masks)):
            label_map = np.rint(np.asarray(mask)[0]).astype(np.uint8)
            if label_map.ndim == 3:  # a volume: its own series, one instance per slice
                source = read_series(folder / DICOM_FOLDER / f"sample_{index:06d}")
            else:
                source = [pydicom.dcmread(str(folder / DICOM_FOLDER / "series_1" / f"sample_{index:06d}.dcm"))]
            seg = seg_from_label_map(source, label_map, labels_of.get(name) or {1: name})
            relative = f"seg/sample_{index:06d}_{name}.dcm"
            (folder / "seg").mkdir(parents=True, exist_ok=True)
            formats.atomic_write(folder / relative, lambda tmp: seg.save_as(str(tmp), enforce_file_format=True),
                                 suffix=".dcm")
            written.append(relative)
    return written


class NiftiWriterOperator(Operator):
    """Writes one NIfTI file per sample (``engine.formats.write_nifti``: float32, the model's spacing, marked
    synthetic) under ``nifti/`` of the staging folder, with its own manifest, when the request asks for it."""

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(JOB)
        spec.output(JOB)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        job = op_input.receive(JOB)
        if not job.error and job.request is not None and "nifti" in job.request.outputs:
            try:
                from medigan_zoo.deploy.nifti import write_nifti_folder

                assert job.staging is not None
                job.written["nifti"] = write_nifti_folder(job.staging / "nifti", job)
            except Exception as err:  # noqa: BLE001 - reported on one line by the publisher
                job.fail(err)
        op_output.emit(job, JOB)


class PublishOperator(Operator):
    """Moves a finished study into place (one rename) or removes what a failed request wrote and logs one line."""

    def __init__(self, fragment: Fragment, *args: Any, results: List[Dict[str, Any]], **kwargs: Any):
        self.results = results
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(JOB)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        job = op_input.receive(JOB)
        if not job.error:
            try:
                assert job.staging is not None
                job.staging.rename(job.final)  # fails (no overwrite) if a folder of that name appeared meanwhile
            except OSError as err:
                job.error = f"cannot move the study into {job.final}: {err.strerror or err}."
        if job.error:
            if job.staging is not None:
                shutil.rmtree(job.staging, ignore_errors=True)
            logger.error("request %s failed: %s", job.source, job.error)
            self.results.append({"request": job.source, "ok": False, "error": job.error})
            return
        logger.info("request %s: synthetic study written to %s (%s)", job.source, job.final,
                    ", ".join(f"{k}: {v.get('files', v)} files" if isinstance(v, dict) else k
                              for k, v in job.written.items()))
        self.results.append({"request": job.source, "ok": True, "output": str(job.final), **job.written})
