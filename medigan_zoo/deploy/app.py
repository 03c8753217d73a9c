"""The synthetic-study application: a MONAI Deploy App SDK application that makes synthetic DICOM studies from any
zoo bundle.

Run it the way the SDK documents (docs/deploy.md)::

    python -m medigan_zoo.deploy -i IN -o OUT [-m MODEL]       # or: python medigan_zoo/deploy/app.py -i ...

``IN``: a request JSON file or a folder of them (``medigan_zoo.deploy.request``); ``OUT``: one folder per request
(``OUT/<name>/dicom/...`` + manifest, ``OUT/<name>/nifti/`` when asked); ``MODEL``: a bundle or a folder of bundles
(trusted: the deployer chose them), indexed next to the zoo's shipped models. The SDK's ``HOLOSCAN_INPUT_PATH``,
``HOLOSCAN_OUTPUT_PATH`` and ``HOLOSCAN_MODEL_PATH`` stand in for the flags, as in a MAP container. Exit status 0
when every request made its study, 2 when one did not (each failed request: one ERROR line in the log, no folder).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from holoscan.conditions import CountCondition
from monai.deploy.core import Application

from medigan_zoo.core.errors import ZooError
from medigan_zoo.deploy.operators import (
    JOB,
    BundleGeneratorOperator,
    DicomStudyWriterOperator,
    Job,
    NiftiWriterOperator,
    PublishOperator,
    RequestSourceOperator,
)
from medigan_zoo.deploy.request import RequestError, read_request, request_files

logger = logging.getLogger("medigan_zoo.deploy")


class SyntheticStudyApp(Application):
    """Requests in, one synthetic DICOM study per request out (``results`` lists what happened to each)."""

    name = "medigan_zoo synthetic study"
    description = "Synthetic DICOM studies (and NIfTI) from the generative models of medigan_zoo"
    version = "1.0"

    def __init__(self, argv: Optional[Sequence[str]] = None, device: Optional[str] = None):
        super().__init__(list(argv) if argv is not None else None)
        self.device = device
        self.results: List[Dict[str, Any]] = []

    def compose(self) -> None:
        context = Application.init_app_context(self.argv)
        input_path, output_root = Path(context.input_path), Path(context.output_path)
        model_path = Path(context.model_path) if context.model_path and Path(context.model_path).exists() else None
        output_root.mkdir(parents=True, exist_ok=True)
        jobs = []
        for path in request_files(input_path):
            try:
                jobs.append(Job(request=read_request(path), source=str(path), output_root=output_root))
            except RequestError as err:
                job = Job(request=None, source=str(path), output_root=output_root)
                job.fail(err)
                jobs.append(job)
        names = [job.name for job in jobs]
        for job in jobs:
            if not job.error and names.count(job.name) > 1:
                job.error = f"request name {job.name!r} is used by {names.count(job.name)} requests; give each a " \
                            "unique 'name' (it names the output folder)."
        logger.info("%d request(s) from %s; model folder %s; output %s", len(jobs), input_path, model_path,
                    output_root)
        source = RequestSourceOperator(self, CountCondition(self, len(jobs)), jobs=jobs, name="request_source")
        generator = BundleGeneratorOperator(self, model_path=model_path, device=self.device, name="bundle_generator")
        dicom = DicomStudyWriterOperator(self, name="dicom_study_writer")
        nifti = NiftiWriterOperator(self, name="nifti_writer")
        publish = PublishOperator(self, results=self.results, name="publisher")
        for upstream, downstream in ((source, generator), (generator, dicom), (dicom, nifti), (nifti, publish)):
            self.add_flow(upstream, downstream, {(JOB, JOB)})


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the app on ``argv`` (default ``sys.argv``); 0 when every request made its study, else 2."""
    app = SyntheticStudyApp([sys.executable, *(sys.argv if argv is None else ["app.py", *argv])])
    try:
        app.run()
    except ZooError as err:  # before any request ran: no input, no request file
        logging.getLogger("medigan_zoo.deploy").error("%s", " ".join(str(err).split()))
        return 2
    failed = [r for r in app.results if not r["ok"]]
    return 2 if failed or not app.results else 0


if __name__ == "__main__":
    sys.exit(main())
