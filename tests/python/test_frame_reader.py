"""A pandas frame read from the store is built straight from the stored
Arrow layout (python/shoal/_frame_reader.py): the same frame that
Table.to_pandas() would give, with the numeric columns of one dtype in one
block that views shared memory, the per-schema work remembered but nothing
that pins an object, and layout reading that trusts none of the bytes.
"""

import gc
import json
import random

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

import shoal  # noqa: E402
from conftest import in_arena, used_bytes, wait_until  # noqa: E402
from shoal import _frame_reader, _shoal  # noqa: E402

N = 20_000


def _mixed(n=N, seed=5):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "f0": rng.random(n),
            "f1": rng.random(n),
            "f2": rng.random(n),
            "i0": rng.integers(-(10**9), 10**9, n),
            "i32a": rng.integers(-100, 100, n).astype(np.int32),
            "i32b": rng.integers(-100, 100, n).astype(np.int32),
            "f32": rng.random(n).astype(np.float32),
            "u8": rng.integers(0, 200, n).astype(np.uint8),
            "nan": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
            "s": pd.array([f"k{i % 13}" for i in range(n)], dtype="str"),
            "f3": rng.random(n),  # float64 again, after other columns
            "t0": pd.date_range("2026-01-01", periods=n, freq="s"),
            "t1": pd.date_range("2025-06-01", periods=n, freq="min").as_unit("us"),
            "t2": pd.date_range("2024-03-01", periods=n, freq="h").as_unit("us"),
            "td": pd.to_timedelta(np.arange(n), unit="s"),
            "s2": pd.array([None if i % 9 == 0 else f"v{i}" for i in range(n)], dtype="str"),
        },
        index=pd.RangeIndex(10, 10 + 3 * n, 3, name="row"),
    )
    df.columns.name = "cols"
    df.attrs = {"source": "test", "nested": {"k": [1, 2]}}
    return df


def _interleaved(n=N):
    rng = np.random.default_rng(1)
    return pd.DataFrame({f"c{k}": rng.random(n) if k % 2 else np.arange(n) * k for k in range(7)})


def _general_path_frames(n=1000):
    """Frames with something the direct reader leaves to Table.to_pandas."""
    rng = np.random.default_rng(2)
    base = {"x": rng.random(n), "s": pd.array([f"a{i % 3}" for i in range(n)], dtype="str")}
    return {
        "bool": pd.DataFrame({**base, "b": rng.random(n) > 0.5}),
        "datetime_tz": pd.DataFrame({**base, "t": pd.date_range("2026-01-01", periods=n, freq="s", tz="UTC")}),
        "datetime_nat": pd.DataFrame({**base, "t": pd.to_datetime([None] + ["2026-01-01"] * (n - 1))}),
        "categorical": pd.DataFrame({**base, "c": pd.Categorical([f"c{i % 4}" for i in range(n)])}),
        "nullable_int": pd.DataFrame({**base, "i": pd.array([None if i % 5 else i for i in range(n)], dtype="Int64")}),
        "string_index": pd.DataFrame(base, index=[f"r{i}" for i in range(n)]),
        "multi_columns": pd.DataFrame(
            {("a", "x"): rng.random(n), ("a", "y"): rng.random(n), ("b", "x"): np.arange(n)}
        ),
        "object_strings": pd.DataFrame({**base, "o": pd.Series([f"o{i}" for i in range(n)], dtype=object)}),
        "int_labels": pd.DataFrame({0: rng.random(n), 1: rng.random(n), 2: np.arange(n)}),
        "empty": pd.DataFrame({"x": np.array([], dtype=np.float64), "s": pd.array([], dtype="str")}),
        "arrow_nulls": pd.DataFrame({**base, "n": pd.array([None] * n, dtype=pd.ArrowDtype(pa.null()))}),
        "arrow_nulls_empty": pd.DataFrame({"n": pd.array([], dtype=pd.ArrowDtype(pa.null()))}),
    }


def _same(got, want):
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs == want.attrs
    assert got.columns.name == want.columns.name
    assert type(got.index) is type(want.index) and got.index.equals(want.index)


@pytest.mark.parametrize("backend", [None, "pyarrow", "numpy_nullable"])
def test_same_frame_as_the_general_path(store, backend):
    frames = {"mixed": _mixed(), "interleaved": _interleaved(), **_general_path_frames()}
    for name, df in frames.items():
        store[name] = df
        got = store.get(name, dtype_backend=backend)
        general = store.get(name, dtype_backend=backend, copy=True)  # Table.to_pandas
        _same(got, general)
        if backend is None:
            _same(got, df)
        for cols in (["s", "f1"], ["f0"]) if name == "mixed" else ():
            _same(store.get(name, dtype_backend=backend, columns=cols),
                  store.get(name, dtype_backend=backend, columns=cols, copy=True))
    series = _mixed()["f1"]
    store["series"] = series
    pd.testing.assert_series_equal(store["series"], series)


def test_numeric_columns_of_one_dtype_are_one_shared_block(store):
    df = _mixed()
    store["m"] = df
    got = store["m"]
    # A 2D array of the three adjacent float64 columns, and one of the two
    # int32 ones, without a copy: pandas holds each as one block.
    for cols in (["f0", "f1", "f2"], ["i32a", "i32b"], ["t1", "t2"]):
        arr = got[cols].to_numpy()
        assert in_arena(store, arr.ctypes.data, arr.nbytes), cols
        np.testing.assert_array_equal(arr, df[cols].to_numpy())
    # Every numeric column is a view; NaN columns too.
    for col in df.columns:
        if df[col].dtype.kind in "fiumM":
            arr = got[col].to_numpy()
            assert in_arena(store, arr.ctypes.data, arr.nbytes), col
    # Writes still copy only the column written.
    got.loc[got.index[0], "f1"] = -1.0
    assert got["f1"].iloc[0] == -1.0 and store["m"]["f1"].iloc[0] == df["f1"].iloc[0]
    for col in ("f0", "f2"):
        arr = got[col].to_numpy()
        assert in_arena(store, arr.ctypes.data, arr.nbytes), col
    assert not in_arena(store, got["f1"].to_numpy().ctypes.data)
    got.loc[got.index[1], "t2"] = pd.Timestamp("2000-01-01")
    assert got["t2"].iloc[1] == pd.Timestamp("2000-01-01") and store["m"]["t2"].iloc[1] == df["t2"].iloc[1]
    arr = got["t1"].to_numpy()
    assert in_arena(store, arr.ctypes.data, arr.nbytes)


def test_refreshes_read_the_new_value_and_pin_nothing(store):
    gc.collect()
    wait_until(lambda: store.stats()["pending_deletes"] == 0, what="a quiet store")
    base = used_bytes(store)
    first = _mixed(seed=1)
    store["r"] = first
    _same(store["r"], first)
    for seed in range(2, 6):  # same schema, new values: the recipe is reused
        value = _mixed(seed=seed)
        store["r"] = value
        got = store["r"]
        _same(got, value)
        del got
    store["r"] = _mixed(n=N // 2)  # another length
    _same(store["r"], _mixed(n=N // 2))
    # Nothing the reader remembers keeps an old value's memory.
    del store["r"]
    gc.collect()
    wait_until(lambda: store.stats()["pending_deletes"] == 0, what="released frames")
    assert used_bytes(store) == base


def test_remembered_schemas_are_bounded(store):
    for k in range(80):
        store["b"] = pd.DataFrame({f"col{k}": np.arange(10.0)})
        assert store["b"][f"col{k}"].iloc[3] == 3.0
    assert len(_frame_reader._recipes) <= 64


def _stream(df):
    table = pa.Table.from_pandas(df)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def test_batch_layout_matches_pyarrow():
    data = _stream(_mixed(n=1000))
    rows, nodes, bufs = _shoal.batch_layout(data)
    batch = pa.ipc.open_stream(data).read_next_batch()
    assert rows == batch.num_rows == 1000
    base = pa.py_buffer(data)
    got = []
    for col in batch.columns:
        assert (nodes[0], nodes[1]) == (len(col), col.null_count)
        nodes = nodes[2:]
        for b in col.buffers():
            got.append(None if b is None or b.size == 0 else (b.address - base.address, b.size))
    assert len(got) == len(bufs) // 2
    for k, want in enumerate(got):
        if want is not None:
            assert (bufs[2 * k], bufs[2 * k + 1]) == want


def test_batch_layout_trusts_no_byte():
    data = _stream(_mixed(n=300))
    for bad in (b"", b"\xff" * 8, b"\xff\xff\xff\xff\x00\x00\x00\x00", bytes(64), b"\xff\xff\xff\xff\xff\xff\xff\x7f"):
        assert _shoal.batch_layout(bad) is None
    rng = random.Random(11)
    checked = 0

    def check(blob):
        out = _shoal.batch_layout(blob)
        if out is not None:
            rows, nodes, bufs = out
            assert rows >= 0 and all(x >= 0 for x in nodes)
            for k in range(0, len(bufs), 2):
                assert bufs[k] + bufs[k + 1] <= len(blob)

    for cut in range(0, len(data), 7):
        check(data[:cut])
    meta_end = 8 + int.from_bytes(data[4:8], "little")
    meta_end += 8 + int.from_bytes(data[meta_end + 4 : meta_end + 8], "little")
    for _ in range(3000):  # flips in the two messages' flatbuffers
        blob = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            blob[rng.randrange(meta_end)] = rng.randrange(256)
        check(bytes(blob))
        checked += 1
    assert checked == 3000
    assert _shoal.batch_layout(data) is not None


def test_damaged_objects_raise_or_decode_never_crash(store):
    """An object whose record batch message was damaged (by a writer's bug)
    gives an error or a frame, never a crash."""
    df = _mixed(n=500)
    store["good"] = df
    with store.get_buffer("good") as buf:
        data = bytes(memoryview(buf))
        meta = buf.metadata
    start = 8 + int.from_bytes(data[4:8], "little")
    end = start + 8 + int.from_bytes(data[start + 4 : start + 8], "little")
    rng = random.Random(5)
    for k in range(60):
        blob = bytearray(data)
        for _ in range(3):
            blob[rng.randrange(start, end)] = rng.randrange(256)
        oid = shoal.ObjectID.from_random()
        w = store.create(oid, len(blob), meta)
        w.write(0, bytes(blob))
        store.seal(oid)
        w.release()
        try:
            got = store.get(oid)
        except (pa.ArrowException, OSError, ValueError, KeyError, IndexError, TypeError):
            continue
        finally:
            store.delete([oid])
        assert isinstance(got, pd.DataFrame)
        del got
