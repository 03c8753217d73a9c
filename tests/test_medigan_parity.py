"""medigan 1.0.0 parity: MediganSelector (and Generators over an imported catalog) give medigan's exact results.

tests/fixtures/medigan/expected.json holds medigan 1.0.0's own answers (scripts/make_medigan_expected.py ran
medigan over medigan's real config). Every recorded query is replayed here and must give the same ids, order
and result shapes. Deliberate differences (medigan crashes, or contradicts its docstrings) are tagged in the
fixture and checked against the documented behaviour (docs/medigan_compatibility.md).

The index-based search is also checked against a naive port of medigan's recursive scan on larger, mutated
catalogs.
"""
from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path
from typing import Any, Dict

import pytest
from conftest import MEDIGAN_GLOBAL
from medigan_naive import naive_find, naive_rank

from medigan_zoo.core.errors import MetricNotFoundError, ModelNotFoundError, ZooError
from medigan_zoo.medigan.compat import (
    ConfigKeyNotFoundError,
    InvalidQueryError,
    MatchedEntry,
    MediganSelector,
    ModelMatchCandidate,
    metric_direction,
)

REPO = Path(__file__).resolve().parents[1]
GLOBAL_JSON = MEDIGAN_GLOBAL
FIXTURE = REPO / "tests" / "fixtures" / "medigan" / "expected.json"
EXPECTED = json.loads(FIXTURE.read_text(encoding="utf-8"))
CASES = EXPECTED["cases"]


def _require_global() -> Path:
    """medigan's global.json, shipped as a test fixture (tests/fixtures/medigan/README.md)."""
    return GLOBAL_JSON


@pytest.fixture(scope="module")
def configs() -> Dict[str, Any]:
    path = _require_global()
    raw = path.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == EXPECTED["global_json_sha256"], (
        f"{path} changed since tests/fixtures/medigan/expected.json was made: regenerate it with "
        "scripts/make_medigan_expected.py (see its docstring)")
    return json.loads(raw)


@pytest.fixture(scope="module")
def selector(configs) -> MediganSelector:
    return MediganSelector(configs)


@pytest.fixture(scope="module")
def generators(tmp_path_factory):
    """medigan_zoo.Generators over a catalog imported from medigan's config (the verbs delegate to us)."""
    path = _require_global()
    try:
        from medigan_zoo import Generators
    except Exception as err:  # the lead's Generators may not be importable yet
        pytest.skip(f"medigan_zoo.Generators is not importable: {type(err).__name__}: {err}")
    from medigan_zoo.medigan.importer import write_catalog

    catalog = tmp_path_factory.mktemp("catalog") / "medigan.json"
    write_catalog(path, catalog)
    return Generators(catalogs=[catalog], include_builtin=False)


@pytest.fixture(params=["selector", "generators"])
def target(request):
    return request.getfixturevalue(request.param)


# --- helpers ----------------------------------------------------------------------------------------------


def serialize(result: Any) -> Any:
    """What the fixture stores: candidates as medigan's ``str()`` JSON, everything else as JSON."""
    if isinstance(result, list) and result and isinstance(result[0], ModelMatchCandidate):
        return [json.loads(str(c)) for c in result]
    return json.loads(json.dumps(result))


def assert_same(result: Any, expected: Dict[str, Any], case: Dict[str, Any]) -> None:
    """Exact equality: values, types (1 vs 1.0), key order; big results by sha256."""
    ours = serialize(result)
    text = json.dumps(ours)
    if "result_sha256" in expected:
        assert hashlib.sha256(text.encode("utf-8")).hexdigest() == expected["result_sha256"], case
        return
    assert ours == expected["result"], case
    assert text == json.dumps(expected["result"]), f"types or key order differ: {case}"


def call(target, case) -> Any:
    return getattr(target, case["method"])(**case["kwargs"])


def case_id(case) -> str:
    return f"{case['id']}-{case['method']}" + (f"-{case['deviation']}" if "deviation" in case else "")


# --- the replay -------------------------------------------------------------------------------------------


def test_fixture_is_from_medigan_1_0_0():
    assert EXPECTED["medigan_version"] == "1.0.0"
    methods = {c["method"] for c in CASES}
    assert methods == {"find_matching_models_by_values", "get_models_by_key_value_pair", "rank_models_by_performance",
                       "find_models_and_rank", "get_config_by_id", "get_selection_criteria_by_id",
                       "get_selection_criteria_by_ids", "get_selection_keys", "get_selection_values_for_key"}
    assert len(CASES) > 1000


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_same_as_medigan(case, target):
    expected = case["medigan"]
    deviation = case.get("deviation")
    if deviation == "unknown_metric":  # medigan: [] ; zoo: a clear error listing the metrics present
        assert expected == {"result": []}
        with pytest.raises(MetricNotFoundError, match="Metrics present"):
            call(target, case)
    elif deviation == "unknown_id":  # medigan: None or KeyError ; zoo: ModelNotFoundError with close ids
        with pytest.raises(ModelNotFoundError):
            call(target, case)
    elif deviation == "invalid_order":  # medigan sorts descending for anything but "asc"
        if str(case["kwargs"]["order"]).lower() in ("asc", "desc"):
            ours = call(target, case)
            again = dict(case["kwargs"], order=str(case["kwargs"]["order"]).lower())
            assert ours == getattr(target, case["method"])(**again)
        else:
            with pytest.raises(InvalidQueryError):
                call(target, case)
    elif deviation == "default_order":  # no order: best first by the metric's direction
        ours = call(target, case)
        direction = metric_direction(case["kwargs"]["metric"])
        explicit = dict(case["kwargs"], order="asc" if direction == "lower" else "desc")
        assert ours == getattr(target, case["method"])(**explicit)
        if direction == "lower":  # medigan's default is ascending: the same results
            assert_same(ours, expected, case)
    elif "full_ids" in case:  # short ids (5, "6") resolve as medigan's match_model_id does
        assert_same(call(target, case), case["full_ids"], case)
    elif "model_selector" in case:  # Generators drops an argument or crashes; its docstring = ModelSelector's
        assert "result" in case["model_selector"] or "result_sha256" in case["model_selector"], case
        assert_same(call(target, case), case["model_selector"], case)
    elif "error" in expected:
        # medigan crashed (dict-valued metric, missing key, ...): we return a result or raise a ZooError of
        # the same family (KeyError stays a KeyError), never a raw TypeError
        try:
            call(target, case)
        except ZooError as err:
            if expected["error"].startswith("KeyError"):
                assert isinstance(err, KeyError), (case, err)
    else:
        assert_same(call(target, case), expected, case)


# --- the documented deviations, one by one ----------------------------------------------------------------


def test_readme_examples(selector):
    found = selector.find_matching_models_by_values(["dcgan", "Mammography", "inbreast"], "AND", True, False)
    assert [m.model_id for m in found] == ["00001_DCGAN_MMG_CALC_ROI"]
    assert found[0].get_all_matching_elements() == ["mammography", "inbreast", "dcgan", "mammography"]
    ranked = selector.rank_models_by_performance(metric="SSIM", order="asc")
    assert ranked == [{"model_id": "00023_PIX2PIXHD_BREAST_DCEMRI", "SSIM": 0.726}]
    pairs = selector.get_models_by_key_value_pair("modality", "Full-Field Mammography", False)
    assert len(pairs) == 12 and pairs[0] == {"model_id": "00001_DCGAN_MMG_CALC_ROI",
                                             "modality": "full-field mammography"}


def test_default_order_follows_metric_direction(selector):
    fid = selector.rank_models_by_performance(metric="FID")
    assert fid[0]["model_id"] == "00023_PIX2PIXHD_BREAST_DCEMRI" and fid == sorted(fid, key=lambda r: r["FID"])
    ratio = selector.rank_models_by_performance(metric="FID_ratio")
    assert ratio == sorted(ratio, key=lambda r: -r["FID_ratio"])
    # readers of a visual Turing test: lower detection = better; a list ranks by its best (smallest) item
    assert selector.rank_models_by_performance(metric="turing_test.AUC") == [
        {"model_id": "00002_DCGAN_MMG_MASS_ROI", "turing_test.AUC": 0.45}]
    assert selector.rank_models_by_performance(metric="turing_test.AUC", order="desc") == [
        {"model_id": "00002_DCGAN_MMG_MASS_ROI", "turing_test.AUC": 0.56}]
    # an explicit order always wins
    top = selector.rank_models_by_performance(metric="FID", order="desc")[0]
    assert top["model_id"] == "00009_PGGAN_POLYP_PATCHES_W_MASKS"


def test_direction_overrides(configs):
    sel = MediganSelector(configs, directions={"FID": "higher"})
    assert sel.rank_models_by_performance(metric="FID")[0]["model_id"] == "00009_PGGAN_POLYP_PATCHES_W_MASKS"
    assert sel.metric_direction("fid") == "higher"  # case-insensitive override
    with pytest.raises(InvalidQueryError):
        MediganSelector(configs, directions={"FID": "down"})


@pytest.mark.parametrize("name,direction", [
    ("FID", "lower"), ("KID", "lower"), ("MSE", "lower"), ("NSME", "lower"), ("FID_RADIMAGENET", "lower"),
    ("LPIPS", "lower"), ("SEG.trained_on_fake.dice_loss", "lower"), ("turing_test.AUC", "lower"),
    ("turing_test.accuracy", "lower"), ("SSIM", "higher"), ("PSNR", "higher"), ("IS", "higher"),
    ("FID_ratio", "higher"), ("FID_RADIMAGENET_ratio", "higher"), ("CLF_delta", "higher"),
    ("CLF.trained_on_fake.accuracy", "higher"), ("CLF.trained_on_real.AUROC", "higher"),
    ("SEG.trained_on_fake.dice_tumor", "higher"), ("SEG.trained_on_fake.IoU", "higher"),
    ("DET.trained_on_real.AUC", "higher"), ("some_new_score", "lower"),
])
def test_metric_direction(name, direction):
    assert metric_direction(name) == direction
    flipped = "higher" if direction == "lower" else "lower"
    assert metric_direction(name, {name: flipped}) == flipped


def test_unknown_metric_lists_metrics_present(selector):
    with pytest.raises(MetricNotFoundError) as err:
        selector.rank_models_by_performance(metric="fid")
    assert "FID" in str(err.value) and "CLF.trained_on_real.f1" in str(err.value)
    with pytest.raises(MetricNotFoundError):
        selector.find_models_and_rank(["mammography"], "OR", metric="accuracy")
    # a known metric nobody measured is not an error: medigan's empty ranking
    assert selector.rank_models_by_performance(metric="IS", order="asc") == []


def test_unrankable_values_are_left_out(selector, configs):
    # medigan raises TypeError comparing dicts/strings; the zoo ranks only numbers
    assert selector.rank_models_by_performance(metric="CLF", order="asc") == []
    assert selector.rank_models_by_performance(metric="turing_test", order="desc") == []
    mixed = copy.deepcopy(configs)
    mixed["00001_DCGAN_MMG_CALC_ROI"]["selection"]["performance"]["SSIM"] = "0.9"
    mixed["00002_DCGAN_MMG_MASS_ROI"]["selection"]["performance"]["SSIM"] = "10"
    ranked = MediganSelector(mixed).rank_models_by_performance(metric="SSIM", order="desc")
    # numeric strings compare as numbers ("10" > "0.9") and are reported as given
    assert ranked == [{"model_id": "00002_DCGAN_MMG_MASS_ROI", "SSIM": "10"},
                      {"model_id": "00001_DCGAN_MMG_CALC_ROI", "SSIM": "0.9"},
                      {"model_id": "00023_PIX2PIXHD_BREAST_DCEMRI", "SSIM": 0.726}]


def test_short_and_unknown_ids(selector):
    for short in (5, "5", "05", "00005", " 5 "):
        assert selector.resolve_model_id(short) == "00005_DCGAN_MMG_MASS_ROI"
    assert selector.get_config_by_id(23, "description.version") == "1.0"
    ranked = selector.rank_models_by_performance(model_ids=[5, "6", "00002"], metric="FID", order="asc")
    assert [r["model_id"] for r in ranked] == ["00002_DCGAN_MMG_MASS_ROI", "00005_DCGAN_MMG_MASS_ROI",
                                               "00006_WGANGP_MMG_MASS_ROI"]
    with pytest.raises(ModelNotFoundError, match="00001_DCGAN_MMG_CALC_ROI"):
        selector.get_config_by_id("00001_DCGAN_MMG_CALC")
    with pytest.raises(ModelNotFoundError):
        selector.rank_models_by_performance(model_ids=["nope"], metric="FID")
    with pytest.raises(ModelNotFoundError):
        selector.get_selection_criteria_by_ids([1, 999])


def test_selection_getters_follow_docstrings(selector, configs):
    mid = "00002_DCGAN_MMG_MASS_ROI"
    assert selector.get_selection_criteria_by_id(mid, is_model_id_removed=False) == {
        "model_id": mid, "selection": configs[mid]["selection"]}
    assert len(selector.get_selection_criteria_by_ids()) == 23
    # dotted keys work with a model id too (medigan: KeyError)
    assert selector.get_selection_values_for_key("performance.turing_test.AUC", model_id=mid) == [[0.56, 0.45]]
    # models without the key give None (medigan: KeyError for the whole call)
    fid = selector.get_selection_values_for_key("performance.FID")
    assert len(fid) == 23 and fid[0] == 67.6 and fid[21] is None
    with pytest.raises(ConfigKeyNotFoundError, match="nonexistent"):
        selector.get_selection_values_for_key("nonexistent")
    with pytest.raises(KeyError):
        selector.get_config_by_id(mid, "selection.nonexistent")


def test_results_are_copies(selector):
    config = selector.get_config_by_id(1)
    config["selection"]["tags"].append("MUTATED")
    selector.get_selection_criteria_by_id(1)["modality"].clear()
    assert "MUTATED" not in selector.get_config_by_id(1, "selection.tags")
    assert selector.find_matching_models_by_values(["mutated"]) == []
    assert selector.get_selection_values_for_key("modality", 1)[0][0] == "MMG"


def test_query_validation(selector):
    with pytest.raises(InvalidQueryError):
        selector.find_matching_models_by_values([])
    with pytest.raises(InvalidQueryError, match="AND"):
        selector.find_matching_models_by_values(["dcgan"], "NOT")
    # operators are case-insensitive (medigan silently matches nothing for "and")
    assert [m.model_id for m in selector.find_matching_models_by_values(["dcgan"], "and")] == \
        [m.model_id for m in selector.find_matching_models_by_values(["dcgan"], "AND")]
    # a bare string is one value (medigan would search its characters)
    assert [m.model_id for m in selector.find_matching_models_by_values("dcgan")] == \
        [m.model_id for m in selector.find_matching_models_by_values(["dcgan"])]
    with pytest.raises(InvalidQueryError):
        selector.rank_models_by_performance(metric="FID", order="best")


def test_match_candidate_api(selector):
    found = selector.find_matching_models_by_values(["MMG", "zzz"], "OR", False, True)
    first = found[0]
    assert repr(first) == ("ModelMatchCandidate(model_id=00001_DCGAN_MMG_CALC_ROI, is_match=True, operator: OR, "
                           "target_values=['MMG', 'zzz'])")
    assert len(first) == 1 and isinstance(first[0], MatchedEntry)
    assert repr(first[0]) == "MatchedEntry(key=modality, value=MMG, matching_element=MMG)"
    assert json.loads(str(first))["matched_entries"] == {"0": {"key": "modality", "value": "MMG",
                                                               "matching_element": "MMG"}}
    assert first.check_if_is_match() is True
    first.target_values_operator  # noqa: B018 - attribute exists, as in medigan
    assert first.is_case_sensitive is True and first.are_keys_also_matched is False


# --- the index agrees with a naive scan (medigan's algorithm, ported) -------------------------------------


def mutated_catalog(configs: Dict[str, Any], copies: int, seed: int) -> Dict[str, Any]:
    """medigan's config replicated with new ids and random edits (case, numbers, nesting, lists of dicts)."""
    rng = random.Random(seed)
    out = {}
    for k in range(copies):
        for model_id, config in configs.items():
            new = copy.deepcopy(config)
            sel = new["selection"]
            if rng.random() < 0.3:
                sel["tags"] = [t.upper() if rng.random() < 0.5 else t for t in sel.get("tags", [])] + [k, 1.0, True]
            if rng.random() < 0.2:
                sel["extra"] = {"Nested": {"Deep": ["MMG", None, {"a": 1}]}, "number": rng.choice([1, 1.0, "1"])}
            perf = sel.setdefault("performance", {})
            if rng.random() < 0.5:
                perf["FID"] = round(rng.uniform(10, 300), 2)
            if rng.random() < 0.2:
                perf["FID"] = [round(rng.uniform(10, 300), 2) for _ in range(3)]
            if rng.random() < 0.2:
                perf.pop("FID", None)
            out[f"{k:03d}{model_id}"] = new
    return out


def test_index_equals_naive_scan(configs):
    catalog = mutated_catalog(configs, copies=12, seed=7)
    sel = MediganSelector(catalog)
    rng = random.Random(11)
    pool = ["mmg", "MMG", "dcgan", "DCGAN", "breast", "chest", "x-ray", "none", "None", "1", "1.0", "true", "True",
            "FID", "performance", "Nested", "nested", "deep", "extra", "{'a': 1}", "128", "2021", "mri", "zzz",
            "mammography", "Mammography", "public", "tags", "MAMMOGRAPHY", "0", "3", "11"]
    for _ in range(300):
        values = rng.sample(pool, rng.randint(1, 4))
        operator = rng.choice(["AND", "OR", "XOR"])
        keys, cs = rng.random() < 0.5, rng.random() < 0.5
        ours = [json.loads(str(c)) for c in sel.find_matching_models_by_values(values, operator, keys, cs)]
        assert ours == naive_find(catalog, values, operator, keys, cs), (values, operator, keys, cs)
    for order in ("asc", "desc"):
        assert sel.rank_models_by_performance(metric="FID", order=order) == naive_rank(catalog, None, "FID", order)
        ids = rng.sample(list(catalog), 50)
        subset = {i: catalog[i] for i in catalog if i in ids}
        assert sel.rank_models_by_performance(ids, metric="FID_ratio", order=order) == \
            naive_rank(subset, None, "FID_ratio", order)


def test_naive_scan_is_medigan(configs):
    """The reference scan itself reproduces medigan's recorded answers (so it is a fair oracle)."""
    for case in CASES:
        if case["method"] != "find_matching_models_by_values" or "result" not in case["medigan"]:
            continue
        kw = case["kwargs"]
        ours = naive_find(configs, kw["values"], kw["target_values_operator"], kw["are_keys_also_matched"],
                          kw["is_case_sensitive"])
        assert json.dumps(ours) == json.dumps(case["medigan"]["result"]), case["id"]


def test_every_public_generators_verb_documents_what_it_does_its_parameters_and_its_result():
    """``help(Generators.generate)`` must say what the verb does, what each parameter means and what it returns."""
    import inspect

    from medigan_zoo.generators import Generators

    verbs = {n: f for n, f in inspect.getmembers(Generators, inspect.isfunction) if not n.startswith("_")}
    assert {"generate", "find_models_and_rank", "get_as_torch_dataloader", "visualize"} <= set(verbs)
    for name, verb in verbs.items():
        doc = inspect.getdoc(verb) or ""
        assert doc and "Returns:" in doc, f"Generators.{name} has no docstring with a Returns: section"
        params = [p for p in inspect.signature(verb).parameters if p != "self"]
        if params:
            assert "Args:" in doc, f"Generators.{name}: no Args: section"
        for param in params:
            assert param in doc, f"Generators.{name}: parameter {param!r} is not documented"
