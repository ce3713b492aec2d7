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
# ... and one of them serves TLS with a throwaway CA made by openssl.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
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

# The Dash ecosystem (shoal.cachelib, shoal.flask_caching, shoal.dash, the
# example app and its browser test, `make bench-dash`): headless Chromium
# with its driver, and redis-server as the measured baseline.
dash_need=()
command -v chromium >/dev/null 2>&1 || dash_need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || dash_need+=(chromium-driver)
command -v redis-server >/dev/null 2>&1 || dash_need+=(redis-server)
if [ ${#dash_need[@]} -gt 0 ]; then
	echo "deps: installing ${dash_need[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${dash_need[@]}" >/dev/null
fi
dash_stamp=.venv/.deps-stamp-dash
dash_want="cachelib>=0.13,<1 Flask-Caching>=2.1,<3 dash>=2.16,<5 dash-extensions>=1.0.15,<3 gunicorn>=22,<28 selenium>=4.20,<5 redis>=5,<9"
if [ ! -f "$dash_stamp" ] || [ "$(cat "$dash_stamp")" != "$dash_want" ]; then
	echo "deps: installing the Dash test dependencies"
	# shellcheck disable=SC2086
	.venv/bin/pip install -q --disable-pip-version-check $dash_want
	echo "$dash_want" >"$dash_stamp"
fi
