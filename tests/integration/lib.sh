# lib.sh - what the shell tests share; each sources it first:
#
#   . "$(dirname "$0")/lib.sh" NAME [path/to/shoal]
#
# It sets SHOAL (the binary: the argument, else $SHOAL_BIN, else
# build/shoal; made absolute), TMP (a new directory /tmp/shoal-NAME.XXXXXX)
# and the counters, and at exit stops the daemon of start_daemon, every
# process in the array pids and runs cleanup_more if the test defines it,
# then removes TMP. Every wait here has a deadline.
set -uo pipefail

SHOAL=$(realpath "${2:-${SHOAL_BIN:-build/shoal}}")
TMP=$(mktemp -d "/tmp/shoal-$1.XXXXXX")
passed=0
failed=0
daemon=
pids=()

cleanup() {
	if [ -n "$daemon" ]; then
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	if declare -F cleanup_more >/dev/null; then cleanup_more; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); }
fail() {
	failed=$((failed + 1))
	echo "FAIL: $*"
}

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
	local d=$1
	shift
	if "$@" >/dev/null 2>&1; then ok; else fail "$d"; fi
}

# run ARGS...: shoal with a 20 s deadline; output in $TMP/out and
# $TMP/err, status in $rc.
run() {
	timeout 20 "$SHOAL" "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
}

# expect STATUS DESCRIPTION: checks the $rc of the last run.
expect() {
	if [ "$rc" -eq "$1" ]; then ok; else
		fail "$2: exit $rc, expected $1; stderr: $(head -3 "$TMP/err")"
	fi
}

# start_daemon SOCKET ARGS...: `shoal serve -s SOCKET ARGS` in the
# background (its pid in $daemon, its output in $TMP/serve.log); waits up
# to 10 s for the socket. Returns 1 (and counts a failure) if it never
# came.
start_daemon() {
	local sock=$1
	shift
	"$SHOAL" serve -s "$sock" "$@" >"$TMP/serve.log" 2>&1 &
	daemon=$!
	for _ in $(seq 200); do
		[ -S "$sock" ] && return 0
		sleep 0.05
	done
	fail "daemon did not start: $(cat "$TMP/serve.log")"
	return 1
}

# finish NAME: prints the summary line; the script's status is its own.
finish() {
	echo "$1: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
