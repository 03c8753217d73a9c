"""``medigan-zoo validate``: check a bundle against docs/bundle_contract.md, offline.

Static by default: files, JSON, ids, schema and the bundle's code findings
(:mod:`medigan_zoo.catalog.code_scan`) are read without evaluating anything, so validating a hostile bundle runs
none of its code. ``run=True`` (``--run``) then evaluates the config (network, ``ckpt_path``, sampler) and loads the
weights through the same loader as generation (:mod:`medigan_zoo.runtime.weights`), after the trust check
(:mod:`medigan_zoo.catalog.trust`). Every problem names its file, JSON path and a fix. MONAI's own
``verify_metadata`` downloads its schema URL; this check needs no network.

A bundle without a zoo block (a *foreign* bundle, e.g. one of the MONAI Model Zoo) also gets the zoo's verdict
(:func:`medigan_zoo.catalog.foreign.assess`): "runs with the zoo: yes/no, because ...; runs with monai.bundle: run id
X". ``foreign=True`` (``--foreign``) answers only that question instead of grading the bundle against the zoo
contract, which a foreign bundle is not written for; with ``run`` the zoo then also builds its sampler.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional

from medigan_zoo.catalog.code_scan import CodeScan, scan_bundle
from medigan_zoo.catalog.fields import SHIPPED_FIELDS
from medigan_zoo.catalog.foreign import Verdict, assess
from medigan_zoo.catalog.model_info import ZOO_KEY
from medigan_zoo.catalog.schema import ZOO_BLOCK_SCHEMA, schema_problems
from medigan_zoo.catalog.trust import TrustArg, check_trusted
from medigan_zoo.core.errors import MetadataError
from medigan_zoo.core.jsonio import load_json
from medigan_zoo.runtime.properties import required_ids, required_meta_keys

REQUIRED_FILES = ("configs/metadata.json", "configs/inference.json", "configs/logging.conf",
                  "models/model.pt", "docs/README.md", "LICENSE")
#: the contract (one home: medigan_zoo/runtime/*_properties.json)
MONAI_KEYS = tuple(required_meta_keys("generator"))
STANDARD_IDS = tuple(required_ids("generator"))
#: a feature-extractor bundle (zoo role "feature_extractor") generates nothing
EXTRACTOR_IDS = tuple(required_ids("feature_extractor"))
#: zoo fields a shipped bundle must fill (the schema alone also admits partial catalog entries)
BUNDLE_ZOO_FIELDS = SHIPPED_FIELDS  # the field table's "shipped" rows (medigan_zoo/catalog/fields.py)


@dataclass(frozen=True)
class Problem:
    """One contract violation."""

    file: str
    json_path: str
    message: str
    hint: str = ""
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = f"{self.file} {self.json_path}".strip()
        hint = f" -> {self.hint}" if self.hint else ""
        return f"{self.severity.upper()}: {where + ': ' if where else ''}{self.message}{hint}"


@dataclass
class ValidationReport:
    """What ``validate`` found in one bundle: contract problems, the code findings, and whether the config ran."""

    bundle_dir: Path
    problems: List[Problem] = field(default_factory=list)
    scan: Optional[CodeScan] = None
    ran: bool = False
    verdict: Optional[Verdict] = None  # foreign bundles: can the zoo run it (medigan_zoo.catalog.foreign)
    foreign_only: bool = False  # --foreign: the verdict is the answer, the zoo contract was not graded

    @property
    def errors(self) -> List[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def failed(self) -> bool:
        """Exit status 1: contract errors, or (``--foreign``) a bundle the zoo cannot run."""
        if self.foreign_only:
            return bool(self.errors) or not (self.verdict and self.verdict.runnable)
        return bool(self.errors)

    def lines(self) -> List[str]:
        """The report as printed: the code findings (``code: ...``), the problems, the foreign verdict, then one
        summary line."""
        findings = self.scan.findings if self.scan else []
        out = [str(f) for f in findings if not f.outside]  # the others are warnings among the problems
        out += [str(p) for p in self.problems]
        if self.verdict is not None:
            out.append(f"FOREIGN BUNDLE: {self.verdict.line()}")
        warnings_ = len(self.problems) - len(self.errors)
        if self.foreign_only:
            how = "sampler built (--run)" if self.ran else "static check, nothing was run; --run builds its sampler"
            out.append(f"{'RUNNABLE' if self.verdict and self.verdict.runnable else 'NOT RUNNABLE'} by the zoo "
                       f"({warnings_} warnings, {len(findings)} code findings listed; {how})")
            return out
        verdict = "INVALID" if self.errors else "OK"
        how = "config evaluated (--run)" if self.ran else "static check, nothing was run; --run evaluates the config"
        against = "; graded against the zoo contract, `validate --foreign` asks only whether the zoo runs it" \
            if self.verdict is not None else ""
        out.append(f"{verdict} ({len(self.errors)} errors, {warnings_} warnings, {len(findings)} code findings "
                   f"listed; {how}{against})")
        return out


def validate(bundle_dir: Path, run: bool = False, trusted: TrustArg = None, foreign: bool = False,
             mapping: Optional[Path] = None) -> ValidationReport:
    """Check one bundle. Static unless ``run``; with ``run`` the trust check comes before any evaluation.

    ``foreign``: answer "can the zoo run it" (module docstring) instead of grading the zoo contract; ``mapping`` a
    mapping file of the bundle's ids (default: its ``medigan_zoo.json``).

    Raises:
        UntrustedBundleError: ``run`` was asked for a bundle that is not trusted (nothing was evaluated).
    """
    bundle_dir = Path(bundle_dir)
    report = ValidationReport(bundle_dir, foreign_only=bool(foreign))
    problems = report.problems
    if not bundle_dir.is_dir():
        problems.append(Problem(str(bundle_dir), "", "not a folder", "pass the bundle's root folder"))
        return report
    if run:
        check_trusted(bundle_dir, trusted)
    if foreign:
        return _validate_foreign(report, run, trusted, mapping)
    for rel in REQUIRED_FILES:
        if not (bundle_dir / rel).is_file():
            problems.append(Problem(rel, "", "required file is missing", "see docs/bundle_contract.md section 1"))
    if not (bundle_dir / "models" / "model.ts").is_file():
        problems.append(Problem("models/model.ts", "", "no TorchScript export",
                                "export with `python -m monai.bundle ckpt_export` where the network allows it",
                                severity="warning"))
    metadata = _load(bundle_dir, "configs/metadata.json", problems)
    if isinstance(metadata, dict):
        problems += _check_metadata(metadata)
        if metadata.get(ZOO_KEY) is None:
            report.verdict = assess(bundle_dir, metadata, mapping)
    _add_scan(report)
    inference = bundle_dir / "configs" / "inference.json"
    meta = metadata if isinstance(metadata, dict) else {}
    if inference.is_file() and _load(bundle_dir, "configs/inference.json", problems) is not None:
        ids_problems = _check_ids(bundle_dir, meta)
        problems += ids_problems
        if run and not any(p.severity == "error" and p.json_path == "$" for p in ids_problems):
            problems += _run_checks(bundle_dir, meta, trusted)
            report.ran = True
    return report


def _validate_foreign(report: ValidationReport, run: bool, trusted: TrustArg,
                      mapping: Optional[Path]) -> ValidationReport:
    """``--foreign``: the code findings and the verdict; with ``run``, the sampler is built as generation builds it
    and a failure turns the verdict into "no" with its one-line reason."""
    bundle_dir = report.bundle_dir
    _add_scan(report)
    report.verdict = assess(bundle_dir, mapping=mapping)
    if run and report.verdict.runnable:
        from medigan_zoo.core.errors import BundleLoadError, GenerationError
        from medigan_zoo.runtime.bundle import open_bundle

        try:
            open_bundle(bundle_dir, device="cpu", trusted=trusted, mapping=mapping).sampler()
            report.ran = True
        except (BundleLoadError, GenerationError, MetadataError) as err:
            report.verdict = replace(report.verdict, runnable=False, reason=f"building its sampler failed: {err}")
    return report


def _add_scan(report: ValidationReport) -> None:
    report.scan = scan_bundle(report.bundle_dir)
    for finding in report.scan.warnings:
        report.problems.append(Problem("", "", str(finding), "review this code; it runs only in a trusted bundle",
                                       severity="warning"))
    for entry in report.scan.unreadable:
        report.problems.append(Problem("", "", f"code scan could not read {entry}", "fix the file",
                                       severity="warning"))


def validate_bundle(bundle_dir: Path, run: bool = False, trusted: TrustArg = None) -> List[Problem]:
    """All problems of one bundle (empty list: valid); see :func:`validate`. Warnings do not make it invalid."""
    return validate(bundle_dir, run=run, trusted=trusted).problems


def _load(bundle_dir: Path, rel: str, problems: List[Problem]) -> Any:
    path = bundle_dir / rel
    if not path.is_file():
        return None
    try:
        return load_json(path)
    except MetadataError as err:
        problems.append(Problem(rel, "$", str(err).split(": ", 1)[-1], "fix the JSON syntax"))
        return None


def _check_metadata(metadata: Dict[str, Any]) -> List[Problem]:
    rel = "configs/metadata.json"
    out: List[Problem] = []
    for key in MONAI_KEYS:
        if key not in metadata:
            out.append(Problem(rel, f"$.{key}", "MONAI metadata key is missing", "add it (MONAI bundle spec)"))
    version, changelog = metadata.get("version"), metadata.get("changelog")
    if version is not None and isinstance(changelog, dict) and str(version) not in changelog:
        out.append(Problem(rel, "$.changelog", f"version {version} has no changelog entry",
                           f'add "{version}": "what changed" to changelog'))
    zoo = metadata.get(ZOO_KEY)
    if zoo is None:
        out.append(Problem(rel, f"$.{ZOO_KEY}", "no zoo block (a foreign bundle: indexable, but not a zoo bundle)",
                           "add the block described in docs/bundle_contract.md section 2"))
        return out
    for path, message in schema_problems(zoo, ZOO_BLOCK_SCHEMA, prefix=[ZOO_KEY]):
        out.append(Problem(rel, path, message, f"see schemas/{ZOO_BLOCK_SCHEMA}"))
    if isinstance(zoo, dict):
        for key in BUNDLE_ZOO_FIELDS:
            if key not in zoo:
                out.append(Problem(rel, f"$.{ZOO_KEY}.{key}", "zoo field is missing", "fill it in honestly"))
        pred = ((metadata.get("network_data_format") or {}).get("outputs") or {}).get("pred") or {}
        if zoo.get("role", "generator") == "generator" and pred.get("spatial_shape") and zoo.get("spatial_shape") and \
                list(pred["spatial_shape"]) != list(zoo["spatial_shape"]):
            out.append(Problem(rel, f"$.{ZOO_KEY}.spatial_shape",
                               f"{zoo['spatial_shape']} differs from network_data_format.outputs.pred.spatial_shape "
                               f"{pred['spatial_shape']}", "make them agree"))
        out += _check_inputs_outputs(zoo)
    return out


def _check_inputs_outputs(zoo: Dict[str, Any]) -> List[Problem]:
    """What the schema cannot say about ``inputs`` / ``outputs`` (docs/bundle_contract.md section 5): unique names
    that are not condition ids, an ``image`` output, labels for every mask, inputs of the model's dimensions."""
    rel, out = "configs/metadata.json", []
    conditions = set(zoo.get("condition") or {}) | set(zoo.get("options") or {})
    dims = len(zoo.get("spatial_shape") or []) or None
    for key in ("inputs", "outputs"):
        entries = [e for e in zoo.get(key) or [] if isinstance(e, dict)]
        names = [str(e.get("name")) for e in entries]
        for k, entry in enumerate(entries):
            where = f"$.{ZOO_KEY}.{key}[{k}]"
            name = str(entry.get("name"))
            if names.count(name) > 1:
                out.append(Problem(rel, f"{where}.name", f"{key[:-1]} name {name!r} is used twice",
                                   "give each a unique name (file names and the sampler's dict keys use it)"))
            if name in conditions:
                out.append(Problem(rel, f"{where}.name", f"{key[:-1]} name {name!r} is also a condition or option id",
                                   "rename one of them"))
            if entry.get("kind") == "mask" and key == "outputs" and not entry.get("labels"):
                out.append(Problem(rel, f"{where}.labels", "a mask output without labels",
                                   'add "labels": {"0": "background", "1": "..."}'))
            shape = entry.get("spatial_shape")
            if key == "inputs" and dims and isinstance(shape, list) and len(shape) != dims:
                out.append(Problem(rel, f"{where}.spatial_shape", f"{len(shape)}-D input for a {dims}-D model",
                                   "give the shape the network takes, in display order"))
        if key == "outputs" and entries and "image" not in names:
            out.append(Problem(rel, f"$.{ZOO_KEY}.outputs", "no output is named 'image'",
                               "name the main output image (grids, evaluation and medigan's tuples start with it)"))
    return out


def _read_parser(bundle_dir: Path):
    """A ConfigParser holding inference.json and metadata.json as data: reading and ``id in parser`` evaluate
    nothing (``$`` strings stay strings until ``get_parsed_content``; tests/test_trust.py proves it)."""
    from monai.bundle import ConfigParser  # lazy: validate is not on the search path

    parser = ConfigParser()
    with warnings.catch_warnings():  # MONAI warns about the older optional_packages_version key
        warnings.filterwarnings("ignore", message=".*optional_packages_version.*")
        parser.read_config(str(bundle_dir / "configs" / "inference.json"))
        parser.read_meta(str(bundle_dir / "configs" / "metadata.json"))
    return parser


def _check_ids(bundle_dir: Path, metadata: Dict[str, Any]) -> List[Problem]:
    """Standard ids, condition ids and sampling-option defaults of inference.json, read as data."""
    rel = "configs/inference.json"
    out: List[Problem] = []
    try:
        parser = _read_parser(bundle_dir)
    except Exception as err:  # noqa: BLE001 - any read failure is a problem to report
        return [Problem(rel, "$", f"does not read with monai.bundle.ConfigParser: {err}", "fix the config")]
    zoo = metadata.get(ZOO_KEY) or {}
    required = EXTRACTOR_IDS if zoo.get("role") == "feature_extractor" else STANDARD_IDS
    needs_input = any(isinstance(e, dict) and e.get("optional") is not True for e in zoo.get("inputs") or [])
    if needs_input:  # one output per input: the inputs, not num_samples, say how many (contract section 5)
        required = tuple(key for key in required if key != "num_samples")
    for key in required + tuple(zoo.get("condition") or {}):
        if key not in parser:
            out.append(Problem(rel, f"$.{key}", "standard id is missing",
                               "declare it (docs/bundle_contract.md section 3)"))
    if zoo.get("inputs") and "input_dir" not in parser:
        out.append(Problem(rel, "$.input_dir", "a model with image inputs declares no input_dir",
                           "add input_dir (read by inferring; docs/bundle_contract.md section 5)"))
    for key, spec in (zoo.get("options") or {}).items():
        if key not in parser:
            out.append(Problem(rel, f"$.{key}", f"sampling option {key!r} of the zoo block is not an id here",
                               "declare it in inference.json or remove it from medigan_zoo.options"))
        elif isinstance(spec, dict) and "default" in spec and parser.get(key) != spec["default"]:
            out.append(Problem(rel, f"$.{key}", f"is {parser.get(key)!r} but medigan_zoo.options.{key}.default "
                               f"says {spec['default']!r}", "make them agree"))
    return out


def _run_checks(bundle_dir: Path, metadata: Dict[str, Any], trusted: Any = None) -> List[Problem]:
    """The evaluating part of validate (``--run``): open the bundle with the runtime generation uses
    (:func:`medigan_zoo.runtime.bundle.open_bundle`), build ``network`` with the weights its ``ckpt_path`` names,
    and build ``sampler`` when the bundle declares one; the runtime checks trust before evaluating anything."""
    from medigan_zoo.core.errors import BundleLoadError
    from medigan_zoo.runtime.bundle import open_bundle

    rel = "configs/inference.json"
    try:
        opened = open_bundle(bundle_dir, device="cpu", trusted=trusted)
        ckpt = opened.ckpt_path
    except BundleLoadError as err:
        return [Problem(rel, "", str(err), "fix the config")]
    try:
        shown = ckpt.resolve().relative_to(opened.path).as_posix()
    except ValueError:
        shown = str(ckpt)
    try:
        opened.network
    except BundleLoadError as err:
        config_error = str(err).startswith("Cannot build")
        return [Problem(rel if config_error else shown, "", str(err), "fix the config" if config_error else
                        "retrain, re-save a plain state dict, or fix network_def / ckpt_path in inference.json")]
    out: List[Problem] = []
    if (metadata.get(ZOO_KEY) or {}).get("role") != "feature_extractor" and "sampler" in opened.parser:
        try:
            opened.sampler()
        except BundleLoadError as err:
            out.append(Problem(rel, "$.sampler", str(err), "fix the sampler component"))
    return out
