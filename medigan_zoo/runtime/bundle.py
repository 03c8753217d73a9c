"""The one bundle runtime: ``open_bundle(dir)`` -> a MONAI ``ConfigWorkflow`` with the zoo's properties file.

Everything that runs a bundle (generate, datasets, visualize, validate ``--run``, export, evaluation's feature
extractors) opens it here, so the rules are written once:

* which config file (``configs/inference.json``), how ``bundle_root``/``device``/sampling options are overridden;
* which ids the zoo contract needs (``runtime/*_properties.json``, checked statically: nothing is evaluated);
* the weights: ``ckpt_path`` of the config (default ``models/model.pt``) through the one loader
  (:mod:`medigan_zoo.runtime.weights`), into ``network`` (or ``network_def``);
* the sampler: the bundle's ``sampler`` or, for a foreign bundle, a :class:`LatentSampler` around ``network``.

Opening reads files only. Config code (``$`` expressions, ``_target_`` components) runs when a part is built
(:meth:`OpenedBundle.network`, :meth:`OpenedBundle.sampler`): first the trust policy is checked
(:mod:`medigan_zoo.catalog.trust`, docs/security.md), then the part is built with the bundle root on ``sys.path``
only meanwhile (:mod:`medigan_zoo.runtime.imports`). The bundle's ``initialize`` expressions are not run: they set
process-wide state (``set_determinism``), and the zoo seeds every sample itself.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

import torch
from torch import nn

from medigan_zoo.catalog.model_info import ModelInfo
from medigan_zoo.core.errors import BundleLoadError
from medigan_zoo.runtime.imports import bundle_on_sys_path
from medigan_zoo.runtime.properties import properties_file
from medigan_zoo.runtime.sampler import (
    BundleSampler,
    DeviceArg,
    LatentSampler,
    _flatten_without_saving,
    _latent_spec,
    channels_last,
    resolve_device,
)
from medigan_zoo.runtime.weights import fit_weights, load_weights

PathLike = Union[str, Path]
#: the inference config of a bundle, relative to its root
INFERENCE_CONFIG = "configs/inference.json"
DEFAULT_CKPT = "models/model.pt"
#: an init id no bundle declares: ConfigWorkflow.initialize() then only parses (see the module docstring)
_NO_INIT = "medigan_zoo_does_not_run_initialize"


@contextlib.contextmanager
def _quiet_monai_workflow_logger() -> Iterator[None]:
    """ConfigWorkflow logs "Logging file is set to False" (on stdout) for logging_file=False; the zoo's output may be
    JSON, so that logger is held at ERROR while the workflow is built."""
    log = logging.getLogger("monai.bundle.workflows")
    before = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(before)


def read_info(bundle_dir: Path) -> ModelInfo:
    """The bundle's metadata as a :class:`ModelInfo` (reads JSON only)."""
    from medigan_zoo.catalog.bundle_reader import read_bundle

    if not (bundle_dir / "configs" / "metadata.json").is_file():
        raise BundleLoadError(f"{bundle_dir} is not a bundle folder: configs/metadata.json is missing.")
    return read_bundle(bundle_dir)


@dataclass
class OpenedBundle:
    """A bundle read into a MONAI ``ConfigWorkflow`` (nothing evaluated yet)."""

    path: Path
    info: ModelInfo
    workflow: Any  # monai.bundle.ConfigWorkflow
    device: torch.device
    options: Mapping[str, Any] = field(default_factory=dict)
    trusted: Any = None  # the user's extra trust (paths or True), medigan_zoo.catalog.trust
    _trust_checked: bool = field(default=False, repr=False)

    @property
    def role(self) -> str:
        return str(self.info.zoo.get("role") or "generator")

    @property
    def parser(self) -> Any:
        """The workflow's ``ConfigParser`` (``id in parser`` and ``parser.get(id)`` read the raw config)."""
        return self.workflow.parser

    @property
    def foreign(self) -> bool:
        """True for a bundle without a zoo ``sampler`` (e.g. MONAI's MedNIST GAN)."""
        return "sampler" not in self.parser

    def missing_ids(self) -> List[str]:
        """Contract ids (properties file, plus one per condition and sampling option) absent from the config.

        Static: checks ``id in parser``, which evaluates nothing."""
        ids = [str(p["id"]) for p in self.workflow.properties.values()
               if p.get("required") and not str(p["id"]).startswith("_meta_")]
        if self.role == "generator":
            ids += [c.name for c in self.info.conditions] + list(self.info.zoo.get("options") or {})
        return [i for i in ids if i not in self.parser]

    def _parsed(self, id_: str) -> Any:
        """``get_parsed_content(id_)`` once the bundle is trusted, with the bundle importable meanwhile and config
        errors as one line.

        Raises:
            UntrustedBundleError: the bundle's config code may not run (before anything is evaluated).
        """
        if not self._trust_checked:
            from medigan_zoo.catalog.trust import check_trusted

            check_trusted(self.path, self.trusted)
            self._trust_checked = True
        if not self.workflow._is_initialized:
            self.workflow.initialize()  # parses; runs no `initialize` expression (see _NO_INIT)
        try:
            with bundle_on_sys_path(self.path), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MONAI's deprecation notes about old metadata keys
                return self.parser.get_parsed_content(id_)
        except BundleLoadError:
            raise
        except Exception as err:  # noqa: BLE001 - config errors from MONAI have many types
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise BundleLoadError(f"Cannot build `{id_}` of bundle {self.path} ({self.config_file.name}): "
                                  f"{type(err).__name__}: {first[:300]}") from None

    @property
    def config_file(self) -> Path:
        return Path(self.workflow.config_root_path) / Path(INFERENCE_CONFIG).name

    @cached_property
    def ckpt_path(self) -> Path:
        """The weights file the config names (``ckpt_path``; default ``models/model.pt``), absolute."""
        ckpt = Path(self._parsed("ckpt_path")) if "ckpt_path" in self.parser else Path(DEFAULT_CKPT)
        return ckpt if ckpt.is_absolute() else self.path / ckpt

    @cached_property
    def network(self) -> nn.Module:
        """``network`` (or ``network_def``) with the weights of :attr:`ckpt_path` loaded, in eval mode on device."""
        net_id = "network" if "network" in self.parser else "network_def"
        if net_id not in self.parser:
            raise BundleLoadError(f"Bundle {self.path} declares neither `network` nor `network_def` in "
                                  f"{self.config_file.name}; the zoo cannot tell which network to load.")
        network = self._parsed(net_id)
        fit_weights(network, load_weights(self.ckpt_path), f"{self.ckpt_path} (into `{net_id}` of {self.path})")
        return network.to(self.device).eval()

    def sampler(self) -> BundleSampler:
        """The bundle as a :class:`BundleSampler` (its ``sampler``, or a ``LatentSampler`` for foreign bundles)."""
        network = self.network
        if not self.foreign:
            module = self._parsed("sampler")  # references the same (loaded) `network` instance
        else:
            shape, uniform = _latent_spec(self.info.monai_metadata, self.path)
            post = self._parsed("postprocessing") if "postprocessing" in self.parser else None
            module = LatentSampler(network, shape, uniform, _flatten_without_saving(post) if post else None)
        module = module.to(self.device).eval()
        if self.device.type == "cpu":
            module = channels_last(module)
        return BundleSampler(bundle_dir=self.path, info=self.info, module=module, device=self.device,
                             weights_path=self.ckpt_path, foreign=self.foreign, options=dict(self.options),
                             monai_order=self.foreign)


def open_bundle(bundle_dir: PathLike, *, device: DeviceArg = None, options: Optional[Mapping[str, Any]] = None,
                overrides: Optional[Mapping[str, Any]] = None, trusted: Any = None) -> OpenedBundle:
    """Read ``bundle_dir`` into a ``ConfigWorkflow`` with ``bundle_root``, ``device`` and ``options`` overridden.

    ``options`` are sampling options of the zoo block (checked with ``resolve_options``; the ones not given keep the
    bundle's defaults); ``overrides`` are further config ids to set; ``trusted`` is the user's extra trust (checked
    when config code is first evaluated). Reads files only; see the module docstring.

    Raises:
        BundleLoadError: not a bundle, no inference config, or a config file that is not valid JSON (with its line).
    """
    from monai.bundle import ConfigWorkflow

    from medigan_zoo.catalog.bundle_reader import check_config_json
    from medigan_zoo.engine.conditions import resolve_options

    path = Path(bundle_dir).expanduser().resolve()
    info = read_info(path)
    check_config_json(path)  # a malformed config: one error naming the file and line
    config = path / INFERENCE_CONFIG
    if not config.is_file():
        raise BundleLoadError(f"{path} is not a runnable bundle: {INFERENCE_CONFIG} is missing.")
    resolved = resolve_options(info.options, options, info.id) if info.zoo.get("role", "generator") == "generator" \
        else {}
    dev = resolve_device(device)
    role = str(info.zoo.get("role") or "generator")
    pairs: Dict[str, Any] = {"bundle_root": str(path), "device": f"$torch.device('{dev}')", **resolved,
                             **dict(overrides or {})}
    try:
        with warnings.catch_warnings(), _quiet_monai_workflow_logger():
            warnings.simplefilter("ignore")
            workflow = ConfigWorkflow(config_file=str(config), meta_file=str(path / "configs" / "metadata.json"),
                                      logging_file=False, init_id=_NO_INIT, run_id="inferring",
                                      workflow_type="infer", properties_path=str(properties_file(role)), **pairs)
    except ValueError as err:  # JSON syntax errors from MONAI's reader
        raise BundleLoadError(f"{config} is not valid JSON: {err}; fix the file.") from None
    return OpenedBundle(path=path, info=info, workflow=workflow, device=dev, options=resolved, trusted=trusted)


def load_bundle_sampler(bundle_dir: PathLike, device: DeviceArg = None, options: Optional[Mapping[str, Any]] = None,
                        trusted: Any = None) -> BundleSampler:
    """``open_bundle(bundle_dir, device=..., options=..., trusted=...).sampler()``: a bundle ready to sample.

    Raises:
        UntrustedBundleError: the bundle is not trusted (nothing was evaluated); docs/security.md.
    """
    return open_bundle(bundle_dir, device=device, options=options, trusted=trusted).sampler()
