#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run runs exactly this).
# Creates .venv, installs the package with its dev extra, then lint, format check, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Real servers the integration tests start on loopback: Debian's prometheus and etcd-server;
# buildah and debootstrap build the image (scripts/build_image.sh, tests/test_image.py).
if ! command -v prometheus >/dev/null 2>&1 || ! command -v etcd >/dev/null 2>&1 \
  || ! command -v buildah >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    prometheus etcd-server buildah debootstrap >/dev/null
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev,aiconfigurator]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# optional pieces installed above: a test that needs one may not skip (tests/optional.py)
DYNAMO_PLAN_TEST_EVERYTHING=1 .venv/bin/pytest -q -n 2 "$@"
