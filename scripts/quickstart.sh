#!/usr/bin/env bash
# Set up a virtual environment, search the zoo and generate 16 chest X-rays into ./outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c constraints.txt .   # the tested CPU pins (see README)
"$VENV/bin/medigan-zoo" search chest x-ray pneumonia
"$VENV/bin/medigan-zoo" generate chest_xray_cdcgan --num_samples 16 --class_label 1 --output_path outputs
