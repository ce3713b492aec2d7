#!/usr/bin/env bash
# Runs every test: the C unit and integration tests (cmocka), the same C
# tests built with ASan+UBSan, then the Python tests (pytest) against the
# package installed into .venv. Prints one summary line last:
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
passed=0
failed=0
log=build/test-logs
mkdir -p "$log"

# Runs one cmocka binary and adds its counts.
run_c() {
	local bin=$1 tag=$2 out
	out="$log/$(basename "$bin")-$tag.log"
	SHOAL_BIN=$3 timeout 600 "$bin" >"$out" 2>&1
	local rc=$?
	local p f
	p=$(grep -Eo '\[  PASSED  \] [0-9]+' "$out" | awk '{s+=$4} END {print s+0}')
	f=$(grep -Eo '\[  FAILED  \] [0-9]+ test' "$out" | awk '{s+=$4} END {print s+0}')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # crashed or timed out before cmocka could count
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	printf '%-40s %s: %d passed, %d failed\n' "$(basename "$bin")" "$tag" "$p" "$f"
	if [ "$f" -ne 0 ]; then
		sed 's/^/    /' "$out" | tail -40
	fi
}

c_suite() {
	local tag=$1 build=$2
	shift 2
	if ! make -s -j"$JOBS" "$@" all tests-c >"$log/build-$tag.log" 2>&1; then
		echo "build ($tag) failed:"
		tail -40 "$log/build-$tag.log"
		failed=$((failed + 1))
		return
	fi
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		run_c "$t" "$tag" "$PWD/$build/shoal"
	done
	for t in tests/integration/test_*.sh; do
		[ -f "$t" ] || continue
		run_sh "$t" "$tag" "$PWD/$build/shoal"
	done
}

# Runs a shell test that ends with "name: N passed, N failed".
run_sh() {
	local t=$1 tag=$2 out p f
	out="$log/$(basename "$t")-$tag.log"
	SHOAL_BIN=$3 timeout 600 bash "$t" "$3" >"$out" 2>&1
	local rc=$?
	read -r p f < <(tail -1 "$out" | sed -En 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p')
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	printf '%-40s %s: %d passed, %d failed\n' "$(basename "$t")" "$tag" "$p" "$f"
	if [ "$f" -ne 0 ]; then
		sed 's/^/    /' "$out" | tail -40
	fi
}

c_suite plain build/debug DEBUG=1
c_suite asan build/san SANITIZE=address,undefined

if [ -d tests/python ] && [ -f pyproject.toml ]; then
	if ! .venv/bin/pip install -q --disable-pip-version-check --no-build-isolation . >"$log/pip.log" 2>&1; then
		echo "pip install . failed:"
		tail -40 "$log/pip.log"
		failed=$((failed + 1))
	else
		# A results file from an earlier run must never be counted: a run
		# cut short by the timeout writes none.
		rm -f "$log/pytest.xml"
		SHOAL_BIN="$PWD/build/debug/shoal" timeout 900 .venv/bin/python -m pytest -q -p no:cacheprovider \
			--junitxml="$log/pytest.xml" tests/python 2>&1 | tail -30
		if [ -f "$log/pytest.xml" ]; then
			read -r p f < <(.venv/bin/python - "$log/pytest.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f)
PY
)
			passed=$((passed + p))
			failed=$((failed + f))
		else
			failed=$((failed + 1))
		fi
	fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
