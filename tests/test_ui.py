"""Unit tests of the web UI's service and callbacks (the browser test is tests/test_ui_browser.py).

Invariants: search ranks as ``Generators.search``; a batch made in the page has the pixels ``Generators.generate``
makes with the same seed and condition (one code path); an interpolation row starts and ends at the two seeds'
first samples; bad input surfaces as the zoo's own one-line message; requests are bounded.
"""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from medigan_zoo import Generators
from medigan_zoo.core.errors import GenerationError, ModelNotFoundError, ZooError
from medigan_zoo.ui.service import ZooService
from medigan_zoo.ui.settings import UISettings
from tests.conftest import DATA_DIR, REPO

GAN = "chest_xray_cdcgan"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    return ZooService(settings=UISettings(max_samples=8), work_dir=tmp_path_factory.mktemp("ui"))


@pytest.fixture(scope="module")
def callbacks(service):
    pytest.importorskip("gradio", reason="the web UI needs the `ui` extra (gradio)")
    from medigan_zoo.ui.callbacks import Callbacks

    return Callbacks(service)


def _controls(*conditions, options=(), axis="axial", index=-1):
    from medigan_zoo.ui.callbacks import MAX_CONDITIONS, MAX_OPTIONS

    conds = list(conditions) + [None] * (MAX_CONDITIONS - len(conditions))
    opts = list(options) + [None] * (MAX_OPTIONS - len(options))
    return [*conds, *opts, axis, index]


def test_search_ranks_like_the_python_api_and_cards_show_what_users_compare(service):
    query = "chest x-ray pneumonia"
    results = service.search(query)
    assert [r.info.id for r in results] == [h.model_id for h in Generators().search(query)]
    card = results[0].html
    assert card.count('src="data:image/png;base64,') == 1  # thumbnail of docs/samples.png
    for text in ("DX", "28x28", "CC-BY-4.0", "FID", "precision"):
        assert text in card
    three_d = {"adrenal_ct_3dgan", "adrenal_ct_3dgan64"}
    assert {r.info.id for r in service.search("", modality="CT")} == three_d
    assert {r.info.id for r in service.search("gan", dims="3")} == three_d
    assert len(service.search("")) == len(service.model_ids())  # no text, no filter: every model
    assert "any" in service.filter_choices()["license"] and "3" in service.filter_choices()["dims"]


def test_search_and_model_pages_need_no_torch():
    code = ("import sys; from medigan_zoo.ui.service import ZooService; from medigan_zoo.ui import cards; "
            "s = ZooService(); s.search('chest'); cards.readme_markdown(s.info('adrenal_ct_3dgan')); "
            "cards.metric_rows(s.info('chest_xray_cdcgan')); s.interpolable('chest_xray_cdcgan'); "
            "print(sorted(m for m in ('torch', 'monai', 'gradio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_model_page_controls_come_from_the_zoo_block(callbacks):
    from medigan_zoo.ui.callbacks import MAX_CONDITIONS

    page = callbacks.model_page("chest_xray_ddpm")
    markdown, samples, metrics = page[:3]
    assert "chest_xray_ddpm" in markdown and "![samples](samples.png)" not in markdown
    assert samples.endswith("docs/samples.png")
    fid = next(row for row in metrics if row[0] == "FID")
    assert fid[2] == "lower ↓" and fid[3] == "2000" and fid[4] == "pneumoniamnist.npz:test" and fid[5]
    condition = page[3]
    assert condition["visible"] and condition["choices"] == [("0: normal", "0"), ("1: pneumonia", "1")]
    assert condition["value"] == "0"
    assert not page[4]["visible"]  # one condition: the other slots are hidden
    steps, eta = page[3 + MAX_CONDITIONS], page[4 + MAX_CONDITIONS]
    inference = json.loads((REPO / "bundles" / "chest_xray_ddpm" / "configs" / "inference.json").read_text())
    assert steps["minimum"] == 1 and steps["maximum"] == 1000 and steps["precision"] == 0
    assert steps["value"] == inference["num_inference_steps"]  # the bundle's own default
    assert eta["minimum"] == 0.0 and eta["maximum"] == 1.0
    slice_row, interp = page[-7], page[-6]
    assert not slice_row["visible"] and not interp["visible"]  # 2D, diffusion
    page = callbacks.model_page("adrenal_ct_3dgan")
    assert page[-7]["visible"] and page[-6]["visible"]  # 3D slice controls, GAN interpolation


def test_page_batch_equals_the_cli_batch(callbacks, service, tmp_path):
    out = callbacks.generate(GAN, "3", 4, *_controls("0"))
    synthetic, _, _, status, folder = out[:5]
    assert len(synthetic) == 4 and "4 SYNTHETIC samples" in status and "class_label=0" in status
    batch = service.batch(folder)
    assert [path for path, _ in synthetic] == [str(f) for f in batch.files]  # the page shows the batch's own files
    cli = Generators().generate(GAN, num_samples=4, output_path=tmp_path / "cli", seed=3, class_label=0, quiet=True)
    from medigan_zoo.engine.formats import read_pil

    for page_file, cli_file in zip(batch.files, cli.files):
        assert np.array_equal(read_pil(page_file), read_pil(cli_file))
    assert len(batch.arrays()) == 4 and batch.arrays()[0].shape == (1, 28, 28)


def test_zip_holds_the_batch_and_its_manifest_labelled_synthetic(service):
    batch = service.generate(GAN, seed=1, num_samples=3, conditions={"class_label": "1"})
    with zipfile.ZipFile(service.zip_batch(batch.folder)) as zf:
        names = zf.namelist()
        assert sum(n.endswith(".png") for n in names) == 3
        header = json.loads(zf.read(next(n for n in names if n.endswith("/manifest.json"))))
        lines = zf.read(next(n for n in names if n.endswith("manifest.jsonl"))).decode().splitlines()
        assert b"SYNTHETIC" in zf.read(next(n for n in names if n.endswith(".png")))
    assert header["synthetic"] is True and header["seed"] == 1
    assert [json.loads(line)["condition"] for line in lines] == [{"class_label": 1}] * 3
    with pytest.raises(ZooError, match="press Generate first"):
        service.zip_batch("/etc")  # only batches this server made


@pytest.mark.parametrize("args, message", [
    (dict(seed="abc"), "seed must be an integer between 0 and"),
    (dict(num_samples=9), "num_samples must be an integer between 1 and 8, got 9"),
    (dict(conditions=("7",)), "does not take class_label='7'. Valid values: 0 (normal), 1 (pneumonia)"),
    (dict(model="chest_xray_cdgan"), "Unknown model id 'chest_xray_cdgan'. Closest ids: chest_xray_cdcgan"),
])
def test_bad_input_shows_the_zoos_one_line_error(callbacks, args, message):
    import gradio as gr

    from medigan_zoo.ui.callbacks import user_errors

    with pytest.raises(gr.Error) as caught:
        user_errors(callbacks.generate)(args.get("model", GAN), args.get("seed", "0"), args.get("num_samples", 2),
                                        *_controls(*args.get("conditions", ())))
    text = caught.value.message
    assert message in text and "\n" not in text and "Traceback" not in text


def test_unexpected_errors_are_one_line_too(callbacks):
    import gradio as gr

    from medigan_zoo.ui.callbacks import user_errors

    def broken():
        raise ValueError("bad\nthing")

    with pytest.raises(gr.Error) as caught:
        user_errors(broken)()
    assert caught.value.message == "Unexpected error (ValueError): bad thing. The server log has the details."


def test_interpolation_ends_at_the_two_seeds_first_samples(service):
    from medigan_zoo.runtime.sample import condition_plan, sample

    row = service.interpolate(GAN, 3, 7, 5, {"class_label": "1"})
    assert len(row) == 5 and row[0].shape == (1, 28, 28)
    sampler, _ = service.sampler(GAN)
    plan = condition_plan(sampler, {"class_label": 1})
    for seed, image in ((3, row[0]), (7, row[-1])):
        first = sample(sampler, [0], plan, seed).normalized()[0].numpy()
        assert np.allclose(image, first, atol=1e-5)
    assert not np.allclose(row[2], row[0], atol=1e-3)  # the middle is neither end
    with pytest.raises(GenerationError, match="not a GAN-like bundle"):
        service.interpolate("chest_xray_ddpm", 0, 1, 3)
    with pytest.raises(GenerationError, match="steps must be an integer between 2 and"):
        service.interpolate(GAN, 0, 1, 1)


def test_3d_batches_scroll_slices_along_each_axis(callbacks, service):
    out = callbacks.generate("adrenal_ct_3dgan", "0", 2, *_controls(options=(), axis="coronal", index=-1))
    synthetic, folder, slider = out[0], out[4], out[6]
    assert len(synthetic) == 2 and slider["maximum"] == 27 and slider["value"] == 14
    volume = service.batch(folder).arrays()[0]
    assert volume.shape == (1, 28, 28, 28)
    from medigan_zoo.engine.formats import read_pil
    from medigan_zoo.ui.images import volume_slice

    for axis in ("axial", "coronal", "sagittal"):
        first, real = callbacks.reslice(folder, axis, 3)
        shown = read_pil(first[0][0])[..., 0] / 255.0
        assert shown.shape == (28, 28)
        assert np.abs(shown - volume_slice(volume, axis, 3)[0]).max() <= 0.5 / 255 + 1e-6  # that slice, 8 bits
        # the mask is empty near the border (binary since adrenal_ct_3dgan 0.3.0): the middle slice differs
        middle, _ = callbacks.reslice(folder, axis, 14)
        assert volume_slice(volume, axis, 14)[0].any()
        assert not np.array_equal(read_pil(first[0][0]), read_pil(middle[0][0]))
        assert b"SYNTHETIC" in open(first[0][0], "rb").read()


def test_compare_puts_models_side_by_side_on_the_same_seeds(callbacks, service):
    grids, rows = service.compare([GAN, "retina_fundus_cdcgan"], seed=0, num_per_row=2)
    assert [m for m, _ in grids] == [GAN, "retina_fundus_cdcgan"]
    fid = next(r for r in rows if r[0] == "FID")
    assert fid[1] == "lower ↓" and sum("★" in c for c in fid[2:]) == 1
    out = callbacks.compare([GAN, "retina_fundus_cdcgan"], "0", 2)
    assert out[0]["visible"] and out[1]["visible"] and not out[2]["visible"]
    assert out[-1]["headers"] == ["metric", "better", GAN, "retina_fundus_cdcgan"]
    with pytest.raises(ZooError, match="Compare takes 2 to 4 different models, got 1"):
        service.compare([GAN, GAN])
    with pytest.raises(ModelNotFoundError):
        service.compare([GAN, "nope"])


def test_real_images_come_from_the_evaluation_split_with_the_chosen_class(service):
    if not (DATA_DIR / "pneumoniamnist.npz").is_file():
        pytest.skip(f"the shared data folder is absent ({DATA_DIR})")
    from medigan_zoo.evaluation.data import load_reference

    images, caption = service.real_images(GAN, {"class_label": "1"}, count=3)
    assert caption == "REAL images from pneumoniamnist.npz:test, class_label=1 (first 3)"
    real = load_reference(["PneumoniaMNIST"], "test", spatial_shape=[28, 28])
    pneumonia = real.images[real.labels == 1][:3].numpy()
    assert np.array_equal(np.stack(images), pneumonia)


def test_app_bounds_requests_with_one_queue(service):
    pytest.importorskip("gradio", reason="the web UI needs the `ui` extra (gradio)")
    from medigan_zoo.ui.layout import MODEL_QUEUE, build_app

    demo = build_app(service)
    assert demo._queue.max_size == service.settings.max_queue
    fns = {f.api_name: f for f in demo.fns.values() if f.api_name}
    for name in ("generate", "interpolate", "compare"):
        assert fns[name].concurrency_id == MODEL_QUEUE and fns[name].concurrency_limit == 1
    assert set(fns) >= {"search", "model_page", "generate", "interpolate", "compare"}


def test_cli_ui_refuses_a_bad_port(capsys):
    from medigan_zoo.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["ui", "--port", "-1"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.strip().startswith("medigan-zoo: error: port must be")


def test_a_taken_port_is_a_one_line_error(service):
    pytest.importorskip("gradio", reason="the web UI needs the `ui` extra (gradio)")
    import socket

    from medigan_zoo.ui.server import serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ZooError, match=f"Cannot serve the UI on 127.0.0.1:{port}: .* Pick another --port"):
            serve(service.gens, host="127.0.0.1", port=port, block=False)


def test_app_py_builds_the_space_page():
    """``app.py`` (the Hugging Face Space entry point) builds the same page without serving it when imported."""
    pytest.importorskip("gradio", reason="the web UI needs the `ui` extra (gradio)")
    import runpy

    namespace = runpy.run_path(str(REPO / "app.py"), run_name="medigan_zoo_space")
    demo = namespace["demo"]
    assert isinstance(demo.zoo_service, ZooService) and "generate" in {f.api_name for f in demo.fns.values()}


def test_interpolation_of_a_foreign_gan_uses_its_uniform_latents(mednist_gan):
    """MONAI's MedNIST GAN (no zoo sampler; uniform latents): the row runs between its own first samples."""
    from medigan_zoo.engine.interpolation import interpolate
    from medigan_zoo.runtime.bundle import load_bundle_sampler
    from medigan_zoo.runtime.sample import condition_plan, sample

    sampler = load_bundle_sampler(mednist_gan, device="cpu", trusted=True)
    row = interpolate(sampler, 2, 9, steps=3)
    plan = condition_plan(sampler, {})
    assert np.allclose(row[0].numpy(), sample(sampler, [0], plan, 2).normalized()[0].numpy(), atol=1e-5)
    assert np.allclose(row[-1].numpy(), sample(sampler, [0], plan, 9).normalized()[0].numpy(), atol=1e-5)
    latents = sampler.latents([0, 1])
    assert float(latents.min()) >= 0.0 and float(latents.max()) <= 1.0  # uniform: interpolated on a line
