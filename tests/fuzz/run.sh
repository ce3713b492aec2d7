#!/usr/bin/env bash
# Runs each fuzz harness for a while: tests/fuzz/run.sh SECONDS BINARY...
# (what `make fuzz FUZZ_TIME=60` calls).
#
# Each harness build/fuzz/NAME works on a copy of tests/fuzz/corpus/NAME in
# build/fuzz/corpus/NAME, so the inputs it finds do not flood the repository;
# what it reports (crash-*, leak-*, timeout-*, oom-*) is written straight into
# tests/fuzz/corpus/NAME, where `make test` replays it from then on. Extra
# libFuzzer flags come from $FUZZ_ARGS. Exits non-zero if any harness failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=$1
shift
status=0
for bin in "$@"; do
	name=$(basename "$bin")
	seeds=tests/fuzz/corpus/$name
	work=build/fuzz/corpus/$name
	mkdir -p "$seeds" "$work"
	cp -n "$seeds"/* "$work"/ 2>/dev/null
	echo "== $name: $seconds s on $(ls "$work" | wc -l) inputs"
	# shellcheck disable=SC2086
	if ! "$bin" -max_total_time="$seconds" -timeout=10 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$seeds/" \
		${FUZZ_ARGS:-} "$work"; then
		echo "== $name FAILED: see $seeds/ for the input"
		status=1
	fi
done
exit $status
