"""shoal-tier against real Redis servers on loopback: names set on one host
become readable on the others (eagerly or on a miss), deletes and TTLs
propagate, concurrent writers converge, and faults (SIGKILL of Redis or of
a tier process, a SIGSTOP-ed Redis) lose nothing and block no local read.

Standalone Redis runs in `make test`. The same tests against a 3-master
cluster, and the 600 MB object, run with SHOAL_TIER_FULL=1 (`make
test-tier`).
"""

import os
import signal
import subprocess
import threading
import time

import pytest

import shoal
from conftest import BINARY, wait_until
from shoal._tier_client import running
from tier_support import (OPENSSL, TIER_ARGS, Host, RedisServers, SentinelSet, needs_redis, value,
                          wait_value)

FULL = os.environ.get("SHOAL_TIER_FULL") == "1"
MODES = ["standalone", "cluster"] if FULL else ["standalone"]

pytestmark = needs_redis


@pytest.fixture(scope="module", params=MODES)
def servers(request, tmp_path_factory):
    s = RedisServers(str(tmp_path_factory.mktemp("redis")), cluster=request.param == "cluster")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def hosts(servers, tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("hosts"))
    hs = [Host(tmp, n, servers).start() for n in ("a", "b", "c")]
    yield hs
    for h in hs:
        h.stop()


def _fail_msg(hosts):
    return "\n".join(f"--- {i}: {h.log()}" for i, h in enumerate(hosts))


def test_eager_set_reaches_every_host(hosts):
    a, b, c = hosts
    a.store["e/one"] = b"first"
    wait_value(b.store, "e/one", b"first")
    wait_value(c.store, "e/one", b"first")
    a.store["e/one"] = b"second"
    wait_value(b.store, "e/one", b"second")
    wait_value(c.store, "e/one", b"second")
    assert value(a.store, "e/one") == b"second"


def test_received_values_are_not_published_again(hosts, servers):
    a, b, c = hosts
    r = servers.client()
    wait_until(lambda: all(h.status().get("pending") == 0 for h in hosts), 10, what="quiet")
    time.sleep(0.3)  # a status file written before the last publish is replaced by now
    seq = int(r.get("shoal:seq") or 0)
    before = [h.status()["published"] for h in hosts]
    a.store["e/echo"] = b"once"
    wait_value(b.store, "e/echo", b"once")
    wait_value(c.store, "e/echo", b"once")
    time.sleep(0.5)  # time for an echo, if there were one
    assert int(r.get("shoal:seq")) == seq + 1  # one version handed out
    after = [h.status()["published"] for h in hosts]
    assert after == [before[0] + 1, before[1], before[2]]
    r.close()


def test_values_keep_their_type(hosts):
    np = pytest.importorskip("numpy")
    a, b, _ = hosts
    arr = np.arange(100_000, dtype=np.float64)
    a.store["e/arr"] = arr
    wait_until(lambda: value(b.store, "e/arr") is not None, 15, what="e/arr on b")
    np.testing.assert_array_equal(b.store["e/arr"], arr)
    a.store["e/dict"] = {"x": [1, 2, 3]}
    wait_until(lambda: value(b.store, "e/dict") is not None, 15, what="e/dict on b")
    assert b.store["e/dict"] == {"x": [1, 2, 3]}


def test_lazy_name_is_fetched_on_a_miss(hosts):
    a, b, _ = hosts
    a.store["lazy/x"] = b"L" * 1000
    wait_until(lambda: a.status().get("published", 0) > 0 and a.status().get("pending") == 0,
               10, what="a published")
    time.sleep(0.3)
    assert value(b.store, "lazy/x") is None  # not pulled eagerly
    assert bytes(b.store["lazy/x"]) == b"L" * 1000  # one tier lookup
    assert value(b.store, "lazy/x") == b"L" * 1000  # now local
    assert b.store.get("lazy/absent") is None
    with pytest.raises(KeyError):
        b.store["lazy/absent"]
    # A host that holds a lazy name keeps it current.
    a.store["lazy/x"] = b"newer"
    wait_value(b.store, "lazy/x", b"newer")


def test_large_value_in_chunks(hosts):
    a, b, _ = hosts
    data = os.urandom(1 << 20) * 40  # 40 MiB: five 8 MiB chunks
    a.store["e/big"] = data
    wait_until(lambda: value(b.store, "e/big") == data, 60, what="e/big on b")
    del a.store["e/big"]
    wait_value(b.store, "e/big", None)


def test_delete_propagates(hosts):
    a, b, c = hosts
    a.store["e/gone"] = b"x"
    wait_value(b.store, "e/gone", b"x")  # b deletes its own copy
    wait_value(c.store, "e/gone", b"x")
    del b.store["e/gone"]
    wait_value(a.store, "e/gone", None)
    wait_value(c.store, "e/gone", None)
    a.store["lazy/gone"] = b"y"
    wait_until(lambda: b.store.get("lazy/gone") is not None, 10, what="lazy/gone on b")
    del a.store["lazy/gone"]
    wait_value(b.store, "lazy/gone", None)
    assert b.store.get("lazy/gone") is None


def test_ttl_propagates(hosts):
    a, b, _ = hosts
    a.store.set("e/ttl", b"short-lived", ttl=2.0)
    wait_value(b.store, "e/ttl", b"short-lived")
    left = b.store.ttl("e/ttl")
    assert left is not None and 0 < left <= 2.0
    wait_value(b.store, "e/ttl", None, timeout=10)
    wait_value(a.store, "e/ttl", None, timeout=10)


def _ttl_near(store, name, want, slack=3.0):
    """Whether the local name's ttl is want seconds (None: no ttl), give or
    take slack; False if the name is absent."""
    try:
        left = store.ttl(name)
    except KeyError:
        return False
    if want is None:
        return left is None
    return left is not None and want - slack <= left <= want


def test_ttl_change_propagates(hosts):
    """expire and persist after the set (Python, and the CLI) reach every
    host; expire to 0 ends the name everywhere."""
    a, b, c = hosts
    a.store["e/ttlchg"] = b"kept for now"
    wait_value(b.store, "e/ttlchg", b"kept for now")
    wait_value(c.store, "e/ttlchg", b"kept for now")
    assert b.store.ttl("e/ttlchg") is None
    a.store.expire("e/ttlchg", 60)
    for h in (b, c):
        wait_until(lambda: _ttl_near(h.store, "e/ttlchg", 60), 15, what="ttl 60 on every host")
    b.store.persist("e/ttlchg")
    for h in (a, c):
        wait_until(lambda: _ttl_near(h.store, "e/ttlchg", None), 15, what="persist on every host")
    r = subprocess.run([BINARY, "-s", c.sock, "expire", "e/ttlchg", "30"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    for h in (a, b):
        wait_until(lambda: _ttl_near(h.store, "e/ttlchg", 30), 15, what="CLI expire on every host")
    # The value itself was never sent again, and every host still has it.
    assert [value(h.store, "e/ttlchg") for h in hosts] == [b"kept for now"] * 3
    a.store.expire("e/ttlchg", 0)
    wait_value(b.store, "e/ttlchg", None)
    wait_value(c.store, "e/ttlchg", None)
    assert b.store.get("e/ttlchg") is None  # not fetched back either


def test_ttl_change_of_a_replaced_value_is_dropped(hosts):
    """A TTL change made on a value that another host has since replaced
    does not apply to the newer value, on any host."""
    a, b, c = hosts
    a.store["e/ttlold"] = b"old"
    for h in (b, c):
        wait_value(h.store, "e/ttlold", b"old")
    a.tier.send_signal(signal.SIGSTOP)  # a's change waits until b's is in Redis
    try:
        a.store.expire("e/ttlold", 5)
        b.store["e/ttlold"] = b"new"
        wait_value(c.store, "e/ttlold", b"new")
    finally:
        a.tier.send_signal(signal.SIGCONT)
    wait_value(a.store, "e/ttlold", b"new")
    time.sleep(1.0)  # time for a wrong TTL to arrive, if it were sent
    for h in hosts:
        assert value(h.store, "e/ttlold") == b"new"
        assert h.store.ttl("e/ttlold") is None


def test_ttl_change_script_keeps_newer_changes(hosts, servers):
    """In Redis itself: a TTL change applies only to the value it was made
    on and only over older changes (the tier's order)."""
    from shoal.tier import _SET_TTL

    r = servers.client()
    try:
        script = r.register_script(_SET_TTL)
        key = b"shoal:{0000000000000000}:n:probe"
        r.hset(key, mapping={"v": 10, "cv": 9, "uid": "e:9", "del": 0, "nch": 0, "exp": 0})
        far = int(time.time() * 1000) + 60_000
        assert script(keys=[key], args=[11, "e:8", far, "p"]) == [0, 10]  # another value
        assert script(keys=[key], args=[8, "e:9", far, "p"]) == [0, 10]  # older than v
        assert r.pttl(key) == -1 and r.hget(key, "v") == b"10"
        assert script(keys=[key], args=[12, "e:9", far, "p"]) == [1, 10]
        assert r.hmget(key, ["v", "cv", "exp"]) == [b"12", b"9", str(far).encode()]
        assert 50_000 < r.pttl(key) <= 60_000
        assert script(keys=[key], args=[13, "e:9", 0, "p"]) == [1, 12]  # persist
        assert r.pttl(key) == -1
        r.hset(key, "del", 1)
        assert script(keys=[key], args=[14, "e:9", far, "p"]) == [0, 13]  # a tombstone
    finally:
        r.delete(b"shoal:{0000000000000000}:n:probe")
        r.close()


def test_ttl_change_during_an_outage_is_reconciled(hosts, servers):
    """A TTL change made while Redis is hung, or while the tier process is
    down, reaches the other hosts once it is back."""
    a, b, c = hosts
    a.store["e/ttlout"] = b"v"
    wait_value(b.store, "e/ttlout", b"v")
    servers.signal(signal.SIGSTOP)
    try:
        a.store.expire("e/ttlout", 60)
        time.sleep(1.0)
    finally:
        servers.signal(signal.SIGCONT)
    wait_until(lambda: _ttl_near(b.store, "e/ttlout", 60, slack=10), 30, what="ttl after Redis came back")
    # A tier saves what it synced a few times a second; one killed within
    # that window of its last change redoes that change (docs/tier.md).
    wait_until(lambda: a.status().get("pending") == 0, 10, what="a settled")
    time.sleep(0.5)
    a.stop_tier(signal.SIGKILL)
    a.store.persist("e/ttlout")
    a.start_tier()
    wait_until(lambda: _ttl_near(b.store, "e/ttlout", None), 30, what="persist after the tier restarted")
    wait_until(lambda: _ttl_near(c.store, "e/ttlout", None), 30, what="persist on c")


def test_evictable_flag_propagates(hosts):
    a, b, _ = hosts
    a.store.set("e/evictable", b"cache", evictable=True)
    a.store.set("e/plain", b"kept")
    wait_value(b.store, "e/evictable", b"cache")
    wait_value(b.store, "e/plain", b"kept")
    names = b.store.names()
    assert names["e/evictable"]["evictable"] is True
    assert names["e/plain"]["evictable"] is False
    assert names["e/plain"]["ttl"] is None


def test_eviction_is_not_a_delete(hosts):
    a, b, c = hosts
    a.store.set("e/evict-me", b"cached", evictable=True)
    wait_value(b.store, "e/evict-me", b"cached")
    wait_value(c.store, "e/evict-me", b"cached")
    b.store.evict(1 << 40)
    wait_value(b.store, "e/evict-me", None)
    time.sleep(0.5)
    assert value(a.store, "e/evict-me") == b"cached"
    assert value(c.store, "e/evict-me") == b"cached"
    assert bytes(b.store["e/evict-me"]) == b"cached"  # a miss fetches it again
    del c.store["e/evict-me"]  # an explicit delete of an evictable name propagates
    wait_value(a.store, "e/evict-me", None)
    wait_value(b.store, "e/evict-me", None)


def test_concurrent_writers_converge(hosts):
    a, b, c = hosts
    names = [f"e/conc{i}" for i in range(5)]

    def writer(h, tag):
        for n in range(30):
            for name in names:
                h.store[name] = f"{tag}{n}".encode()

    ts = [threading.Thread(target=writer, args=(h, t)) for h, t in ((a, "a"), (b, "b"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)

    def same():
        for name in names:
            va, vb, vc = (value(h.store, name) for h in hosts)
            if va is None or not (va == vb == vc):
                return False
        return True

    wait_until(same, 30, interval=0.1, what="every host agrees\n" + _fail_msg(hosts))
    for name in names:
        assert value(a.store, name) in (b"a29", b"b29")


def test_redis_sigstop_blocks_no_local_read(hosts, servers):
    a, b, _ = hosts
    a.store["e/stop"] = b"before"
    wait_value(b.store, "e/stop", b"before")
    servers.signal(signal.SIGSTOP)
    try:
        t = time.monotonic()
        for _ in range(200):
            assert bytes(b.store["e/stop"]) == b"before"
        hits = time.monotonic() - t
        b.store.set("local/only", b"v")  # local writes work
        t = time.monotonic()
        assert b.store.get("lazy/never-set", "absent") == "absent"
        miss = time.monotonic() - t
        a.store["e/stop"] = b"during"  # published once Redis is back
    finally:
        servers.signal(signal.SIGCONT)
    # Local hits never ask the tier; a miss costs at most the tier timeout.
    assert hits < 2.0, hits
    assert miss < b.store._tier_timeout + 1.0, miss
    wait_value(b.store, "e/stop", b"during", timeout=30)


def _traffic(host, names, stop, counter):
    n = 0
    while not stop.is_set() and n < 100000:
        for name in names:
            host.store[name] = f"{n}".encode()
        n += 1
        counter[0] = n
        time.sleep(0.005)


def _converged(hosts, names):
    def check():
        ref = [value(hosts[0].store, n) for n in names]
        return all(r is not None for r in ref) and all(
            [value(h.store, n) for n in names] == ref for h in hosts[1:]
        )

    return check


def test_redis_sigkill_loses_nothing(hosts, servers):
    a, b, c = hosts
    names = [f"e/kr{i}" for i in range(4)]
    lazy = "lazy/kr"
    a.store[lazy] = b"kept"
    wait_until(lambda: a.status().get("pending") == 0, 10, what="a published")
    stop, count = threading.Event(), [0]
    t = threading.Thread(target=_traffic, args=(a, names, stop, count))
    t.start()
    try:
        wait_until(lambda: count[0] > 20, 10, what="traffic")
        servers.kill_and_restart()
        wait_until(lambda: count[0] > 60, 20, what="traffic after the restart")
    finally:
        stop.set()
        t.join(30)
    wait_until(_converged(hosts, names), 40, interval=0.1, what="convergence\n" + _fail_msg(hosts))
    assert [value(a.store, n) for n in names] == [f"{count[0] - 1}".encode()] * 4
    # The lazy value was republished from the hosts' copies.
    assert value(a.store, lazy) == b"kept"
    wait_until(lambda: c.store.get(lazy) is not None, 20, what="lazy refilled")
    assert bytes(c.store[lazy]) == b"kept"


def _cli_stats(host):
    import json

    r = subprocess.run([BINARY, "-s", host.sock, "stats", "--json"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_tier_sigkill_and_restart_resyncs(hosts):
    a, b, c = hosts
    names = [f"e/kt{i}" for i in range(4)]
    stop, count = threading.Event(), [0]
    t = threading.Thread(target=_traffic, args=(a, names, stop, count))
    t.start()
    try:
        wait_until(lambda: count[0] > 20, 10, what="traffic")
        a.stop_tier(signal.SIGKILL)
        assert _cli_stats(a)["tier"] == {"running": False, "connected": False}
        # Meanwhile: local sets on a, a delete on a, a remote set for a.
        n = count[0]
        wait_until(lambda: count[0] > n + 20, 10, what="traffic without a tier")
    finally:
        stop.set()
        t.join(30)
    b.store["e/kt-remote"] = b"from b"
    a.store["e/kt-local"] = b"set while down"
    a.start_tier()
    wait_until(_converged(hosts, names), 30, interval=0.1, what="resync\n" + _fail_msg(hosts))
    wait_value(a.store, "e/kt-remote", b"from b")
    wait_value(c.store, "e/kt-local", b"set while down")


def test_stats_show_the_tier(hosts):
    a = hosts[0]
    a.store["e/stats"] = b"x"
    wait_until(lambda: a.status().get("published", 0) > 0, 10, what="a published")
    tier = _cli_stats(a)["tier"]
    assert tier["connected"] is True
    assert tier["published"] > 0 and tier["received"] >= 0
    for key in ("lag_ms", "errors"):
        assert key in tier


def test_connect_starts_one_tier(servers, tmp_path):
    """Four processes' worth of connect(tier=) at once: one daemon, one
    tier process; a miss on the new host then finds a name from another."""
    if servers.cluster:
        pytest.skip("auto-start is exercised with standalone Redis")
    sock = str(tmp_path / "auto.sock")
    errors = []

    def go():
        try:
            shoal.connect(sock, tier=servers.urls()[0], tier_args=TIER_ARGS, memory="64M").close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=go) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    daemons = subprocess.run(["pgrep", "-f", f"serve -s {sock}"], capture_output=True).stdout.split()
    tiers = subprocess.run(["pgrep", "-f", f"shoal.tier.*{sock}"], capture_output=True).stdout.split()
    try:
        assert not errors, errors
        assert len(daemons) == 1, daemons
        assert len(tiers) == 1, tiers
        assert running(sock)
        other = shoal.connect(str(tmp_path / "other.sock"), tier=servers.urls()[0],
                              tier_args=TIER_ARGS, memory="64M")
        other["lazy/auto"] = b"across"
        store = shoal.connect(sock, start=False)
        wait_until(lambda: store.get("lazy/auto") is not None, 15, what="lazy/auto")
        assert bytes(store["lazy/auto"]) == b"across"
        del other["lazy/auto"]
        # The delete reaches the host that fetched it before the processes
        # are stopped (a tier stopped with work pending leaves it undone).
        wait_value(store, "lazy/auto", None)
        store.close()
        other.close()
    finally:
        for p in daemons + tiers + subprocess.run(
            ["pgrep", "-f", f"{tmp_path}/other.sock"], capture_output=True
        ).stdout.split():
            try:
                os.kill(int(p), signal.SIGTERM)
            except ProcessLookupError:
                pass
    wait_until(lambda: not running(sock), 15, what="tier exited")


def test_acl_user_password_and_database(tmp_path):
    """A URL with an ACL user, a password and a database number."""
    servers = RedisServers(str(tmp_path), extra=(
        "--user", "default", "off",
        "--user", "app", "on", ">s3cret", "~*", "&*", "+@all",
    ), url_auth="app:s3cret@", db=3).start()
    hs = []
    try:
        hs = [Host(str(tmp_path), n, servers).start() for n in ("acl-a", "acl-b")]
        hs[0].store["e/acl"] = b"through ACLs"
        wait_value(hs[1].store, "e/acl", b"through ACLs")
        import redis

        r = redis.Redis(port=servers.ports[0], username="app", password="s3cret", db=3)
        assert r.exists("shoal:seq") and r.get("shoal:epoch")
        r.close()
        # A wrong password: said clearly in stats and the log (once, not at
        # every retry); the host works locally, and a miss answers at once.
        bad = Host(str(tmp_path), "acl-bad", servers,
                   redis_args=["--redis", f"redis://app:wrong@127.0.0.1:{servers.ports[0]}/3"])
        hs.append(bad)
        bad.start(wait=False)
        wait_until(lambda: "AuthenticationError" in bad.status().get("last_error", ""), 15,
                   what="the authentication error in stats\n" + bad.log())
        tier = _cli_stats(bad)["tier"]
        assert tier["running"] is True and tier["connected"] is False
        assert "invalid username-password pair" in tier["last_error"]
        bad.store["e/acl-local"] = b"local"
        assert value(bad.store, "e/acl-local") == b"local"
        t = time.monotonic()
        assert bad.store.get("lazy/acl-none") is None
        assert time.monotonic() - t < 1.0  # a disconnected tier answers at once
        time.sleep(1.0)  # ten more failed pings (--interval 0.1)
        assert bad.log().count("AuthenticationError") == 1, bad.log()
    finally:
        for h in hs:
            h.stop()
        servers.stop()


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed (tests/deps.sh installs it)")
def test_tls_rediss_url(tmp_path):
    """A TLS-only Redis with a throwaway CA: rediss:// URLs with the CA as
    redis-py takes it (?ssl_ca_certs=) carry eager and lazy values; without
    the CA the certificate is refused, and stats say so."""
    servers = RedisServers(str(tmp_path), tls=True).start()
    hs = []
    try:
        hs = [Host(str(tmp_path), n, servers).start() for n in ("tls-a", "tls-b")]
        a, b = hs
        a.store["e/tls"] = b"through TLS"
        wait_value(b.store, "e/tls", b"through TLS")
        a.store["lazy/tls"] = os.urandom(1 << 20) * 10  # chunks too (8 MiB each)
        wait_until(lambda: a.status().get("pending") == 0 and a.status().get("published", 0) >= 2,
                   15, what="a published")
        assert bytes(b.store["lazy/tls"]) == value(a.store, "lazy/tls")
        r = servers.client()
        assert r.exists("shoal:seq")
        r.close()
        port = servers.ports[0]
        no_ca = Host(str(tmp_path), "tls-no-ca", servers,
                     redis_args=["--redis", f"rediss://127.0.0.1:{port}/0"])
        hs.append(no_ca)
        no_ca.start(wait=False)
        wait_until(lambda: "certificate verify failed" in no_ca.status().get("last_error", ""), 15,
                   what="the certificate error in stats\n" + no_ca.log())
        assert _cli_stats(no_ca)["tier"]["connected"] is False
    finally:
        for h in hs:
            h.stop()
        servers.stop()


def test_sentinel_failover(tmp_path):
    """--sentinel: hosts find the master through a sentinel, and after the
    master dies and the sentinel promotes its replica, names flow again
    (the local stores work throughout)."""
    sen = SentinelSet(str(tmp_path)).start()
    hs = []
    try:
        hs = [Host(str(tmp_path), n, sen, redis_args=sen.tier_args()).start()
              for n in ("sen-a", "sen-b")]
        a, b = hs
        a.store["e/sen"] = b"before"
        wait_value(b.store, "e/sen", b"before")
        old = sen.master_port()
        sen.master.procs[0].kill()
        sen.master.procs[0].wait(5)
        a.store["e/sen-local"] = b"during"  # local work goes on
        assert value(a.store, "e/sen-local") == b"during"
        wait_until(lambda: sen.master_port() not in (None, old), 30, interval=0.2,
                   what="the sentinel promoted the replica")
        a.store["e/sen"] = b"after"
        wait_value(b.store, "e/sen", b"after", timeout=30)
        wait_value(b.store, "e/sen-local", b"during", timeout=30)
    finally:
        for h in hs:
            h.stop()
        sen.stop()


@pytest.mark.skipif(not FULL, reason="600 MB: make test-tier")
def test_600mb_object(servers, tmp_path):
    a = Host(str(tmp_path), "big-a", servers, memory="1G", eager=("big/*",),
             extra=("--chunk-size", "64M", "--grace", "1")).start()
    b = Host(str(tmp_path), "big-b", servers, memory="1G", eager=("big/*",),
             extra=("--chunk-size", "64M", "--grace", "1")).start()
    try:
        block = os.urandom(1 << 20)
        data = block * 600
        a.store["big/600"] = data
        wait_until(lambda: b.store.client.list_names() and value(b.store, "big/600") is not None,
                   120, interval=0.2, what="600 MB on b")
        assert value(b.store, "big/600") == data
        del data
        del a.store["big/600"]
        wait_value(b.store, "big/600", None, timeout=30)
    finally:
        a.stop()
        b.stop()


def test_zz_no_stray_keys(hosts, servers):
    """Runs last in the module: with every name deleted, Redis holds only
    the counter and the epoch once the grace period and tombstones end."""
    a = hosts[0]
    for h in hosts:
        for name in h.store.keys():
            try:
                del h.store[name]
            except KeyError:
                pass
    wait_until(lambda: all(not h.store.keys() for h in hosts), 15, what="names gone")
    want = [b"shoal:epoch", b"shoal:seq"]

    def stray():
        r = servers.client()
        out = [(k, r.pttl(k), r.hgetall(k) if b":n:" in k else None) for k in servers.keys()[:10]]
        r.close()
        return f"stray keys: {out}\n{_fail_msg(hosts)}"

    try:
        wait_until(lambda: servers.keys() == want, 45, interval=0.2, what="no stray keys")
    except AssertionError:
        raise AssertionError(stray()) from None
    assert a.status()["connected"]
