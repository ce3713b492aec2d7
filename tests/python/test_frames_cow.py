"""Copy-on-write for frames from the store: writes through pandas succeed,
copy only the columns they touch, never change shared memory (another
process still reads the stored values), and leave the other columns views.
"""

import subprocess
import sys
import warnings

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from conftest import in_arena  # noqa: E402

N = 50_000


def _frame():
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "a": rng.random(N),
            "b": np.arange(N, dtype=np.int64),
            "c": rng.random(N),
            "f": np.where(np.arange(N) % 3 == 0, np.nan, 1.5),
            "s": pd.array([f"k{i % 5}" for i in range(N)], dtype="str"),
        }
    )


def _is_view(store, series):
    arr = series.to_numpy()
    return in_arena(store, arr.ctypes.data, arr.nbytes)


# name -> (operation, the columns it writes)
OPS = {
    "loc_mask": (lambda df: df.loc.__setitem__((df["a"] > 0.5, "a"), 0.0), {"a"}),
    "loc_row": (lambda df: df.loc.__setitem__((7, "b"), -1), {"b"}),
    "iloc": (lambda df: df.iloc.__setitem__((slice(0, 10), 2), 9.0), {"c"}),
    "at": (lambda df: df.at.__setitem__((3, "a"), -2.0), {"a"}),
    "iat": (lambda df: df.iat.__setitem__((4, 1), 123), {"b"}),
    "fillna_inplace": (lambda df: df.fillna({"f": 0.0}, inplace=True), {"f"}),
    "imul": (lambda df: df.__setitem__("a", df["a"].__imul__(2)), {"a"}),
    "replace_inplace": (lambda df: df.replace({"b": {5: 50}}, inplace=True), {"b"}),
    "update": (lambda df: df.update(pd.DataFrame({"c": [7.0, 8.0]})), {"c"}),
    "str_loc": (lambda df: df.loc.__setitem__((0, "s"), "zz"), {"s"}),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_writes_copy_only_the_touched_columns(store, name):
    op, touched = OPS[name]
    original = _frame()
    store["cow"] = original
    df = store["cow"]
    expected = original.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no chained-assignment warnings
        op(expected)
        op(df)
    pd.testing.assert_frame_equal(df, expected)
    for col in ("a", "b", "c"):
        assert _is_view(store, df[col]) == (col not in touched), col
    # Shared memory is unchanged: a new reader gets the stored frame.
    pd.testing.assert_frame_equal(store["cow"], original)


def test_other_processes_see_no_change(store):
    original = _frame()
    store["cow2"] = original
    df = store["cow2"]
    df.loc[df["b"] < 100, "a"] = 0.0
    df["c"] *= 2
    df.fillna({"f": -1.0}, inplace=True)
    assert (df["a"].iloc[:100] == 0).all()
    code = (
        "import sys, shoal, numpy as np\n"
        "s = shoal.connect(sys.argv[1], start=False)\n"
        "df = s['cow2']\n"
        "print(repr((float(df['a'].iloc[:100].sum()), float(df['c'].sum()), int(df['f'].isna().sum()))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, store.socket_path], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    want = (
        float(original["a"].iloc[:100].sum()),
        float(original["c"].sum()),
        int(original["f"].isna().sum()),
    )
    assert eval(out.stdout.strip()) == pytest.approx(want)


def test_derived_views_and_series_copy_on_write(store):
    store["cow3"] = _frame()
    col = store["cow3"]["b"]  # the frame itself is gone
    col.iloc[0] = -5
    assert col.iloc[0] == -5
    sub = store["cow3"][["a", "b"]]
    sub.loc[1, "a"] = 42.0
    assert sub.loc[1, "a"] == 42.0 and _is_view(store, sub["b"])
    store["series"] = pd.Series(np.arange(1000.0), name="x")
    s = store["series"]
    s[s > 500] = 0.0
    assert s.iloc[999] == 0 and store["series"].iloc[999] == 999.0
    assert store["cow3"]["b"].iloc[0] == 0


def test_other_backends_and_pickled_frames(store):
    store["cow4"] = _frame()
    nullable = store.get("cow4", dtype_backend="numpy_nullable")
    nullable.loc[0, "b"] = 77
    assert nullable.loc[0, "b"] == 77
    arrow = store.get("cow4", dtype_backend="pyarrow")
    arrow.loc[0, "b"] = 78  # Arrow arrays are replaced, never written
    assert arrow.loc[0, "b"] == 78
    assert store["cow4"].loc[0, "b"] == 0
    # A frame Arrow cannot round-trip is pickled; its numeric blocks are
    # views of shared memory too, and copy on write the same way.
    mixed = pd.DataFrame({"n": np.arange(10_000.0), "o": [1, "x"] * 5_000})
    store["cow5"] = mixed
    assert store.describe("cow5")[0] == "pickle"
    got = store["cow5"]
    assert _is_view(store, got["n"])
    got.loc[0, "n"] = -1.0
    assert got.loc[0, "n"] == -1.0 and store["cow5"].loc[0, "n"] == 0.0


def test_raw_numpy_writes_still_raise(store):
    """pandas gives no hook for writes through the numpy array itself."""
    store["cow6"] = _frame()
    df = store["cow6"]
    with pytest.raises(ValueError, match="read-only"):
        df["a"].to_numpy()[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        df["b"].values[0] = 1
    assert store["cow6"]["b"].iloc[0] == 0
