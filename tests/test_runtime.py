"""The one bundle runtime (medigan_zoo.runtime): opening reads files only, one weights loader with one-line errors,
the contract ids from the properties file, one sample loop in display order, streaming indices, sys.path hygiene."""
from __future__ import annotations

import json
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import torch
from test_engine import make_bundle, one_torch_thread, tiny_bundle  # noqa: F401

from medigan_zoo.core.errors import BundleLoadError, GenerationError, ZooError
from medigan_zoo.runtime.bundle import open_bundle
from medigan_zoo.runtime.properties import contract_table, required_ids, required_meta_keys
from medigan_zoo.runtime.sample import condition_plan, index_batches, sample, sample_all
from medigan_zoo.runtime.weights import fit_weights, load_weights

ROOT = Path(__file__).resolve().parents[1]


def _edit_config(bundle: Path, **changes) -> None:
    path = bundle / "configs" / "inference.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config))


def test_opening_evaluates_nothing_until_a_part_is_built(tmp_path):
    bundle = make_bundle(tmp_path, name="lazy_cgan")
    marker = tmp_path / "evaluated"
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    config["network_def"]["start_size"] = f"$__import__('pathlib').Path({str(marker)!r}).touch() or 4"
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    opened = open_bundle(bundle, device="cpu")
    assert opened.missing_ids() == [] and not opened.foreign
    assert not marker.exists()  # reading ids and metadata ran no config code
    opened.sampler()
    assert marker.exists()  # building the network did


def test_missing_contract_ids_are_found_statically(tmp_path):
    bundle = make_bundle(tmp_path, name="gappy_cgan")
    _edit_config(bundle, sampler=None, seed=None, class_label=None)
    assert open_bundle(bundle, device="cpu").missing_ids() == ["seed", "sampler", "class_label"]


def test_contract_ids_come_from_the_properties_file_and_the_docs_show_them():
    assert required_ids("generator")[:2] == ["bundle_root", "device"] and "sampler" in required_ids("generator")
    assert "sampler" not in required_ids("feature_extractor")
    assert "changelog" in required_meta_keys()
    doc = (ROOT / "docs" / "bundle_contract.md").read_text()
    assert contract_table("generator") in doc, "run `python scripts/build_docs.py` to refresh docs/bundle_contract.md"


def test_weights_loader_errors_are_one_line(tmp_path):
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": object()}, pickled)  # needs full unpickling: refused
    nested = tmp_path / "nested.pt"
    torch.save({"optimizer": {"lr": 0.1}, "epoch": 3}, nested)
    for path, words in ((pickled, "will not be unpickled"), (nested, "no state dict"),
                        (tmp_path / "absent.pt", "not found")):
        with pytest.raises(BundleLoadError) as err:
            load_weights(path)
        assert words in str(err.value) and "\n" not in str(err.value) and str(path) in str(err.value)


def test_weights_unwrapped_from_checkpoints_and_wrappers(tmp_path):
    net = torch.nn.Linear(3, 2)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}, "epoch": 1},
               tmp_path / "ckpt.pt")
    state = load_weights(tmp_path / "ckpt.pt")
    assert set(state) == {"weight", "bias"}
    fit_weights(torch.nn.Linear(3, 2), state, "ckpt.pt")


def test_weight_mismatch_is_summarised_in_one_line():
    net = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(40)])
    other = {f"block{i}.w": torch.zeros(4, 4) for i in range(80)}
    with pytest.raises(BundleLoadError) as err:
        fit_weights(net, other, "x.pt")
    text = str(err.value)
    assert "\n" not in text and len(text) < 600
    assert "80 missing" in text and "80 unexpected" in text and "load_old_state_dict" in text
    shapes = {k: torch.zeros(5, 5) if k.endswith("weight") else v for k, v in net.state_dict().items()}
    with pytest.raises(BundleLoadError, match="40 wrong shape .*other sizes"):
        fit_weights(net, shapes, "x.pt")


def test_ckpt_path_of_the_config_is_the_one_loaded(tmp_path):
    bundle = make_bundle(tmp_path, name="moved_cgan")
    (bundle / "models" / "model.pt").rename(bundle / "models" / "elsewhere.pt")
    _edit_config(bundle, ckpt_path="$@bundle_root + '/models/elsewhere.pt'")
    opened = open_bundle(bundle, device="cpu")
    assert opened.ckpt_path == bundle / "models" / "elsewhere.pt"
    assert opened.sampler().weights_path == bundle / "models" / "elsewhere.pt"


def test_broken_config_json_names_the_file(tmp_path):
    bundle = make_bundle(tmp_path, name="broken_cgan")
    (bundle / "configs" / "inference.json").write_text('{"network_def": {"_target_": \n')
    with pytest.raises(ZooError, match=r"inference.json.*line 2") as err:
        open_bundle(bundle, device="cpu")
    assert "\n" not in str(err.value)


def test_bundle_code_is_importable_only_while_instantiated(tmp_path):
    bundle = make_bundle(tmp_path, name="masked_cgan", with_mask=True)  # its sampler lives in the bundle's .py
    before = list(sys.path)
    sampler = open_bundle(bundle, device="cpu").sampler()
    assert sys.path == before and str(bundle) not in sys.path
    assert set(sampler([1, 2], {"class_label": torch.tensor([0, 1])})) == {"image", "mask"}


def test_one_loop_sample_i_is_independent_of_its_batch(tiny_bundle):
    sampler = open_bundle(tiny_bundle, device="cpu").sampler()
    plan = condition_plan(sampler, {"class_label": [0, 1]})
    whole = torch.cat([b.outputs["image"] for b in sample_all(sampler, range(10), plan, seed=7, batch_size=4)])
    alone = sample(sampler, [9], plan, seed=7)
    assert alone.conditions == [{"class_label": 1}] and torch.equal(whole[9:], alone.outputs["image"])
    assert list(index_batches(iter(range(5)), 2)) == [[0, 1], [2, 3], [4]]


def test_foreign_bundle_outputs_come_in_display_order(mednist_gan):
    opened = open_bundle(mednist_gan, device="cpu")
    sampler = opened.sampler()
    assert opened.foreign and sampler.monai_order
    seeds = torch.tensor([3, 4])
    with torch.inference_mode():
        monai_order = sampler.module(seeds)  # (B, C, x, y) as MONAI's own writers receive it
    # (BundleSampler pads small batches to min_batch, which moves the last bits of CPU kernels' sums)
    assert torch.allclose(sampler([3, 4])["image"], monai_order.transpose(-1, -2), atol=1e-5)


def test_generation_streams_its_indices(tiny_bundle, tmp_path, monkeypatch):
    """A run of 10**12 samples starts at once in constant memory (the indices are never materialised)."""
    from medigan_zoo.engine import runner

    class Stop(Exception):
        pass

    calls = []
    real_sample = runner.sample

    def sample_twice(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise Stop()
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(runner, "sample", sample_twice)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(Stop):
        runner.generate(tiny_bundle, num_samples=10 ** 12, output_path=tmp_path / "out", batch_size=4,
                        num_workers=0, quiet=True)
    elapsed, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 30 and peak < 64 * 2 ** 20
    assert len(list((tmp_path / "out").glob("sample_*.png"))) == 8  # the two batches made before the stop


@pytest.mark.parametrize("seed", [1e30, -1, 2 ** 63, 2.5, "x", True])
def test_seed_must_be_a_representable_integer(tiny_bundle, tmp_path, seed):
    from medigan_zoo.engine import generate

    with pytest.raises(GenerationError, match="seed must be an integer"):
        generate(tiny_bundle, num_samples=1, output_path=tmp_path / "out", seed=seed)


@pytest.mark.parametrize("index", [2.7, "3", True, None])
def test_dataset_indices_must_be_integers(tiny_bundle, index):
    from medigan_zoo.engine import SyntheticDataset

    ds = SyntheticDataset(tiny_bundle, num_samples=4)
    with pytest.raises(TypeError, match="integers"):
        ds[index]
    assert ds[torch.tensor(1)]["index"] == 1  # anything with __index__ is an index


def test_bundles_each_import_their_own_scripts(tmp_path):
    """MONAI's bundles all name their code `scripts`: opened one after another in one process, each must import its
    own (a cached `scripts` of another bundle is set aside meanwhile), and none stays imported afterwards."""
    import importlib

    from medigan_zoo.runtime.imports import bundle_on_sys_path

    for name, value in (("a", 1), ("b", 2)):
        package = tmp_path / name / "scripts"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "mark.py").write_text(f"VALUE = {value}\n")
    seen = []
    for name in ("a", "b", "a"):
        with bundle_on_sys_path(tmp_path / name):
            seen.append(importlib.import_module("scripts.mark").VALUE)
    assert seen == [1, 2, 1]
    assert not [k for k in sys.modules if k.split(".")[0] == "scripts"] and str(tmp_path / "a") not in sys.path


def test_own_scripts_win_over_a_bundle_root_monai_left_on_sys_path(tmp_path):
    """`monai.bundle run` leaves its bundle root on sys.path; another bundle's `scripts` must still be its own."""
    import importlib

    from medigan_zoo.runtime.imports import bundle_on_sys_path

    for name, value in (("left", 1), ("mine", 2)):
        package = tmp_path / name / "scripts"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "mark.py").write_text(f"VALUE = {value}\n")
    sys.path.insert(1, str(tmp_path / "left"))  # what monai.bundle run does, and never undoes
    try:
        with bundle_on_sys_path(tmp_path / "mine"):
            assert importlib.import_module("scripts.mark").VALUE == 2
    finally:
        sys.path.remove(str(tmp_path / "left"))
        for key in [k for k in sys.modules if k.split(".")[0] == "scripts"]:
            del sys.modules[key]
