"""Reading a stored pandas frame straight into pandas blocks.

A get of a big frame should cost what building the frame's Python objects
costs, not what converting it costs: its data stays in shared memory. The
general path (``Table.to_pandas``) redoes per-schema work on every get -
parsing the pandas metadata, working out each column's dtype, building the
column Index - and gives one block per column. Here that work is done once
per schema and kept in a *recipe*; a get then only reads where each
column's buffers are and wraps them:

* numeric columns (and tz-naive datetimes and timedeltas) without nulls
  become numpy views of shared memory, and columns of one dtype whose
  buffers lie at even spacing in the object (as the IPC writer lays out
  adjacent columns of one type) share ONE 2D block: a strided view, as a
  consolidated pandas frame has. Fewer blocks are cheaper to build, and
  pandas has nothing left to consolidate (copy);
* Arrow-backed columns (pandas 3's ``str``, ``ArrowDtype``) are wrapped
  with the dtype's own ``__from_arrow__``, as pyarrow does;
* the frame is assembled with ``pandas.api.internals
  .create_dataframe_from_blocks`` and made copy-on-write
  (``_frames.share_pandas``).

A recipe is derived from what ``Table.to_pandas`` makes of the same schema
with zero rows, so both paths give the same dtypes, column Index and attrs;
a schema any of whose columns this module does not handle gets no recipe
(``None`` is kept, so it is not tried again) and the caller takes the
general path. So does a get whose data does not fit the recipe (a numeric
column with nulls, uneven lengths). Recipes hold no reference to shared
memory or to any earlier result: their number is bounded, and a refresh of
a name with an unchanged schema reuses its recipe.
"""

import copy

from shoal import _shoal

__all__ = ["read", "remember"]

_MAX_RECIPES = 64
_recipes = {}  # (metadata, schema message, columns, backend) -> _Recipe | None

_CONT = b"\xff\xff\xff\xff"  # IPC continuation marker before each message


class _Recipe:
    """What a get of frames of one schema does (see the module doc)."""

    __slots__ = ("nodes", "buffers", "where", "counts", "types", "kinds", "runs", "columns", "index", "attrs")

    def __init__(self):
        self.nodes = self.buffers = 0  # field nodes and buffers of the batch
        self.where = []  # per pandas column: (its node, its first buffer)
        self.counts = []  # per pandas column: its number of buffers
        self.types = []  # per pandas column: its Arrow type
        self.kinds = []  # per pandas column: (numpy dtype, nan_ok) for a view, else the ExtensionDtype
        self.runs = []  # lists of column positions of one numpy dtype
        self.columns = None  # the column Index (copied per get)
        self.index = ()  # the stored RangeIndex as (start, stop, step, name), or ()
        self.attrs = {}


def _schema_key(buf):
    """The bytes of the stream's schema message, or None."""
    mv = memoryview(buf)
    if len(mv) < 8 or mv[:4] != _CONT:
        return None
    n = int.from_bytes(mv[4:8], "little")
    if n <= 0 or 8 + n > len(mv):
        return None
    return bytes(mv[8 : 8 + n])


def _field_positions(pa, schema, columns, select):
    """Field indices of the columns a get returns, or None."""
    if columns is None:
        return list(range(len(schema)))
    empty = pa.Table.from_batches([], schema=schema)
    names = select(empty, columns).schema.names
    out = [schema.get_field_index(n) for n in names]
    return None if min(out, default=0) < 0 else out


def _range_index(meta):
    """(start, stop, step, name) of a stored RangeIndex, () for none, or
    None for any other index."""
    ix = meta.get("index_columns", [])
    if not ix:
        return ()
    if len(ix) != 1 or not isinstance(ix[0], dict) or ix[0].get("kind") != "range":
        return None
    d = ix[0]
    return d["start"], d["stop"], d["step"], d["name"]


def _buffer_count(pa, typ):
    """How many body buffers the IPC writer gives a column of type typ, or
    None for the types this module does not place (nested, dictionary,
    views)."""
    if isinstance(typ, pa.ExtensionType):
        return None
    if pa.types.is_null(typ):
        return 0
    if typ.num_fields or pa.types.is_dictionary(typ):
        return None
    if pa.types.is_string(typ) or pa.types.is_binary(typ):
        return 3
    if pa.types.is_large_string(typ) or pa.types.is_large_binary(typ):
        return 3
    if pa.types.is_string_view(typ) or pa.types.is_binary_view(typ):
        return None
    return 2


def _make_recipe(pa, pd, np, schema, header, columns, dtype_backend, to_pandas, select):
    try:
        from pandas.api.internals import create_dataframe_from_blocks  # noqa: F401 (pandas >= 2.2)
    except ImportError:
        return None
    if dtype_backend not in (None, "pyarrow"):
        return None
    rec = _Recipe()
    rec.index = _range_index(schema.pandas_metadata or {})
    fields = _field_positions(pa, schema, columns, select)
    if rec.index is None or fields is None:
        return None
    first = []
    for field in schema:
        k = _buffer_count(pa, field.type)
        if k is None:
            return None
        first.append(rec.buffers)
        rec.buffers += k
    rec.nodes = len(schema)
    empty = pa.Table.from_batches([], schema=schema)
    tmpl = to_pandas(empty, dict(header, type="pandas.DataFrame"), columns, dtype_backend, False)
    if tmpl.shape[1] != len(fields) or not isinstance(tmpl.index, pd.RangeIndex):
        return None
    nan = set(header.get("nan", ())) if dtype_backend is None else set()
    by_dtype, dtypes = {}, tmpl.dtypes.tolist()
    for j, fi in enumerate(fields):
        field, dtype = schema.field(fi), dtypes[j]
        typ = field.type
        if isinstance(dtype, np.dtype):
            if not _viewable(pa, np, dtype, typ):
                return None
            rec.kinds.append((dtype, field.name in nan))
            by_dtype.setdefault(dtype, []).append(j)
        elif _wraps_arrow(pa, pd, dtype, typ):
            rec.kinds.append(dtype)
        else:
            return None
        rec.where.append((fi, first[fi]))
        rec.counts.append(_buffer_count(pa, typ))
        rec.types.append(typ)
    rec.runs = list(by_dtype.values())
    rec.columns = tmpl.columns
    rec.attrs = tmpl.attrs
    return rec


def _viewable(pa, np, dtype, typ):
    """Whether to_pandas gives a column of Arrow type typ without nulls as
    numpy dtype with the same bytes: numbers, and datetimes and timedeltas
    without a time zone."""
    plain = pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_duration(typ)
    if not plain and not (pa.types.is_timestamp(typ) and typ.tz is None):
        return False
    return dtype.kind in "iufmM" and dtype == np.dtype(typ.to_pandas_dtype())


def _wraps_arrow(pa, pd, dtype, typ):
    """Whether to_pandas makes dtype.__from_arrow__(column) of an Arrow
    column of type typ, keeping it in shared memory. Not for the null
    type, which has no buffers to wrap."""
    if pa.types.is_null(typ):
        return False
    if isinstance(dtype, pd.ArrowDtype):
        return dtype.pyarrow_dtype == typ
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow" and pa.types.is_large_string(typ)
    return False


def _recipe(buf, metadata, header, columns, dtype_backend, to_pandas, select):
    """The recipe for buf's schema, or None."""
    skey = _schema_key(buf)
    if skey is None:
        return None
    key = (metadata, skey, None if columns is None else tuple(columns), dtype_backend)
    try:
        return _recipes[key]
    except KeyError:
        pass
    except TypeError:  # unhashable column labels
        return None
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    try:
        schema = pa.ipc.read_schema(pa.py_buffer(buf))
        rec = _make_recipe(pa, pd, np, schema, header, columns, dtype_backend, to_pandas, select)
    except (pa.ArrowException, OSError, KeyError, TypeError, ValueError, NotImplementedError):
        rec = None
    remember(_recipes, key, rec, _MAX_RECIPES)
    return rec


def remember(cache, key, value, limit):
    """cache[key] = value, first dropping the oldest entry of a full cache
    (dicts keep insertion order). Safe against other threads doing the
    same: at worst an entry is dropped twice or the cache briefly holds one
    more."""
    while len(cache) >= limit:
        try:
            del cache[next(iter(cache))]
        except (KeyError, RuntimeError, StopIteration):
            break
    cache[key] = value


def _runs(run, addrs, nbytes):
    """Splits run (column positions of one dtype) into groups whose data
    addresses are evenly spaced, at least nbytes apart: each group can be
    one 2D view."""
    order = sorted(run, key=addrs.__getitem__)
    out, cur = [], [order[0]]
    for j in order[1:]:
        step = addrs[j] - addrs[cur[-1]]
        if step < nbytes or (len(cur) > 1 and step != addrs[cur[1]] - addrs[cur[0]]):
            out.append(cur)
            cur = [j]
        else:
            cur.append(j)
    out.append(cur)
    return out


def read(buf, metadata, header, columns, dtype_backend, to_pandas, select):
    """The pandas DataFrame stored in buf (an Arrow IPC stream written by
    _frames), its numeric and Arrow columns views of shared memory; or None
    when the general path must do it. to_pandas and select are the general
    path's conversion and column selection (the recipe is derived from
    them)."""
    rec = _recipe(buf, metadata, header, columns, dtype_backend, to_pandas, select)
    if rec is None:
        return None
    layout = _shoal.batch_layout(buf)
    if layout is None:
        return None
    n, nodes, bufs = layout
    if len(nodes) != 2 * rec.nodes or len(bufs) != 2 * rec.buffers:
        return None
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from pandas.api.internals import create_dataframe_from_blocks

    blocks, addrs, whole = [], {}, None
    for j, kind in enumerate(rec.kinds):
        node, b = rec.where[j]
        if nodes[2 * node] != n:
            return None
        nulls = nodes[2 * node + 1]
        if type(kind) is tuple:  # a numpy view: (dtype, nan_ok)
            if (nulls and not kind[1]) or bufs[2 * b + 3] < n * kind[0].itemsize:
                return None
            addrs[j] = bufs[2 * b + 2]
            continue
        if whole is None:
            whole = pa.py_buffer(buf)
        parts = [whole.slice(bufs[2 * k], bufs[2 * k + 1]) for k in range(b, b + rec.counts[j])]
        if not nulls:
            parts[0] = None
        try:
            arr = pa.Array.from_buffers(rec.types[j], n, parts, null_count=nulls)
            arr.validate()
        except (pa.ArrowException, ValueError):
            return None
        blocks.append((kind.__from_arrow__(arr), np.array([j])))
    for run in rec.runs:
        dtype = rec.kinds[run[0]][0]
        width = n * dtype.itemsize
        for grp in _runs(run, addrs, width):
            step = addrs[grp[1]] - addrs[grp[0]] if len(grp) > 1 else width
            try:
                values = np.ndarray(
                    (len(grp), n), dtype=dtype, buffer=buf, offset=addrs[grp[0]], strides=(step, dtype.itemsize)
                )
            except (TypeError, ValueError):  # a buffer does not fit in the object
                return None
            blocks.append((values, np.array(grp)))
    index = pd.RangeIndex(*rec.index[:3], name=rec.index[3]) if rec.index else None
    if index is None or len(index) != n:
        index = pd.RangeIndex(n)  # as pyarrow does
    df = create_dataframe_from_blocks(blocks, index=index, columns=rec.columns.copy())
    if rec.attrs:
        df.attrs = copy.deepcopy(rec.attrs)
    return df
