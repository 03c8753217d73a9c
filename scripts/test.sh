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
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[test,ui,deploy,train]"
set +e
# lint + import order, and types (configured in pyproject.toml); the test summary stays the last thing printed
"$VENV/bin/ruff" check medigan_zoo tests scripts benchmarks
lint=$?
"$VENV/bin/mypy"
types=$?
"$VENV/bin/python" -m pytest -m "not slow" -q -p no:cacheprovider "$@"
rc=$?
set -e
# pytest exit 5 = no test collected: a failure too (a suite that runs nothing proves nothing)
if [ "$rc" -eq 0 ] && { [ "$lint" -ne 0 ] || [ "$types" -ne 0 ]; }; then
    echo "ruff exit $lint, mypy exit $types: lint or type errors above" >&2
    rc=1
fi
exit $rc
