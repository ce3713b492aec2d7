"""The Store API: names as a mapping, objects by ID, errors, stats, CLI
interplay. One daemon for the module (conftest)."""

import json
import pickle
import subprocess
import sys
import threading
import time

import pytest

import shoal
from conftest import BINARY, wait_until


# ------------------------------------------------------------- ObjectID


def test_object_id_basics():
    raw = bytes(range(20))
    oid = shoal.ObjectID(raw)
    assert oid.binary() == raw
    assert bytes(oid) == raw
    assert oid.hex() == raw.hex()
    assert repr(oid) == f"ObjectID({raw.hex()})"
    assert oid == shoal.ObjectID(raw)
    assert oid != shoal.ObjectID(b"\0" * 20)
    assert len({oid, shoal.ObjectID(raw), shoal.ObjectID.from_random()}) == 2
    assert pickle.loads(pickle.dumps(oid)) == oid
    assert shoal.ObjectID.from_random() != shoal.ObjectID.from_random()
    with pytest.raises(ValueError):
        shoal.ObjectID(b"short")
    with pytest.raises(ValueError):
        shoal.ObjectID("a" * 20)  # as Plasma's ObjectID("hello")
    assert (oid == raw) is False


def test_error_hierarchy():
    for cls in (
        shoal.StoreFull,
        shoal.ObjectExists,
        shoal.ObjectNotFound,
        shoal.StoreUnavailable,
        shoal.Timeout,
        shoal.VersionConflict,
        shoal.TooBig,
        shoal.InvalidArgument,
    ):
        assert issubclass(cls, shoal.Error)
    assert issubclass(shoal.ObjectNotFound, KeyError)
    assert issubclass(shoal.StoreUnavailable, ConnectionError)
    assert issubclass(shoal.StoreUnavailable, OSError)
    assert issubclass(shoal.Timeout, TimeoutError)


def test_import_without_optional_dependencies_runs(daemon):
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('numpy', 'pandas', 'pyarrow', 'polars'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import shoal, shoal.plasma\n"
        "s = shoal.connect(sys.argv[1], start=False)\n"
        "s['nodeps'] = b'abc'; assert s['nodeps'] == b'abc'\n"
        "s['nodeps2'] = {'a': [1, 2]}; assert s['nodeps2'] == {'a': [1, 2]}\n"
        "assert shoal.plasma.PlasmaBuffer is shoal.Buffer\n"
        "del s['nodeps'], s['nodeps2']\n"
        "assert not any(m in sys.modules for m in ('numpy', 'pandas', 'pyarrow', 'polars'))\n"
        "print('ok')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, daemon.path], capture_output=True, timeout=60
    )
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.strip() == b"ok"


# ---------------------------------------------------------------- connect


def test_connect_without_daemon_start_false(tmp_path):
    path = str(tmp_path / "nobody.sock")
    with pytest.raises(shoal.StoreUnavailable) as e:
        shoal.connect(path, start=False)
    assert path in str(e.value)
    assert "shoal serve" in str(e.value)
    assert isinstance(e.value, OSError)


def test_connect_reports_missing_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOAL_BIN", str(tmp_path / "no-such-shoal"))
    with pytest.raises(shoal.StoreUnavailable) as e:
        shoal.connect(str(tmp_path / "s.sock"), timeout=5)
    assert "no-such-shoal" in str(e.value)


def test_socket_env(daemon, monkeypatch):
    monkeypatch.setenv("SHOAL_SOCKET", daemon.path)
    assert shoal.default_socket() == daemon.path
    s = shoal.connect(start=False)
    assert s.socket_path == daemon.path
    s.close()


def test_closed_store_raises(daemon):
    s = daemon.connect()
    s.close()
    with pytest.raises(shoal.StoreUnavailable):
        s.stats()


# ----------------------------------------------------------------- names


def test_mapping_api(store):
    assert len(store) == 0
    store["a"] = b"one"
    store["b"] = b"two"
    assert store["a"] == b"one"
    assert "a" in store and "zz" not in store
    assert len(store) == 2
    assert sorted(store) == ["a", "b"]
    assert sorted(store.keys()) == ["a", "b"]
    assert store.get("zz") is None
    assert store.get("zz", 42) == 42
    with pytest.raises(KeyError):
        store["zz"]
    with pytest.raises(KeyError):
        del store["zz"]
    store["a"] = b"uno"
    assert store["a"] == b"uno"
    del store["a"]
    assert "a" not in store
    assert store.names()["b"]["data_size"] == 3
    with pytest.raises(TypeError):
        store[3] = b"x"


def test_names_unicode_and_limits(store):
    store["größe/ключ/🐟"] = b"x"
    assert store["größe/ключ/🐟"] == b"x"
    with pytest.raises(shoal.InvalidArgument):
        store[""] = b"x"
    with pytest.raises(shoal.TooBig):
        store["n" * 1025] = b"x"
    store["n" * 1024] = b"x"


def test_versions_and_compare_and_set(store):
    v1 = store.set("cas", b"1")
    assert store.version("cas") == v1
    v2 = store.replace("cas", b"2", expected_version=v1)
    assert v2 > v1
    with pytest.raises(shoal.VersionConflict):
        store.replace("cas", b"3", expected_version=v1)
    assert store["cas"] == b"2"
    with pytest.raises(shoal.VersionConflict):
        store.replace("cas", b"x", expected_version=0)  # must not exist
    store.replace("fresh", b"new", expected_version=0)
    assert store["fresh"] == b"new"
    value, version = store.get_with_version("cas")
    assert value == b"2" and version == v2


def test_failed_compare_and_set_leaves_nothing_behind(store, daemon):
    v = store.set("cas2", b"a" * 1000)
    before = store.stats()
    with pytest.raises(shoal.VersionConflict):
        store.replace("cas2", b"b" * 100000, expected_version=v + 12345)
    wait_until(lambda: store.stats()["objects"] == before["objects"], what="failed CAS object gone")


def test_concurrent_compare_and_set_counter(daemon):
    """Writers in several threads increment a counter with CAS; no update
    is lost."""
    s0 = daemon.connect()
    s0.set("counter", pickle.dumps(0))
    n_threads, per = 4, 25

    def work():
        s = daemon.connect()
        for _ in range(per):
            while True:
                raw, v = s.get_with_version("counter")
                n = pickle.loads(bytes(raw))
                del raw
                try:
                    s.replace("counter", pickle.dumps(n + 1), expected_version=v)
                    break
                except shoal.VersionConflict:
                    continue
        s.close()

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert pickle.loads(bytes(s0["counter"])) == n_threads * per
    del s0["counter"]
    s0.close()


def test_wait_for(store, daemon):
    def later():
        time.sleep(0.2)
        s = daemon.connect()
        s["late"] = b"here"
        s.close()

    t = threading.Thread(target=later)
    t.start()
    t0 = time.monotonic()
    assert store.wait_for("late", timeout=10) == b"here"
    assert time.monotonic() - t0 >= 0.15
    t.join(30)
    assert not t.is_alive()
    t0 = time.monotonic()
    with pytest.raises(shoal.Timeout):
        store.wait_for("never", timeout=0.3)
    assert 0.25 <= time.monotonic() - t0 < 5
    assert store.get("never", "dflt", timeout=0.1) == "dflt"


# --------------------------------------------------------------- objects


def test_objects_by_id(store):
    oid = store.put(b"payload")
    assert isinstance(oid, shoal.ObjectID)
    assert store.get(oid) == b"payload"
    assert store[oid] == b"payload"
    assert store.contains(oid) and oid in store
    info = store.list()[oid]
    assert info["state"] == "sealed" and info["data_size"] == 7 and info["names"] == 0
    missing = shoal.ObjectID.from_random()
    assert store.get(missing) is None
    assert store.get(missing, "d") == "d"
    with pytest.raises(KeyError):
        store[missing]
    assert store.get([oid, missing]) == [b"payload", None]
    store.delete(oid)
    assert not store.contains(oid)
    store.delete([missing])  # missing IDs are ignored


def test_put_with_given_id_exists(store):
    oid = shoal.ObjectID.from_random()
    store.put(b"x", id=oid)
    with pytest.raises(shoal.ObjectExists):
        store.put(b"y", id=oid)
    store.delete(oid)


def test_get_mixed_list(store):
    store["m1"] = b"1"
    oid = store.put(b"2")
    assert store.get(["m1", oid, "nope"], default=0) == [b"1", b"2", 0]


def test_get_waits_for_seal(store, daemon):
    oid = shoal.ObjectID.from_random()

    def writer():
        s = daemon.connect()
        buf = s.create(oid, 4)
        time.sleep(0.2)
        buf.write(0, b"late")
        s.seal(oid)
        buf.release()
        time.sleep(0.5)
        s.close()

    t = threading.Thread(target=writer)
    t.start()
    assert store.get(oid, timeout=10) == b"late"
    t.join(30)
    assert not t.is_alive()


def test_create_seal_abort(store):
    oid = shoal.ObjectID.from_random()
    buf = store.create(oid, 5, b"meta")
    assert not buf.readonly
    memoryview(buf)[:] = b"hello"
    assert store.get(oid) is None  # not sealed yet
    store.seal(oid)
    assert buf.readonly  # new exports are read-only
    del buf
    got = store.get_buffer(oid)
    assert got == b"hello" and got.metadata == b"meta"
    got.release()

    oid2 = shoal.ObjectID.from_random()
    b2 = store.create(oid2, 10)
    store.abort(oid2)
    assert b2.released
    with pytest.raises(ValueError):
        memoryview(b2)
    assert not store.contains(oid2)


def test_seal_after_buffer_dropped(store):
    """The writable buffer may die before seal (Plasma allowed it)."""
    oid = shoal.ObjectID.from_random()
    buf = store.create(oid, 3)
    buf.write(0, b"abc")
    del buf
    store.seal(oid)
    assert store.get(oid) == b"abc"
    # the creator's hold was dropped: the object is evictable
    store.delete(oid)
    wait_until(lambda: not store.contains(oid))


def test_seal_with_name(store):
    oid = shoal.ObjectID.from_random()
    buf = store.create(oid, 2)
    buf.write(0, b"ok")
    version = store.seal(oid, "sealed-name")
    assert version > 0
    buf.release()
    assert store["sealed-name"] == b"ok"


def test_stats_keys_match_cli(store, daemon):
    r = daemon.cli("stats", "--json")
    assert r.returncode == 0, r.stderr
    cli_keys = set(json.loads(r.stdout))
    keys = set(store.stats())
    assert keys == {
        "capacity_bytes",
        "used_bytes",
        "objects",
        "sealed_objects",
        "pending_deletes",
        "names",
        "clients",
        "evictions",
        "evicted_bytes",
        "creates",
        "gets",
        "backed_bytes",
        "largest_free",
        "uptime_ms",
        "expired",
        "evicted_names",
        "requests",
    }
    assert keys <= cli_keys
    assert store.capacity == store.stats()["capacity_bytes"] == 256 << 20


def test_cli_interplay(store, daemon):
    r = daemon.cli("put", "from-cli", "-", input=b"cli bytes")
    assert r.returncode == 0, r.stderr
    assert store["from-cli"] == b"cli bytes"
    store["from-py"] = b"py bytes"
    r = daemon.cli("get", "from-py", "-")
    assert r.returncode == 0 and r.stdout == b"py bytes"


def test_evict(store):
    ids = [store.put(b"x" * 100000) for _ in range(5)]
    named = store.set("keep", b"y" * 100000)
    freed = store.evict(1)
    assert freed >= 100000
    freed = store.evict(1 << 40)
    assert store.get(ids) == [None] * 5  # unnamed, unheld: evicted
    assert store["keep"] == b"y" * 100000  # named: never evicted
    assert named > 0


def test_store_full_evicts_nothing(store):
    cap = store.capacity
    store["big1"] = b"\1" * (cap // 2)
    victim = store.put(b"v" * (cap // 8))
    with pytest.raises(shoal.StoreFull):
        store["big2"] = b"\2" * (cap // 2 + cap // 4)
    assert store.contains(victim)  # nothing was evicted
    with pytest.raises((shoal.StoreFull, shoal.TooBig)):
        store.put(b"\3" * (cap + 64))
    # fits after evicting the unnamed object
    store["big2"] = b"\2" * (cap // 2 - 4096)
    assert not store.contains(victim)


def test_put_waits_for_space_with_timeout(store, daemon):
    cap = store.capacity
    store["hog"] = b"\1" * (cap - (cap // 8))

    def free_later():
        time.sleep(0.3)
        s = daemon.connect()
        del s["hog"]
        s.close()

    t = threading.Thread(target=free_later)
    t.start()
    t0 = time.monotonic()
    store.set("waiter", bytes(cap // 2), timeout=10)
    assert time.monotonic() - t0 >= 0.2
    t.join(30)
    assert not t.is_alive()
    assert len(store["waiter"]) == cap // 2
