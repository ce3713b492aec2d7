"""How Python values become objects (data + metadata) and come back.

An object's metadata part says how to read its data part:

* empty metadata: raw bytes (what ``shoal put`` and ``put_raw_buffer`` write);
  read back as a read-only :class:`shoal.Buffer` over shared memory.
* ``b"shoal/1 numpy {json}"``: a numpy array of a plain dtype; the JSON
  holds dtype, shape and memory order; the data part is the raw array.
  Read back as a read-only ndarray over shared memory.
* ``b"shoal/1 arrow {json}"``: an Arrow IPC stream; the JSON says which type
  to rebuild (pyarrow Table/RecordBatch, pandas DataFrame/Series, polars
  DataFrame/Series). One record batch, whatever the input's chunking, so
  that every column is contiguous in shared memory (see _frames). Written
  straight into the object: the IPC size is computed first with a
  MockOutputStream, then the stream is written once with a
  FixedSizeBufferWriter - no intermediate copy of the data. Read back
  zero-copy (pyarrow.py_buffer over the object), then converted.
* ``b"shoal/1 pickle {json}"``: pickle protocol 5; the pickle stream is the
  first part of the data, each large out-of-band buffer (numpy blocks of a
  pandas frame without pyarrow, arrays inside dicts, ...) another part
  starting at a multiple of 64 bytes. The JSON lists their offsets. Read
  back with the out-of-band buffers as read-only views of shared memory.
* any other metadata (e.g. a Plasma user's own): raw bytes.

Everything a reader gets keeps the object pinned through a reference to its
Buffer (numpy bases, pyarrow buffers, memoryviews). numpy, pandas, pyarrow
and polars are optional: a type is only handled when its module is already
imported (a value cannot be a DataFrame otherwise), and imported lazily on
read.

This module is pure glue; nothing here talks to the store.
"""

import json
import pickle
import sys

from shoal import _frame_reader, _frames, _shoal

MAGIC = b"shoal/1 "
ALIGN = _shoal.PART_ALIGN

# Out-of-band pickle buffers smaller than this stay in the pickle stream:
# a separate part costs alignment padding and a header entry.
OOB_MIN = 4096

__all__ = ["Encoded", "encode", "encode_raw", "decode", "describe"]


class Encoded:
    """A value ready to be written: metadata plus either ``parts`` (bytes-like
    objects laid out at 64-byte aligned offsets, copied by the C layer) or
    ``writer`` (a function writing exactly ``size`` bytes into a writable
    buffer). With ``segments`` (Client.create's), ``writer(buf,
    filled=True)`` writes what the segments, copied in by the create, do
    not."""

    __slots__ = ("metadata", "size", "parts", "writer", "segments")

    def __init__(self, metadata, size, parts=None, writer=None, segments=None):
        self.metadata = metadata
        self.size = size
        self.parts = parts
        self.writer = writer
        self.segments = segments


def _align(n):
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def _layout(sizes):
    """Offsets of parts placed one after another at aligned offsets (the
    rule Client.put applies) and the total size."""
    offsets, end = [], 0
    for i, n in enumerate(sizes):
        start = _align(end) if i else 0
        offsets.append(start)
        end = start + n
    return offsets, end


def _meta(kind, header):
    return MAGIC + kind.encode() + b" " + json.dumps(header, separators=(",", ":")).encode()


def _module(name):
    """The module if it is imported, else None (no import cost)."""
    return sys.modules.get(name)


# ---------------------------------------------------------------- encoding


def encode(value):
    """Returns an :class:`Encoded` for value (see the module doc)."""
    np = _module("numpy")
    if np is not None and type(value) is np.ndarray:
        enc = _encode_numpy(np, value)
        if enc is not None:
            return enc
    if isinstance(value, (bytes, bytearray, memoryview, _shoal.Buffer)):
        return encode_raw(value)
    enc = _encode_frame(value)
    if enc is not None:
        return enc
    pa = _module("pyarrow")
    if pa is not None and isinstance(value, pa.Buffer):
        return encode_raw(value)
    return _encode_pickle(value)


def encode_raw(value):
    mv = memoryview(value)
    if not mv.c_contiguous:
        mv = memoryview(mv.tobytes())
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return Encoded(b"", mv.nbytes, parts=[mv])


def _encode_numpy(np, arr):
    dt = arr.dtype
    if dt.hasobject or dt.fields is not None or dt.subdtype is not None or dt.itemsize == 0:
        return None  # pickle handles these
    if arr.flags.c_contiguous:
        order = "C"
    elif arr.flags.f_contiguous:
        order = "F"
    else:
        order = None
    header = {"dtype": dt.str, "shape": list(arr.shape), "order": order or "C"}
    meta = _meta("numpy", header)
    if order is not None:
        # A byte view of the memory as laid out (no copy).
        flat = arr.reshape(-1, order=order) if arr.ndim != 1 else arr
        return Encoded(meta, arr.nbytes, parts=[flat.view(np.uint8)])

    def write(buf):
        dst = np.ndarray(arr.shape, dtype=dt, buffer=buf, order="C")
        np.copyto(dst, arr)

    return Encoded(meta, arr.nbytes, writer=write)


def _pandas_arrow_safe(pd, df):
    """Whether Arrow round-trips df exactly: object columns (and index
    levels) must hold only strings or only bytes, labels must be unique."""
    if not df.columns.is_unique:
        return False
    infer = pd.api.types.infer_dtype
    for i in range(df.shape[1]):
        col = df.iloc[:, i]
        if col.dtype == object and infer(col, skipna=True) not in ("string", "bytes"):
            return False
    idx = df.index
    levels = [idx.get_level_values(i) for i in range(idx.nlevels)]
    for level in levels:
        if level.dtype == object and infer(level, skipna=True) not in ("string", "bytes"):
            return False
    for level in [df.columns.get_level_values(i) for i in range(df.columns.nlevels)]:
        if level.dtype == object and infer(level, skipna=False) != "string":
            return False
    return True


def _index_freq(pd, index):
    """Arrow keeps a DatetimeIndex/TimedeltaIndex but not its freq: the
    header carries it."""
    if isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex)) and index.freq is not None:
        return {"freq": index.freqstr}
    return {}


def _encode_frame(value):
    """pandas/polars/pyarrow tabular values as Arrow IPC, or None."""
    pa = _module("pyarrow")
    if pa is None:
        if _module("polars") is not None:
            # polars needs pyarrow for IPC here; without it, pickle.
            return None
        return None
    header = None
    if isinstance(value, pa.Table):
        table, header = value, {"type": "pyarrow.Table"}
    elif isinstance(value, pa.RecordBatch):
        table, header = value, {"type": "pyarrow.RecordBatch"}
    else:
        pd = _module("pandas")
        pl = _module("polars")
        if pd is not None and isinstance(value, pd.DataFrame):
            if not _pandas_arrow_safe(pd, value):
                return None
            try:
                table, nans = _frames.pandas_table(pa, value)
            except (pa.ArrowException, TypeError, ValueError, NotImplementedError):
                return None
            header = {"type": "pandas.DataFrame", **_index_freq(pd, value.index)}
            if nans:
                header["nan"] = nans
        elif pd is not None and isinstance(value, pd.Series):
            frame = value.to_frame(name="__shoal_series__")
            if not _pandas_arrow_safe(pd, frame):
                return None
            try:
                table, nans = _frames.pandas_table(pa, frame)
            except (pa.ArrowException, TypeError, ValueError, NotImplementedError):
                return None
            header = {
                "type": "pandas.Series",
                "name": pickle.dumps(value.name, 5).hex(),
                **_index_freq(pd, value.index),
            }
            if nans:
                header["nan"] = nans
        elif pl is not None and isinstance(value, pl.DataFrame):
            table, header = _polars_arrow(pl, value), {"type": "polars.DataFrame"}
        elif pl is not None and isinstance(value, pl.Series):
            table, header = _polars_arrow(pl, pl.DataFrame([value])), {"type": "polars.Series"}
        else:
            return None
    return _encode_ipc(pa, table, header)


def _polars_arrow(pl, df):
    """polars' own string layout (Arrow string_view) where polars has it, so
    that a reader's string columns are views too, not converted."""
    level = getattr(pl, "CompatLevel", None)
    if level is not None:
        return df.to_arrow(compat_level=level.newest())
    return df.to_arrow()


def _encode_ipc(pa, data, header):
    """data as one contiguous record batch (see _frames)."""
    p = _frames.plan(pa, data)
    return Encoded(_meta("arrow", header), p.size, writer=p.write, segments=p.segments())


def _encode_pickle(value):
    buffers = []

    def keep(pb):
        raw = pb.raw()
        if raw.nbytes < OOB_MIN:
            return True  # in band
        buffers.append(raw)
        return False

    stream = pickle.dumps(value, protocol=5, buffer_callback=keep)
    parts = [stream] + buffers
    offsets, size = _layout([memoryview(p).nbytes for p in parts])
    header = {
        "pickle": len(stream),
        "buffers": [[o, b.nbytes] for o, b in zip(offsets[1:], buffers)],
    }
    return Encoded(_meta("pickle", header), size, parts=parts)


# ---------------------------------------------------------------- decoding


def describe(metadata):
    """(kind, header) of an object's metadata: kind is 'bytes', 'numpy',
    'arrow' or 'pickle'."""
    if not metadata.startswith(MAGIC):
        return "bytes", {}
    kind, _, rest = metadata[len(MAGIC):].partition(b" ")
    kind = kind.decode("ascii", "replace")
    if kind not in ("numpy", "arrow", "pickle"):
        return "bytes", {}
    return kind, json.loads(rest) if rest else {}


# Parsed metadata of recent objects (a refresh of a name has the same), for
# decode only: describe()'s callers may change what it returns.
_headers = {}
_HEADERS_MAX = 64
_HEADER_CACHED_MAX = 4096  # bytes of metadata


def _described(metadata):
    """describe(metadata), shared between calls: read-only."""
    if type(metadata) is not bytes:
        return describe(metadata)
    try:
        return _headers[metadata]
    except KeyError:
        pass
    out = describe(metadata)
    if len(metadata) <= _HEADER_CACHED_MAX:
        _frame_reader.remember(_headers, metadata, out, _HEADERS_MAX)
    return out


def decode(buf, metadata, *, columns=None, dtype_backend=None, copy=False):
    """Rebuilds the value stored in buf (a shoal.Buffer) with metadata.

    Zero-copy unless copy=True: then the bytes are first copied into private
    memory (the object is not pinned by the result) and the result is
    writable where its type allows.
    """
    kind, header = _described(metadata)
    if copy:
        buf = buf.copy()  # bytearray; the caller drops the pin
    if kind == "bytes":
        return buf
    if kind == "numpy":
        return _decode_numpy(buf, header)
    if kind == "pickle":
        return _cow(_frame_options(_decode_pickle(buf, header), columns, dtype_backend))
    return _decode_arrow(buf, metadata, header, columns, dtype_backend, copy)


def _decode_numpy(buf, header):
    import numpy as np

    return np.ndarray(
        tuple(header["shape"]), dtype=np.dtype(header["dtype"]), buffer=buf, order=header["order"]
    )


def _cow(value):
    """pandas values that are views of shared memory become copy-on-write
    (see _frames.share_pandas)."""
    pd = _module("pandas")
    if pd is not None and isinstance(value, (pd.DataFrame, pd.Series)):
        _frames.share_pandas(value)
    return value


def _frame_options(value, columns, dtype_backend):
    """columns= and dtype_backend= for frames that were pickled (Arrow
    could not round-trip them exactly)."""
    if columns is None and dtype_backend is None:
        return value
    pd = _module("pandas")
    pl = _module("polars")
    if pd is not None and isinstance(value, (pd.DataFrame, pd.Series)):
        if columns is not None and isinstance(value, pd.DataFrame):
            value = value[list(columns)]
        if dtype_backend is not None:
            value = value.convert_dtypes(dtype_backend=dtype_backend)
    elif pl is not None and isinstance(value, pl.DataFrame) and columns is not None:
        value = value.select(list(columns))
    return value


def _decode_pickle(buf, header):
    mv = memoryview(buf)
    buffers = [mv[o:o + n] for o, n in header["buffers"]]
    return pickle.loads(mv[: header["pickle"]], buffers=buffers)


def _nullable_mapper(pd, pa):
    mapping = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.string(): pd.StringDtype(),
        pa.large_string(): pd.StringDtype(),
        pa.float32(): pd.Float32Dtype(),
        pa.float64(): pd.Float64Dtype(),
    }
    return mapping.get


def _select_pandas(table, columns):
    """Keeps the requested columns plus the index columns pandas needs."""
    meta = table.schema.pandas_metadata or {}
    wanted = list(columns)
    field_of = {}
    for c in meta.get("columns", []):
        field_of.setdefault(c.get("name"), c.get("field_name"))
    names = []
    for w in wanted:
        f = field_of.get(w, w if isinstance(w, str) else str(w))
        if f not in table.schema.names:
            raise KeyError(f"column {w!r} is not in the stored frame")
        names.append(f)
    for ix in meta.get("index_columns", []):
        if isinstance(ix, str) and ix not in names:
            names.append(ix)
    return table.select(names)


def _restore_object_strings(df, meta):
    """pandas >= 3 reads Arrow strings as its `str` dtype even where the
    stored column was object dtype; give such columns back as object."""
    objects = {
        c.get("name")
        for c in meta.get("columns", [])
        if c.get("numpy_type") == "object" and c.get("pandas_type") in ("unicode", "bytes")
    }
    if not objects:
        return df
    fix = [c for c in df.columns if c in objects and df[c].dtype != object]
    if fix:
        df = df.astype({c: object for c in fix})
    idx = df.index
    if idx.nlevels == 1 and idx.name in objects and idx.dtype != object:
        df.index = idx.astype(object)
    elif idx.nlevels > 1:
        levels = [
            lv.astype(object) if lv.name in objects and lv.dtype != object else lv
            for lv in idx.levels
        ]
        df.index = idx.set_levels(levels)
    return df


def _to_pandas(table, header, columns, dtype_backend, copy):
    import pandas as pd
    import pyarrow as pa

    if columns is not None and header["type"] == "pandas.DataFrame":
        table = _select_pandas(table, columns)
    elif columns is not None:
        table = table.select(list(columns))
    kw = {}
    if dtype_backend is None and header.get("nan"):
        # NaN of numpy float columns is stored as NaN under a validity
        # bitmap (see _frames.pandas_table): numpy wants the NaN.
        table = _frames.nan_as_values(pa, table, header["nan"])
    if dtype_backend == "pyarrow":
        kw["types_mapper"] = pd.ArrowDtype
    elif dtype_backend == "numpy_nullable":
        kw["types_mapper"] = _nullable_mapper(pd, pa)
    elif dtype_backend is not None:
        raise ValueError("dtype_backend is None, 'numpy_nullable' or 'pyarrow'")
    if not copy:
        # One block per column lets numeric columns without nulls stay
        # views of shared memory instead of being consolidated (copied).
        kw["split_blocks"] = True
    df = table.to_pandas(**kw)
    if dtype_backend is None:
        df = _restore_object_strings(df, table.schema.pandas_metadata or {})
    if "freq" in header:
        df.index.freq = header["freq"]
    if not copy:
        _cow(df)
    return _pandas_value(df, header)


def _pandas_value(df, header):
    """A DataFrame, or its one column for a stored Series."""
    if header["type"] == "pandas.Series":
        s = df.iloc[:, 0]
        s.name = pickle.loads(bytes.fromhex(header["name"]))
        return s
    return df


def _decode_arrow(buf, metadata, header, columns, dtype_backend, copy):
    import pyarrow as pa

    kind = header["type"]
    if kind.startswith("pandas.") and not copy and "freq" not in header:
        df = _frame_reader.read(buf, metadata, header, columns, dtype_backend, _to_pandas, _select_pandas)
        if df is not None:
            return _pandas_value(_cow(df), header)
    reader = pa.ipc.open_stream(pa.py_buffer(buf))
    if kind == "pyarrow.RecordBatch":
        batch = reader.read_next_batch()
        return batch.select(list(columns)) if columns is not None else batch
    table = reader.read_all()
    if kind == "pyarrow.Table":
        return table.select(list(columns)) if columns is not None else table
    if kind.startswith("pandas."):
        return _to_pandas(table, header, columns, dtype_backend, copy)
    if kind.startswith("polars."):
        import polars as pl

        if columns is not None and kind == "polars.DataFrame":
            table = table.select(list(columns))
        df = pl.from_arrow(table, rechunk=False)
        return df.to_series(0) if kind == "polars.Series" else df
    raise ValueError(f"unknown stored type {kind!r}")
