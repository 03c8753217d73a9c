"""``Generators``: medigan's user-facing verbs over the zoo index.

Search, selection and ranking are delegated to ``MediganSelector`` (medigan-compatible results) and
``SearchIndex`` (ranked free-text search); generation to ``medigan_zoo.engine`` (monai.bundle
workflows). This class only resolves ids and wires those parts together.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from medigan_zoo.catalog.index import IndexWarning, PathArg, ZooIndex
from medigan_zoo.catalog.model_info import ModelInfo
from medigan_zoo.catalog.trust import TrustArg
from medigan_zoo.core.arguments import check_int
from medigan_zoo.core.errors import BundleNotAvailableError, ZooError
from medigan_zoo.core.paths import as_output_path, zoo_home

ModelId = Union[str, int]


class Generators:
    """Find, compare and run the zoo's generative models (medigan's ``Generators`` API).

    Args:
        bundle_dirs: extra bundle folders (e.g. a foreign MONAI bundle) to index next to the shipped ones.
        catalogs: catalog JSON files describing models not on disk (e.g. from ``medigan-zoo import-medigan``).
        include_builtin: index the bundles shipped with the zoo.
        device: default device for generation ("cpu", "cuda", "cuda:1"); None picks CUDA when available.
        trust_bundles: folders whose bundles may run their config code (a folder trusts the bundles under it), or
            True to trust every bundle given (notebooks). Shipped bundles, verified downloads and
            ``MEDIGAN_ZOO_TRUSTED_PATHS`` are trusted anyway; anything else raises ``UntrustedBundleError`` before
            its config is read (docs/security.md).

    Index warnings (a broken extra bundle skipped, an id or alias claimed twice) are issued as ``IndexWarning``.
    """

    def __init__(self, bundle_dirs: PathArg = None, catalogs: PathArg = None, include_builtin: bool = True,
                 device: Optional[str] = None, trust_bundles: TrustArg = None):
        self.index = ZooIndex(bundle_dirs=bundle_dirs, catalogs=catalogs, include_builtin=include_builtin)
        self.device = device
        self.trust_bundles = trust_bundles
        for message in self.index.warnings:
            warnings.warn(message, IndexWarning, stacklevel=2)

    # --- discovery -----------------------------------------------------------------------
    def list_models(self) -> List[str]:
        """Ids of every model in the index (shipped bundles, ``bundle_dirs``, catalog entries), in index order.

        Returns:
            list of model id strings, e.g. ``["adrenal_ct_3dgan", "brain_mri_cdcgan", ...]``.
        """
        return self.index.ids()

    def get_model_info(self, model_id: ModelId) -> ModelInfo:
        """Typed metadata of one model.

        Args:
            model_id: a model id, a case variant of it, or medigan's short id (``5`` means ``00005_...``).

        Returns:
            the model's ``ModelInfo`` (name, modality, conditions, sampling options, metrics, bundle folder, ...).
            Raises ``ModelNotFoundError`` naming close matches when the id is not in the index.
        """
        return self.index.get(model_id)

    def search(self, query: Union[str, Sequence[str]], filters: Optional[Mapping[str, str]] = None,
               limit: Optional[int] = None):
        """Ranked free-text search with synonyms and filters.

        Args:
            query: free text (``"chest x-ray pneumonia"``) or a list of terms.
            filters: exact constraints, field -> value (``{"modality": "DX", "dims": "2"}``); comma-separated values
                mean any of them. An unknown field raises ``ZooError``.
            limit: return at most this many hits.

        Returns:
            list of ``SearchHit`` objects, best first (``hit.model_id``, ``hit.score``, ``hit.matched``).
        """
        return self.index.search_index.search(query, filters=filters, limit=limit)

    def _resolve_ids(self, model_ids: Optional[Sequence[ModelId]]) -> Optional[List[str]]:
        return None if model_ids is None else [self.index.resolve_id(m) for m in model_ids]

    # --- medigan's selection verbs (exact medigan 1.0.0 results) -------------------------
    def get_config_by_id(self, model_id: ModelId, config_key: Optional[str] = None) -> Any:
        """medigan's config of a model (its ``global.json`` entry as the zoo derives it from the bundle metadata).

        Args:
            model_id: a model id or medigan's short id.
            config_key: a dotted key below the config (``"selection.performance.FID"``); None for the whole config.

        Returns:
            the config dict, or the value at ``config_key``. Raises ``ConfigKeyNotFoundError`` for a missing key.
        """
        return self.index.selector.get_config_by_id(self.index.resolve_id(model_id), config_key=config_key)

    def get_selection_criteria_by_id(self, model_id: ModelId, is_model_id_removed: bool = True) -> Any:
        """The ``selection`` part of a model's medigan config (modality, performance, tags, ...).

        Args:
            model_id: a model id or medigan's short id.
            is_model_id_removed: True returns the selection dict itself; False returns
                ``{"model_id": id, "selection": {...}}`` (medigan's format).

        Returns:
            a copy of the selection dict (or the wrapper dict).
        """
        return self.index.selector.get_selection_criteria_by_id(
            self.index.resolve_id(model_id), is_model_id_removed=is_model_id_removed)

    def get_selection_criteria_by_ids(self, model_ids: Optional[Sequence[ModelId]] = None,
                                      are_model_ids_removed: bool = True) -> Any:
        """The ``selection`` parts of several models' medigan configs, in catalog order.

        Args:
            model_ids: model ids (or medigan short ids); None means every model.
            are_model_ids_removed: True gives the selection dicts; False gives ``{"model_id", "selection"}`` dicts.

        Returns:
            list of dicts, one per selected model.
        """
        return self.index.selector.get_selection_criteria_by_ids(
            model_ids=self._resolve_ids(model_ids), are_model_ids_removed=are_model_ids_removed)

    def get_selection_keys(self, model_id: Optional[ModelId] = None) -> List[str]:
        """First-level keys of the selection configs (e.g. ``modality``, ``performance``, ``tags``).

        Args:
            model_id: one model's keys; None gives the keys of all models, in first-seen order.

        Returns:
            list of key strings.
        """
        mid = None if model_id is None else self.index.resolve_id(model_id)
        return self.index.selector.get_selection_keys(model_id=mid)

    def get_selection_values_for_key(self, key: str, model_id: Optional[ModelId] = None) -> Any:
        """Values of one selection key.

        Args:
            key: a dotted selection key (``"performance.FID"``, ``"modality"``).
            model_id: one model; None gives one value per model (None where a model lacks the key).

        Returns:
            list of values (``[value]`` for one model). A key no model has raises ``ConfigKeyNotFoundError``.
        """
        mid = None if model_id is None else self.index.resolve_id(model_id)
        return self.index.selector.get_selection_values_for_key(key=key, model_id=mid)

    def get_models_by_key_value_pair(self, key1: str, value1: Any, is_case_sensitive: bool = False) -> List[str]:
        """Models whose selection key ``key1`` equals ``value1`` (or, for a list-valued key, contains it).

        Args:
            key1: a dotted selection key (``"modality"``).
            value1: the value to look for (``"DX"``).
            is_case_sensitive: compare strings case-sensitively (medigan's default is False).

        Returns:
            list of ``{"model_id": id, key1: value1}`` dicts (medigan 1.0.0's result shape, quirks kept).
        """
        return self.index.selector.get_models_by_key_value_pair(
            key1=key1, value1=value1, is_case_sensitive=is_case_sensitive)

    def find_matching_models_by_values(self, values: Sequence[str], target_values_operator: str = "AND",
                                       are_keys_also_matched: bool = False,
                                       is_case_sensitive: bool = False) -> List[Any]:
        """Models whose selection config holds ``values`` (medigan's exact-match selection).

        Args:
            values: values to find (``["chest", "pneumonia"]``); a single string is one value.
            target_values_operator: ``"AND"`` (every value found), ``"OR"`` (any) or ``"XOR"`` (exactly one).
            are_keys_also_matched: also match the config's keys, not only its values.
            is_case_sensitive: compare case-sensitively (default False).

        Returns:
            list of medigan ``ModelMatchCandidate`` objects in catalog order (``candidate.model_id``,
            ``candidate.matched_entries``). For ranked, synonym-aware matching use ``search``.
        """
        return self.index.selector.find_matching_models_by_values(
            values=values, target_values_operator=target_values_operator,
            are_keys_also_matched=are_keys_also_matched, is_case_sensitive=is_case_sensitive)

    def rank_models_by_performance(self, model_ids: Optional[Sequence[ModelId]] = None, metric: str = "SSIM",
                                   order: Optional[str] = None) -> List[Dict[str, Any]]:
        """Models ranked by a performance metric of their selection config.

        Args:
            model_ids: models to rank (ids or medigan short ids); None ranks every model having the metric.
            metric: dotted metric name (``"FID"``, ``"CLF.trained_on_real.accuracy"``).
            order: ``"asc"`` or ``"desc"``; None sorts best first by the metric's direction (FID lowest first,
                SSIM highest first).

        Returns:
            list of ``{"model_id": id, metric: value}`` dicts, best first.
        """
        return self.index.selector.rank_models_by_performance(
            model_ids=self._resolve_ids(model_ids), metric=metric, order=order)

    def find_models_and_rank(self, values: Sequence[str], target_values_operator: str = "AND",
                             are_keys_also_matched: bool = False, is_case_sensitive: bool = False,
                             metric: str = "SSIM", order: Optional[str] = None) -> List[Dict[str, Any]]:
        """``find_matching_models_by_values`` then ``rank_models_by_performance`` over the matching models.

        Args:
            values, target_values_operator, are_keys_also_matched, is_case_sensitive: as in
                ``find_matching_models_by_values``.
            metric, order: as in ``rank_models_by_performance``.

        Returns:
            list of ``{"model_id": id, metric: value}`` dicts of the matching models, best first.
        """
        return self.index.selector.find_models_and_rank(
            values=values, target_values_operator=target_values_operator,
            are_keys_also_matched=are_keys_also_matched, is_case_sensitive=is_case_sensitive,
            metric=metric, order=order)

    def find_model_and_generate(self, values: Sequence[str], target_values_operator: str = "AND",
                                are_keys_also_matched: bool = False, is_case_sensitive: bool = False,
                                num_samples: int = 30, output_path: Optional[str] = None,
                                **generate_kwargs: Any):
        """Generate with the first model matching ``values`` (medigan's semantics: catalog order, no ranking).

        Args:
            values, target_values_operator, are_keys_also_matched, is_case_sensitive: as in
                ``find_matching_models_by_values``.
            num_samples, output_path: as in ``generate``.
            **generate_kwargs: any other ``generate`` argument, condition or sampling option (``class_label=1``).

        Returns:
            what ``generate`` returns. Raises ``ZooError`` when no model matches.
        """
        matches = self.find_matching_models_by_values(values, target_values_operator, are_keys_also_matched,
                                                      is_case_sensitive)
        if not matches:
            raise ZooError(f"No model matches {list(values)} with operator {target_values_operator}. "
                           "Try `medigan-zoo search` for ranked, synonym-aware matching.")
        first = matches[0]
        # a candidate's model_id (what the selector returns), else a dict's, else the entry itself
        model_id: Any = (getattr(first, "model_id", None)
                         or (first.get("model_id") if isinstance(first, dict) else first))
        return self.generate(model_id, num_samples=num_samples, output_path=output_path, **generate_kwargs)

    def find_models_rank_and_generate(self, values: Sequence[str], target_values_operator: str = "AND",
                                      are_keys_also_matched: bool = False, is_case_sensitive: bool = False,
                                      metric: str = "SSIM", order: Optional[str] = None, num_samples: int = 30,
                                      output_path: Optional[str] = None, **generate_kwargs: Any):
        """Generate with the best-ranked model among those matching ``values``.

        Args:
            values, target_values_operator, are_keys_also_matched, is_case_sensitive: as in
                ``find_matching_models_by_values``.
            metric, order: as in ``rank_models_by_performance``.
            num_samples, output_path, **generate_kwargs: as in ``generate``.

        Returns:
            what ``generate`` returns. Raises ``ZooError`` when no matching model has the metric.
        """
        ranked = self.find_models_and_rank(values, target_values_operator, are_keys_also_matched,
                                           is_case_sensitive, metric, order)
        if not ranked:
            raise ZooError(f"No model matching {list(values)} has the metric {metric!r}.")
        return self.generate(ranked[0]["model_id"], num_samples=num_samples, output_path=output_path,
                             **generate_kwargs)

    # --- generation ------------------------------------------------------------------------
    def bundle_dir(self, model_id: ModelId) -> Path:
        """The bundle folder of a model: its folder on disk, or its downloaded copy in the zoo cache.

        Args:
            model_id: a model id or medigan's short id.

        Returns:
            the bundle's root folder. Raises ``BundleNotAvailableError`` saying where to get the bundle when a
            catalog model has not been downloaded.
        """
        from medigan_zoo.catalog.download import cached_bundle

        info = self.index.get(model_id)
        if info.bundle_dir is not None:
            return info.bundle_dir
        cached = cached_bundle(info)
        if cached is not None:
            return cached
        source = info.download or {}
        url = source.get("url") or "its publisher"
        if source.get("format") == "medigan-zip":
            how = ("it is a medigan package, not a MONAI bundle: convert it (docs/bundle_contract.md) and pass the "
                   "folder with --bundle_dirs")
        else:
            how = f"run `medigan-zoo download {info.id}` (sha256-verified) or unpack it and pass --bundle_dirs"
        raise BundleNotAvailableError(
            f"Model {info.id!r} is listed in catalog {info.origin} but its bundle is not on disk. "
            f"It must be downloaded from {url}; {how}.")

    def download(self, model_id: ModelId, progress: bool = True) -> Path:
        """Download the bundle of a catalog model (sha256-verified, cached, offline-first).

        Args:
            model_id: a model id or medigan's short id.
            progress: show a progress bar.

        Returns:
            the folder of the downloaded (or already cached) bundle.
        """
        from medigan_zoo.catalog.download import fetch_bundle

        return fetch_bundle(self.index.get(model_id), progress=progress)

    def _output_path(self, model_id: str, output_path: Optional[Union[str, Path]]) -> Path:
        if output_path is not None:
            return as_output_path(output_path)
        return zoo_home() / "outputs" / model_id / time.strftime("%Y%m%d-%H%M%S")

    def _conditions_and_options(self, model_id: str, conditions: Optional[Mapping[str, Any]],
                                options: Optional[Mapping[str, Any]], kwargs: Mapping[str, Any]):
        """Merge ``conditions`` / ``options`` with keyword arguments, sorted by the model's sampling option names."""
        from medigan_zoo.engine.conditions import split_conditions_and_options

        extra_conditions, extra_options = split_conditions_and_options(self.index.get(model_id), kwargs)
        return ({**(conditions or {}), **extra_conditions} or None), ({**(options or {}), **extra_options} or None)

    def generate(self, model_id: ModelId, num_samples: Optional[int] = None,
                 output_path: Optional[Union[str, Path]] = None,
                 save_images: bool = True, seed: int = 0, batch_size: int = 64, output_format: str = "png",
                 conditions: Optional[Mapping[str, Any]] = None, split_by_condition: bool = False,
                 device: Optional[str] = None, quiet: bool = False, options: Optional[Mapping[str, Any]] = None,
                 mapping: Optional[Union[str, Path]] = None, input_path: Any = None, samples_per_input: int = 1,
                 **kwargs: Any):
        """Generate ``num_samples`` synthetic samples with one model.

        Sample ``i`` comes from seed ``sample_seed(seed, i)``: the same arguments give the same files whatever
        ``batch_size``, device threads or processes, and a rerun into the same folder skips finished samples.

        Args:
            model_id: a model id or medigan's short id.
            num_samples: how many samples (None: 30, or one per input for models with image inputs).
            output_path: folder for the files and ``manifest.jsonl`` (default: a fresh folder under the zoo cache).
            save_images: False returns the samples as channel-last numpy arrays instead of writing files.
            seed: base seed of the run.
            batch_size: samples per forward pass (does not change the samples).
            output_format: ``png``, ``jpg``, ``nii.gz``, ``npy`` or ``dcm``.
            conditions: condition id -> value or list of values cycled over the samples (``{"class_label": 1}``).
            split_by_condition: one sub-folder per condition value.
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``; None uses the ``Generators`` default, else CUDA if present.
            quiet: no progress bar.
            options: the model's sampling options (``{"num_inference_steps": 20}``).
            mapping: a mapping file naming a foreign bundle's ids (default: its ``medigan_zoo.json``;
                docs/foreign_bundles.md).
            input_path: models with image inputs: a file or folder (PNG, NIfTI, npy, DICOM series) or a mapping
                input name -> path (docs/bundle_contract.md section 5); a model whose inputs are all ``optional``
                (an image + mask model given masks) generates from noise without it.
            samples_per_input: samples made from each input, each with its own seed.
            **kwargs: conditions and sampling options as keywords (``class_label=1``); ``medigan-zoo info MODEL``
                lists both. An unknown keyword raises ``ZooError`` listing the model's conditions and options.

        Returns:
            a ``GenerationResult`` (``output_path``, ``files``, ``manifest``, ``num_written``, ``num_skipped``);
            with ``save_images=False`` the list of numpy arrays (``(image, mask)`` tuples for image+mask models).
        """
        from medigan_zoo import engine

        resolved = self.index.resolve_id(model_id)
        merged, opts = self._conditions_and_options(resolved, conditions, options, kwargs)
        if num_samples is None and input_path is None:
            num_samples = 30
        return engine.generate(
            self.bundle_dir(resolved), num_samples=num_samples, input_path=input_path,
            samples_per_input=samples_per_input,
            output_path=self._output_path(resolved, output_path) if save_images else output_path,
            seed=seed, batch_size=batch_size, output_format=output_format, conditions=merged,
            split_by_condition=split_by_condition, device=device or self.device, quiet=quiet,
            save_images=save_images, options=opts, trusted=self.trust_bundles, mapping=mapping)

    def get_generate_function(self, model_id: ModelId, **defaults: Any):
        """A reusable generate call with bound defaults (for a user's own data loading).

        Args:
            model_id: a model id or medigan's short id.
            **defaults: any ``generate`` argument, condition or sampling option to bind.

        Returns:
            a callable; each call makes the next ``num_samples`` samples of the sequence (arrays unless given an
            ``output_path``), so repeated calls give new samples. The model is loaded once.
        """
        from medigan_zoo import engine

        if "device" not in defaults and self.device:
            defaults["device"] = self.device
        defaults.setdefault("trusted", self.trust_bundles)
        return engine.get_generate_function(self.bundle_dir(model_id), **defaults)

    def get_as_torch_dataset(self, model_id: ModelId, num_samples: int = 1000, seed: int = 0,
                             conditions: Optional[Mapping[str, Any]] = None, device: Optional[str] = None,
                             batch_size: int = 64, options: Optional[Mapping[str, Any]] = None,
                             inputs: Any = None, samples_per_input: int = 1, **kwargs: Any):
        """A lazy torch ``Dataset`` of synthetic samples: sample ``i`` is generated when read, reproducibly.

        Args:
            model_id: a model id or medigan's short id.
            num_samples: length of the dataset.
            seed: base seed (sample ``i`` equals file ``i`` of ``generate`` with the same seed and conditions).
            conditions, options, **kwargs: conditions and sampling options, as in ``generate``.
            device: where the model runs.
            batch_size: samples made per forward pass (blocks are cached; read in order).
            inputs: models with image inputs: a path (or name -> path); the dataset then has one item per input and
                sample (``num_samples`` is capped at that), each item naming its ``input_path``.
            samples_per_input: samples made from each input.

        Returns:
            a ``SyntheticDataset``; item ``i`` is ``{"image": (C, *spatial) float32 tensor, "seed", "index", ...}``
            (plus ``"mask"`` etc. for models with several outputs).
        """
        from medigan_zoo import engine

        resolved = self.index.resolve_id(model_id)
        merged, opts = self._conditions_and_options(resolved, conditions, options, kwargs)
        return engine.SyntheticDataset(self.bundle_dir(resolved), num_samples=num_samples, seed=seed,
                                       conditions=merged, device=device or self.device, batch_size=batch_size,
                                       options=opts, trusted=self.trust_bundles, inputs=inputs,
                                       samples_per_input=samples_per_input)

    def get_as_torch_dataloader(self, model_id: ModelId, num_samples: int = 1000, batch_size: int = 16,
                                shuffle: bool = False, num_workers: int = 0, seed: int = 0,
                                conditions: Optional[Mapping[str, Any]] = None, device: Optional[str] = None,
                                options: Optional[Mapping[str, Any]] = None, inputs: Any = None,
                                samples_per_input: int = 1, **kwargs: Any):
        """A torch ``DataLoader`` over ``get_as_torch_dataset``.

        Args:
            model_id: a model id or medigan's short id.
            num_samples, seed, conditions, device, options, inputs, samples_per_input: as in
                ``get_as_torch_dataset``.
            batch_size, shuffle, num_workers: passed to ``DataLoader`` (keep ``shuffle=False``: samples are i.i.d.).
            **kwargs: keywords naming one of the model's conditions or sampling options (``class_label=1``) go to
                the dataset, the others to ``DataLoader`` (``pin_memory=True``).

        Returns:
            a ``torch.utils.data.DataLoader`` yielding batches of the dataset's items.
        """
        from torch.utils.data import DataLoader

        info = self.index.get(model_id)
        model_args = {s.name for s in info.conditions} | {s.name for s in info.options}
        dataloader_kwargs = {k: v for k, v in kwargs.items() if k not in model_args}
        dataset = self.get_as_torch_dataset(model_id, num_samples=num_samples, seed=seed, conditions=conditions,
                                            device=device, batch_size=max(batch_size, 1), options=options,
                                            inputs=inputs, samples_per_input=samples_per_input,
                                            **{k: v for k, v in kwargs.items() if k in model_args})
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                          **dataloader_kwargs)

    def visualize(self, model_id: ModelId, output_path: Union[str, Path] = "samples.png", num_per_row: int = 8,
                  seed: int = 0, device: Optional[str] = None, input_path: Any = None) -> Path:
        """Write a grid of samples as one PNG: one row per condition value (the same seeds in every row), 3D
        models as orthogonal slices, masks as coloured overlays; models with image inputs: a row of inputs from
        ``input_path`` above the row of their outputs.

        Args:
            model_id: a model id or medigan's short id.
            output_path: the PNG file to write.
            num_per_row: samples per row.
            seed: base seed of the samples.
            device: where the model runs.
            input_path: models with image inputs: the inputs to show (a file or folder, as in ``generate``).

        Returns:
            the path of the written PNG.
        """
        from medigan_zoo.catalog.bundle_reader import check_config_json
        from medigan_zoo.engine.formats import as_generation_error, check_image_path
        from medigan_zoo.engine.visualize import write_sample_grid

        num_per_row, seed = check_int("num_per_row", num_per_row, 1), check_int("seed", seed, 0)
        path = check_image_path(as_output_path(output_path))  # before the model is loaded
        bundle = self.bundle_dir(model_id)
        check_config_json(bundle)
        try:
            return write_sample_grid(bundle, path, num_per_row=num_per_row, seed=seed, device=device or self.device,
                                     trusted=self.trust_bundles, input_path=input_path)
        except OSError as err:
            raise as_generation_error(err, path) from None
