#!/usr/bin/env bash
# Set up a virtual environment and run the whole default test suite (what CI runs).
# Works offline except for the package registry. Versions come from constraints.txt (the tested CPU pins; an
# unconstrained torch pulls a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[test]"
set +e
"$VENV/bin/python" -m pytest -m "not slow" -q -p no:cacheprovider "$@"
rc=$?
set -e
# pytest exit 5 = no test collected: treat as failure (a suite that runs nothing proves nothing)
exit $rc
