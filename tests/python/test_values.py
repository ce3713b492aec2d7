"""What goes into shared memory and what comes back: bytes, numpy, Arrow
(pyarrow, pandas, polars) and pickle, zero-copy and exact."""

import datetime
import decimal

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import shoal
from conftest import in_arena


def kind(store, key):
    return store.describe(key)[0]


# ----------------------------------------------------------------- bytes


def test_bytes_zero_copy_read_only(store):
    store["b"] = b"\x01\x02\x03"
    buf = store["b"]
    assert isinstance(buf, shoal.Buffer)
    assert buf == b"\x01\x02\x03" and len(buf) == 3 and buf.size == 3
    assert in_arena(store, buf.address, 3)
    mv = memoryview(buf)
    assert mv.readonly
    with pytest.raises(TypeError):
        mv[0] = 9
    assert buf.to_pybytes() == b"\x01\x02\x03"
    c = store.get("b", copy=True)
    assert isinstance(c, bytearray) and c == b"\x01\x02\x03"
    c[0] = 7  # a private copy


def test_bytes_like_inputs(store):
    store["ba"] = bytearray(b"xyz")
    store["mv"] = memoryview(b"abcdef")[::2]  # non-contiguous: copied in order
    store["arrbuf"] = memoryview(np.arange(3, dtype=np.int32))
    assert store["ba"] == b"xyz"
    assert store["mv"] == b"ace"
    assert store["arrbuf"] == np.arange(3, dtype=np.int32).tobytes()
    store["empty"] = b""
    assert store["empty"] == b"" and len(store["empty"]) == 0


# ----------------------------------------------------------------- numpy

DTYPES = [
    "i1", "u1", "i2", "u2", "<i4", "<u4", "<i8", ">i8", "<u8", "<f2", "<f4",
    "<f8", "<c8", "<c16", "?", "<M8[ns]", "<M8[D]", "<m8[us]", "S5", "<U3",
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_dtypes(store, dtype):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 255, size=24 * np.dtype(dtype).itemsize, dtype=np.uint8)
    arr = raw.view(dtype).reshape(4, -1)
    store["arr"] = arr
    assert kind(store, "arr") == "numpy"
    got = store["arr"]
    assert got.dtype == arr.dtype and got.shape == arr.shape
    assert got.tobytes() == arr.tobytes()
    assert not got.flags.writeable


def test_numpy_layouts(store):
    base = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    for arr in (base, np.asfortranarray(base), base[:, ::2, 1:], base.T, np.float64(3.5) * np.ones(()), np.empty((0, 3))):
        store["lay"] = arr
        got = store["lay"]
        np.testing.assert_array_equal(got, arr)
        assert got.shape == arr.shape


def test_numpy_zero_copy_and_read_only(store):
    arr = np.arange(1 << 16, dtype=np.int64)
    store["z"] = arr
    got = store["z"]
    assert in_arena(store, got.ctypes.data, got.nbytes)
    with pytest.raises(ValueError):
        got[0] = 1
    with pytest.raises(ValueError):
        got.setflags(write=True)
    w = store.get("z", copy=True)
    assert w.flags.writeable and not in_arena(store, w.ctypes.data)
    w[0] = 99
    assert store["z"][0] == 0


def test_numpy_object_and_structured_use_pickle(store):
    obj = np.array([1, "a", None], dtype=object)
    rec = np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")])
    store["obj"] = obj
    store["rec"] = rec
    assert kind(store, "obj") == "pickle" and kind(store, "rec") == "pickle"
    assert list(store["obj"]) == [1, "a", None]
    np.testing.assert_array_equal(store["rec"], rec)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    hnp.arrays(
        dtype=st.one_of(hnp.integer_dtypes(), hnp.floating_dtypes(), hnp.datetime64_dtypes(), hnp.boolean_dtypes()),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    )
)
def test_numpy_property(store, arr):
    store["prop"] = arr
    got = store["prop"]
    assert got.dtype == arr.dtype and got.shape == arr.shape
    assert got.tobytes() == arr.tobytes()


# ---------------------------------------------------------------- pickle


def test_pickle_with_out_of_band_buffers(store):
    big = np.arange(100000, dtype=np.float64)
    value = {"a": big, "b": [1, 2, "three"], "c": None, "d": decimal.Decimal("1.5")}
    store["p"] = value
    assert kind(store, "p") == "pickle"
    got = store["p"]
    np.testing.assert_array_equal(got["a"], big)
    assert got["b"] == [1, 2, "three"] and got["d"] == decimal.Decimal("1.5")
    # the large array is a read-only view of shared memory
    assert in_arena(store, got["a"].ctypes.data, got["a"].nbytes)
    assert not got["a"].flags.writeable
    w = store.get("p", copy=True)
    assert w["a"].flags.writeable


def test_pickle_plain_objects(store):
    for v in (1, 2.5, "text", None, [1, [2]], {"k": (1, 2)}, {1, 2}, datetime.date(2024, 1, 2)):
        store["o"] = v
        assert store["o"] == v


# ----------------------------------------------------------------- arrow


def sample_frame(n=1000):
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "i": np.arange(n, dtype=np.int64),
            "f": rng.random(n),
            "f_nan": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
            "b": rng.random(n) < 0.5,
            "s": [f"s{i}" for i in range(n)],
            "s_none": [None if i % 7 == 0 else f"v{i}" for i in range(n)],
            "cat": pd.Categorical(rng.choice(["x", "y", "z"], n)),
            "ocat": pd.Categorical(rng.choice(["lo", "hi"], n), categories=["lo", "hi"], ordered=True),
            "ts": pd.date_range("2024-01-01", periods=n, freq="min"),
            "tstz": pd.date_range("2024-01-01", periods=n, freq="h", tz="Europe/Berlin"),
            "td": pd.to_timedelta(np.arange(n), unit="s"),
            "I64": pd.array([None if i % 5 == 0 else i for i in range(n)], dtype="Int64"),
            "bool_na": pd.array([None if i % 3 == 0 else i % 2 == 0 for i in range(n)], dtype="boolean"),
            "str_dtype": pd.array([None if i % 4 == 0 else f"t{i}" for i in range(n)], dtype="string"),
            "F32": pd.array([None if i % 6 == 0 else i / 2 for i in range(n)], dtype="Float32"),
            "u8": np.arange(n, dtype=np.uint8),
        },
        index=pd.Index(np.arange(n) * 2, name="idx"),
    )


def test_pandas_round_trip_exact(store):
    df = sample_frame()
    store["df"] = df
    assert kind(store, "df") == "arrow"
    pd.testing.assert_frame_equal(store["df"], df)


@pytest.mark.parametrize(
    "index",
    [
        pd.RangeIndex(5),
        pd.RangeIndex(10, 20, 2, name="r"),
        pd.Index(list("abcde"), name="letters"),
        pd.date_range("2020-01-01", periods=5, tz="UTC"),
        pd.MultiIndex.from_arrays([[1, 1, 2, 2, 3], list("abcab")], names=["n", "l"]),
        pd.CategoricalIndex(list("aabbc")),
    ],
)
def test_pandas_indexes(store, index):
    df = pd.DataFrame({"v": np.arange(5.0)}, index=index)
    store["ix"] = df
    pd.testing.assert_frame_equal(store["ix"], df)


def test_pandas_column_labels(store):
    df = pd.DataFrame(np.arange(6).reshape(2, 3), columns=[10, 20, 30])
    store["lab"] = df
    pd.testing.assert_frame_equal(store["lab"], df)
    mc = pd.DataFrame(np.arange(4).reshape(2, 2), columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")]))
    store["mc"] = mc
    pd.testing.assert_frame_equal(store["mc"], mc)


def test_pandas_unsafe_columns_fall_back_to_pickle(store):
    df = pd.DataFrame({"mixed": [1, "a", None], "lists": [[1], [2, 3], []], "n": [1, 2, 3]})
    store["mixed"] = df
    assert kind(store, "mixed") == "pickle"
    pd.testing.assert_frame_equal(store["mixed"], df)
    dup = pd.DataFrame([[1, 2]], columns=["a", "a"])
    store["dup"] = dup
    pd.testing.assert_frame_equal(store["dup"], dup)


def test_pandas_series(store):
    for s in (
        pd.Series([1.0, 2.0], name="x"),
        pd.Series(["a", None, "c"]),
        pd.Series([1, 2, 3], name=7, index=list("abc")),
        pd.Series(pd.Categorical(["u", "v"]), name=("t", 1)),
    ):
        store["ser"] = s
        got = store["ser"]
        pd.testing.assert_series_equal(got, s)


def test_pandas_numeric_columns_are_views(store):
    df = pd.DataFrame({"a": np.arange(100000, dtype=np.int64), "b": np.ones(100000)})
    store["views"] = df
    got = store["views"]
    for col in ("a", "b"):
        arr = got[col].to_numpy()
        assert in_arena(store, arr.ctypes.data, arr.nbytes), col
    with pytest.raises(ValueError):
        got["a"].to_numpy()[0] = 5
    w = store.get("views", copy=True)
    w.loc[0, "a"] = 5  # a private, writable copy
    assert not in_arena(store, w["a"].to_numpy().ctypes.data)
    assert store["views"]["a"][0] == 0


def test_pandas_pyarrow_backend_keeps_everything_in_shared_memory(store):
    df = sample_frame(2000)
    store["pab"] = df
    got = store.get("pab", dtype_backend="pyarrow")
    assert all(isinstance(t, pd.ArrowDtype) for t in got.dtypes)
    for name in got.columns:
        chunks = got[name].array._pa_array.chunks
        assert sum(c.null_count for c in chunks) == df[name].isna().sum(), name
        for chunk in chunks:
            for b in chunk.buffers():
                if b is not None and b.size:
                    assert in_arena(store, b.address, b.size), name
    assert got["i"].tolist() == df["i"].tolist()
    assert got["s"].tolist() == df["s"].tolist()


def test_pandas_numpy_nullable_backend(store):
    df = pd.DataFrame({"i": [1, 2, 3], "s": ["a", "b", None]})
    store["nn"] = df
    got = store.get("nn", dtype_backend="numpy_nullable")
    assert str(got["i"].dtype) == "Int64"


def test_columns_selection(store):
    df = sample_frame(100)
    store["cols"] = df
    got = store.get("cols", columns=["f", "s"])
    pd.testing.assert_frame_equal(got, df[["f", "s"]])
    with pytest.raises(KeyError):
        store.get("cols", columns=["nope"])
    lab = pd.DataFrame(np.arange(6).reshape(2, 3), columns=[10, 20, 30])
    store["lab2"] = lab
    pd.testing.assert_frame_equal(store.get("lab2", columns=[20]), lab[[20]])


def test_pyarrow_table_and_batch(store):
    t = pa.table({"a": [1, 2, 3], "b": ["x", "y", None]})
    store["t"] = t
    got = store["t"]
    assert isinstance(got, pa.Table) and got.equals(t)
    assert got.column("a").chunks[0].buffers()[1].address
    assert in_arena(store, got.column("a").chunks[0].buffers()[1].address)
    assert store.get("t", columns=["b"]).column_names == ["b"]
    rb = pa.record_batch({"a": [1.5, 2.5]})
    store["rb"] = rb
    got = store["rb"]
    assert isinstance(got, pa.RecordBatch) and got.equals(rb)


def test_polars(store):
    df = pl.DataFrame({"a": [1, 2, 3], "s": ["x", None, "z"], "f": [0.5, None, 1.5]})
    store["pl"] = df
    got = store["pl"]
    assert isinstance(got, pl.DataFrame) and got.equals(df)
    assert store.get("pl", columns=["s"]).columns == ["s"]
    s = pl.Series("name", [1, 2, 3])
    store["pls"] = s
    got = store["pls"]
    assert isinstance(got, pl.Series) and got.equals(s) and got.name == "name"


def test_arrow_ipc_is_written_in_place(store):
    """The IPC size is known up front: the object is exactly the stream."""
    df = sample_frame(500)
    store["sz"] = df
    from shoal._frames import pandas_table

    table, _ = pandas_table(pa, df)  # from_pandas, NaN kept as NaN
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    assert store.names()["sz"]["data_size"] == sink.getvalue().size


# ----------------------------------------------- hypothesis: random frames


def column_strategy(n):
    def sized(elements):
        return st.lists(elements, min_size=n, max_size=n)

    text = st.text(max_size=8)
    return st.one_of(
        sized(st.integers(-(2**63), 2**63 - 1)).map(lambda v: np.array(v, dtype=np.int64)),
        sized(st.integers(0, 2**64 - 1)).map(lambda v: np.array(v, dtype=np.uint64)),
        sized(st.floats(allow_nan=True, allow_infinity=True)).map(np.array),
        sized(st.floats(width=32)).map(lambda v: np.array(v, dtype=np.float32)),
        sized(st.booleans()).map(lambda v: np.array(v, dtype=bool)),
        sized(st.one_of(st.none(), text)).map(lambda v: pd.array(v, dtype="string")),
        sized(st.one_of(st.none(), text)).map(lambda v: pd.Series(v, dtype="str")),
        sized(text).map(lambda v: pd.Series(v, dtype=object)),
        sized(st.binary(max_size=6)).map(lambda v: pd.Series(v, dtype=object)),
        sized(st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))).map(pd.Categorical),
        sized(st.one_of(st.none(), st.integers(-1000, 1000))).map(lambda v: pd.array(v, dtype="Int64")),
        sized(st.one_of(st.none(), st.booleans())).map(lambda v: pd.array(v, dtype="boolean")),
        sized(st.integers(-(2**40), 2**40)).map(lambda v: pd.to_timedelta(np.array(v, dtype=np.int64), unit="us")),
        sized(st.integers(0, 2**40)).map(lambda v: pd.to_datetime(np.array(v, dtype=np.int64), unit="s")),
        sized(st.integers(0, 2**40)).map(
            lambda v: pd.to_datetime(np.array(v, dtype=np.int64), unit="s")
            .tz_localize("UTC")
            .tz_convert("America/New_York")
        ),
    )


def index_strategy(n):
    return st.one_of(
        st.just(None),
        st.lists(st.integers(), min_size=n, max_size=n).map(lambda v: pd.Index(v, name="ix")),
        st.lists(st.text(max_size=4), min_size=n, max_size=n).map(lambda v: pd.Index(v, dtype=object)),
        st.just(pd.date_range("2001-01-01", periods=n, freq="D", tz="Asia/Tokyo")),
        st.just(pd.RangeIndex(5, 5 + 3 * n, 3)),
    )


@st.composite
def frames(draw):
    n = draw(st.integers(0, 30))
    ncols = draw(st.integers(1, 6))
    df = pd.DataFrame({f"c{i}": draw(column_strategy(n)) for i in range(ncols)})
    index = draw(index_strategy(n))
    if index is not None:
        df.index = index
    return df


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames())
def test_random_frames_round_trip(store, df):
    store["rand"] = df
    pd.testing.assert_frame_equal(store["rand"], df)
    pd.testing.assert_frame_equal(store.get("rand", copy=True), df)
    first = df.columns[0]
    pd.testing.assert_frame_equal(store.get("rand", columns=[first]), df[[first]])
    arrow = store.get("rand", dtype_backend="pyarrow")
    assert arrow.shape == df.shape and list(arrow.columns) == list(df.columns)


PANDAS_WITHOUT_PYARROW = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('pyarrow', 'polars'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np, pandas as pd, shoal
s = shoal.connect(sys.argv[1], start=False)
df = pd.DataFrame({'a': np.arange(100000), 'b': np.ones(100000), 's': ['x'] * 100000})
s['nopa'] = df
assert s.describe('nopa')[0] == 'pickle'
got = s['nopa']
pd.testing.assert_frame_equal(got, df)
a = got['a'].to_numpy()
arena = s.client.arena
assert arena['base'] <= a.ctypes.data < arena['base'] + arena['map_size']  # out-of-band, no copy
pd.testing.assert_frame_equal(s.get('nopa', columns=['b']), df[['b']])
del s['nopa']
assert 'pyarrow' not in sys.modules
print('ok')
"""


def test_pandas_without_pyarrow_uses_pickle_out_of_band(daemon):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", PANDAS_WITHOUT_PYARROW, daemon.path], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.strip() == b"ok"
