"""``medigan-zoo publish``: push a bundle to the Hugging Face Hub and print the catalog entry that pins the commit.

Layout (as MONAI's ``monai.bundle.push_to_hf_hub``): the bundle's files at the repo root (``configs/``,
``models/``, ``docs/``, ``LICENSE``; the files ``package`` would zip, ``byod.package.bundle_files``) plus a root
``README.md``, the bundle's ``docs/README.md`` under a model card header. MONAI's helper writes ``license:
unknown`` unless the LICENSE is Apache or MIT; here the header (``card_header``) carries:

- ``library_name: monai``; ``license``: the weights' license from the zoo block (``catalog.licenses.hub_license``;
  a license the Hub does not list becomes ``other`` with ``license_name`` = its SPDX id);
- ``tags``: monai, medical, medigan-zoo, synthetic-data (generators), the modality codes and their names, the
  zoo block's dimensionality (2D/3D);
- ``pipeline_tag`` (``pipeline_tag``): image-feature-extraction for a feature extractor, image-to-image or
  text-to-image when the zoo block's ``function`` says so, unconditional-image-generation otherwise;
- ``datasets`` and a ``model-index`` with every numeric metric of the zoo block (name, value, data set, split from
  ``reference_split``; ``verified: false``: the zoo measured them, not the Hub).

Order (``publish``): the token is looked up first (``--token``, ``HF_TOKEN`` or a stored ``hf auth login``); none
stops with one line before anything is read or sent. Then ``validate``, then the staged folder is built, then
``HfApi.create_repo`` (public unless ``private``), ``upload_folder`` and, with ``revision_tag``, ``create_tag`` on
that commit. The catalog entry (``hub_catalog``) is an ``hf-hub`` source at ``hf://owner/name`` pinned to the
commit hash ``upload_folder`` returned, which ``--catalogs`` accepts and ``download`` fetches.

The Hub is reached only through ``huggingface_hub.HfApi``; tests replace that class (no network here).
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from medigan_zoo.byod.package import PathLike, bundle_files, check_valid
from medigan_zoo.catalog.licenses import hub_license, license_id
from medigan_zoo.catalog.model_info import ZOO_KEY
from medigan_zoo.catalog.schema import CATALOG_SCHEMA, check_schema
from medigan_zoo.core.errors import ZooError
from medigan_zoo.core.jsonio import load_json

#: a Hub repo id: owner/name (letters, digits, ``-``, ``_``, ``.``; at most 96 characters each)
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
#: tags every published card carries
BASE_TAGS = ("monai", "medical", "medigan-zoo")
_HEADER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.S)


@dataclass(frozen=True)
class PublishResult:
    """What ``publish`` pushed: the repo, its commit, the tag, and the catalog that pins the commit."""

    repo_id: str
    commit: str
    commit_url: str
    tag: Optional[str]
    private: bool
    catalog: Dict[str, Any]
    catalog_path: Optional[Path] = None

    def lines(self) -> List[str]:
        out = [f"published to https://huggingface.co/{self.repo_id} ({'private' if self.private else 'public'})",
               f"commit: {self.commit}"]
        if self.commit_url:
            out.append(f"commit url: {self.commit_url}")
        if self.tag:
            out.append(f"tag: {self.tag}")
        if self.catalog_path:
            out.append(f"catalog entry: {self.catalog_path}")
        out.append("catalog entry pinning this commit (for --catalogs):")
        out.append(json.dumps(self.catalog, indent=2))
        return out


def pipeline_tag(zoo: Dict[str, Any]) -> str:
    """The Hub's task of a bundle, from its zoo block's ``role`` and ``function``."""
    if zoo.get("role") == "feature_extractor":
        return "image-feature-extraction"
    functions = " ".join(str(f).lower() for f in zoo.get("function") or [])
    if "image to image" in functions or "image-to-image" in functions or "translation" in functions:
        return "image-to-image"
    if "text to image" in functions or "text-to-image" in functions:
        return "text-to-image"
    return "unconditional-image-generation"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def card_tags(zoo: Dict[str, Any]) -> List[str]:
    """The card's tags: ``BASE_TAGS``, synthetic-data for generators, modality codes and names, 2D/3D."""
    from medigan_zoo.query.vocabulary import MODALITY_CODES, modality_names

    tags = list(BASE_TAGS)
    if zoo.get("role", "generator") == "generator":
        tags.append("synthetic-data")
    for code in zoo.get("modality") or []:
        tags.append(_slug(code))
        if str(code).upper() in MODALITY_CODES:
            tags.append(_slug(modality_names(code)[0]))
    shape = zoo.get("spatial_shape") or []
    if shape:
        tags.append(f"{len(shape)}d")
    return list(dict.fromkeys(tags))


def _split(reference: Any) -> Optional[str]:
    """The split(s) of a ``reference_split``: ``a.npz:test`` -> ``test``; ``a.npz:train vs a.npz:test`` (two
    splits compared, e.g. membership inference) -> ``train vs test``; no split named -> None."""
    parts = [p.rsplit(":", 1)[1] for p in str(reference or "").split(" vs ") if ":" in p]
    return " vs ".join(parts) or None


def card_header(metadata: Dict[str, Any], model_id: str):
    """The model card header (a ``huggingface_hub.ModelCardData``) of a bundle's metadata (module docstring)."""
    from huggingface_hub import EvalResult, ModelCardData

    zoo = metadata[ZOO_KEY]
    spdx = license_id(zoo.get("license"))
    hub = hub_license(spdx)
    task = pipeline_tag(zoo)
    datasets = [str(d) for d in zoo.get("dataset") or []]
    results = []
    for metric in zoo.get("metrics") or []:
        value = metric.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # the model-index holds numbers only
        reference = str(metric.get("reference_split") or "").split(":")[0]  # pneumoniamnist.npz:test -> the file
        dataset = Path(reference).stem or _slug(datasets[0] if datasets else "unknown")
        results.append(EvalResult(
            task_type=task, dataset_type=dataset, dataset_name=datasets[0] if datasets else dataset,
            dataset_split=_split(metric.get("reference_split")), metric_type=str(metric["name"]),
            metric_name=str(metric["name"]), metric_value=value, verified=False,
            metric_config=f"direction={metric['direction']}" if metric.get("direction") else None))
    extra: Dict[str, Any] = {"license_name": spdx} if hub == "other" else {}
    return ModelCardData(library_name="monai", license=hub, tags=card_tags(zoo), pipeline_tag=task,
                         datasets=datasets or None, model_name=model_id, eval_results=results or None, **extra)


def model_card(bundle: Path, metadata: Dict[str, Any], model_id: str) -> str:
    """The root README.md: ``card_header`` as YAML front matter, then the bundle's docs/README.md (its own front
    matter, if any, replaced)."""
    readme = bundle / "docs" / "README.md"
    body = readme.read_text(encoding="utf-8") if readme.is_file() else f"# {metadata.get('name') or model_id}\n"
    body = _HEADER.sub("", body, count=1)
    return f"---\n{card_header(metadata, model_id).to_yaml()}\n---\n{body}"


def stage(bundle: Path, metadata: Dict[str, Any], model_id: str, dest: Path) -> List[str]:
    """Copy the bundle's files into ``dest`` in the Hub layout (module docstring); return the relative paths."""
    names = []
    for path in bundle_files(bundle):
        rel = path.relative_to(bundle)
        if rel.as_posix() == "README.md":
            continue  # replaced by the model card
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel)
        names.append(rel.as_posix())
    (dest / "README.md").write_text(model_card(bundle, metadata, model_id), encoding="utf-8")
    return sorted(names + ["README.md"])


def hub_catalog(metadata: Dict[str, Any], model_id: str, repo_id: str, commit: str, total_bytes: int
                ) -> Dict[str, Any]:
    """A one-model catalog (schemas/catalog.schema.json) with an ``hf-hub`` source pinned to ``commit``."""
    return {"catalog_format": "medigan_zoo.catalog/1", "name": f"{model_id} (medigan-zoo publish)",
            "models": [{"id": model_id, "name": str(metadata.get("name") or model_id),
                        "version": str(metadata.get("version") or "0.0.0"),
                        "description": str(metadata.get("description") or ""), "zoo": metadata[ZOO_KEY],
                        "download": {"url": f"hf://{repo_id}", "revision": commit, "format": "hf-hub",
                                     "max_bytes": max(total_bytes, 1)}}]}


def _token(token: Optional[str]) -> str:
    if token:
        return str(token)
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise ZooError("publish: no Hugging Face token; run `hf auth login`, set HF_TOKEN, or pass --token "
                       "(a token with write access to the repo). Nothing was sent.")
    return found


def publish(bundle: PathLike, repo: str, revision_tag: Optional[str] = None, private: bool = False,
            token: Optional[str] = None, model_id: Optional[str] = None, output: Optional[PathLike] = None,
            commit_message: Optional[str] = None) -> PublishResult:
    """Push ``bundle`` to the Hub repo ``repo`` (module docstring) and return the commit and its catalog.

    ``model_id`` names the catalog entry (default: the bundle folder's name); ``output`` is a folder that gets the
    catalog as ``<id>-<version>.hf.catalog.json``. Raises ZooError (one line): no token (checked first), a bad
    repo id, an invalid bundle, or a refused upload.
    """
    tok = _token(token)
    if not REPO_ID.match(str(repo)):
        raise ZooError(f"publish: --repo {repo!r} is not a Hugging Face repo id; write owner/name "
                       "(e.g. my-lab/chest_xray_cdcgan).")
    path = Path(bundle).expanduser().resolve()
    check_valid(path, "publish", "first. Nothing was sent.")
    metadata = load_json(path / "configs" / "metadata.json", "bundle metadata")
    if not isinstance(metadata.get(ZOO_KEY), dict):
        raise ZooError(f"publish: {path / 'configs' / 'metadata.json'} has no {ZOO_KEY!r} block, which the model "
                       "card and catalog entry are made of; add one (docs/bundle_contract.md).")
    model_id = str(model_id or path.name)
    version = str(metadata.get("version") or "0.0.0")
    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory(prefix="medigan-zoo-publish-") as tmp:
        staged = Path(tmp) / model_id
        staged.mkdir()
        stage(path, metadata, model_id, staged)
        total = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())
        api = HfApi(token=tok)
        try:
            api.create_repo(repo_id=repo, private=private, repo_type="model", exist_ok=True)
            info = api.upload_folder(repo_id=repo, folder_path=str(staged), repo_type="model",
                                     commit_message=commit_message or f"{model_id} {version} (medigan-zoo publish)")
            commit = str(info.oid)
            if revision_tag:
                api.create_tag(repo_id=repo, tag=str(revision_tag), revision=commit, repo_type="model",
                               tag_message=f"{model_id} {version}", exist_ok=True)
        except ZooError:
            raise
        except Exception as err:  # noqa: BLE001 - HTTP, auth, network: one line for the user
            first = (str(err).strip().splitlines() or [""])[0]
            raise ZooError(f"publish: could not push to {repo} on the Hugging Face Hub: {type(err).__name__}: "
                           f"{first}") from None
    catalog = hub_catalog(metadata, model_id, repo, commit, total)
    catalog_path = None
    if output is not None:
        out = Path(output).expanduser().resolve()
        catalog_path = out / f"{model_id}-{version}.hf.catalog.json"
    check_schema(catalog, CATALOG_SCHEMA, catalog_path)
    if catalog_path is not None:
        catalog_path.parent.mkdir(parents=True, exist_ok=True)
        catalog_path.write_text(json.dumps(catalog, indent=2) + "\n", encoding="utf-8")
    return PublishResult(repo, commit, str(getattr(info, "commit_url", "") or ""), revision_tag or None, private,
                         catalog, catalog_path)
