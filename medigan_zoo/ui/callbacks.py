"""Gradio-facing callbacks: page inputs in, component values out; the zoo's errors become one-line page errors.

Each callback calls :class:`~medigan_zoo.ui.service.ZooService` (the zoo's Python API) and only converts values.
A ``ZooError`` is shown as its own one-line message (``gr.Error``, no stack trace); anything else as one line
naming the exception, with the traceback in the server log only.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from typing import Any, Callable, Dict, List, Sequence, Tuple, TypeVar

import gradio as gr

from medigan_zoo.cli import _one_line
from medigan_zoo.core.errors import ZooError
from medigan_zoo.ui import cards
from medigan_zoo.ui.images import AXES, display_images, num_slices, view_files
from medigan_zoo.ui.service import ANY, ZooService

LOG = logging.getLogger("medigan_zoo.ui")
#: condition dropdowns and option inputs on the model page (a model with more shows the first ones)
MAX_CONDITIONS = 3
MAX_OPTIONS = 4

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Show a ``ZooError`` as its one-line message in the page; any other error as one line (traceback logged)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ZooError as err:
            raise gr.Error(_one_line(str(err)), title="medigan-zoo", print_exception=False) from None
        except Exception as err:  # noqa: BLE001 - shown as one line, logged in full
            LOG.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(_one_line(f"Unexpected error ({type(err).__name__}): {err}. The server log has the "
                                     "details."), title="medigan-zoo", print_exception=False) from None
    return wrapper  # type: ignore[return-value]


class Callbacks:
    """The page's callbacks over one service."""

    def __init__(self, service: ZooService):
        self.service = service

    # --- search ---------------------------------------------------------------------------------------------
    def search(self, query: str, modality: str, dims: str, license: str) -> Tuple[str, Any]:
        """Result cards (HTML) and the "open model" choices, best first."""
        results = self.service.search(query, modality or ANY, dims or ANY, license or ANY)
        ids = [r.info.id for r in results]
        return cards.cards_html([r.html for r in results]), gr.update(choices=ids, value=ids[0] if ids else None)

    def open_model(self, model_id: str) -> Tuple[Any, Any]:
        """Switch to the model page of ``model_id``."""
        if not model_id:
            raise ZooError("Search first, then pick a model to open.")
        return gr.update(value=self.service.info(model_id).id), gr.Tabs(selected="model")

    # --- model page -----------------------------------------------------------------------------------------
    def model_page(self, model_id: str) -> List[Any]:
        """Card, sample grid, metrics, one control per condition and option, 3D and interpolation sections."""
        info = self.service.info(model_id)
        samples = info.bundle_dir / "docs" / "samples.png" if info.bundle_dir is not None else None
        out: List[Any] = [cards.readme_markdown(info), str(samples) if samples and samples.is_file() else None,
                          cards.metric_rows(info)]
        conditions = [c for c in info.conditions][:MAX_CONDITIONS]
        for k in range(MAX_CONDITIONS):
            if k < len(conditions):
                spec = conditions[k]
                label = f"{spec.name}" + (f" — {spec.description}" if spec.description else "")
                if spec.type == "categorical" and spec.values:
                    default = None if spec.default is None else str(spec.default)
                    out.append(gr.update(visible=True, label=label, choices=cards.condition_choices(spec.values),
                                         value=default, allow_custom_value=True))
                else:
                    bounds = f" ({spec.minimum} .. {spec.maximum})" if spec.type == "continuous" else ""
                    out.append(gr.update(visible=True, label=label + bounds, choices=[],
                                         value=None if spec.default is None else str(spec.default),
                                         allow_custom_value=True))
            else:
                out.append(gr.update(visible=False, value=None, choices=[]))
        options = [o for o in info.options if o.type in ("integer", "number")][:MAX_OPTIONS]
        for k in range(MAX_OPTIONS):
            if k < len(options):
                option = options[k]
                bounds = f" ({'' if option.minimum is None else option.minimum} .. " \
                         f"{'' if option.maximum is None else option.maximum})"
                out.append(gr.update(visible=True, label=option.name + bounds, value=option.default,
                                     info=option.description, minimum=option.minimum, maximum=option.maximum,
                                     precision=0 if option.type == "integer" else None))
            else:
                out.append(gr.update(visible=False, value=None))
        is_3d = info.dims == 3
        out += [gr.update(visible=is_3d), gr.update(visible=self.service.interpolable(info.id)),
                [], [], "", None, gr.update(value=None, interactive=False)]
        return out

    def generate(self, model_id: str, seed: Any, num_samples: Any, *controls: Any,
                 progress: gr.Progress = gr.Progress(track_tqdm=True)) -> List[Any]:
        """Generate a batch: synthetic gallery, real gallery and caption, status line, batch id, zip, slice slider."""
        conditions, options, axis, index = self._controls(model_id, controls)
        progress(0, desc="loading the model")
        batch = self.service.generate(model_id, seed=seed, num_samples=num_samples, conditions=conditions,
                                      options=options)
        zip_path = self.service.zip_batch(batch.folder)
        synthetic, real, caption, slider = self._galleries(batch, axis, index)
        made = ", ".join(f"{k}={v}" for k, v in {**batch.conditions, **batch.options}.items())
        status = (f"**{len(batch.files)} SYNTHETIC samples** of `{batch.model_id}`, seed {batch.seed}"
                  f"{', ' + made if made else ''}, made in {batch.seconds:.2f} s (files and manifest: "
                  f"download below).")
        return [synthetic, real, caption, status, str(batch.folder),
                gr.update(value=str(zip_path), interactive=True), slider]

    def reslice(self, folder: Any, axis: str, index: Any) -> Tuple[Any, Any]:
        """Show another slice of a 3D batch (and of its real volumes)."""
        if not folder:
            return gr.update(), gr.update()
        batch = self.service.batch(folder)
        synthetic, real, _, _ = self._galleries(batch, axis, index)
        return synthetic, real

    def _controls(self, model_id: str, controls: Sequence[Any]) -> Tuple[Dict[str, Any], Dict[str, Any], str, int]:
        info = self.service.info(model_id)
        cond_values = controls[:MAX_CONDITIONS]
        opt_values = controls[MAX_CONDITIONS:MAX_CONDITIONS + MAX_OPTIONS]
        axis, index = controls[MAX_CONDITIONS + MAX_OPTIONS:MAX_CONDITIONS + MAX_OPTIONS + 2]
        conditions = {spec.name: value for spec, value in zip(info.conditions[:MAX_CONDITIONS], cond_values)
                      if value not in (None, "")}
        numeric = [o for o in info.options if o.type in ("integer", "number")][:MAX_OPTIONS]
        options = {spec.name: value for spec, value in zip(numeric, opt_values) if value is not None}
        return conditions, options, str(axis or "axial"), -1 if index in (None, "") else int(index)

    def _galleries(self, batch: Any, axis: str, index: int) -> Tuple[List, List, str, Any]:
        """Gallery items (files: the batch's own PNGs for 2D models, slice PNGs written once per view for 3D) for
        the synthetic samples and the real images, the real images' caption and the slice slider."""
        axis = axis if axis in AXES else "axial"
        if batch.dims == 2:
            files = list(batch.files)
        else:
            files = view_files(batch.arrays(), self.service.views_folder(batch), True, axis, index)
        synthetic = [(str(path), f"synthetic #{k} (seed {batch.seed})") for k, path in enumerate(files)]
        real_arrays, caption = self.service.real_images(batch.model_id, batch.conditions)
        real_folder = self.service.work_dir / "real" / hashlib.sha256(caption.encode()).hexdigest()[:16]
        real = [(str(path), f"real #{k}") for k, path in
                enumerate(view_files(real_arrays, real_folder, False, axis, index))]
        slider: Any = gr.update()
        if batch.dims == 3 and batch.arrays():
            count = num_slices(batch.arrays()[0].shape, axis)
            slider = gr.update(minimum=0, maximum=count - 1, value=count // 2 if index < 0 else min(index, count - 1))
        return synthetic, real, caption, slider

    def interpolate(self, model_id: str, seed_a: Any, seed_b: Any, steps: Any, *controls: Any) -> List[Any]:
        """A row of images between two seeds' latents (GAN-like models)."""
        conditions, _, axis, index = self._controls(model_id, controls)
        arrays = self.service.interpolate(model_id, seed_a, seed_b, steps, conditions)
        return [(img, f"t={k / max(1, len(arrays) - 1):.2f}")
                for k, img in enumerate(display_images(arrays, axis, index))]

    # --- compare --------------------------------------------------------------------------------------------
    def compare(self, model_ids: Sequence[str], seed: Any, num_per_row: Any) -> List[Any]:
        """One grid per model (same seeds) and the metrics table; unused slots hidden."""
        grids, rows = self.service.compare(model_ids, seed, num_per_row)
        out: List[Any] = []
        for k in range(self.service.settings.max_compare):
            if k < len(grids):
                out.append(gr.update(visible=True, value=grids[k][1], label=f"{grids[k][0]} (SYNTHETIC)"))
            else:
                out.append(gr.update(visible=False, value=None))
        headers = ["metric", "better"] + [model_id for model_id, _ in grids]
        out.append(gr.update(value=rows, headers=headers))
        return out
