"""``medigan-zoo`` command line (python-fire). Flags mirror the Python parameter names.

    medigan-zoo list
    medigan-zoo search mammography 128x128 dcgan modality=MG
    medigan-zoo info chest_xray_cdcgan
    medigan-zoo rank --metric FID
    medigan-zoo generate chest_xray_cdcgan --num_samples 100 --output_path out --seed 0 --class_label 1
    medigan-zoo validate bundles/chest_xray_cdcgan          (static: reads files, runs nothing)
    medigan-zoo --trust ~/my_bundle validate ~/my_bundle --run
    medigan-zoo import-medigan medigan_global.json -o medigan_catalog.json
    medigan-zoo prepare ~/my_images --output ~/my_dataset --size 64 --val 0.1 --test 0.1 --seed 0
    medigan-zoo package bundles/chest_xray_cdcgan -o dist
    medigan-zoo init my_cxr_gan --template cgan --output ~/my_cxr_gan
    medigan-zoo hyperparameters chest_xray_cdcgan
    medigan-zoo train chest_xray_cdcgan --data ~/my_dataset --output ~/my_bundle --epochs 10 [--resume]
    medigan-zoo finetune chest_xray_cdcgan --data ~/my_dataset --output ~/my_bundle
    medigan-zoo ui --host 127.0.0.1 --port 7860            (the web UI; docs/ui.md)

Global flags (any command): --bundle_dirs DIR[,DIR] --catalogs FILE[,FILE] --include_builtin False
--trust DIR[,DIR] (run the config code of bundles under DIR; docs/security.md).
list, search, info and rank import neither torch nor monai. User errors print one line and exit 2; index
warnings (a skipped broken bundle, an id claimed twice) print one line each on stderr.
"""
from __future__ import annotations

import contextlib
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any, List, Optional, Sequence

from medigan_zoo.core.arguments import check_int
from medigan_zoo.core.errors import ZooError

#: verbs whose positional words are free text: fire must not turn ``1e5`` into a float or ``True`` into a bool
_TEXT_VERBS = ("search", "rank")
#: yes/no flags: after search/rank, `--json WORD` leaves WORD to the query unless it reads as true/false
_SWITCHES = {"json", "quiet", "split_by_condition", "dry_run", "force"}
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


#: evaluate's whole-number options and their minimum, and its yes/no options (checked before any work)
_EVALUATE_INTS = {"num_samples": 1, "seed": 0, "k": 1, "batch_size": 1, "classifier_epochs": 0, "num_threads": 1,
                  "downstream_samples": 1, "realism_max_per_class": 1}
_EVALUATE_FLAGS = ("dry_run", "json", "quiet", "force")


def flag(name: str, value: Any) -> bool:
    """A yes/no flag: True/False (or true/false, yes/no, 1/0, on/off as text); anything else raises ZooError."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ZooError(f"--{name} takes True or False, got {value!r}.")


def _is_flag(arg: str) -> bool:
    return arg.startswith("--") or bool(re.match(r"^-[A-Za-z]", arg))


def _quote_free_text(args: List[str]) -> List[str]:
    """Quote the positional words of search/rank so fire keeps the text the user typed (``search 1e5``)."""
    out, i, verb = [], 0, None
    while i < len(args):
        arg = args[i]
        out.append(arg)
        i += 1
        if arg == "--":
            out.extend(args[i:])
            break
        if _is_flag(arg):  # as fire reads it: --flag=value, --flag value, or --flag alone (True) before a flag
            name = arg[2:].replace("-", "_")
            if (verb in _TEXT_VERBS and name in _SWITCHES and i < len(args)
                    and args[i].strip().lower() not in _TRUE | _FALSE):
                out[-1] = f"--{name}=True"  # `search --json chest`: chest is the query, not the flag's value
            elif "=" not in arg and i < len(args) and not _is_flag(args[i]):
                out.append(args[i])
                i += 1
            continue
        if verb is None:
            verb = arg
            continue
        if verb in _TEXT_VERBS:
            out[-1] = json.dumps(arg)
    return out


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _runs_cell(info: Any) -> str:
    """``list``'s "runs" column: yes (fast path), yes (own workflow), no, or ? (a catalog model not downloaded)."""
    status = info.run_status
    if status["runnable"] is None:
        return "?"
    return f"yes ({status['route']})" if status["runnable"] else "no"


def _input_paths(value: str) -> Any:
    """``--input_path``: one path, or ``name=PATH,name=PATH`` for models with several inputs."""
    parts = [p for p in value.split(",") if p]
    if len(parts) > 1 or ("=" in value and not Path(value).exists()):
        pairs = [p.split("=", 1) for p in parts]
        if all(len(pair) == 2 for pair in pairs):
            return {name.strip(): path for name, path in pairs}
    return value

class ZooCLI:
    """Find, compare, validate and run the generative models of medigan_zoo."""

    def __init__(self, bundle_dirs: Optional[str] = None, catalogs: Optional[str] = None,
                 include_builtin: bool = True, trust: Optional[str] = None):
        if isinstance(trust, bool) or (trust is not None and not str(trust).strip()):
            raise ZooError("--trust needs a folder (or a comma-separated list), e.g. --trust ~/my_bundles; "
                           "see docs/security.md")
        self._trust = None if trust is None else [str(t) for t in (trust if isinstance(trust, (list, tuple))
                                                                    else str(trust).split(",")) if str(t)]
        self._options = dict(bundle_dirs=bundle_dirs, catalogs=catalogs,
                             include_builtin=flag("include_builtin", include_builtin), trust_bundles=self._trust)
        self._generators = None

    @property
    def _gen(self):
        if self._generators is None:
            import warnings

            from medigan_zoo.catalog.index import IndexWarning
            from medigan_zoo.generators import Generators

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", IndexWarning)
                self._generators = Generators(**self._options)
            for warning in caught:
                if issubclass(warning.category, IndexWarning):
                    print(f"medigan-zoo: warning: {warning.message}", file=sys.stderr)
                else:
                    warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return self._generators

    def list(self, json: bool = False) -> None:  # noqa: A003 - the verb users type
        """List every model: id, modality, shape, architecture, license, whether it is on disk."""
        json = flag("json", json)
        infos = list(self._gen.index)
        if json:
            _print_json([i.summary() for i in infos])
            return
        rows = [(i.id, ",".join(i.modality), "x".join(map(str, i.spatial_shape)), i.architecture, i.license,
                 "yes" if i.available else "catalog", _runs_cell(i)) for i in infos]
        _table(rows, ("id", "modality", "shape", "architecture", "license", "on disk", "runs"))

    def search(self, *query: str, limit: int = 10, json: bool = False) -> None:
        """Ranked free-text search; words like key=value are filters (modality=MG dims=3 license=CC-BY-4.0
        runnable=yes weights_license=CC-BY-NC-4.0); models the zoo cannot run come last."""
        from medigan_zoo.query.ranking import check_limit, parse_filters

        json = flag("json", json)
        max_hits = check_limit(limit, minimum=1)
        words = [str(q) for q in query if str(q).strip()]  # `search ""` is `search`
        filters = parse_filters([w for w in words if "=" in w])
        terms = [w for w in words if "=" not in w]
        if not terms and not filters:
            raise ZooError("search needs at least one word or key=value filter, e.g. `medigan-zoo search mammography`")
        hits = self._gen.search(" ".join(terms), filters=filters, limit=max_hits)
        if json:
            _print_json([{"model_id": h.model_id, "score": h.score, "matched": h.matched} for h in hits])
            return
        if not hits:
            print("No model matches.")
            return
        rows = [(h.model_id, f"{h.score:.2f}", "; ".join(f"{k}: {', '.join(v)}" for k, v in h.matched.items()))
                for h in hits]
        _table(rows, ("id", "score", "matched"))

    def info(self, model_id: str, json: bool = True) -> None:
        """Everything the zoo knows about one model (JSON); says which zoo fields a foreign bundle lacks."""
        info = self._gen.get_model_info(model_id)
        _print_json(info.summary())
        if info.missing_zoo_fields:
            print(f"note: {info.id} has no value for zoo fields: {', '.join(info.missing_zoo_fields)}",
                  file=sys.stderr)

    def rank(self, *values: str, metric: str = "FID", order: Optional[str] = None,
             model_ids: Optional[Sequence[str]] = None, json: bool = False) -> None:
        """Rank models by a metric (direction-aware: FID lowest first unless --order asc|desc)."""
        json = flag("json", json)
        if values:
            ranked = self._gen.find_models_and_rank(list(values), metric=metric, order=order,
                                                    are_keys_also_matched=True)
        else:
            ids = None if model_ids is None else ([model_ids] if isinstance(model_ids, (str, int)) else model_ids)
            ranked = self._gen.rank_models_by_performance(model_ids=ids, metric=metric, order=order)
        if json:
            _print_json(ranked)
            return
        _table([(r["model_id"], r[metric]) for r in ranked], ("id", metric))

    def generate(self, model_id: str, num_samples: Optional[int] = None, output_path: str = "outputs", seed: int = 0,
                 batch_size: int = 64, output_format: str = "png", split_by_condition: bool = False,
                 device: Optional[str] = None, quiet: bool = False, input_path: Optional[str] = None,
                 samples_per_input: int = 1, **model_args: Any) -> None:
        """Generate samples into --output_path (--num_samples, default 10); conditions and sampling options as
        flags, e.g. --class_label 1 --num_inference_steps 20 (`medigan-zoo info MODEL` lists what a model takes);
        --mapping FILE names a foreign bundle's ids (docs/foreign_bundles.md). Models with image inputs:
        --input_path FILE_OR_FOLDER (PNG, NIfTI, npy, DICOM series; several inputs: name=PATH,name=PATH) and
        --samples_per_input N; one sample per input by default. A model whose inputs are optional (an image + mask
        model given masks) generates from noise without --input_path."""
        quiet, split_by_condition = flag("quiet", quiet), flag("split_by_condition", split_by_condition)
        if input_path is None and num_samples is None:
            num_samples = 10
        if input_path is not None:
            model_args.update(input_path=_input_paths(str(input_path)), samples_per_input=samples_per_input)
        result = self._gen.generate(model_id, num_samples=num_samples, output_path=output_path, seed=seed,
                                    batch_size=batch_size, output_format=output_format,
                                    split_by_condition=split_by_condition, device=device, quiet=quiet, **model_args)
        if not quiet and result is not None and getattr(result, "output_path", None) is not None:
            print(f"{getattr(result, 'num_written', num_samples)} samples written to {result.output_path}"
                  f" (manifest: {getattr(result, 'manifest', '')})")

    def visualize(self, model_id: str, output_path: str = "samples.png", num_per_row: int = 8, seed: int = 0,
                  device: Optional[str] = None, input_path: Optional[str] = None) -> None:
        """Write a sample grid image (one row per condition value; masks as overlays; models with image inputs:
        --input_path, a row of inputs above their outputs)."""
        num_per_row, seed = check_int("num_per_row", num_per_row, 1), check_int("seed", seed, 0)
        path = self._gen.visualize(model_id, output_path=output_path, num_per_row=num_per_row, seed=seed,
                                   device=device, input_path=_input_paths(input_path) if input_path else None)
        print(f"sample grid written to {path}")

    def validate(self, *bundle_paths: str, run: bool = False, foreign: bool = False,
                 mapping: Optional[str] = None) -> None:
        """Check bundles against the contract (docs/bundle_contract.md) and list their code, without running it.
        --run also evaluates the config and loads the weights, for trusted bundles only (--trust DIR). --foreign
        answers instead whether the zoo can run a bundle it did not write (and its monai.bundle run id); --mapping
        FILE names its ids (docs/foreign_bundles.md). Exit 1 if any bundle has an error (--foreign: is not
        runnable)."""
        from medigan_zoo.catalog.trust import check_trusted
        from medigan_zoo.runtime.validate import validate

        if isinstance(foreign, str) and foreign.strip().lower() not in _TRUE | _FALSE:
            bundle_paths, foreign = (foreign,) + tuple(bundle_paths), True  # `validate --foreign DIR`
        foreign = flag("foreign", foreign)
        if not bundle_paths:
            raise ZooError("validate needs a bundle folder, e.g. `medigan-zoo validate bundles/chest_xray_cdcgan`")
        if run:
            for raw in bundle_paths:  # refuse before anything is printed or evaluated
                if Path(raw).is_dir():
                    check_trusted(Path(raw), self._trust)
        failed = False
        for raw in bundle_paths:
            report = validate(Path(raw), run=bool(run), trusted=self._trust, foreign=foreign,
                              mapping=Path(mapping) if mapping else None)
            for line in report.lines():
                print(f"{raw}: {line}")
            failed = failed or report.failed
        if failed:
            sys.exit(1)

    def download(self, model_id: str) -> None:
        """Download a catalog model's bundle (sha256-verified, cached under MEDIGAN_ZOO_HOME)."""
        print(f"bundle of {model_id} is in {self._gen.download(model_id)}")

    def import_medigan(self, global_json: str, output: str = "medigan_catalog.json") -> None:
        """Turn medigan's global.json into a zoo catalog (-o/--output CATALOG)."""
        from medigan_zoo.medigan.importer import write_catalog

        write_catalog(Path(global_json), Path(output))
        print(f"catalog written to {output}")

    def prepare(self, src: str, output: Optional[str] = None, size: int = 64, labels: Optional[str] = None,
                val: float = 0.1, test: float = 0.1, seed: int = 0, min_per_class: int = 10,
                class_folders: Optional[bool] = None) -> None:
        """Turn a folder or zip of PNG/JPEG/DICOM/NIfTI images (or one folder per class) into a data set:
        --output DATASET gets dataset.npz (MedMNIST layout) and dataset.json (provenance, counts, splits, sha256 of
        every source file, skipped files and why). --labels CSV has columns file, label and/or patient_id; classes
        come from one folder per class unless --class_folders False; the train/val/test split is by patient when
        one is known (docs/contributing_models.md)."""
        from medigan_zoo.byod.prepare import prepare

        if output is None or isinstance(output, bool):
            raise ZooError("prepare needs --output DATASET, a new folder for the data set, e.g. "
                           "`medigan-zoo prepare ~/my_images --output ~/my_dataset`")
        for name, value in (("val", val), ("test", test)):
            if isinstance(value, str):
                raise ZooError(f"prepare: --{name} must be a fraction in [0, 1), got {value!r}.")
        result = prepare(src, output, size=size, labels=labels, val=val, test=test, seed=seed,
                         min_per_class=min_per_class,
                         class_folders=None if class_folders is None else flag("class_folders", class_folders),
                         command=_COMMAND_LINE or None)
        for line in result.lines():
            print(line)

    def package(self, bundle: str, output: Optional[str] = None, url: Optional[str] = None,
                model_id: Optional[str] = None) -> None:
        """Validate a bundle, then write a reproducible zip, its sha256 and a catalog entry into -o/--output DIR
        (--url where the zip will be served, default its local path; --model_id the catalog id, default the
        folder's name)."""
        from medigan_zoo.byod.package import package

        if output is None or isinstance(output, bool):
            raise ZooError("package needs -o/--output DIR, the folder for the zip and its catalog entry, e.g. "
                           "`medigan-zoo package bundles/my_bundle -o dist`")
        result = package(bundle, output, url=url, model_id=model_id)
        for line in result.lines():
            print(line)

    def publish(self, bundle: str, repo: Optional[str] = None, revision_tag: Optional[str] = None,
                private: bool = False, token: Optional[str] = None, model_id: Optional[str] = None,
                output: Optional[str] = None) -> None:
        """Validate a bundle and push it to the Hugging Face Hub repo --repo owner/name (public unless --private;
        --revision_tag v0.2.0 tags the commit; --token, else HF_TOKEN or `hf auth login`); prints the commit and the
        catalog entry pinning it (-o/--output DIR also writes it there). docs/contributing_models.md"""
        from medigan_zoo.byod.publish import publish

        if repo is None or isinstance(repo, bool):
            raise ZooError("publish needs --repo owner/name, the Hugging Face Hub repo to push to, e.g. "
                           "`medigan-zoo publish bundles/my_bundle --repo my-lab/my_bundle`")
        result = publish(bundle, str(repo), revision_tag=None if revision_tag is None else str(revision_tag),
                         private=flag("private", private), token=None if token is None else str(token),
                         model_id=model_id, output=output)
        for line in result.lines():
            print(line)

    def _bundle_path(self, bundle: str) -> Path:
        """A bundle folder given as a path, else the folder of a model id."""
        path = Path(str(bundle)).expanduser()
        return path if path.is_dir() else self._gen.bundle_dir(str(bundle))

    def hyperparameters(self, bundle: str, json: bool = False) -> None:
        """Every tunable hyperparameter of a bundle's training recipe (configs/train.json): name, type, default,
        range and meaning (BUNDLE: a folder or a model id); `tune` searches the same list."""
        from medigan_zoo.training.hyperparameters import read_hyperparameters, table_rows

        items = read_hyperparameters(self._bundle_path(bundle))
        if flag("json", json):
            _print_json([h.to_dict() for h in items])
            return
        if not items:
            print(f"{bundle} declares no tunable hyperparameters.")
            return
        _table(table_rows(items), ("name", "type", "default", "range", "description"))

    def train(self, bundle: str, data: Optional[str] = None, output: Optional[str] = None,
              epochs: Optional[int] = None, resume: bool = False, seed: int = 0,
              checkpoint_every: Optional[int] = None, evaluate: bool = True, evaluate_samples: int = 500,
              evaluate_metrics: str = "fid,prdc,realism", device: Optional[str] = None, progress: bool = True,
              **hyperparameters: Any) -> None:
        """Train BUNDLE (a folder or model id) on --data DATASET (a `prepare` folder or a MedMNIST npz) with its own
        configs/train.json through monai.bundle: --output NEW_BUNDLE (default: in place), --epochs N, --resume
        (continue an interrupted run), --checkpoint_every N iterations (default one epoch), --evaluate False (skip
        the metrics), and any declared hyperparameter as --NAME VALUE (`medigan-zoo train BUNDLE --help` lists
        them)."""
        self._train(bundle, data, output, epochs, resume, seed, checkpoint_every, evaluate, evaluate_samples,
                    evaluate_metrics, device, progress, hyperparameters, finetune=False)

    def finetune(self, bundle: str, data: Optional[str] = None, output: Optional[str] = None,
                 epochs: Optional[int] = None, resume: bool = False, seed: int = 0,
                 checkpoint_every: Optional[int] = None, evaluate: bool = True, evaluate_samples: int = 500,
                 evaluate_metrics: str = "fid,prdc,realism", device: Optional[str] = None, progress: bool = True,
                 **hyperparameters: Any) -> None:
        """Like train, starting from BUNDLE's shipped weights, into --output NEW_BUNDLE (required)."""
        self._train(bundle, data, output, epochs, resume, seed, checkpoint_every, evaluate, evaluate_samples,
                    evaluate_metrics, device, progress, hyperparameters, finetune=True)

    def _train(self, bundle: str, data: Optional[str], output: Optional[str], epochs: Optional[int], resume: Any,
               seed: int, checkpoint_every: Optional[int], evaluate: Any, evaluate_samples: int,
               evaluate_metrics: str, device: Optional[str], progress: Any, hyperparameters: dict,
               finetune: bool) -> None:
        from medigan_zoo.training.ddp import from_environment, shutdown

        verb = "finetune" if finetune else "train"
        if data is None or isinstance(data, bool):
            raise ZooError(f"{verb} needs --data DATASET, a folder made by `medigan-zoo prepare` or a MedMNIST .npz, "
                           f"e.g. `medigan-zoo {verb} chest_xray_cdcgan --data ~/my_dataset --output ~/my_bundle`")
        if output is not None and (isinstance(output, bool) or not str(output).strip()):
            raise ZooError(f"{verb}: --output needs a folder for the new bundle.")
        dist = from_environment(device)  # under torchrun with several processes: this rank (data-parallel)
        from medigan_zoo.training.tracking import check_tracking, train_tracked

        tracking = check_tracking(hyperparameters.pop("tracking", None))  # --tracking mlflow [--tracking_uri URI]
        if dist is not None and not dist.main:
            tracking = None  # rank 0 tracks the run
        tracking_uri = hyperparameters.pop("tracking_uri", None)
        result, run_id = train_tracked(
            self._bundle_path(bundle), data, output, tracking=tracking, tracking_uri=tracking_uri,
            finetune=finetune, resume=flag("resume", resume),
            epochs=None if epochs is None else check_int("epochs", epochs, 1), seed=check_int("seed", seed, 0),
            overrides=hyperparameters,
            checkpoint_every=None if checkpoint_every is None else check_int("checkpoint_every", checkpoint_every, 1),
            evaluate=flag("evaluate", evaluate), evaluate_samples=check_int("evaluate_samples", evaluate_samples, 2),
            evaluate_metrics=",".join(map(str, evaluate_metrics)) if isinstance(evaluate_metrics, (list, tuple))
            else str(evaluate_metrics), device=device,
            progress=flag("progress", progress), trusted=self._trust, command=_COMMAND_LINE or None)
        if dist is not None:
            shutdown()
            if not dist.main:
                return
        for line in result.lines():
            print(line)
        if run_id:
            print(f"mlflow run: {run_id} (experiment {Path(self._bundle_path(bundle)).name}; "
                  f"mlflow ui --backend-store-uri {tracking_uri or _default_store(result.bundle)})")

    def tune(self, bundle: str, data: Optional[str] = None, n_trials: int = 10, storage: Optional[str] = None,
             timeout: Optional[float] = None, objective: str = "fid_ratio", study_name: Optional[str] = None,
             params: Any = None, epochs: Optional[int] = None, objective_samples: int = 256,
             prune_samples: int = 64, pruning: bool = True, tracking: Any = "mlflow",
             tracking_uri: Optional[str] = None, work_dir: Optional[str] = None, write: bool = True, seed: int = 0,
             **overrides: Any) -> None:
        """An Optuna study over BUNDLE's declared hyperparameters on --data DATASET: --n_trials N finished trials
        (a rerun with the same --storage/--study_name continues the study), --objective fid_ratio|realism_auc on the
        validation split, --params a,b (search only these), fixed values as --epochs N / --NAME VALUE, each trial
        tracked in MLflow (--tracking none: not), the best values written back as the recipe's defaults
        (--write False: not). docs/contributing_models.md"""
        from medigan_zoo.training.tune import tune

        if data is None or isinstance(data, bool):
            raise ZooError("tune needs --data DATASET, a folder made by `medigan-zoo prepare` or a MedMNIST .npz, "
                           "e.g. `medigan-zoo tune my_bundle --data ~/my_dataset --n_trials 20`")
        names = None
        if params is not None and not isinstance(params, bool):
            names = [p.strip() for p in (params.split(",") if isinstance(params, str) else map(str, params))
                     if p.strip()]
        track = None if str(tracking).strip().lower() in ("none", "false", "no", "off", "") else str(tracking)
        result = tune(self._bundle_path(bundle), data, check_int("n_trials", n_trials, 1), storage=storage,
                      study_name=study_name, timeout=None if timeout is None else float(timeout),
                      objective=str(objective), params=names,
                      epochs=None if epochs is None else check_int("epochs", epochs, 1), overrides=overrides,
                      objective_samples=check_int("objective_samples", objective_samples, 2),
                      prune_samples=check_int("prune_samples", prune_samples, 2), pruning=flag("pruning", pruning),
                      seed=check_int("seed", seed, 0), tracking=track, tracking_uri=tracking_uri,
                      work_dir=work_dir, write=flag("write", write), trusted=self._trust)
        for line in result.lines():
            print(line)

    def init(self, name: str, template: str = "cgan", output: Optional[str] = None, dataset: Optional[str] = None,
             data: Optional[str] = None, **options: Any) -> None:
        """A new bundle folder NAME (or --output DIR) from the templates (--template cgan|wgan_gp|ddpm; --from
        BUNDLE starts from that bundle's configs and metadata instead of the family's shipped one), metadata and
        card pre-filled, initial untrained weights; it passes `validate` and trains with `medigan-zoo train`.
        --data DATASET (a `prepare` folder or MedMNIST npz) fits it to that data: channels, classes and their
        names, default class, image size (ddpm) and train.json's data file."""
        from medigan_zoo.byod.init import init_bundle

        unknown = sorted(set(options) - {"from"})
        if unknown:
            raise ZooError(f"init got unknown option(s) {', '.join('--' + u for u in unknown)}; options: --template, "
                           "--from, --output, --dataset, --data.")
        source = options.get("from")
        if isinstance(source, bool):
            raise ZooError("init: --from needs a bundle folder or model id.")
        if isinstance(data, bool):
            raise ZooError("init: --data needs a data set folder made by `medigan-zoo prepare` or a MedMNIST npz.")
        result = init_bundle(str(name), str(template), self._bundle_path(source) if source else None, output,
                             dataset=dataset, data=data)
        for line in result.lines():
            print(line)
    def ui(self, host: str = "127.0.0.1", port: int = 7860, max_samples: int = 64) -> None:
        """Serve the web UI (search, model pages, generate, compare, download; docs/ui.md) on http://HOST:PORT/
        until interrupted. Needs the `ui` extra (pip install medigan_zoo[ui])."""
        from medigan_zoo.ui.server import serve

        port, max_samples = check_int("port", port, 0), check_int("max_samples", max_samples, 1)
        if port > 65535:
            raise ZooError(f"port must be a TCP port number from 0 to 65535, got {port}.")
        serve(self._gen, host=str(host), port=port, max_samples=max_samples)

    def evaluate(self, model_id: str, **kwargs: Any) -> None:
        """Measure a bundle (FID, precision/recall, realism AUC, downstream gain, memorization) and write the results
        into it (--dry_run: measure only; --force: also replace stored metrics measured with more samples)."""
        from medigan_zoo.evaluation.cli import evaluate_command

        for name, minimum in _EVALUATE_INTS.items():
            if kwargs.get(name) is not None:
                kwargs[name] = check_int(name, kwargs[name], minimum)
        for name in _EVALUATE_FLAGS:
            if name in kwargs:
                kwargs[name] = flag(name, kwargs[name])
        evaluate_command(self._gen, model_id, **kwargs)


def _default_store(bundle: Path) -> str:
    from medigan_zoo.training.run import WORK_DIR
    from medigan_zoo.training.tracking import tracking_uri

    return tracking_uri(bundle / WORK_DIR)


#: the command line being run (``prepare`` records it as the data set's provenance)
_COMMAND_LINE = ""
#: longest command-line argument accepted (longer ones are a mistake or an attack, never a model id or path)
MAX_ARG_CHARS = 8192
#: longest error line printed (user values echoed in messages are cut)
MAX_ERROR_CHARS = 2000


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 15] + " ... (cut)"


@contextlib.contextmanager
def _one_line_fire_errors():
    """Fire's own usage errors (a missing or unknown argument) as one line on stderr instead of fire's usage
    screen; ``--help`` keeps fire's help text."""
    import fire.core as fire_core

    original = getattr(fire_core, "_DisplayError", None)

    def display(component_trace):
        element = component_trace.elements[-1]
        if any(h in element.args for h in ("-h", "--help")) or original is None:
            return original(component_trace)
        command = component_trace.GetCommand() or "medigan-zoo"
        print(f"medigan-zoo: error: {_one_line(element.ErrorAsStr())} (see `{command} --help`)", file=sys.stderr)

    if original is not None:
        fire_core._DisplayError = display
    try:
        yield
    finally:
        if original is not None:
            fire_core._DisplayError = original


def _bundle_help(args: List[str]) -> bool:
    """``train BUNDLE --help`` / ``finetune BUNDLE --help``: the verb's help, then the bundle's tunable
    hyperparameters (read from its train.json). False when the arguments are not that."""
    if len(args) < 3 or args[0] not in ("train", "finetune") or not {"--help", "-h"} & set(args):
        return False
    words = [a for a in args[1:] if not _is_flag(a)]
    if not words:
        return False
    from medigan_zoo.training.hyperparameters import help_text

    doc = " ".join((getattr(ZooCLI, args[0]).__doc__ or "").split())
    path = Path(words[0]).expanduser()
    bundle = path if path.is_dir() else ZooCLI()._gen.bundle_dir(words[0])
    print(f"usage: medigan-zoo {args[0]} BUNDLE --data DATASET [--output NEW_BUNDLE] [--epochs N] [--resume] "
          "[--checkpoint_every N] [--seed S] [--evaluate False] [--NAME VALUE ...]\n")
    print(doc + "\n")
    print(f"tunable hyperparameters of {bundle} (configs/train.json; --NAME VALUE sets one):")
    print(help_text(bundle))
    return True


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of ``medigan-zoo`` and ``python -m medigan_zoo``."""
    import fire

    args = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    args = ["import_medigan" if a == "import-medigan" else a for a in args]
    global _COMMAND_LINE
    _COMMAND_LINE = "medigan-zoo " + shlex.join(args)
    try:
        too_long = [n for n, a in enumerate(args, 1) if len(a) > MAX_ARG_CHARS]
        if too_long:
            raise ZooError(f"argument {too_long[0]} is {len(args[too_long[0] - 1]):,} characters long; the limit is "
                           f"{MAX_ARG_CHARS:,} (pass long lists in a file or through the Python API).")
        if _bundle_help(args):
            return
        with _one_line_fire_errors():
            fire.Fire(ZooCLI, command=_quote_free_text(args), name="medigan-zoo")
    except ZooError as err:
        print(f"medigan-zoo: error: {_one_line(str(err))}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("medigan-zoo: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":  # python -m medigan_zoo.cli, like python -m medigan_zoo
    main()
