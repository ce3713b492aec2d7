#!/usr/bin/env bash
# test_cli.sh - end-to-end tests of the `shoal` command line tool against a
# real daemon on a temporary socket: put/get round trips (file, pipe,
# redirected file, empty, binary), atomic replacement, ls/stats in both
# formats, rm, exit statuses and the one-line "no store" error.
#
# Usage: tests/integration/test_cli.sh [path/to/shoal]  (default: $SHOAL_BIN,
# else build/shoal). Every command runs under a deadline. Prints one line per
# failed check and a summary "N passed, N failed"; exits 1 on any failure.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" cli-test "${1:-}"
SOCK=$TMP/s.sock

expect_same() { # FILE1 FILE2 DESCRIPTION
	if cmp -s "$1" "$2"; then ok; else fail "$3: contents differ"; fi
}

# --- without a daemon ---------------------------------------------------
run -s "$TMP/none.sock" stats
expect 1 "stats without a daemon"
if [ "$(wc -l <"$TMP/err")" -eq 1 ] &&
	grep -q "no store at $TMP/none.sock" "$TMP/err"; then ok; else
	fail "no-daemon error is not one line naming the socket: $(cat "$TMP/err")"
fi
SHOAL_SOCKET=$TMP/none.sock run ls
expect 1 "ls honours \$SHOAL_SOCKET"
grep -q "$TMP/none.sock" "$TMP/err" && ok || fail "\$SHOAL_SOCKET not used"

run --version
expect 0 "--version"
grep -q '^shoal [0-9]' "$TMP/out" && ok || fail "--version output"
run --help
expect 0 "--help"
run
expect 2 "no command"
run frobnicate
expect 2 "unknown command"
run ls --bogus
expect 2 "unknown option"
run get
expect 2 "get without NAME"
run put a b c
expect 2 "put with too many operands"
run get -s "$SOCK" ""
expect 2 "empty name"

# --- with a daemon ------------------------------------------------------
start_daemon "$SOCK" -m 16M
export SHOAL_SOCKET=$SOCK

head -c 3000000 /dev/urandom >"$TMP/blob"
run put blob "$TMP/blob"
expect 0 "put from a file"
run get blob "$TMP/blob.out"
expect 0 "get to a file"
expect_same "$TMP/blob" "$TMP/blob.out" "file round trip"

cat "$TMP/blob" | timeout 20 "$SHOAL" put piped - 2>"$TMP/err"
rc=$?
expect 0 "put from a pipe"
timeout 20 "$SHOAL" get piped >"$TMP/piped.out" 2>"$TMP/err"
rc=$?
expect 0 "get to stdout"
expect_same "$TMP/blob" "$TMP/piped.out" "pipe round trip"

timeout 20 "$SHOAL" put redirected <"$TMP/blob" 2>"$TMP/err"
rc=$?
expect 0 "put from a redirected file"
run get redirected -
expect 0 "get -"
expect_same "$TMP/blob" "$TMP/out" "redirected round trip"

: >"$TMP/empty"
run put empty "$TMP/empty"
expect 0 "put an empty file"
run get empty "$TMP/empty.out"
expect 0 "get an empty object"
expect_same "$TMP/empty" "$TMP/empty.out" "empty round trip"

printf 'one' | "$SHOAL" put name-ü
printf 'two' | "$SHOAL" put name-ü
run get name-ü
expect 0 "get a replaced name"
[ "$(cat "$TMP/out")" = two ] && ok || fail "put did not replace the name"

echo keep >"$TMP/keep"
run get no-such-name "$TMP/keep"
expect 1 "get of an unknown name"
grep -q "no object named 'no-such-name'" "$TMP/err" && ok ||
	fail "unknown-name message: $(cat "$TMP/err")"
[ "$(cat "$TMP/keep")" = keep ] && ok || fail "failed get clobbered FILE"

run put toolarge "$TMP/blob" -s "$SOCK"
expect 0 "options after operands"
head -c 20000000 /dev/zero >"$TMP/huge"
run put huge "$TMP/huge"
expect 1 "put larger than the store"
grep -q "larger than the store" "$TMP/err" && ok || fail "too-big message: $(cat "$TMP/err")"

run put missing "$TMP/does-not-exist"
expect 1 "put of a missing file"

run stats
expect 0 "stats"
for key in capacity_bytes used_bytes objects names clients evictions \
	evicted_bytes; do
	grep -q "^$key " "$TMP/out" && ok || fail "stats lacks $key"
done
run stats --json
expect 0 "stats --json"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["capacity_bytes"]==16<<20 and d["names"]>=5' "$TMP/out"; then ok; else
	fail "stats --json: $(cat "$TMP/out")"
fi

run ls
expect 0 "ls"
grep -q 'blob$' "$TMP/out" && grep -q 'MiB' "$TMP/out" && ok || fail "ls output: $(cat "$TMP/out")"
run ls --json
expect 0 "ls --json"
if python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
names = {n["name"]: n for n in d["names"]}
assert names["blob"]["data_size"] == 3000000, names
assert "name-ü" in names
assert all(o["state"] == "sealed" for o in d["objects"])
' "$TMP/out"; then ok; else fail "ls --json: $(cat "$TMP/out")"; fi

run rm blob piped no-such-name
expect 1 "rm with an unknown name"
run get blob
expect 1 "get after rm"
run rm redirected empty name-ü toolarge
expect 0 "rm"
run stats --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["names"]==0 and d["objects"]==0, d' "$TMP/out" && ok ||
	fail "objects left after rm: $(cat "$TMP/out")"

# The daemon goes away: one clear line, status 1.
kill "$daemon"
wait "$daemon" 2>/dev/null
daemon=
run stats
expect 1 "stats after the daemon stopped"
grep -q "no store at" "$TMP/err" && ok || fail "message after stop: $(cat "$TMP/err")"

finish test_cli
