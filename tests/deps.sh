#!/usr/bin/env bash
# Installs what the tests need on a fresh machine: Debian packages (a C
# compiler, cmocka, pkg-config) when missing, and a Python virtual
# environment in .venv with the test dependencies from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v make >/dev/null 2>&1 || need+=(make)
[ -f /usr/include/cmocka.h ] || need+=(libcmocka-dev)
# The tier tests (tests/python/test_tier*.py) run real Redis servers.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
if [ ${#need[@]} -gt 0 ]; then
	echo "deps: installing ${need[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
	echo "deps: creating .venv"
	$PY -m venv .venv
fi
stamp=.venv/.deps-stamp
want="numpy pandas pyarrow polars pytest hypothesis setuptools wheel redis"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
	echo "deps: installing Python test dependencies"
	.venv/bin/pip install -q --disable-pip-version-check $want
	echo "$want" >"$stamp"
fi
