"""Large puts on fresh memory: the object's bytes are copied in while its
pages are reserved (Client.create's segments, shoal_create_from), by
several threads (SHOAL_POPULATE_THREADS). What a user checks: every value
comes back exactly, the columns are still views of shared memory, and a
store without room says so cleanly."""

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

import shoal  # noqa: E402
from conftest import Daemon, in_arena  # noqa: E402
from shoal import _frames  # noqa: E402

ROWS = 600_000


def _chunked_frame(seed=3):
    """~42 MB: float, int and string columns in 6 chunks each (as read from
    a Parquet file with 6 row groups), one float column with nulls (NaN in
    pandas)."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(6):
        n = ROWS // 6
        parts.append(
            pa.table(
                {
                    "f0": rng.standard_normal(n),
                    "f1": rng.standard_normal(n),
                    "i0": rng.integers(-(10**12), 10**12, n),
                    "i32": rng.integers(-(10**6), 10**6, n).astype(np.int32),
                    "nulls": pa.array(rng.random(n), mask=rng.random(n) < 0.1),
                    "s": pa.array([f"row-{k}-{i}-{'x' * (i % 13)}" for i in range(n)], pa.large_string()),
                    "s32": pa.array([f"v{i % 977}" for i in range(n)], pa.string()),
                }
            )
        )
    return pa.concat_tables(parts)


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A store on a new daemon (fresh memory), its puts' memory reserved by
    four threads."""
    monkeypatch.setenv("SHOAL_POPULATE_THREADS", "4")
    d = Daemon(tmp_path / "s.sock", "256M").start()
    s = d.connect()
    yield s
    s.close()
    d.stop()


def test_large_frame_on_fresh_memory(fresh):
    table = _chunked_frame()
    assert table.nbytes > 36 << 20 and table["s"].num_chunks == 6
    plan = _frames.plan(pa, table)
    segments = plan.segments()
    # Every column is copied in by the create, in address order.
    assert segments and [s[0] for s in segments] == sorted(s[0] for s in segments)
    fresh["t"] = table
    df = table.to_pandas()
    fresh["df"] = df
    for s in (fresh, shoal.connect(fresh.socket_path, start=False)):
        got = s["t"]
        assert got.equals(table.combine_chunks())
        for name in ("f0", "i0", "s"):
            buf = got[name].chunks[0].buffers()[-1]
            assert in_arena(s, buf.address, buf.size), name
        back = s["df"]
        pd.testing.assert_frame_equal(back, df)
        values = back["f0"].to_numpy()
        assert in_arena(s, values.ctypes.data, values.nbytes)
        del got, back, values


def test_large_array_on_fresh_memory(fresh):
    arr = np.arange(6 << 20, dtype=np.int64) * 7 - 3  # 48 MiB
    fresh["a"] = arr
    got = fresh["a"]
    assert np.array_equal(got, arr)
    assert in_arena(fresh, got.ctypes.data, got.nbytes)


def test_large_put_that_does_not_fit(fresh):
    table = _chunked_frame()
    fresh["t"] = table
    used = fresh.stats()["used_bytes"]
    # The store holds 256 MB: a seventh copy does not fit; nothing changes.
    with pytest.raises(shoal.StoreFull):
        for i in range(10):
            fresh[f"t{i}"] = table
    assert fresh["t"].equals(table.combine_chunks())
    assert fresh.stats()["used_bytes"] >= used


def test_chunked_string_view_columns_on_fresh_memory(fresh):
    # polars hands over string_view columns, one chunk per row group; a
    # long value (over 12 bytes) names its chunk's data buffer by index,
    # which must be rebased when the chunks become one column.
    rng = np.random.default_rng(5)
    n = ROWS // 6
    parts = [
        pa.table(
            {
                "f": rng.standard_normal(n),
                "sv": pa.array([f"k{k}-{i}-{'y' * (i % 17)}" for i in range(n)], pa.string_view()),
                "short": pa.array([f"s{i % 97}" for i in range(n)], pa.string_view()),
            }
        )
        for k in range(6)
    ]
    table = pa.concat_tables(parts)
    assert table["sv"].num_chunks == 6
    assert all(len(c.buffers()) > 2 for c in table["sv"].chunks)  # long values
    plan = _frames.plan(pa, table)
    segments = plan.segments()
    assert segments and [s[0] for s in segments] == sorted(s[0] for s in segments)
    fresh["t"] = table
    for s in (fresh, shoal.connect(fresh.socket_path, start=False)):
        got = s["t"]
        assert got.column_names == table.column_names
        assert got.schema.field("sv").type == pa.string_view()
        assert got["sv"].to_pylist() == table["sv"].to_pylist()
        assert got["short"].to_pylist() == table["short"].to_pylist()
        assert got["f"].to_pylist() == table["f"].to_pylist()
        for name in ("f", "sv", "short"):
            for buf in got[name].chunks[0].buffers()[1:]:
                if buf.size:  # an empty buffer has no bytes to share
                    assert in_arena(s, buf.address, buf.size), name
        del got


@pytest.mark.parametrize("threads", ["1", "2"])
def test_pandas_frame_written_through_the_file_is_bit_exact(tmp_path, monkeypatch, threads):
    # A fresh large put is written with pwrite by the calling thread (all
    # of it with one thread; the front of it beside a populating helper
    # with two): a frame from a multi-row-group Parquet file, with NaN
    # (one with a payload of its own) in float64 and float32 columns, comes
    # back with the very same bits, and its strings and ints exactly.
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setenv("SHOAL_POPULATE_THREADS", threads)
    rng = np.random.default_rng(11)
    n = 1_000_000
    f64 = rng.standard_normal(n)
    f64[rng.random(n) < 0.05] = np.nan
    f64[7] = np.array([0x7FF8_0000_DEAD_BEEF], dtype=np.int64).view(np.float64)[0]
    f32 = rng.standard_normal(n).astype(np.float32)
    f32[::1000] = np.nan
    src = pd.DataFrame(
        {
            "f64": f64,
            "f32": f32,
            "plain": rng.standard_normal(n),
            "i64": rng.integers(-(10**12), 10**12, n),
            "i32": rng.integers(-(10**6), 10**6, n).astype(np.int32),
            "s": [f"k{i % 5003}-{'z' * (i % 11)}" for i in range(n)],
        }
    )
    path = tmp_path / "f.parquet"
    src.to_parquet(path, row_group_size=n // 7)
    df = pd.read_parquet(path)
    assert _frames.plan(pa, pa.Table.from_pandas(df)).size > 32 << 20
    d = Daemon(tmp_path / "s.sock", "256M").start()
    try:
        s = d.connect()
        s["df"] = df
        other = shoal.connect(s.socket_path, start=False)
        back = other["df"]
        pd.testing.assert_frame_equal(back, df)
        for name in ("f64", "f32", "plain", "i64", "i32"):
            a, b = df[name].to_numpy(), back[name].to_numpy()
            bits = np.int64 if a.itemsize == 8 else np.int32
            assert np.array_equal(a.view(bits), b.view(bits)), name
        assert in_arena(other, back["plain"].to_numpy().ctypes.data, 8 * n)
        arrow = other.get("df", dtype_backend="pyarrow")
        assert arrow["f64"].isna().sum() == np.isnan(f64).sum()
        del back, arrow
        other.close()
        s.close()
    finally:
        d.stop()
