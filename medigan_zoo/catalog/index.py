"""The zoo index: shipped bundles + extra bundle folders + catalogs, resolved by id or alias.

Building it reads JSON only (no torch, no monai), so listing and searching stay fast.

Precedence, never silent: a shipped bundle beats an extra bundle of the same id, an earlier extra bundle a later
one, a bundle on disk a catalog entry; the loser is left out and :attr:`ZooIndex.warnings` says so, naming both
places (an extra folder named ``chest_xray_cdcgan`` cannot replace the shipped model, nor claim its alias and
metrics). A numeric alias claimed by two models resolves to the first one, with a warning. An extra bundle that
cannot be read is left out with a warning, so one broken bundle does not break commands for the others; asking
for it by id raises its error.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from medigan_zoo.catalog.bundle_reader import read_bundle
from medigan_zoo.catalog.catalogs import read_catalog
from medigan_zoo.catalog.model_info import ModelInfo
from medigan_zoo.core import paths
from medigan_zoo.core.errors import ModelNotFoundError, ZooError

PathArg = Optional[Union[paths.PathLike, Sequence[paths.PathLike]]]


class IndexWarning(UserWarning):
    """A model left out of the index (broken, or its id claimed by an earlier source) or an alias claimed twice."""


class ZooIndex:
    """All models the zoo knows, in a stable order: shipped bundles, extra bundles, catalog entries.

    Args:
        bundle_dirs: extra bundle folders (a bundle, or a folder of bundles); ``MEDIGAN_ZOO_BUNDLE_PATH`` adds more.
        catalogs: catalog JSON files; ``MEDIGAN_ZOO_CATALOGS`` adds more.
        include_builtin: index the bundles shipped with the zoo.
    """

    def __init__(self, bundle_dirs: PathArg = None, catalogs: PathArg = None, include_builtin: bool = True):
        self._models: Dict[str, ModelInfo] = {}
        self.feature_extractors: Dict[str, ModelInfo] = {}  # role "feature_extractor": used by evaluation
        self.warnings: List[str] = []  # one line each; the CLI prints them, Generators issues IndexWarning
        self.broken: Dict[str, ZooError] = {}  # id (folder name) of an extra bundle that could not be read -> why
        roots: List[Tuple[Path, bool]] = []  # (root, named on this call: an empty one is an error)
        if include_builtin:
            roots.append((paths.builtin_bundles_root(), False))
        roots += [(p, True) for p in paths.as_path_list(bundle_dirs)]
        roots += [(p, False) for p in paths.split_env_paths(paths.ENV_BUNDLE_PATH)]
        for root, explicit in roots:
            found = paths.find_bundles(root)
            if not found and root != paths.builtin_bundles_root():
                message = (f"Bundle folder {root} holds no MONAI bundle (no configs/metadata.json found in it "
                           "or its sub-folders). Pass a bundle folder or a folder of bundles.")
                if explicit:
                    raise ZooError(message)
                self.warnings.append(f"{message[:-1]} ({paths.ENV_BUNDLE_PATH}); it is ignored.")
            for bundle_dir in found:
                try:
                    info = read_bundle(bundle_dir)
                except (ZooError, OSError) as err:
                    if root == paths.builtin_bundles_root():
                        raise
                    self.broken.setdefault(bundle_dir.name, err if isinstance(err, ZooError) else ZooError(
                        f"Bundle {bundle_dir} cannot be read: {err}"))
                    self.warnings.append(f"Bundle {bundle_dir.name!r} ({bundle_dir}) is left out of the index: "
                                         f"{' '.join(str(err).split())}")
                    continue
                self._add(info)
        for catalog in paths.as_path_list(catalogs) + paths.split_env_paths(paths.ENV_CATALOGS):
            for info in read_catalog(catalog):
                self._add(info)
        self._aliases: Dict[int, str] = {}
        for info in self._models.values():
            for alias in self._alias_numbers(info):
                owner = self._aliases.setdefault(alias, info.id)
                if owner != info.id:
                    self.warnings.append(
                        f"Alias {alias} is claimed by {owner!r} ({_place(self._models[owner])}) and by {info.id!r} "
                        f"({_place(info)}); {alias} means {owner!r}, use the full id {info.id!r} for the other.")
        self._search_index = None
        self._selector = None

    def _add(self, info: ModelInfo) -> None:
        table = self.feature_extractors if info.zoo.get("role") == "feature_extractor" else self._models
        existing = table.get(info.id) or self._models.get(info.id) or self.feature_extractors.get(info.id)
        if existing is None:
            table[info.id] = info
            return
        if existing.available and not info.available:
            return  # a catalog entry describing a bundle on disk (e.g. where to download it): nothing is replaced
        self.warnings.append(f"Model id {info.id!r} is claimed by {_place(existing)} and by {_place(info)}; the "
                             f"first one is used and the other left out (rename the folder or the id to use both).")

    @staticmethod
    def _alias_numbers(info: ModelInfo) -> Iterable[int]:
        if info.alias is not None:
            yield info.alias
        match = re.match(r"^(\d+)_", info.id)
        if match:
            yield int(match.group(1))

    # --- lookups -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self):
        return iter(self._models.values())

    def ids(self) -> List[str]:
        return list(self._models)

    def resolve_id(self, model_id: Union[str, int]) -> str:
        """Full id for ``model_id``: an id, a case variant, a numeric alias (5, "5", "00005")."""
        if isinstance(model_id, str) and model_id in self._models:
            return model_id
        text = str(model_id).strip()
        if text.isdigit() and int(text) in self._aliases:
            return self._aliases[int(text)]
        lowered = {k.lower(): k for k in self._models}
        if text.lower() in lowered:
            return lowered[text.lower()]
        if text in self.broken:
            raise self.broken[text]
        raise ModelNotFoundError(model_id, self._models)

    def get(self, model_id: Union[str, int]) -> ModelInfo:
        """The ModelInfo of ``model_id``; unknown ids raise ModelNotFoundError listing close ids."""
        return self._models[self.resolve_id(model_id)]

    # --- derived views (built on first use) ----------------------------------------------
    @property
    def search_index(self):
        """Ranked free-text search over every model (medigan_zoo.query.ranking.SearchIndex)."""
        if self._search_index is None:
            from medigan_zoo.query.ranking import SearchIndex, fields_from_medigan_config

            entries = []
            for info in self._models.values():
                fields = {k: list(v) for k, v in fields_from_medigan_config(info.id, info.medigan_config).items()}
                for key, values in search_fields(info).items():
                    known = fields.setdefault(key, [])
                    known.extend(v for v in values if v not in known)
                entries.append((info.id, fields))
            self._search_index = SearchIndex(entries)
        return self._search_index

    @property
    def selector(self):
        """medigan's verbs over every model (medigan_zoo.medigan.compat.MediganSelector)."""
        if self._selector is None:
            from medigan_zoo.medigan.compat import MediganSelector

            directions = {}
            for info in self._models.values():
                for metric in info.metrics:
                    directions.setdefault(metric.name, metric.direction)
            self._selector = MediganSelector(
                {i.id: i.medigan_config for i in self._models.values()}, directions=directions)
        return self._selector


def _place(info: ModelInfo) -> str:
    """Where a model comes from, for messages: the shipped bundle, an extra bundle folder, or a catalog file."""
    if info.bundle_dir is not None:
        shipped = paths.builtin_bundles_root().resolve()
        kind = "the shipped bundle" if shipped in Path(info.bundle_dir).resolve().parents else "the bundle"
        return f"{kind} {info.bundle_dir}"
    return f"catalog {info.origin}"


def search_fields(info: ModelInfo) -> Dict[str, List[str]]:
    """Search fields that come from the zoo block (they extend the medigan-derived ones); the field table
    (catalog/fields.py) says which, ``query.ranking.fields_from_zoo_block`` reads them."""
    from medigan_zoo.query.ranking import fields_from_zoo_block

    fields = fields_from_zoo_block(info.id, info.name, info.description, info.zoo)
    # filter-only fields (query.ranking.FILTER_ONLY_FIELDS): can the zoo run it, and the licenses of its parts
    fields["runnable"] = [info.runs]
    for part, spdx in info.license_parts.items():
        fields[f"{part}_license"] = [spdx]
    return fields
