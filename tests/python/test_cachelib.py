"""shoal.cachelib.ShoalCache: the cachelib API on shoal names.

cachelib's own backend mixins are run outside the repository (see
docs/python.md); these tests check what a user of the backend relies on:
values of every kind (a DataFrame zero-copy and read-only), cachelib's
timeout rules with real expiry, add/inc/dec atomic across processes,
clear() limited to the key prefix, evictable entries dropped when the
store is full while the application's names stay, and a swapped serializer.
"""

import multiprocessing as mp
import time

import numpy as np
import pandas as pd
import pytest
from cachelib.serializers import JSONSerializer

from conftest import in_arena, wait_until
from shoal.cachelib import ShoalCache

DEADLINE = 120


@pytest.fixture
def cache(store):
    c = ShoalCache(store.socket_path, start=False, key_prefix="t:")
    yield c
    c.store.close()


def test_values_round_trip(cache):
    values = {
        "int": 5,
        "bool": True,
        "false": False,
        "none-ish": [],
        "str": "text",
        "bytes": b"raw bytes",
        "dict": {"sauce": [], 256: "truffle"},
        "float": 1.5,
    }
    for k, v in values.items():
        assert cache.set(k, v)
    for k, v in values.items():
        got = cache.get(k)
        assert got == v and type(got) is type(v), k
    assert cache.get("missing") is None


def test_dataframe_is_zero_copy_and_read_only(cache):
    df = pd.DataFrame({"x": np.arange(100_000, dtype=np.int64), "y": 0.5})
    assert cache.set("frame", df)
    got = cache.get("frame")
    pd.testing.assert_frame_equal(got, df)
    col = got["x"].to_numpy()
    assert in_arena(cache.store, col.__array_interface__["data"][0], col.nbytes)
    with pytest.raises(ValueError):
        col[0] = 1


def test_entries_are_evictable_names_with_ttl(cache):
    cache.set("k", 1, timeout=100)
    name = "cache/t:k"
    assert cache.store.get(name) == 1
    assert 99 < cache.store.ttl(name) <= 100
    cache.set("forever", 1, timeout=0)
    assert cache.store.ttl("cache/t:forever") is None
    cache.set("default", 1)
    assert 299 < cache.store.ttl("cache/t:default") <= 300


def test_expiry(cache):
    cache.set("short", "v", timeout=1)
    cache.set("never", "v", timeout=0)
    assert cache.get("short") == "v"
    wait_until(lambda: not cache.has("short"), timeout=5, what="the entry to expire")
    assert cache.get("short") is None
    assert cache.get("never") == "v"


def test_negative_timeout_expires_at_once(cache):
    cache.set("k", "v")
    assert cache.set("k", "w", timeout=-1)
    assert cache.get("k") is None


def test_add_only_when_missing(cache):
    assert cache.add("k", 1)
    assert not cache.add("k", 2)
    assert cache.get("k") == 1


def test_delete_has_many(cache):
    assert cache.set_many({"a": 1, "b": 2, "c": 3}) == ["a", "b", "c"]
    assert cache.get_many("a", "b", "x") == [1, 2, None]
    assert cache.get_dict("a", "c") == {"a": 1, "c": 3}
    assert cache.has("a") and not cache.has("x")
    assert cache.delete("a") and not cache.delete("a")
    assert cache.delete_many("b", "x", "c") == ["b", "x", "c"]
    assert cache.get_many("b", "c") == [None, None]


def test_clear_keeps_other_prefixes_and_plain_names(cache, store):
    other = ShoalCache(store.socket_path, start=False, key_prefix="other:")
    store["app-frame"] = pd.DataFrame({"a": [1]})
    cache.set("k", 1)
    other.set("k", 2)
    assert cache.clear()
    assert cache.get("k") is None
    assert other.get("k") == 2
    assert "app-frame" in store
    other.store.close()


def test_inc_dec(cache):
    assert cache.inc("n") == 1
    assert cache.inc("n", 10) == 11
    assert cache.dec("n", 3) == 8
    assert cache.get("n") == 8
    assert cache.dec("fresh", 2) == -2
    cache.set("text", "abc")
    assert cache.inc("text") is None


def test_inc_keeps_timeout(cache):
    cache.set("n", 1, timeout=100)
    cache.inc("n")
    ttl = cache.store.ttl("cache/t:n")
    assert ttl is not None and 98 < ttl <= 100


def _incrementer(path, n):
    c = ShoalCache(path, start=False, key_prefix="t:")
    for _ in range(n):
        c.inc("counter")
    c.store.close()
    return n


def test_inc_is_atomic_across_processes(cache):
    with mp.get_context("spawn").Pool(4) as pool:
        res = pool.starmap_async(_incrementer, [(cache.store.socket_path, 200)] * 4)
        assert sum(res.get(DEADLINE)) == 800
    assert cache.get("counter") == 800


def test_serializer_swap(cache):
    cache.serializer = JSONSerializer()
    assert cache.set("k", {"a": [1, 2]})
    assert cache.get("k") == {"a": [1, 2]}
    # Stored as the serializer's bytes, not as a shoal value.
    assert cache.store.describe("cache/t:k")[0] == "bytes"
    assert cache.inc("n", 2) == 2 and cache.get("n") == 2


def test_full_store_evicts_entries_not_names(store):
    cache = ShoalCache(store.socket_path, start=False, key_prefix="big:")
    store["app-frame"] = np.arange(1 << 20)  # a plain name: never evicted
    chunk = np.ones(4 << 20)  # 32 MiB
    n = 3 * store.capacity // chunk.nbytes
    for i in range(n):
        assert cache.set(f"chunk-{i}", chunk), i
    assert store.stats()["evicted_names"] > 0
    assert cache.get(f"chunk-{n - 1}") is not None  # the newest entry stays
    assert cache.get("chunk-0") is None  # the coldest went
    assert np.array_equal(store["app-frame"], np.arange(1 << 20))
    cache.store.close()


def test_unevictable_cache_fails_set_when_full(store):
    cache = ShoalCache(store.socket_path, start=False, key_prefix="pinned:", evictable=False)
    chunk = np.ones(4 << 20)
    results = [cache.set(f"c{i}", chunk) for i in range(3 * store.capacity // chunk.nbytes)]
    assert results[0] is True and results[-1] is False
    assert cache.get("c0") is not None
    cache.clear()
    cache.store.close()


def test_callable_key(cache):
    assert cache.set(lambda: "spam", "sausages")
    assert cache.get(lambda: "spam") == "sausages"


def test_timeout_between_processes_is_the_daemons(cache):
    """An entry set by one cache expires for every other one too."""
    other = ShoalCache(cache.store.socket_path, start=False, key_prefix="t:")
    cache.set("shared", 1, timeout=1)
    assert other.get("shared") == 1
    t0 = time.monotonic()
    wait_until(lambda: other.get("shared") is None, timeout=5, what="expiry seen by another cache")
    assert time.monotonic() - t0 < 2.5
    other.store.close()
