"""Zero-copy results pin their object: deleting or replacing the name does
not change what a reader sees, and the memory is freed once the reader's
last derived object dies."""

import gc
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import shoal
from conftest import in_arena, used_bytes, wait_until

N = 1 << 20  # 8 MiB of int64


def settle(store, what):
    """Waits until the daemon counts no pending deletes and returns the
    bytes in use (releases are asynchronous)."""
    gc.collect()
    wait_until(lambda: store.stats()["pending_deletes"] == 0, what=what)
    return used_bytes(store)


def test_delete_while_reading_numpy(store):
    base = settle(store, "start")
    store["arr"] = np.arange(N, dtype=np.int64)
    view = store["arr"]
    assert in_arena(store, view.ctypes.data, view.nbytes)
    del store["arr"]
    assert "arr" not in store
    # reuse the memory as hard as possible: it must not be the reader's
    store["other"] = np.full(N, -1, dtype=np.int64)
    assert store.stats()["pending_deletes"] == 1
    assert view[0] == 0 and view[-1] == N - 1 and int(view.sum()) == N * (N - 1) // 2
    del view
    del store["other"]
    assert settle(store, "memory freed after the reader dropped the array") == base


def test_replace_while_reading_pandas(store):
    base = settle(store, "start")
    df1 = pd.DataFrame({"a": np.arange(N // 8), "s": [str(i) for i in range(N // 8)]})
    store["df"] = df1
    reader = store["df"]
    col = reader["a"]  # a derived object alone keeps the pin too
    del reader
    gc.collect()
    for k in range(3):
        store["df"] = pd.DataFrame({"a": np.full(N // 8, k), "s": ["x"] * (N // 8)})
    assert col.iloc[12345] == 12345
    assert store["df"]["a"].iloc[0] == 2
    assert store.stats()["pending_deletes"] >= 1
    del col
    del store["df"]
    assert settle(store, "frames freed") == base


def test_arrow_table_and_buffer_pin(store):
    base = settle(store, "start")
    store["t"] = pa.table({"x": np.arange(N)})
    t = store["t"]
    chunk = t.column("x").chunks[0]
    del t
    del store["t"]
    gc.collect()
    assert store.stats()["pending_deletes"] == 1
    assert chunk[N - 1].as_py() == N - 1
    del chunk
    assert settle(store, "table freed") == base


def test_buffer_release_and_exports(store):
    store["b"] = b"x" * 1000
    buf = store["b"]
    mv = memoryview(buf)
    assert buf.exports == 1
    with pytest.raises(BufferError):
        buf.release()
    mv.release()
    buf.release()
    assert buf.released
    with pytest.raises(ValueError):
        memoryview(buf)
    buf.release()  # idempotent
    with store.get_buffer("b") as b2:
        assert b2 == b"x" * 1000
    assert b2.released


def test_read_only_results(store):
    store["ro"] = np.zeros(10)
    arr = store["ro"]
    with pytest.raises(ValueError):
        arr[0] = 1
    with pytest.raises(ValueError):
        arr.setflags(write=True)
    store["rob"] = b"abc"
    with pytest.raises(TypeError):
        memoryview(store["rob"])[0] = 1
    with pytest.raises(ValueError):
        np.frombuffer(store["rob"], dtype=np.uint8).setflags(write=True)
    with pytest.raises((TypeError, BufferError)):
        io.BytesIO(b"zz").readinto(store["rob"])  # asks for a writable buffer
    store["rodf"] = pd.DataFrame({"a": np.arange(5)})
    df = store["rodf"]
    with pytest.raises(ValueError):
        df["a"].to_numpy()[0] = 9
    df.loc[0, "a"] = 9  # pandas copies the column first (copy-on-write)
    assert df["a"].tolist() == [9, 1, 2, 3, 4]
    assert store["rodf"]["a"].tolist() == [0, 1, 2, 3, 4]


def test_copy_does_not_pin(store):
    base = settle(store, "start")
    store["c"] = np.arange(N, dtype=np.int64)
    private = store.get("c", copy=True)
    private[0] = 42
    del store["c"]
    assert settle(store, "copy holds no pin") == base
    assert private[0] == 42 and private[-1] == N - 1


def test_gc_frees_after_last_reader(store):
    base = settle(store, "start")
    store["g"] = np.arange(N, dtype=np.int64)
    readers = [store["g"] for _ in range(5)]
    more = [r[::2] for r in readers]
    del store["g"]
    del readers
    gc.collect()
    assert store.stats()["pending_deletes"] == 1
    del more
    assert settle(store, "freed after the last derived array") == base


def test_unnamed_objects_not_evicted_while_held(store):
    oid = store.put(np.arange(N, dtype=np.int64))
    held = store.get(oid)
    store.evict(1 << 40)
    assert store.contains(oid)
    del held
    gc.collect()
    wait_until(lambda: store.evict(1 << 40) > 0 or not store.contains(oid), what="evictable once released")
    assert not store.contains(oid)
