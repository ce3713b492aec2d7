"""Cache semantics of names from Python: Store.set with ttl / evictable /
expected_version, expire / ttl / persist, keys(prefix=...) and
delete_prefix, name metadata, the new counters and events, against a real
daemon. Every wait has a deadline."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest

import shoal
from conftest import BINARY, Daemon, wait_until

DAEMON_MEMORY = "16M"
WAIT = 5.0


def test_set_with_ttl_expires(store):
    v = store.set("t", b"abc", ttl=0.2)
    assert isinstance(v, int) and v > 0
    ttl = store.ttl("t")
    assert 0 < ttl <= 0.2
    assert store["t"] == b"abc"
    t0 = time.monotonic()
    wait_until(lambda: "t" not in store, timeout=WAIT, interval=0.005, what="expiry")
    assert time.monotonic() - t0 <= 0.2 + 0.5  # shared machine: a wide bound
    with pytest.raises(KeyError):
        store["t"]
    with pytest.raises(KeyError):
        store.ttl("t")
    assert store.stats()["expired"] >= 1


def test_ttl_none_and_persist_and_expire(store):
    store.set("p", b"x")
    assert store.ttl("p") is None
    store.expire("p", 30)
    assert 29 < store.ttl("p") <= 30
    store.persist("p")
    assert store.ttl("p") is None
    # Setting again replaces the ttl; a plain set clears it.
    store.set("p", b"y", ttl=10)
    assert store.ttl("p") > 9
    store["p"] = b"z"
    assert store.ttl("p") is None
    # Sub-millisecond ttls round up instead of meaning "never".
    store.set("q", b"q", ttl=0.0001)
    wait_until(lambda: "q" not in store, timeout=WAIT, what="a 0.1 ms ttl")
    # expire <= 0: gone now.
    store.expire("p", 0)
    assert "p" not in store
    for call in (lambda: store.expire("nope", 1), lambda: store.persist("nope"), lambda: store.ttl("nope")):
        with pytest.raises(KeyError):
            call()
    with pytest.raises(ValueError):
        store.set("bad", b"", ttl=0)
    with pytest.raises(ValueError):
        store.set("bad", b"", ttl=-1)
    with pytest.raises(ValueError):
        store.set("bad", b"", ttl=1e12)


def test_expected_version_with_ttl(store):
    v1 = store.set("cas", b"1", expected_version=0, ttl=60)
    with pytest.raises(shoal.VersionConflict):
        store.set("cas", b"2", expected_version=0)
    v2 = store.set("cas", b"2", expected_version=v1, evictable=True)
    assert v2 > v1
    assert store.name_info("cas")["evictable"] is True
    assert store.name_info("cas")["ttl"] is None
    # An expired name counts as absent: version 0 again.
    store.set("gone", b"1", ttl=0.05)
    wait_until(lambda: "gone" not in store, timeout=WAIT, what="expiry")
    store.set("gone", b"2", expected_version=0)


def test_name_metadata(store):
    store.set("m:a", b"12345", ttl=100, evictable=True)
    store.set("m:b", np.arange(10))
    names = store.names(prefix="m:")
    assert set(names) == {"m:a", "m:b"}
    assert names["m:a"]["evictable"] is True and 99 < names["m:a"]["ttl"] <= 100
    assert names["m:b"]["evictable"] is False and names["m:b"]["ttl"] is None
    assert names["m:a"]["data_size"] == 5
    info = store.name_info("m:a")
    assert info["version"] == names["m:a"]["version"] and info["id"] == names["m:a"]["id"]
    with pytest.raises(KeyError):
        store.name_info("m:zz")


def test_keys_prefix_and_delete_prefix(store):
    for i in range(500):
        store.set(f"ns1:{i}", i)
        store.set(f"ns2:{i}", i)
    store.set("ns10", 1)
    assert sorted(store.keys(prefix="ns1:")) == sorted(f"ns1:{i}" for i in range(500))
    assert len(store.keys(prefix="ns")) == 1001
    assert store.keys(prefix="zz") == []
    # A reader keeps its value while the namespace goes.
    arr = store.get("ns1:7")
    held = store.get_buffer("ns1:8")
    assert store.delete_prefix("ns1:") == 500
    assert store.keys(prefix="ns1:") == []
    assert "ns10" in store and "ns2:499" in store
    assert arr == 7 and bytes(held) == bytes(store.get_buffer("ns2:8"))
    held.release()
    assert store.delete_prefix("nothing") == 0
    assert store.delete_prefix("") == 501
    assert len(store) == 0
    with pytest.raises(TypeError):
        store.delete_prefix(b"ns")


def test_events_of_expiry_and_eviction(tmp_path):
    d = Daemon(tmp_path / "s.sock", "4M").start()
    try:
        store = d.connect()
        with store.subscribe() as sub:
            store.set("short", b"x", ttl=0.05)
            kinds = []
            deadline = time.monotonic() + WAIT
            while "name_expired" not in kinds:
                assert time.monotonic() < deadline
                ev = sub.next(timeout=WAIT)
                assert ev is not None
                kinds.append(ev.kind)
                if ev.kind == "name_expired":
                    assert ev.name == "short"
            # Evictable names make room for later puts.
            blob = np.ones(1 << 20, dtype=np.uint8)
            for i in range(8):
                store.set(f"e{i}", blob, evictable=True)
            evicted = []
            while True:
                ev = sub.next(timeout=0.5)
                if ev is None:
                    break
                if ev.kind == "name_evicted":
                    evicted.append(ev.name)
            assert evicted and evicted[0] == "e0"
            st = store.stats()
            assert st["evicted_names"] == len(evicted)
            assert "e7" in store
        store.close()
    finally:
        d.stop()


def test_evictable_never_evicts_plain(tmp_path):
    d = Daemon(tmp_path / "s.sock", "4M").start()
    try:
        store = d.connect()
        store.set("plain", np.ones(2 << 20, dtype=np.uint8))
        for i in range(6):
            store.set(f"c{i}", np.ones(1 << 20, dtype=np.uint8), evictable=True)
        assert "plain" in store and "c5" in store
        with pytest.raises(shoal.StoreFull):
            store.set("big", np.ones(3 << 20, dtype=np.uint8))
        assert "plain" in store
        store.close()
    finally:
        d.stop()


def test_daemon_pid(daemon, store):
    assert store.client.daemon_pid() == daemon.proc.pid


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, its parent has not reaped it) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_shoal_stop_stops_an_autostarted_daemon(tmp_path):
    path = str(tmp_path / "auto.sock")
    store = shoal.connect(path, memory="16M")  # starts a daemon in the background
    pid = store.client.daemon_pid()
    assert pid == store.client.arena["daemon_pid"]
    store["x"] = b"1"
    store.close()
    try:
        r = subprocess.run([BINARY, "stop", "-s", path, "--timeout", "20"], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        # stop returned only once the process had ended.
        assert not _alive(pid)
        assert not os.path.exists(path)
        r = subprocess.run([BINARY, "stop", "-s", path], capture_output=True, timeout=60)
        assert r.returncode == 1 and b"no store at" in r.stderr
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_replace_keeps_the_set_options(store):
    v = store.set("r", 1)
    v2 = store.replace("r", 2, v, ttl=30, evictable=True)
    info = store.name_info("r")
    assert info["version"] == v2 and info["evictable"] and 29 < info["ttl"] <= 30
    with pytest.raises(shoal.VersionConflict):
        store.replace("r", 3, v)


def test_keys_from_many_threads(store):
    import threading

    for i in range(700):  # several pages each
        store.set(f"th:a:{i}", i)
        store.set(f"th:b:{i}", i)
    errors, counts = [], []

    def lister(prefix):
        try:
            for _ in range(10):
                counts.append(len(store.keys(prefix=prefix)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=lister, args=(p,)) for p in ("th:a:", "th:b:", "th:")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert sorted(set(counts)) == [700, 1400]
    assert store.delete_prefix("th:") == 1400
