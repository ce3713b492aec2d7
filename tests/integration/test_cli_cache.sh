#!/usr/bin/env bash
# test_cli_cache.sh - the cache commands of the `shoal` tool against a real
# daemon on a temporary socket: put --ttl/--evictable, ls with TTL and flags
# (text, JSON, --prefix), ttl/expire/persist, rm --prefix, the expired and
# evicted_names counters of stats --json, usage errors, and `shoal stop`
# (the daemon exits; a second stop finds no store).
#
# Usage: tests/integration/test_cli_cache.sh [path/to/shoal]. Every command
# and wait has a deadline. Prints one line per failed check and a summary
# "N passed, N failed"; exits 1 on any failure.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" cli-cache "${1:-}"
SOCK=$TMP/s.sock

# json PYTHON-EXPRESSION DESCRIPTION: evaluates it with d = the JSON output.
json() {
	if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert $1, d" "$TMP/out" 2>"$TMP/pyerr"; then ok; else
		fail "$2: $(tail -1 "$TMP/pyerr")"
	fi
}

# --- usage errors (no daemon needed) --------------------------------------
run -s "$SOCK" put x /dev/null --ttl 0
expect 2 "--ttl 0"
run -s "$SOCK" put x /dev/null --ttl soon
expect 2 "--ttl not a number"
run -s "$SOCK" put x /dev/null --ttl
expect 2 "--ttl without a value"
run -s "$SOCK" ls --evictable
expect 2 "--evictable is not an ls option"
run -s "$SOCK" expire x
expect 2 "expire without SECONDS"
run -s "$SOCK" stop
expect 1 "stop without a daemon"
grep -q "no store at $SOCK" "$TMP/err" && ok || fail "stop without a daemon: $(cat "$TMP/err")"

# --- with a daemon -----------------------------------------------------
start_daemon "$SOCK" -m 8M
export SHOAL_SOCKET=$SOCK

echo hello >"$TMP/small"
run put --ttl 60 --evictable ns:a "$TMP/small"
expect 0 "put --ttl --evictable"
run put ns:b "$TMP/small" --ttl=600
expect 0 "put --ttl=600"
run put other "$TMP/small"
expect 0 "put without options"

run ls
expect 0 "ls"
grep -E 'evict +[0-9a-f]{40}  ns:a$' "$TMP/out" >/dev/null && ok || fail "ls does not flag ns:a evictable: $(cat "$TMP/out")"
grep -E ' (5[0-9]|60)\.[0-9]{3}s ' "$TMP/out" >/dev/null && ok || fail "ls does not show ns:a's ttl: $(cat "$TMP/out")"
grep -E ' - +- +[0-9a-f]{40}  other$' "$TMP/out" >/dev/null && ok || fail "ls of a plain name: $(cat "$TMP/out")"
run ls --json
expect 0 "ls --json"
json 'sorted(n["name"] for n in d["names"]) == ["ns:a", "ns:b", "other"]' "ls --json names"
json '[n for n in d["names"] if n["name"] == "ns:a"][0]["evictable"] is True' "ls --json evictable"
json '50000 < [n for n in d["names"] if n["name"] == "ns:a"][0]["ttl_ms"] <= 60000' "ls --json ttl_ms"
json '[n for n in d["names"] if n["name"] == "other"][0]["ttl_ms"] is None' "ls --json no ttl"
run ls --prefix ns: --json
expect 0 "ls --prefix"
json 'sorted(n["name"] for n in d["names"]) == ["ns:a", "ns:b"] and "objects" not in d' "ls --prefix lists the namespace"

run ttl other
expect 0 "ttl"
[ "$(cat "$TMP/out")" = none ] && ok || fail "ttl of a plain name: $(cat "$TMP/out")"
run ttl ns:a
expect 0 "ttl of ns:a"
grep -qE '^(5[0-9]|60)\.[0-9]{3}$' "$TMP/out" && ok || fail "ttl of ns:a: $(cat "$TMP/out")"
run ttl nope
expect 1 "ttl of an unknown name"

# ns:b, given 1 s left, expires within it (deadline 15 s). Its TTL was
# long until now so that a slow machine cannot expire it during the listings.
run expire ns:b 1
expect 0 "expire ns:b 1"
gone=
for _ in $(seq 300); do
	if ! timeout 20 "$SHOAL" ttl ns:b >/dev/null 2>&1; then
		gone=1
		break
	fi
	sleep 0.05
done
[ -n "$gone" ] && ok || fail "ns:b did not expire"

run expire other 30
expect 0 "expire"
run ttl other
grep -qE '^(2[0-9]|30)\.[0-9]{3}$' "$TMP/out" && ok || fail "ttl after expire: $(cat "$TMP/out")"
run persist other
expect 0 "persist"
run ttl other
[ "$(cat "$TMP/out")" = none ] && ok || fail "ttl after persist: $(cat "$TMP/out")"
run expire nope 3
expect 1 "expire of an unknown name"
run expire other 0
expect 0 "expire 0"
run get other
expect 1 "get after expire 0"

for i in 1 2 3; do "$SHOAL" put "pre:$i" "$TMP/small"; done
run rm --prefix pre:
expect 0 "rm --prefix"
[ "$(cat "$TMP/out")" = 3 ] && ok || fail "rm --prefix count: $(cat "$TMP/out")"
run rm --prefix pre: x
expect 2 "rm with names and --prefix"
run rm
expect 2 "rm without names"

# Evictable names make room: 3 MiB puts into 8 MiB keep succeeding.
head -c 3000000 /dev/urandom >"$TMP/blob"
for i in 1 2 3 4 5; do
	run put --evictable "cache:$i" "$TMP/blob"
	expect 0 "evictable put $i"
done
run get cache:5 "$TMP/blob.out"
expect 0 "the newest evictable value is there"
cmp -s "$TMP/blob" "$TMP/blob.out" && ok || fail "evictable round trip"
run stats --json
expect 0 "stats --json"
json 'd["expired"] >= 2 and d["evicted_names"] >= 3' "stats counts expired and evicted names"

# --- stop ----------------------------------------------------------------
run stop --timeout 10
expect 0 "stop"
if kill -0 "$daemon" 2>/dev/null; then
	# It has exited (a zombie until we reap it) or is about to.
	wait "$daemon"
fi
status=$?
[ "$status" -eq 0 ] && ok || fail "the daemon exited with $status"
daemon=
[ -S "$SOCK" ] && fail "the socket is still there" || ok
run stop
expect 1 "a second stop"

finish "cli cache"
