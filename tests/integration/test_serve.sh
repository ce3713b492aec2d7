#!/usr/bin/env bash
# test_serve.sh - start-up and shutdown of `shoal serve`: the start line,
# sizes it refuses (larger than RAM, larger than a small tmpfs as in
# Docker's 64 MiB /dev/shm), bad options, socket path rules (too long,
# served by a live daemon, stale file replaced, mode 0600), and a clean
# SIGTERM/SIGINT exit that removes the socket. Every wait has a deadline.
#
# Usage: tests/integration/test_serve.sh [path/to/shoal]. Ends with
# "test_serve: N passed, N failed"; exits 1 on any failure.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" serve-test "${1:-}"
mnt=
cleanup_more() {
	if [ -n "$mnt" ]; then umount "$mnt" 2>/dev/null; fi
}

# Waits up to 10 s for a socket to accept (via `shoal stats`).
wait_up() {
	for _ in $(seq 1 500); do
		"$SHOAL" stats -s "$1" >/dev/null 2>&1 && return 0
		sleep 0.02
	done
	return 1
}

# Waits up to 10 s for a process to exit; sets $status.
wait_exit() {
	for _ in $(seq 1 500); do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			status=$?
			return 0
		fi
		sleep 0.02
	done
	status=255
	return 1
}

# --- a normal start and SIGTERM -----------------------------------------
S=$TMP/a.sock
"$SHOAL" serve -s "$S" -m 64M >"$TMP/a.out" 2>&1 &
pid=$!
pids+=("$pid")
check "daemon starts" wait_up "$S"
check "start line names capacity, socket and backing" \
	grep -q "serving 64 MiB (67108864 bytes) on $S, backed by memfd" "$TMP/a.out"
check "socket is mode 0600" test "$(stat -c %a "$S")" = 600
check "socket is a socket" test -S "$S"
# A second daemon on the same socket is refused.
timeout 10 "$SHOAL" serve -s "$S" -m 16M >"$TMP/b.out" 2>&1
check "second daemon on a live socket exits 1" test $? -eq 1
check "second daemon says why" grep -q "already serving $S" "$TMP/b.out"
check "first daemon still serves" "$SHOAL" stats -s "$S"
kill -TERM "$pid"
wait_exit "$pid"
check "SIGTERM exits 0" test "$status" -eq 0
check "SIGTERM removes the socket" test ! -e "$S"

# --- SIGINT, plain-bytes -m as Plasma took it ------------------------------
"$SHOAL" serve -s "$S" -m 15000000 >"$TMP/c.out" 2>&1 &
pid=$!
pids+=("$pid")
check "daemon with -m in bytes starts" wait_up "$S"
check "capacity in bytes, rounded to 64" grep -q "(15000000 bytes)" "$TMP/c.out"
kill -INT "$pid"
wait_exit "$pid"
check "SIGINT exits 0" test "$status" -eq 0
check "SIGINT removes the socket" test ! -e "$S"

# --- a stale socket file is replaced ------------------------------------
"$SHOAL" serve -s "$S" -m 16M >/dev/null 2>&1 &
pid=$!
check "daemon starts (for a stale socket)" wait_up "$S"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
check "a killed daemon leaves its socket" test -S "$S"
"$SHOAL" serve -s "$S" -m 16M >"$TMP/d.out" 2>&1 &
pid=$!
pids+=("$pid")
check "a new daemon replaces a stale socket" wait_up "$S"
kill -TERM "$pid"
wait_exit "$pid"

# --- refused sizes and options -----------------------------------------
timeout 10 "$SHOAL" serve -s "$TMP/e.sock" -m 100T >"$TMP/e.out" 2>&1
check "more than RAM exits 1" test $? -eq 1
check "more than RAM says why" grep -q "larger than this machine's memory" "$TMP/e.out"
check "a refused start leaves no socket" test ! -e "$TMP/e.sock"
timeout 10 "$SHOAL" serve -s "$TMP/e.sock" -m 12X >"$TMP/e.out" 2>&1
check "a bad size is a usage error (2)" test $? -eq 2
timeout 10 "$SHOAL" serve -s "$TMP/e.sock" --nonsense >"$TMP/e.out" 2>&1
check "an unknown option is a usage error (2)" test $? -eq 2
long=$TMP/$(printf 'x%.0s' $(seq 1 120)).sock
timeout 10 "$SHOAL" serve -s "$long" -m 16M >"$TMP/e.out" 2>&1
check "a too-long socket path exits 1" test $? -eq 1
check "a too-long socket path says so" grep -q "too long" "$TMP/e.out"
check "--help exits 0" "$SHOAL" serve --help
check "--version prints it" bash -c "'$SHOAL' serve --version | grep -q '^shoal '"

# --- a small tmpfs (Docker's 64 MiB /dev/shm) ----------------------------
mnt=$TMP/shm
mkdir -p "$mnt"
if mount -t tmpfs -o size=64m tmpfs "$mnt" 2>/dev/null; then
	timeout 10 "$SHOAL" serve -s "$TMP/f.sock" -m 1G -d "$mnt" >"$TMP/f.out" 2>&1
	check "-d on a 64 MiB tmpfs refuses 1 GiB" test $? -eq 1
	check "and says why (with the Docker hint)" grep -q "shm-size" "$TMP/f.out"
	"$SHOAL" serve -s "$TMP/f.sock" -m 32M -d "$mnt" >"$TMP/f.out" 2>&1 &
	pid=$!
	pids+=("$pid")
	check "-d on a tmpfs serves what fits" wait_up "$TMP/f.sock"
	check "the start line names the directory" grep -q "backed by file in $mnt" "$TMP/f.out"
	head -c 1000000 /dev/urandom >"$TMP/blob"
	check "put into a -d arena" "$SHOAL" put -s "$TMP/f.sock" blob "$TMP/blob"
	"$SHOAL" get -s "$TMP/f.sock" blob "$TMP/blob2"
	check "get from a -d arena" cmp -s "$TMP/blob" "$TMP/blob2"
	kill -TERM "$pid"
	wait_exit "$pid"
	check "-d daemon exits 0" test "$status" -eq 0
else
	echo "note: cannot mount a tmpfs here; -d checks skipped"
fi

finish test_serve
