#!/usr/bin/env python
"""Record medigan 1.0.0's own answers to many selection queries: tests/fixtures/medigan/expected.json.

tests/test_medigan_parity.py replays every recorded query against ``medigan_zoo.medigan.compat.MediganSelector``
(and ``medigan_zoo.Generators``) and requires the very same results. medigan is NOT a dependency of
medigan_zoo; it is installed in a throw-away virtual environment only to run this script.

Regenerate (offline: medigan reads ``config/global.json`` from the working directory, which this script
sets up in a temporary folder, so nothing is downloaded):

    python -m venv --system-site-packages /tmp/medigan_venv
    /tmp/medigan_venv/bin/pip install "medigan==1.0.0" "setuptools<81" torch==2.13.0
    /tmp/medigan_venv/bin/python scripts/make_medigan_expected.py \
        --global-json tests/fixtures/medigan/medigan_global.json -o tests/fixtures/medigan/expected.json

The query set is deterministic (seeded), so re-running it gives a byte-identical file.

Each case: ``{"id", "method", "kwargs", "medigan": {"result": ...} | {"result_sha256", "result_chars"} |
{"error": "Type: message"}}``, calls going through medigan's public ``Generators`` API. Optional keys:
``deviation`` names a documented, deliberate difference (docs/medigan_compatibility.md) and
``model_selector`` holds the answer of medigan's ``ModelSelector`` where ``Generators`` drops an argument or
crashes; ``full_ids`` the answer for the same call with ids expanded by medigan's ``match_model_id``.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GLOBAL = REPO / "tests" / "fixtures" / "medigan" / "medigan_global.json"  # MIT, see its README.md
DEFAULT_OUT = REPO / "tests" / "fixtures" / "medigan" / "expected.json"
SEED = 20240607
#: results whose JSON is longer than this are stored as a sha256 (full configs would copy global.json)
MAX_INLINE_CHARS = 1500


def serialize(result: Any) -> Any:
    """JSON-able form: ModelMatchCandidate objects as medigan's own ``str()`` JSON."""
    if isinstance(result, list) and result and type(result[0]).__name__ == "ModelMatchCandidate":
        return [json.loads(str(candidate)) for candidate in result]
    return json.loads(json.dumps(result))


def outcome(call) -> Dict[str, Any]:
    try:
        result = serialize(call())
    except Exception as err:  # medigan's own failures are part of what we record
        return {"error": f"{type(err).__name__}: {err}"[:300]}
    text = json.dumps(result)
    if len(text) > MAX_INLINE_CHARS:
        return {"result_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "result_chars": len(text)}
    return {"result": result}


def perf_paths(node: Any, prefix: str = "") -> List[str]:
    """Every dotted path below a performance block (leaves and nested dicts)."""
    out: List[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}{key}"
            out.append(path)
            out += perf_paths(value, path + ".")
    return out


def leaf_strings(node: Any, out: List[str]) -> None:
    if isinstance(node, dict):
        for value in node.values():
            leaf_strings(value, out)
    elif isinstance(node, list):
        out.extend(str(v) for v in node)
    else:
        out.append(str(node))


def unique(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def build_queries(config: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The query set: README examples, every selection key, every metric, seeded random combinations."""
    rng = random.Random(SEED)
    ids = list(config)
    selections = [config[i]["selection"] for i in ids]
    top_keys = unique(k for s in selections for k in s)
    all_keys: List[str] = []

    def collect_keys(node):
        if isinstance(node, dict):
            for key, value in node.items():
                all_keys.append(key)
                collect_keys(value)
    for s in selections:
        collect_keys(s)
    all_keys = unique(all_keys)
    strings: List[str] = []
    for s in selections:
        leaf_strings(s, strings)
    strings = unique(strings)
    metrics = unique(p for s in selections for p in perf_paths(s.get("performance")))
    q: List[Dict[str, Any]] = []

    def find(values, op="AND", keys=False, cs=False, **extra):
        q.append({"method": "find_matching_models_by_values",
                  "kwargs": {"values": values, "target_values_operator": op, "are_keys_also_matched": keys,
                             "is_case_sensitive": cs}, **extra})

    # --- find_matching_models_by_values ---------------------------------------------------------------
    readme_1 = ["dcgan", "Mammography", "inbreast"]
    readme_2 = ["dcgan", "mMg", "ClF", "modalities", "inbreast"]
    find(readme_1, "AND", True, False)
    find(readme_2, "AND", True, False)
    for values in (readme_1, readme_2):
        for op in ("AND", "OR", "XOR"):
            for keys in (False, True):
                for cs in (False, True):
                    find(values, op, keys, cs)
    for key in all_keys:  # every key of the selection block, nested ones included
        find([key], "OR", True, False)
        find([key.upper()], "AND", True, True)
        find([key, "MIT"], "XOR", True, True)
    for key in top_keys:  # values of every selection key
        values = unique(v for s in selections for v in (
            [str(x) for x in s.get(key)] if isinstance(s.get(key), list) else [str(s.get(key))]
            if not isinstance(s.get(key), dict) else []))
        for value in rng.sample(values, min(3, len(values))):
            find([value], "OR", False, False)
            find([value], "OR", False, True)
            find([value.upper()], "AND", False, True)
    for special in (["none"], ["None"], ["null"], ["128"], ["67.6"], ["224.0"], ["224"], ["2021"], ["2023"],
                    ["true"], ["[]"], ["{}"], [""], [128], [2021], ["public"], ["mit"], ["MIT"],
                    ["mammography", "mri"], ["mammography", "mri", "x-ray"], ["brain", "breast", "chest"],
                    ["performance", "FID"], ["fid", "ssim"], ["trained_on_fake", "dice"], ["zzz"],
                    ["dcgan", "zzz"], ["Dice", "dice"], ["MMG", "mmg"]):
        for op in ("AND", "OR", "XOR"):
            find(special, op, True, False)
            find(special, op, False, True)
    pool = strings + all_keys + [s.lower() for s in strings] + [s.upper() for s in rng.sample(strings, 40)] + \
        ["zzz", "none", "128", "2022", "breast", "chest", "x-ray"]
    for _ in range(150):
        values = rng.sample(pool, rng.randint(1, 4))
        find(values, rng.choice(["AND", "OR", "XOR"]), rng.random() < 0.5, rng.random() < 0.3)

    # --- get_models_by_key_value_pair --------------------------------------------------------------------
    def kv(key, value, cs=False, **extra):
        q.append({"method": "get_models_by_key_value_pair",
                  "kwargs": {"key1": key, "value1": value, "is_case_sensitive": cs}, **extra})
    kv("modality", "Full-Field Mammography", False)  # README
    for key in top_keys:
        values = unique(v for s in selections for v in (
            s.get(key) if isinstance(s.get(key), list) else [s.get(key)]) if not isinstance(v, dict))
        for value in rng.sample(values, min(3, len(values))):
            for cs in (False, True):
                kv(key, value, cs)
                kv(key, str(value).upper(), cs)
                kv(key, str(value), cs)
    for key, value in (("performance.FID", "67.6"), ("performance.FID", 67.6), ("performance.turing_test.AUC", "0.56"),
                       ("performance.CLF.trained_on_real.f1", "0.9"), ("performance.CLF", "x"),
                       ("performance.downstream_task.SEG.trained_on_real.dice", "0.790"),
                       ("year", "2021"), ("year", 2021), ("height", 128), ("height", "128"), ("height", "224"),
                       ("height", "224.0"), ("depth", "None"), ("license", "None"), ("license", "none"),
                       ("nonexistent", "x"), ("performance.nonexistent", "x"), ("type", "dcgan"),
                       ("type", "DCGAN"), ("tags", "Mammography"), ("tags", "128x128"), ("tags", 128)):
        for cs in (False, True):
            kv(key, value, cs)

    # --- rank_models_by_performance ----------------------------------------------------------------------
    def rank(metric, order="asc", model_ids=None, **extra):
        kwargs = {"model_ids": model_ids, "metric": metric}
        if order is not None:
            kwargs["order"] = order
        q.append({"method": "rank_models_by_performance", "kwargs": kwargs, **extra})
    mmg = [i for i, s in zip(ids, selections) if "MMG" in s.get("modality", [])]
    subsets = [mmg, ids[1:8:2], [ids[1]], []]
    for metric in metrics:
        for order in ("asc", "desc"):
            rank(metric, order)
    for metric in rng.sample([m for m in metrics if "." in m], 6) + ["FID", "FID_ratio", "SSIM", "turing_test.AUC",
                                                                      "turing_test.accuracy", "CLF"]:
        for order in ("asc", "desc"):
            for subset in subsets:
                rank(metric, order, subset)
    rank("FID", "asc", ids[::-1])
    rank("FID_ratio", "desc", ids[::-1] + ids[:3])
    rank("SSIM", "asc")  # README
    for metric in ("FID", "SSIM", "FID_ratio", "turing_test.AUC", "CLF.trained_on_real.f1", "IS"):
        rank(metric, None, deviation="default_order")
    for metric in ("accuracy", "fid", "", "CLF.trained_on_fake.accuracy", "performance.FID"):
        rank(metric, "asc", deviation="unknown_metric")
    rank("FID", "asc", [5, "6", "00002"], deviation="short_ids")
    rank("FID", "desc", [1, 23], deviation="short_ids")
    for order in ("ASC", "ascending", "up"):
        rank("FID", order, deviation="invalid_order")

    # --- find_models_and_rank -------------------------------------------------------------------------
    def far(values, op, keys, cs, metric, order, **extra):
        q.append({"method": "find_models_and_rank",
                  "kwargs": {"values": values, "target_values_operator": op, "are_keys_also_matched": keys,
                             "is_case_sensitive": cs, "metric": metric, "order": order}, **extra})
    far(readme_2, "AND", True, False, "SSIM", "asc")  # README
    for values, op in ((readme_1, "AND"), (readme_1, "OR"), (readme_2, "OR"), (["mammography"], "AND"),
                       (["x-ray", "mri"], "OR"), (["breast"], "XOR"), (["zzz"], "OR"), (["dcgan", "wgangp"], "OR")):
        for metric in ("FID", "FID_ratio", "CLF.trained_on_real.f1", "SSIM", "turing_test.accuracy",
                       "SEG.trained_on_real.dice"):
            for order in ("asc", "desc"):
                far(values, op, True, False, metric, order)

    # --- config and selection getters -------------------------------------------------------------------
    def call(method, **kwargs):
        extra = {k: kwargs.pop(k) for k in ("deviation",) if k in kwargs}
        q.append({"method": method, "kwargs": kwargs, **extra})
    for mid in ids:
        call("get_config_by_id", model_id=mid)
        for key in ("execution", "selection", "description", "selection.performance", "selection.performance.FID",
                    "execution.generate_method.args.custom", "description.title", "execution.image_size"):
            call("get_config_by_id", model_id=mid, config_key=key)
        call("get_selection_criteria_by_id", model_id=mid)
        call("get_selection_criteria_by_id", model_id=mid, is_model_id_removed=False,
             deviation="generators_ignores_flag")
        call("get_selection_keys", model_id=mid)
    for short in (1, 5, "5", "00005", "23", 23, "00023"):
        call("get_config_by_id", model_id=short, config_key="description.title")
        call("get_selection_criteria_by_id", model_id=short)
    call("get_config_by_id", model_id="00001_DCGAN_MMG_CALC_ROI", config_key="selection.nonexistent")
    call("get_config_by_id", model_id="no_such_model", deviation="unknown_id")
    call("get_selection_criteria_by_id", model_id="no_such_model", deviation="unknown_id")
    call("get_selection_keys")
    call("get_selection_keys", model_id=5, deviation="short_ids")
    call("get_selection_criteria_by_ids", model_ids=ids[:3])
    call("get_selection_criteria_by_ids", model_ids=[ids[5], ids[0]], are_model_ids_removed=False)
    call("get_selection_criteria_by_ids", model_ids=[3, "1"], are_model_ids_removed=False)
    call("get_selection_criteria_by_ids", deviation="ids_none")
    call("get_selection_criteria_by_ids", model_ids=None, are_model_ids_removed=False, deviation="ids_none")
    for key in top_keys:
        call("get_selection_values_for_key", key=key)
        for mid in (ids[0], ids[-1]):
            call("get_selection_values_for_key", key=key, model_id=mid)
    for key in ("performance.FID", "performance.CLF", "performance.turing_test.AUC", "nonexistent"):
        call("get_selection_values_for_key", key=key)
        call("get_selection_values_for_key", key=key, model_id=ids[1])
    for i, case in enumerate(q):
        case["id"] = i
    return q


def run(queries: List[Dict[str, Any]], global_json: Path) -> List[Dict[str, Any]]:
    """Answer every query with medigan 1.0.0 in a temporary working directory holding config/global.json."""
    old_cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config").mkdir()
        shutil.copy(global_json, Path(tmp) / "config" / "global.json")
        os.chdir(tmp)
        try:
            from medigan import Generators  # imported here: the script only makes sense inside the venv

            generators = Generators()
            selector = generators.model_selector
            manager = generators.config_manager
            cases = []
            for query in queries:
                method, kwargs = query["method"], query["kwargs"]
                case = {"id": query["id"], "method": method, "kwargs": kwargs}
                if "deviation" in query:
                    case["deviation"] = query["deviation"]
                case["medigan"] = outcome(lambda: getattr(generators, method)(**kwargs))
                if method in ("get_selection_criteria_by_id", "get_selection_criteria_by_ids", "get_selection_keys",
                              "get_selection_values_for_key"):
                    sel_kwargs = dict(kwargs)
                    if "model_id" in sel_kwargs and sel_kwargs["model_id"] is not None:
                        sel_kwargs["model_id"] = manager.match_model_id(sel_kwargs["model_id"])
                    if sel_kwargs.get("model_ids") is not None:
                        sel_kwargs["model_ids"] = [manager.match_model_id(m) for m in sel_kwargs["model_ids"]]
                    alt = outcome(lambda: getattr(selector, method)(**sel_kwargs))
                    if alt != case["medigan"]:
                        case["model_selector"] = alt
                if case.get("deviation") == "short_ids" and kwargs.get("model_ids"):
                    full = dict(kwargs, model_ids=[manager.match_model_id(m) for m in kwargs["model_ids"]])
                    case["full_ids"] = outcome(lambda: getattr(generators, method)(**full))
                cases.append(case)
            return cases
        finally:
            os.chdir(old_cwd)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--global-json", type=Path, default=DEFAULT_GLOBAL, help="medigan's config (global.json)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        from importlib.metadata import version
        medigan_version = version("medigan")
    except Exception:
        sys.exit("medigan is not installed in this interpreter: run this script with /tmp/medigan_venv/bin/python "
                 "(see the module docstring)")
    if medigan_version != "1.0.0":
        sys.exit(f"medigan {medigan_version} found; the fixture must come from medigan 1.0.0")
    logging.disable(logging.WARNING)
    raw = args.global_json.read_bytes()
    config = json.loads(raw)
    queries = build_queries(config)
    with contextlib.redirect_stdout(sys.stderr):
        cases = run(queries, args.global_json)
    fixture = {
        "about": "medigan 1.0.0's answers to selection queries; made by scripts/make_medigan_expected.py "
                 "(see its docstring to regenerate). Do not edit by hand.",
        "medigan_version": medigan_version,
        "python_version": sys.version.split()[0],
        "global_json": args.global_json.name,
        "global_json_sha256": hashlib.sha256(raw).hexdigest(),
        "max_inline_chars": MAX_INLINE_CHARS,
        "cases": cases,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # one case per line: compact, yet diffs show which queries changed
    head = json.dumps({k: v for k, v in fixture.items() if k != "cases"}, indent=1)[:-2]
    lines = ",\n".join("  " + json.dumps(case, separators=(",", ":")) for case in cases)
    args.output.write_text(f'{head},\n "cases": [\n{lines}\n ]\n}}\n', encoding="utf-8")
    errors = sum("error" in c["medigan"] for c in cases)
    print(f"wrote {len(cases)} cases ({errors} where medigan raised) to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
