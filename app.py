"""Hugging Face Space entry point: the medigan_zoo web UI (docs/ui.md, "Hugging Face Space").

A Gradio Space runs ``python app.py``; the Space's README header sets ``sdk: gradio`` and ``app_file: app.py``.
Locally: ``python app.py`` (or ``medigan-zoo ui``) serves http://127.0.0.1:7860/.
"""
import os

from medigan_zoo.ui.layout import CSS, build_app

demo = build_app()

if __name__ == "__main__":
    # a Space serves on 0.0.0.0:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override); locally 127.0.0.1
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                allowed_paths=[str(demo.zoo_service.work_dir)], css=CSS)
