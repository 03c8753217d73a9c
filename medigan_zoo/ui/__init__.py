"""The zoo's web UI (``medigan-zoo ui``, ``app.py`` as a Hugging Face Space): search, model pages, compare, download,
latent interpolation, built on Gradio (docs/ui.md).

Modules: ``settings`` (request bounds), ``cards`` (search cards, metric tables, model cards: text only),
``images`` (thumbnails, slices, grids), ``service`` (what each panel does, through the zoo's Python API:
``Generators``, ``engine.generate``, ``engine.visualize``, ``engine.interpolation``), ``callbacks`` (Gradio-facing:
zoo errors as one-line page errors) and ``layout`` (the page). Nothing here imports gradio or torch at import time
except ``callbacks`` and ``layout``.
"""
