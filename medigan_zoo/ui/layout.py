"""The page: search, model, compare tabs wired to :class:`~medigan_zoo.ui.callbacks.Callbacks`; ``launch``."""
from __future__ import annotations

from typing import Any, Optional

import gradio as gr

from medigan_zoo.ui.callbacks import MAX_CONDITIONS, MAX_OPTIONS, Callbacks, user_errors
from medigan_zoo.ui.images import AXES
from medigan_zoo.ui.service import ANY, ZooService
from medigan_zoo.ui.settings import UISettings

#: every event that runs a model waits in this one queue (``settings.concurrency_limit`` at a time)
MODEL_QUEUE = "model-runs"
#: small medical images are enlarged by the browser without smoothing (pixels stay pixels)
CSS = ".zoo-pixels img { image-rendering: pixelated; }"
TITLE = "medigan_zoo — generative models for medical imaging"
INTRO = ("Search the zoo, open a model's card, generate **synthetic** images next to real ones, compare models on the "
         "same seeds and download a batch with its manifest. Everything here calls the same Python API as "
         "`medigan-zoo` on the command line (docs/ui.md).")


def build_app(service: Optional[ZooService] = None, settings: Optional[UISettings] = None) -> gr.Blocks:
    """The web UI as a ``gr.Blocks`` app with its queue set up (``settings`` bound every request)."""
    service = service or ZooService(settings=settings)
    settings = service.settings
    cb = Callbacks(service)
    choices = service.filter_choices()
    ids = service.model_ids()
    first = "chest_xray_cdcgan" if "chest_xray_cdcgan" in ids else (ids[0] if ids else None)
    # no analytics: the server makes no call to the internet (Gradio's usage statistics and version check)
    with gr.Blocks(title="medigan_zoo", analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Tabs(selected="search", elem_id="tabs") as tabs:
            with gr.Tab("Search", id="search", elem_id="tab-search"):
                with gr.Row():
                    query = gr.Textbox(label="Search", placeholder="e.g. chest x-ray pneumonia", scale=3,
                                       elem_id="search-query")
                    modality = gr.Dropdown(choices["modality"], value=ANY, label="modality", elem_id="filter-modality")
                    dims = gr.Dropdown(choices["dims"], value=ANY, label="dims", elem_id="filter-dims")
                    license_ = gr.Dropdown(choices["license"], value=ANY, label="license", elem_id="filter-license")
                    search_button = gr.Button("Search", variant="primary", elem_id="search-button")
                results = gr.HTML(elem_id="search-results")
                with gr.Row():
                    open_choice = gr.Dropdown([], label="model to open", elem_id="open-choice", scale=3)
                    open_button = gr.Button("Open model page", elem_id="open-button")
            with gr.Tab("Model", id="model", elem_id="tab-model"):
                model_id = gr.Dropdown(ids, value=first, label="model", elem_id="model-id")
                with gr.Row():
                    with gr.Column(scale=3):
                        card = gr.Markdown(elem_id="model-card", max_height=420)
                    with gr.Column(scale=2):
                        samples = gr.Image(label="sample grid (docs/samples.png, SYNTHETIC)", type="filepath",
                                           interactive=False, elem_id="model-samples")
                metrics = gr.Dataframe(headers=["metric", "value", "better", "samples", "reference split",
                                                "feature extractor / how measured"], interactive=False,
                                       label="metrics (how each was measured)", elem_id="model-metrics", wrap=True)
                with gr.Row():
                    # custom values allowed: the zoo checks them (one-line error), and HTTP API callers may pass any
                    conds = [gr.Dropdown([], label=f"condition {k}", visible=False, elem_id=f"cond-{k}",
                                         allow_custom_value=True) for k in range(MAX_CONDITIONS)]
                    opts = [gr.Number(label=f"option {k}", visible=False, elem_id=f"opt-{k}")
                            for k in range(MAX_OPTIONS)]
                with gr.Row():
                    seed = gr.Textbox(value="0", label="seed", elem_id="seed")
                    num = gr.Slider(1, settings.max_samples, value=16, step=1, label="samples",
                                    elem_id="num-samples")
                    generate = gr.Button("Generate", variant="primary", elem_id="generate-button")
                status = gr.Markdown(elem_id="generate-status")
                with gr.Row(visible=False, elem_id="slice-row") as slice_row:
                    axis = gr.Radio(list(AXES), value="axial", label="3D view", elem_id="slice-axis")
                    index = gr.Slider(0, 1, value=0, step=1, label="slice", elem_id="slice-index")
                with gr.Row():
                    synthetic = gr.Gallery(label="SYNTHETIC samples", columns=6, height="auto", object_fit="contain",
                                           elem_id="synthetic-gallery", elem_classes=["zoo-pixels"], scale=2)
                    real = gr.Gallery(label="REAL images (evaluation split)", columns=3, height="auto",
                                      object_fit="contain", elem_id="real-gallery", elem_classes=["zoo-pixels"],
                                      scale=1)
                real_caption = gr.Markdown(elem_id="real-caption")
                batch = gr.State(None)
                download = gr.DownloadButton("Download batch (zip with manifest)", interactive=False,
                                             elem_id="download-button")
                with gr.Accordion("Latent interpolation (GAN bundles)", open=True, visible=False,
                                  elem_id="interp") as interp_box:
                    with gr.Row():
                        seed_a = gr.Textbox(value="0", label="seed A", elem_id="seed-a")
                        seed_b = gr.Textbox(value="1", label="seed B", elem_id="seed-b")
                        steps = gr.Slider(2, settings.max_interpolation_steps, value=8, step=1, label="steps",
                                          elem_id="interp-steps")
                        interp_button = gr.Button("Interpolate", elem_id="interp-button")
                    interp = gr.Gallery(label="SYNTHETIC: seed A -> seed B", columns=8, height="auto",
                                        object_fit="contain", elem_id="interp-gallery", elem_classes=["zoo-pixels"])
            with gr.Tab("Compare", id="compare", elem_id="tab-compare"):
                with gr.Row():
                    compare_ids = gr.Dropdown(ids, value=ids[:2], multiselect=True, max_choices=settings.max_compare,
                                              label=f"models (2 to {settings.max_compare})", elem_id="compare-models",
                                              scale=3)
                    compare_seed = gr.Textbox(value="0", label="seed (the same for every model)",
                                              elem_id="compare-seed")
                    per_row = gr.Slider(1, settings.max_compare_samples, value=6, step=1, label="samples per row",
                                        elem_id="compare-per-row")
                    compare_button = gr.Button("Compare", variant="primary", elem_id="compare-button")
                with gr.Row():
                    grids = [gr.Image(visible=False, interactive=False, elem_id=f"compare-grid-{k}")
                             for k in range(settings.max_compare)]
                compare_table = gr.Dataframe(interactive=False, label="metrics side by side (★ best)",
                                             elem_id="compare-metrics")

        light: Any = dict(concurrency_limit=8)
        hidden: Any = dict(api_visibility="private")  # page plumbing, not part of the HTTP API
        heavy: Any = dict(concurrency_id=MODEL_QUEUE, concurrency_limit=settings.concurrency_limit)
        search_args: Any = dict(fn=user_errors(cb.search), inputs=[query, modality, dims, license_],
                                outputs=[results, open_choice], api_name="search", **light)
        search_button.click(**search_args)
        query.submit(**{**search_args, "api_name": None, "api_visibility": "private"})
        demo.load(**{**search_args, "api_name": None, "api_visibility": "private"})
        open_button.click(user_errors(cb.open_model), [open_choice], [model_id, tabs], **hidden, **light)
        page_outputs = [card, samples, metrics, *conds, *opts, slice_row, interp_box, synthetic, real, real_caption,
                        batch, download]
        model_id.change(user_errors(cb.model_page), [model_id], page_outputs, api_name="model_page", **light)
        demo.load(user_errors(cb.model_page), [model_id], page_outputs, **hidden, **light)
        controls = [*conds, *opts, axis, index]
        generate.click(user_errors(cb.generate), [model_id, seed, num, *controls],
                       [synthetic, real, real_caption, status, batch, download, index], api_name="generate", **heavy)
        for event in (axis.change, index.release):
            event(user_errors(cb.reslice), [batch, axis, index], [synthetic, real], **hidden, **light)
        interp_button.click(user_errors(cb.interpolate), [model_id, seed_a, seed_b, steps, *controls], [interp],
                            api_name="interpolate", **heavy)
        compare_button.click(user_errors(cb.compare), [compare_ids, compare_seed, per_row], [*grids, compare_table],
                             api_name="compare", **heavy)
    demo.queue(max_size=settings.max_queue, default_concurrency_limit=settings.concurrency_limit)
    demo.zoo_service = service  # for tests and app.py
    return demo


def launch(host: str = "127.0.0.1", port: int = 7860, service: Optional[ZooService] = None,
           block: bool = True, **launch_kwargs: Any) -> gr.Blocks:
    """Build and serve the UI on ``host:port``; ``block=False`` returns once it answers (tests, benchmarks)."""
    demo = build_app(service)
    demo.launch(server_name=host, server_port=int(port), prevent_thread_lock=not block, show_error=True,
                allowed_paths=[str(demo.zoo_service.work_dir)],  # type: ignore[attr-defined]
                footer_links=["api"], css=CSS, **launch_kwargs)
    return demo
