"""``medigan-zoo ui``: serve the web UI, printing one line when it answers (gradio imported here, not before)."""
from __future__ import annotations

import sys
import time
from typing import Any, Optional

from medigan_zoo.core.errors import ZooError
from medigan_zoo.ui.settings import UISettings

#: printed (with the URL) once the server answers; tests and benchmarks wait for it
READY = "medigan-zoo ui: ready at"


def serve(generators: Any = None, host: str = "127.0.0.1", port: int = 7860, max_samples: Optional[int] = None,
          block: bool = True):
    """Build the UI over ``generators`` and serve it on ``host:port`` (port 0: a free one); print the ready line.

    Raises ZooError when gradio is not installed or the port is taken.
    """
    start = time.perf_counter()
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ZooError("The web UI needs gradio: pip install 'medigan_zoo[ui]'.") from None
    from medigan_zoo.ui.layout import launch
    from medigan_zoo.ui.service import ZooService

    settings = UISettings() if max_samples is None else UISettings(max_samples=int(max_samples))
    service = ZooService(generators, settings=settings)
    try:
        demo = launch(host=host, port=port or _free_port(host), service=service, block=False, quiet=True)
    except OSError as err:
        raise ZooError(f"Cannot serve the UI on {host}:{port}: {err}. Pick another --port.") from None
    print(f"{READY} {demo.local_url} ({time.perf_counter() - start:.1f} s)", flush=True)
    if block:
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("medigan-zoo ui: stopped", file=sys.stderr)
        finally:
            demo.close()
    return demo


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
