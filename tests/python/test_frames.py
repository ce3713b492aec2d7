"""Frames from multi-row-group Parquet are stored as one contiguous Arrow
batch, and a reader in another process gets its columns as views of shared
memory (checked against the process's own /proc/self/maps), with little
private memory of its own.

Covers pandas 3's default dtypes, dtype_backend="pyarrow", pyarrow Tables
and RecordBatches, and polars, each read from a Parquet file with many row
groups (so the input is chunked), plus the chunk shapes that take the slow
path (nulls, booleans, dictionaries, slices, empty frames).
"""

import json
import subprocess
import sys
import textwrap

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from conftest import in_arena  # noqa: E402

DAEMON_MEMORY = "512M"
ROWS = 400_000
ROW_GROUPS = 8


def _frame(n=ROWS, seed=7):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"f{i}": rng.random(n) for i in range(4)})
    df["i0"] = rng.integers(-1000, 1000, n)
    df["i1"] = rng.integers(0, 7, n).astype("int32")
    df["s_low"] = rng.choice(["alpha", "beta", "gamma"], n)
    df["s_high"] = pd.array([f"id-{k}" for k in rng.integers(0, n, n)], dtype="str")
    return df


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "f.parquet"
    pq.write_table(pa.Table.from_pandas(_frame()), path, row_group_size=ROWS // ROW_GROUPS)
    assert pq.ParquetFile(path).num_row_groups == ROW_GROUPS
    return str(path)


def _inputs(parquet):
    out = {
        "pandas": pd.read_parquet(parquet),
        "pandas_pyarrow": pd.read_parquet(parquet, dtype_backend="pyarrow"),
        "pyarrow": pq.read_table(parquet),
    }
    # The inputs really are chunked, as users' frames are.
    assert out["pyarrow"]["f0"].num_chunks == ROW_GROUPS
    assert out["pandas"]["s_low"].array._pa_array.num_chunks == ROW_GROUPS
    try:
        import polars as pl

        out["polars"] = pl.read_parquet(parquet)
    except ImportError:
        pass
    return out


# Runs in a fresh process: gets each name, reports for every column whether
# all its data lies in the shoal arena mapping (per /proc/self/maps), the
# number of chunks, and the growth of private (anonymous) memory after a
# full pass over the data.
READER = textwrap.dedent(
    r"""
    import json, sys
    import numpy as np, pandas as pd, pyarrow as pa
    import shoal

    def maps():
        out = []
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                out.append((lo, hi, parts[5] if len(parts) > 5 else ""))
        return out

    def arena_ranges():
        return [(lo, hi) for lo, hi, p in maps() if "shoal-arena" in p]

    def shared(addrs):
        ranges = arena_ranges()
        return all(any(lo <= a < hi for lo, hi in ranges) for a in addrs)

    def anon_kb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])

    def arrow_addrs(chunked):
        return [b.address for c in chunked.chunks for b in c.buffers() if b is not None and b.size]

    store = shoal.connect(sys.argv[1], start=False)
    result = {}
    for name in sys.argv[2:]:
        store.get(name, columns=["f0"])  # warm the import and conversion paths
        before = anon_kb()
        value = store[name]
        cols = {}
        total = 0.0
        if isinstance(value, pd.DataFrame):
            for c in value.columns:
                arr = value[c].array
                if hasattr(arr, "_pa_array"):
                    ch = arr._pa_array
                    cols[c] = [shared(arrow_addrs(ch)), ch.num_chunks]
                else:
                    np_arr = value[c].to_numpy()
                    cols[c] = [shared([np_arr.ctypes.data, np_arr.ctypes.data + np_arr.nbytes - 1]), 1]
                if value[c].dtype.kind in "fiu":
                    total += float(value[c].sum())
        elif isinstance(value, (pa.Table, pa.RecordBatch)):
            for c in value.column_names:
                ch = value[c]
                ch = ch if isinstance(ch, pa.ChunkedArray) else pa.chunked_array([ch])
                cols[c] = [shared(arrow_addrs(ch)), ch.num_chunks]
        else:  # polars
            for c in value.columns:
                s = value[c]
                if s.dtype.is_numeric():
                    a = s.to_numpy()
                    cols[c] = [shared([a.ctypes.data]), s.n_chunks()]
                    total += float(s.sum())
        result[name] = {"columns": cols, "anon_growth_kb": anon_kb() - before}
        del value
    print(json.dumps(result))
    """
)


def _read_elsewhere(store, names):
    out = subprocess.run(
        [sys.executable, "-c", READER, store.socket_path, *names],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _frame_bytes(value):
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(deep=False, index=False).sum())
    return value.nbytes if not hasattr(value, "estimated_size") else value.estimated_size()


def test_parquet_frames_are_views_in_another_process(store, parquet):
    inputs = _inputs(parquet)
    for name, value in inputs.items():
        store[name] = value
    seen = _read_elsewhere(store, list(inputs))
    for name, value in inputs.items():
        got = seen[name]
        assert got["columns"], name
        for col, (is_shared, chunks) in got["columns"].items():
            assert is_shared, f"{name}: column {col} is a private copy"
            assert chunks == 1, f"{name}: column {col} has {chunks} chunks"
        if name == "pandas":
            # Every column, strings included, is a view with pandas 3.
            assert set(got["columns"]) == set(value.columns)
        # A pass over the whole frame adds little private memory.
        frame_kb = _frame_bytes(value) / 1024
        assert got["anon_growth_kb"] < 0.10 * frame_kb, (name, got["anon_growth_kb"], frame_kb)


def test_parquet_frames_round_trip_exactly(store, parquet):
    for name, value in _inputs(parquet).items():
        store[name] = value
        back = store[name]
        if name.startswith("pandas"):
            pd.testing.assert_frame_equal(back, value)
        else:
            assert back.equals(value), name


def test_record_batches_and_one_batch_per_object(store, parquet):
    table = pq.read_table(parquet)
    batch = table.to_batches()[0]
    store["batch"] = batch
    got = store["batch"]
    assert isinstance(got, pa.RecordBatch) and got.equals(batch)
    store["table"] = table
    with store.get_buffer("table") as buf:
        reader = pa.ipc.open_stream(pa.py_buffer(buf))
        batches = list(reader)
        assert len(batches) == 1 and batches[0].num_rows == table.num_rows
        del reader, batches


def _chunked_table():
    """Chunks of every shape: nulls, booleans, dictionaries that differ per
    chunk, sliced chunks (non-zero offsets), empty chunks, binaries."""
    parts = []
    for k in range(4):
        n = 1000 + 37 * k
        rng = np.random.default_rng(k)
        t = pa.table(
            {
                "f": pa.array(rng.random(n)),
                "i_null": pa.array([None if j % 5 == 0 else j for j in range(n)], pa.int64()),
                "b": pa.array(rng.random(n) > 0.5),
                "s": pa.array([f"v{j % (k + 3)}" for j in range(n)]),
                "s_null": pa.array([None if j % 7 == 0 else "x" * (j % 4) for j in range(n)]),
                "bin": pa.array([bytes([j % 256]) * (j % 3) for j in range(n)], pa.binary()),
                "ls": pa.array([f"w{j}" for j in range(n)], pa.large_string()),
                "d": pa.array([f"cat{j % (k + 2)}" for j in range(n)]).dictionary_encode(),
                "ts": pa.array(np.arange(n).astype("datetime64[ms]")),
            }
        )
        parts.append(t.slice(k * 3, n - 7 * k))  # sliced: chunks start at offsets
        parts.append(t.slice(0, 0))  # an empty chunk
    return pa.concat_tables(parts)


def test_every_chunk_shape_round_trips(store):
    table = _chunked_table()
    assert table["s"].num_chunks > 1 and table["s"].chunks[0].offset == 0
    assert any(c.offset for c in table["f"].chunks)
    store["shapes"] = table
    got = store["shapes"]
    assert got.schema.equals(table.schema)
    for col in table.column_names:
        if col == "d":
            # Dictionaries are unified into one: the same values.
            assert got[col].to_pylist() == table[col].to_pylist()
        else:
            assert got[col].equals(table[col]), col
    for col in got.column_names:
        assert got[col].num_chunks == 1, col
    got.validate(full=True)
    buf = got["s"].chunks[0].buffers()[2]
    assert in_arena(store, buf.address, buf.size)


def test_chunks_are_written_once_in_place():
    """The places of the concatenated chunks are predicted before the IPC
    writer runs (so each byte is written once), and the prediction holds;
    a wrong prediction would be repaired (covered by the round trips)."""
    from shoal import _frames

    tables = [_chunked_table(), pa.concat_tables([pa.table({"s": ["a", "bb"], "f": [1.0, 2.0]})] * 3)]
    for table in tables:
        plan = _frames.plan(pa, table)
        out = bytearray(plan.size)
        plan.write(memoryview(out))
        got = pa.ipc.open_stream(pa.py_buffer(bytes(out))).read_all()
        assert got.num_rows == table.num_rows
        assert got["s"].to_pylist() == table["s"].to_pylist()
    assert plan.predicted is True
    # A table with a layout the prediction does not model (a list column)
    # is written by reading the places back afterwards.
    nested = pa.concat_tables([pa.table({"l": [[1], [2, 3]], "f": [1.0, 2.0]})] * 2)
    plan = _frames.plan(pa, nested)
    out = bytearray(plan.size)
    plan.write(memoryview(out))
    assert plan.predicted is False
    assert pa.ipc.open_stream(pa.py_buffer(bytes(out))).read_all().equals(nested.combine_chunks())


def test_empty_and_columnless_frames(store):
    empty = pa.table({"a": pa.array([], pa.int64()), "s": pa.array([], pa.string())})
    store["empty"] = empty
    assert store["empty"].equals(empty)
    index_only = pd.DataFrame(index=pd.RangeIndex(5))
    store["index_only"] = index_only
    pd.testing.assert_frame_equal(store["index_only"], index_only)
    chunked_empty = pa.concat_tables([empty, empty])
    store["chunked_empty"] = chunked_empty
    assert store["chunked_empty"].equals(chunked_empty)


def test_polars_from_parquet(store, parquet):
    pl = pytest.importorskip("polars")
    df = pl.read_parquet(parquet)
    store["pl"] = df
    got = store["pl"]
    assert got.equals(df)
    arr = got["f0"].to_numpy()
    assert in_arena(store, arr.ctypes.data, arr.nbytes)
    s = pl.Series("x", np.arange(10))
    store["pls"] = pl.concat([s, s], rechunk=False)
    assert store["pls"].equals(pl.concat([s, s]))


def test_nan_floats_stay_views_and_other_backends_see_missing(store):
    """NaN is stored in place under a validity bitmap: the default backend
    gets the NaN (a view), the Arrow and nullable ones missing values."""
    n = 10_000
    df = pd.DataFrame(
        {
            "nan64": np.where(np.arange(n) % 10 == 0, np.nan, 1.5),
            "nan32": np.where(np.arange(n) % 7 == 0, np.nan, 2.5).astype(np.float32),
            "infs": np.where(np.arange(n) % 2 == 0, np.inf, -np.inf),  # sums to NaN, holds none
            "clean": np.arange(n, dtype=np.float64),
        }
    )
    store["nan"] = df
    got = store["nan"]
    pd.testing.assert_frame_equal(got, df)
    for col in df.columns:
        arr = got[col].to_numpy()
        assert in_arena(store, arr.ctypes.data, arr.nbytes), col
    _, header = store.describe("nan")
    assert sorted(header["nan"]) == ["nan32", "nan64"]
    for backend in ("pyarrow", "numpy_nullable"):
        other = store.get("nan", dtype_backend=backend)
        for col in df.columns:
            assert other[col].isna().sum() == df[col].isna().sum(), (backend, col)
    arrow = store.get("nan", dtype_backend="pyarrow", columns=["nan64"])
    for b in arrow["nan64"].array._pa_array.chunks[0].buffers():
        assert in_arena(store, b.address, b.size)  # the bitmap is stored too
    s = df["nan32"]
    store["nan_series"] = s
    pd.testing.assert_series_equal(store["nan_series"], s)
