"""The one bundle runtime: ``open_bundle(dir)`` -> a MONAI ``ConfigWorkflow`` with the zoo's properties file.

Everything that runs a bundle (generate, datasets, visualize, validate ``--run``, export, evaluation's feature
extractors) opens it here, so the rules are written once:

* which config file (``configs/inference.json``, ``.yaml`` or ``.yml``: :mod:`medigan_zoo.catalog.foreign`), the
  bundle's own run id (:attr:`OpenedBundle.run_id`), the ids a mapping file renames (``medigan_zoo.json``), how
  ``bundle_root``/``device``/sampling options are overridden;
* which ids the zoo contract needs (``runtime/*_properties.json``, checked statically: nothing is evaluated);
* the weights: ``ckpt_path`` of the config (default ``models/model.pt``) through the one loader
  (:mod:`medigan_zoo.runtime.weights`), into ``network`` (or ``network_def``);
* the sampler: the bundle's ``sampler`` or, for a foreign bundle, one the zoo builds for its family: a
  :class:`LatentSampler` around ``network`` (GAN-shaped), an :class:`InfererDiffusionSampler` around its UNet and
  scheduler (MONAI's ``DiffusionInferer``), a :class:`LatentDiffusionSampler` around its autoencoder, UNet and
  scheduler (each network with its own checkpoint id), or one line saying why the zoo cannot
  (docs/foreign_bundles.md).

Opening reads files only. Config code (``$`` expressions, ``_target_`` components) runs when a part is built
(:meth:`OpenedBundle.network`, :meth:`OpenedBundle.sampler`): first the trust policy is checked
(:mod:`medigan_zoo.catalog.trust`, docs/security.md), then the part is built with the bundle root on ``sys.path``
only meanwhile (:mod:`medigan_zoo.runtime.imports`). The bundle's ``initialize`` expressions are not run: they set
process-wide state (``set_determinism``), and the zoo seeds every sample itself.
"""
from __future__ import annotations

import contextlib
import logging
import re
import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

import torch
from torch import nn

from medigan_zoo.catalog.foreign import (
    INFERENCE_CONFIGS,
    BundleMapping,
    family_of,
    find_run_id,
    inference_config,
    large_file_url,
    own_workflow,
    read_config,
    read_mapping,
)
from medigan_zoo.catalog.model_info import ModelInfo
from medigan_zoo.core.errors import BundleLoadError, MetadataError
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
#: the inference config of a zoo bundle, relative to its root (foreign bundles may have .yaml/.yml instead)
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
    #: the bundle's own run id (what ``python -m monai.bundle run`` runs), None when it has none
    run_id: Optional[str] = None
    mapping: BundleMapping = field(default_factory=BundleMapping)
    config_path: Optional[Path] = None
    #: how the samples are seeded, for the manifest ("" = the zoo's per-sample seeds; the own-workflow route says
    #: what holds, :func:`medigan_zoo.runtime.own_workflow.guarantee`)
    seeding: str = ""
    _trust_checked: bool = field(default=False, repr=False)

    def id(self, zoo_id: str) -> str:
        """The config id of ``zoo_id`` in this bundle (renamed by its mapping file, else ``zoo_id``)."""
        return self.mapping.id(zoo_id)

    @property
    def role(self) -> str:
        return str(self.info.zoo.get("role") or "generator")

    @property
    def parser(self) -> Any:
        """The workflow's ``ConfigParser`` (``id in parser`` and ``parser.get(id)`` read the raw config)."""
        return self.workflow.parser

    @property
    def foreign(self) -> bool:
        """True for a bundle without a zoo ``sampler`` (e.g. MONAI's MedNIST GAN); a ``sampler`` id of a bundle
        without a ``medigan_zoo`` metadata block (MONAI's 3D brain LDM: a plain class of its scripts) is not one."""
        return "sampler" not in self.parser or self.info.monai_metadata.get("medigan_zoo") is None

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
        """The inference config the workflow read (``configs/inference.json|yaml|yml``)."""
        return self.config_path or Path(self.workflow.config_root_path) / Path(INFERENCE_CONFIG).name

    @cached_property
    def ckpt_path(self) -> Path:
        """The weights file the config names (``ckpt_path``; default ``models/model.pt``), absolute."""
        ckpt_id = self.id("ckpt_path")
        ckpt = Path(self._parsed(ckpt_id)) if ckpt_id in self.parser else Path(DEFAULT_CKPT)
        return ckpt if ckpt.is_absolute() else self.path / ckpt

    @cached_property
    def network(self) -> nn.Module:
        """``network`` (or ``network_def``) with the weights of :attr:`ckpt_path` loaded, in eval mode on device."""
        net_id = self.id("network") if self.id("network") in self.parser else self.id("network_def")
        if net_id not in self.parser:
            raise BundleLoadError(f"Bundle {self.path} declares neither `{self.id('network')}` nor "
                                  f"`{self.id('network_def')}` in {self.config_file.name}; the zoo cannot tell which "
                                  "network to load (a mapping file can name it: docs/foreign_bundles.md).")
        if not self.ckpt_path.is_file() and self.ckpt_path.is_relative_to(self.path):
            url = large_file_url(self.path, self.ckpt_path.relative_to(self.path).as_posix())
            if url:
                raise BundleLoadError(f"Weights file {self.ckpt_path} not found; the bundle's large_files.yml names "
                                      f"its download: {url} (`python -m monai.bundle download` fetches it, or save it "
                                      "there yourself).")
        network = self._parsed(net_id)
        fit_weights(network, load_weights(self.ckpt_path), f"{self.ckpt_path} (into `{net_id}` of {self.path})")
        return network.to(self.device).eval()

    def sampler(self) -> BundleSampler:
        """The bundle as a :class:`BundleSampler` (its ``sampler``, or the one the zoo builds for a foreign bundle).

        Raises:
            BundleLoadError: a foreign bundle of a family the zoo does not run (one line: why, and its run id)."""
        if not self.foreign:
            self.network  # noqa: B018 - loads the weights into the instance `sampler` references
            module = self._parsed("sampler")
        else:
            module = self._foreign_module()
        module = module.to(self.device).eval()
        if self.device.type == "cpu":
            module = channels_last(module)
        sampler = BundleSampler(bundle_dir=self.path, info=self.info, module=module, device=self.device,
                                weights_path=self.ckpt_path, foreign=self.foreign, options=dict(self.options),
                                monai_order=self.foreign, seeding=self.seeding)
        # one workflow run per sample: padding the batch (for bit-identical batched kernels) would only add runs
        return replace(sampler, min_batch=1) if self.seeding else sampler

    def _foreign_module(self) -> nn.Module:
        """The sampler the zoo builds for a bundle without one, by its family (:func:`family_of`)."""
        config = self.parser.get()
        family, runnable, reason, ids = family_of(config, self.info.monai_metadata, self.mapping)
        if not runnable:
            own = own_workflow(self.path, config, self.run_id, family, ids, self.mapping)
            if own is not None and own[0]:
                return self._own_workflow_module(config, own[2], own[3])
            if own is not None:
                reason = f"{own[1]}; the zoo's fast path cannot run it either ({reason})"
            raise BundleLoadError(f"The zoo cannot run bundle {self.path.name!r} ({self.path}): {reason}. "
                                  + (f"MONAI runs it with `python -m monai.bundle run {self.run_id} --config_file "
                                     f"{self.config_file}`." if self.run_id else ""))
        if family == "latent_diffusion":
            return self._latent_diffusion_module(ids)
        network = self.network
        if family == "ddpm":
            return self._diffusion_module(network, ids)
        shape, uniform = _latent_spec(self.info.monai_metadata, self.path)
        post_id = self.id("postprocessing")
        post = self._parsed(post_id) if post_id in self.parser else None
        return LatentSampler(network, shape, uniform, _flatten_without_saving(post) if post else None)

    def _own_workflow_module(self, config: Mapping[str, Any], overrides: Mapping[str, str], seeding: str
                             ) -> nn.Module:
        """An :class:`OwnWorkflowSampler`: the bundle's own ``ConfigWorkflow`` (its run id), once per sample, once
        the bundle is trusted (nothing of it has run before)."""
        from medigan_zoo.catalog.trust import check_trusted
        from medigan_zoo.runtime.own_workflow import OwnWorkflowSampler, guarantee, weights_of
        from medigan_zoo.runtime.sampler import output_formats, value_range

        check_trusted(self.path, self.trusted)
        if self.options:
            raise BundleLoadError(f"Bundle {self.path.name!r} runs through its own workflow, which takes no zoo "
                                  f"sampling options (got {sorted(self.options)}).")
        assert self.run_id is not None  # own_workflow() needs one
        outputs = output_formats(self.info.monai_metadata)
        pred = outputs.get("pred") or next(iter(outputs.values()), {})
        self.seeding = guarantee(self.run_id, overrides, seeding)
        self.ckpt_path = weights_of(self.path, config, self.config_file)  # what BundleSampler records
        return OwnWorkflowSampler(self.path, self.config_file, self.run_id, overrides, self.device,
                                  value_range(pred))

    def _loaded(self, net_id: str, ckpt_id: str) -> nn.Module:
        """Config component ``net_id`` with the weights of the path id ``ckpt_id`` (the one loader), eval, on device."""
        ckpt = Path(self._parsed(ckpt_id))
        ckpt = ckpt if ckpt.is_absolute() else self.path / ckpt
        if not ckpt.is_file() and ckpt.is_relative_to(self.path):
            url = large_file_url(self.path, ckpt.relative_to(self.path).as_posix())
            if url:
                raise BundleLoadError(f"Weights file {ckpt} not found; the bundle's large_files.yml names its "
                                      f"download: {url} (`python -m monai.bundle download` fetches it, or save it "
                                      "there yourself).")
        network = self._parsed(net_id)
        fit_weights(network, load_weights(ckpt), f"{ckpt} (into `{net_id}` of {self.path})",
                    old_layout=self._loads_old_layout(net_id))
        return network.to(self.device).eval()

    def _loads_old_layout(self, net_id: str) -> bool:
        """Whether the bundle's own config loads ``net_id`` with ``load_old_state_dict`` (read as data: an expression
        naming ``@net_id.load_old_state_dict``, unless it is chosen by ``bool(@load_old)`` and ``load_old`` is 0)."""
        config = self.parser.get()
        exprs = [str(v) for v in config.values() if isinstance(v, str) and f"@{net_id}.load_old_state_dict" in v]
        if not exprs:
            return False
        switch = re.search(r"bool\(@(\w+)\)", exprs[0])
        return bool(config.get(switch.group(1), 1)) if switch else True

    def _latent_diffusion_module(self, ids: Mapping[str, str]) -> nn.Module:
        """A :class:`LatentDiffusionSampler`: the autoencoder and the UNet each with its own checkpoint id, the
        bundle's scheduler (built without its ``_requires_``: those run the bundle's own loading code), the latent
        shape of its ``noise``, its ``scale_factor`` (the ``scale_factor`` id, else the LatentDiffusionInferer's,
        else 1.0: MONAI's published LDM samplers decode the latent as is) and its conditions in stacking order."""
        from medigan_zoo.samplers.latent_diffusion import LatentDiffusionSampler

        autoencoder = self._loaded(ids["autoencoder_def"], ids["autoencoder_ckpt"])
        unet = self._loaded(ids["diffusion_def"], ids["diffusion_ckpt"])
        raw = self.parser.get(ids["scheduler"])
        if isinstance(raw, Mapping) and "_requires_" in raw:
            self.parser[f"{ids['scheduler']}#_requires_"] = []
        scheduler = self._parsed(ids["scheduler"])
        noise = self._parsed(ids["noise"])
        if not isinstance(noise, torch.Tensor) or noise.ndim < 3:
            raise BundleLoadError(f"`{ids['noise']}` of bundle {self.path} is not a (1, C, *spatial) latent tensor; "
                                  "the zoo cannot tell the latent shape.")
        inferer = self.parser.get(ids["inferer"]) if ids.get("inferer") else None
        if ids.get("scale_factor"):
            scale = float(self._parsed(ids["scale_factor"]))
        elif isinstance(inferer, Mapping) and "scale_factor" in inferer:
            scale = float(self._parsed(f"{ids['inferer']}#scale_factor"))
        else:
            scale = 1.0
        steps = int(self.options.get("num_inference_steps") or len(scheduler.timesteps))
        names = [c for c in ids.get("conditions", "").split(",") if c]
        self.ckpt_path = self.path / Path(self._parsed(ids["diffusion_ckpt"]))  # what BundleSampler records
        return LatentDiffusionSampler(unet, autoencoder, scheduler, tuple(noise.shape[1:]), steps, scale, names)

    def _diffusion_module(self, network: nn.Module, ids: Mapping[str, str]) -> nn.Module:
        """An :class:`InfererDiffusionSampler` on the bundle's UNet and scheduler; the noise has the shape and
        distribution of the bundle's ``noise`` (``torch.rand`` -> uniform, else normal) or, without one, the
        network's input channels and the output's spatial shape."""
        from medigan_zoo.samplers.inferer_diffusion import InfererDiffusionSampler

        scheduler = self._parsed(ids["scheduler"])
        noise_id = ids.get("noise")
        noise = self._parsed(noise_id) if noise_id else None
        if isinstance(noise, torch.Tensor) and noise.ndim >= 3:  # (1, C, *spatial), as MONAI's bundles draw it
            raw = str(self.parser.get(noise_id))
            shape = tuple(noise.shape[1:])
            distribution = "uniform" if "rand(" in raw and "randn(" not in raw else "normal"
        else:
            spatial = tuple(self.info.spatial_shape[::-1])  # display order -> MONAI's (x, y[, z])
            shape = (int(getattr(network, "in_channels", 1) or 1),) + spatial
            distribution = "normal"
        steps = int(self.options.get("num_inference_steps") or len(scheduler.timesteps))
        return InfererDiffusionSampler(network, scheduler, shape, distribution, steps)


def open_bundle(bundle_dir: PathLike, *, device: DeviceArg = None, options: Optional[Mapping[str, Any]] = None,
                overrides: Optional[Mapping[str, Any]] = None, trusted: Any = None,
                mapping: Optional[PathLike] = None) -> OpenedBundle:
    """Read ``bundle_dir`` into a ``ConfigWorkflow`` with ``bundle_root``, ``device`` and ``options`` overridden.

    ``options`` are sampling options of the zoo block (checked with ``resolve_options``; the ones not given keep the
    bundle's defaults); ``overrides`` are further config ids to set; ``trusted`` is the user's extra trust (checked
    when config code is first evaluated); ``mapping`` a mapping file of the bundle's ids (default: the bundle's
    ``medigan_zoo.json`` when present). The config is ``configs/inference.json``, ``.yaml`` or ``.yml``; the workflow
    is set up with the bundle's own run id (:func:`medigan_zoo.catalog.foreign.find_run_id`). Reads files only;
    see the module docstring.

    Raises:
        BundleLoadError: not a bundle, no inference config, or a config file that does not parse (with its line).
        MetadataError: a mapping file that is missing or malformed.
    """
    from monai.bundle import ConfigWorkflow

    from medigan_zoo.catalog.bundle_reader import check_config_json
    from medigan_zoo.engine.conditions import resolve_options

    path = Path(bundle_dir).expanduser().resolve()
    info = read_info(path)
    try:
        check_config_json(path)  # a malformed config: one error naming the file and line
    except MetadataError as err:
        raise BundleLoadError(str(err)) from None
    config = inference_config(path)
    if config is None:
        raise BundleLoadError(f"{path} is not a runnable bundle: it has no inference config "
                              f"({', '.join(INFERENCE_CONFIGS)}).")
    bundle_mapping = read_mapping(path, mapping)
    run_id, _ = find_run_id(read_config(config), path, bundle_mapping)
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
                                      logging_file=False, init_id=_NO_INIT, run_id=run_id or "inferring",
                                      workflow_type="infer", properties_path=str(properties_file(role)), **pairs)
    except ValueError as err:  # syntax errors from MONAI's reader (check_config_json catches them first)
        raise BundleLoadError(f"{config} does not parse: {err}; fix the file.") from None
    return OpenedBundle(path=path, info=info, workflow=workflow, device=dev, options=resolved, trusted=trusted,
                        run_id=run_id, mapping=bundle_mapping, config_path=config)


def load_bundle_sampler(bundle_dir: PathLike, device: DeviceArg = None, options: Optional[Mapping[str, Any]] = None,
                        trusted: Any = None, mapping: Optional[PathLike] = None) -> BundleSampler:
    """``open_bundle(bundle_dir, device=..., options=..., trusted=..., mapping=...).sampler()``: a bundle ready to
    sample.

    Raises:
        UntrustedBundleError: the bundle is not trusted (nothing was evaluated); docs/security.md.
    """
    return open_bundle(bundle_dir, device=device, options=options, trusted=trusted, mapping=mapping).sampler()
