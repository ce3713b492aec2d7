"""Frames as one contiguous Arrow record batch in shared memory.

A frame read from a multi-row-group Parquet file arrives chunked: pandas 3
keeps its string columns as chunked Arrow arrays (one chunk per row group),
a pyarrow Table from ``pq.read_table`` and a polars frame are chunked in
every column. Written as they are, such frames become an IPC stream of many
record batches, and every reader must concatenate (copy) each column to get
a numpy view - the zero-copy promise is lost exactly on the data users have.

So every frame is stored as ONE record batch, whatever its chunking, and
without a second full copy at put time:

1. The columns are sorted into three kinds: single-chunk columns (passed on
   as they are), multi-chunk columns of a "flat" type without nulls
   (fixed-width primitives, strings and binaries: their concatenation is a
   plain copy of each chunk's bytes plus rebased offsets), and the rest
   (nulls, booleans, nested, dictionary), combined with
   ``ChunkedArray.combine_chunks`` in private memory (a copy of those
   columns only).
2. A placeholder batch stands in for each flat multi-chunk column: buffers of
   the right sizes over lazily allocated zero pages (no memory is touched
   but the zero page). An IPC pass into a MockOutputStream gives the exact
   size of the object.
3. The object is created and the placeholder batch is written into it: the
   IPC writer lays out the schema, the batch metadata and every buffer. The
   stream is then opened in place to learn where each placeholder buffer
   landed, and the chunks' bytes are copied there (offsets rebased). No
   assumption about the IPC body layout is made: positions are read back
   from what the writer wrote.

Reading maps the single batch: every column is one contiguous array in
shared memory, so pandas' numeric columns without nulls, ArrowDtype and
``str`` columns, pyarrow and polars' numeric columns are views of it.
"""

__all__ = ["ArrowPlan", "plan"]


def _flat_kind(pa, typ):
    """'fixed' (with the byte width), 'binary32', 'binary64' or None for a
    type whose chunks concatenate as plain byte copies."""
    if isinstance(typ, pa.ExtensionType) or pa.types.is_dictionary(typ):
        return None, 0
    if pa.types.is_string(typ) or pa.types.is_binary(typ):
        return "binary32", 4
    if pa.types.is_large_string(typ) or pa.types.is_large_binary(typ):
        return "binary64", 8
    if pa.types.is_string_view(typ) or pa.types.is_binary_view(typ):
        return "view", 16
    if pa.types.is_boolean(typ) or typ.num_fields:
        return None, 0
    try:
        bits = typ.bit_width
    except ValueError:
        return None, 0
    if bits % 8:
        return None, 0
    return "fixed", bits // 8


class _Flat:
    """A multi-chunk column to concatenate into the object."""

    __slots__ = ("index", "kind", "width", "chunks", "length", "data_bytes", "vbufs")

    def __init__(self, index, kind, width, chunks):
        self.index = index
        self.kind = kind
        self.width = width
        self.chunks = chunks
        self.length = sum(len(c) for c in chunks)
        # A view column's data buffers: every chunk's, in order; a view of
        # a long value names its buffer by index, rebased per chunk.
        self.vbufs = [b for c in chunks for b in c.buffers()[2:]] if kind == "view" else []
        if kind in ("fixed", "view"):
            self.data_bytes = self.length * width
        else:
            self.data_bytes = sum(self._span(c)[1] - self._span(c)[0] for c in chunks)

    def _offsets(self, np, chunk):
        dt = np.int32 if self.kind == "binary32" else np.int64
        raw = chunk.buffers()[1]
        return np.frombuffer(raw, dtype=dt)[chunk.offset : chunk.offset + len(chunk) + 1]

    def _span(self, chunk):
        import numpy as np

        if len(chunk) == 0:
            return 0, 0
        offs = self._offsets(np, chunk)
        return int(offs[0]), int(offs[-1])

    def placeholder(self, pa, np, zeros):
        """An array of this column's shape over zero pages."""
        typ = self.chunks[0].type
        if self.kind == "fixed":
            return pa.Array.from_buffers(
                typ, self.length, [None, zeros.slice(0, self.data_bytes)], null_count=0
            )
        if self.kind == "view":
            # Zero views are empty inline values: valid whatever the buffers.
            bufs = [zeros.slice(0, self.data_bytes)] + [zeros.slice(0, b.size) for b in self.vbufs]
            return pa.Array.from_buffers(typ, self.length, [None] + bufs, null_count=0)
        offs = np.zeros(self.length + 1, dtype=np.int32 if self.kind == "binary32" else np.int64)
        offs[-1] = self.data_bytes
        return pa.Array.from_buffers(
            typ,
            self.length,
            [None, pa.py_buffer(offs), zeros.slice(0, self.data_bytes)],
            null_count=0,
        )

    def positions(self, written, base):
        """(offsets position, data position) of this column's buffers in
        written (an array the IPC writer laid out at address base); the
        offsets position is None for fixed-width columns."""
        bufs = written.buffers()
        if self.kind == "fixed":
            return None, bufs[1].address - base
        if self.kind == "view":
            data = tuple(b.address - base if b.size else 0 for b in bufs[2:])
            return bufs[1].address - base, data
        return bufs[1].address - base, (bufs[2].address - base if self.data_bytes else 0)

    def buffer_sizes(self):
        """The sizes of the buffers the IPC writer gives this column."""
        if self.kind == "fixed":
            return [0, self.data_bytes]
        if self.kind == "view":
            return [0, self.data_bytes] + [b.size for b in self.vbufs]
        k = 4 if self.kind == "binary32" else 8
        return [0, (self.length + 1) * k, self.data_bytes]

    def fill(self, np, dst, opos, dpos):
        """Copies the chunks into dst: the values at dpos, the rebased
        offsets (binary kinds) at opos."""
        if self.kind == "view":
            for pos, src, soff, n, _, _ in self.segments(np, opos, dpos):
                dst[pos : pos + n] = np.frombuffer(src, dtype=np.uint8)[soff : soff + n]
            self.rebase(np, dst, opos)
            return
        if self.kind == "fixed":
            pos = dpos
            w = self.width
            for c in self.chunks:
                n = len(c) * w
                if n:
                    src = np.frombuffer(c.buffers()[1], dtype=np.uint8)
                    dst[pos : pos + n] = src[c.offset * w : c.offset * w + n]
                    pos += n
            return
        dt = np.int32 if self.kind == "binary32" else np.int64
        offs = dst[opos : opos + (self.length + 1) * dt().itemsize].view(dt)
        row = data = 0
        for c in self.chunks:
            n = len(c)
            if n == 0:
                continue
            src_offs = self._offsets(np, c)
            start, end = int(src_offs[0]), int(src_offs[-1])
            np.subtract(src_offs[:-1], start - data, out=offs[row : row + n])
            if end > start:
                src = np.frombuffer(c.buffers()[2], dtype=np.uint8)
                dst[dpos + data : dpos + data + end - start] = src[start:end]
            row += n
            data += end - start
        offs[self.length] = data

    def segments(self, np, opos, dpos):
        """The copies fill() makes, as segments for Client.create: (offset,
        source, source offset, size, width, add)."""
        out = []
        if self.kind == "view":
            return self._view_segments(np, opos, dpos)
        if self.kind == "fixed":
            pos, w = dpos, self.width
            for c in self.chunks:
                n = len(c) * w
                if n:
                    out.append((pos, c.buffers()[1], c.offset * w, n, 0, 0))
                    pos += n
            return out
        k = 4 if self.kind == "binary32" else 8
        row = data = 0
        for c in self.chunks:
            n = len(c)
            if n == 0:
                continue
            start, end = self._span(c)
            out.append((opos + row * k, c.buffers()[1], c.offset * k, n * k, k, data - start))
            if end > start:
                out.append((dpos + data, c.buffers()[2], start, end - start, 0, 0))
            row += n
            data += end - start
        last = np.array([data], dtype=np.int32 if k == 4 else np.int64)
        out.append((opos + self.length * k, last, 0, k, 0, 0))
        return out

    def _rebases(self):
        """(first view, views, buffers before) of each chunk whose long
        values name data buffers after the first chunk's: their buffer
        indices must grow by that count."""
        out = []
        row = first = 0
        for c in self.chunks:
            nbufs = len(c.buffers()) - 2
            if len(c) and first and nbufs:
                out.append((row, len(c), first))
            row += len(c)
            first += nbufs
        return out

    def rebase(self, np, dst, opos):
        """Rebases, in place in dst, the buffer indices of the views copied
        to opos as they were (16 bytes a value: length, prefix, buffer
        index, offset; a value of up to 12 bytes is inline and names no
        buffer). Done after the create's copy, in the object's already
        reserved pages: a private rebased copy would fault in fresh pages."""
        for row, n, first in self._rebases():
            at = opos + row * 16
            views = dst[at : at + n * 16].view(np.int32).reshape(-1, 4)
            np.add(views[:, 2], first, out=views[:, 2], where=views[:, 0] > 12)

    def _view_segments(self, np, opos, dpos):
        """Segments of a view column: each chunk's views as they are
        (opos: where the views go; see rebase()), then each data buffer at
        its place in dpos (a tuple)."""
        out = []
        pos = opos
        for c in self.chunks:
            n = len(c) * 16
            if n:
                out.append((pos, c.buffers()[1], c.offset * 16, n, 0, 0))
                pos += n
        for b, at in zip(self.vbufs, dpos):
            if b.size:
                out.append((at, b, 0, b.size, 0, 0))
        return out

    def in_place(self, pa, buf, base, opos, dpos):
        """This column as an array over its final place in buf (at base)."""
        typ = self.chunks[0].type

        def part(pos, size):
            return pa.foreign_buffer(base + pos, size, base=buf)

        if self.kind == "fixed":
            return pa.Array.from_buffers(typ, self.length, [None, part(dpos, self.data_bytes)], null_count=0)
        if self.kind == "view":
            data = [part(at, b.size) for b, at in zip(self.vbufs, dpos)]
            return pa.Array.from_buffers(typ, self.length, [None, part(opos, self.data_bytes)] + data, null_count=0)
        sizes = self.buffer_sizes()
        return pa.Array.from_buffers(
            typ, self.length, [None, part(opos, sizes[1]), part(dpos, self.data_bytes)], null_count=0
        )


def _pad8(n):
    return (n + 7) & ~7


def _writer_sizes(pa, np, arr):
    """The sizes of the body buffers the IPC writer gives arr (validity
    first, then the type's buffers), or None for a layout not modelled
    here. Buffers are 8-byte padded in the body; a validity bitmap is
    empty without nulls."""
    if arr.offset:
        return None
    typ, n = arr.type, len(arr)
    sizes = [(n + 7) // 8 if arr.null_count else 0]
    if pa.types.is_dictionary(typ):
        typ = typ.index_type  # the dictionary goes in its own message
    kind, width = _flat_kind(pa, typ)
    if kind == "fixed":
        return sizes + [n * width]
    if kind == "view":
        return sizes + [n * width] + [b.size for b in arr.buffers()[2:]]
    if kind in ("binary32", "binary64"):
        if n == 0:
            return None
        offs = np.frombuffer(arr.buffers()[1], dtype=np.int32 if kind == "binary32" else np.int64)
        return sizes + [(n + 1) * width, int(offs[n]) - int(offs[0])]
    if pa.types.is_boolean(typ):
        return sizes + [(n + 7) // 8]
    return None


class ArrowPlan:
    """How a table becomes one record batch in an object: ``size`` bytes,
    written by ``write(buf)``.

    With ``layout`` (the predicted body position of each flat column's
    buffers, and of the values of each fixed-width column without nulls),
    those bytes are copied to their final places first and the IPC writer
    is then given arrays over those very places: its copy of them is a
    copy onto itself, which memmove skips, so each byte is written once.
    ``segments()`` lists those copies for ``Client.create``, which makes
    them while it reserves the object's memory (on fresh memory, the copy
    then overlaps the page faults instead of following them); ``write(buf,
    filled=True)`` then writes the rest. The prediction is checked against
    what the writer wrote; if it were ever wrong, the columns are copied
    again to the places the writer used, so the result is right either
    way."""

    def __init__(self, pa, batch, flats):
        self._pa = pa
        self._batch = batch
        self._flats = flats
        mock = pa.MockOutputStream()
        self._write_stream(mock, batch)
        self.size = mock.size()
        self._layout, self._fixed = self._predict() if batch.num_columns else (None, {})
        self.predicted = None  # after write: whether the layout held

    def _predict(self):
        """(flat column -> (offsets position or None, data position), fixed
        column -> values position), or (None, {}) when a column's layout is
        not modelled."""
        import numpy as np

        pa = self._pa
        flat_at = {f.index: f for f in self._flats}
        sizes, where = [], {}
        for i in range(self._batch.num_columns):
            f = flat_at.get(i)
            col = f.buffer_sizes() if f else _writer_sizes(pa, np, self._batch.column(i))
            if col is None:
                return None, {}
            where[i] = len(sizes)
            sizes.extend(col)
        starts, pos = [], 0
        for n in sizes:
            starts.append(pos)
            pos += _pad8(n)
        body = self.size - 8 - pos  # the stream ends with an 8-byte marker
        layout = {}
        for f in self._flats:
            k = where[f.index]
            if f.kind == "fixed":
                layout[f.index] = (None, body + starts[k + 1])
            elif f.kind == "view":
                data = tuple(body + starts[k + 2 + j] if b.size else 0 for j, b in enumerate(f.vbufs))
                layout[f.index] = (body + starts[k + 1], data)
            else:
                layout[f.index] = (body + starts[k + 1], body + starts[k + 2])
        fixed = {}
        for i in range(self._batch.num_columns):
            arr = self._batch.column(i)
            if i not in flat_at and not arr.null_count and _flat_kind(pa, arr.type)[0] == "fixed":
                fixed[i] = body + starts[where[i] + 1]
        return layout, fixed

    def segments(self):
        """The copies of every predicted column into its place, in address
        order, as Client.create segments; None without a prediction."""
        if self._layout is None:
            return None
        import numpy as np

        out = []
        for f in self._flats:
            out.extend(f.segments(np, *self._layout[f.index]))
        for i, pos in self._fixed.items():
            arr = self._batch.column(i)
            n = len(arr) * _flat_kind(self._pa, arr.type)[1]
            if n:
                out.append((pos, arr.buffers()[1], 0, n, 0, 0))
        out.sort(key=lambda s: s[0])
        return out

    def _fixed_in_place(self, buf, base, i, pos, fill, dst):
        """Column i as an array over its place in buf, copied there first
        when fill."""
        pa = self._pa
        arr = self._batch.column(i)
        n = len(arr) * _flat_kind(pa, arr.type)[1]
        if fill and n:
            import numpy as np

            dst[pos : pos + n] = np.frombuffer(arr.buffers()[1], dtype=np.uint8, count=n)
        data = pa.foreign_buffer(base + pos, n, base=buf)
        return pa.Array.from_buffers(arr.type, len(arr), [None, data], null_count=0)

    def _write_stream(self, sink, batch):
        with self._pa.ipc.new_stream(sink, batch.schema) as writer:
            if isinstance(batch, self._pa.RecordBatch):
                writer.write_batch(batch)
            else:
                writer.write_table(batch)

    def write(self, buf, filled=False):
        """Writes the object into buf; filled: the copies of segments() are
        in place already."""
        pa = self._pa
        target = pa.py_buffer(buf)
        batch = self._batch
        in_place = self._layout is not None and (self._flats or self._fixed)
        if in_place:
            import numpy as np

            dst = np.frombuffer(buf, dtype=np.uint8)
            arrays = batch.columns
            for f in self._flats:
                opos, dpos = self._layout[f.index]
                if not filled:
                    f.fill(np, dst, opos, dpos)
                elif f.kind == "view":
                    f.rebase(np, dst, opos)
                arrays[f.index] = f.in_place(pa, buf, target.address, opos, dpos)
            for i, pos in self._fixed.items():
                arrays[i] = self._fixed_in_place(buf, target.address, i, pos, not filled, dst)
            batch = pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
        stream = pa.FixedSizeBufferWriter(target)
        stream.set_memcopy_threads(4)
        self._write_stream(stream, batch)
        written = stream.tell()
        stream.close()
        if written != self.size:
            raise RuntimeError(f"Arrow IPC wrote {written} bytes, sized {self.size}")
        if not self._flats and not in_place:
            return
        import numpy as np

        laid = pa.ipc.open_stream(target).read_next_batch()
        dst = np.frombuffer(buf, dtype=np.uint8)
        self.predicted = self._layout is not None
        for f in self._flats:
            actual = f.positions(laid.column(f.index), target.address)
            if self._layout is None or self._layout[f.index] != actual:
                self.predicted = False
                f.fill(np, dst, *actual)
        for i, pos in self._fixed.items():
            actual = laid.column(i).buffers()[1]
            if len(laid.column(i)) and actual.address - target.address != pos:
                self.predicted = False
                self._fixed_in_place(buf, target.address, i, actual.address - target.address, True, dst)


def plan(pa, data):
    """An :class:`ArrowPlan` for a pyarrow Table or RecordBatch. A table
    without columns (a pandas frame that is all index) is written as it is:
    a batch would lose its row count."""
    if isinstance(data, pa.RecordBatch) or data.num_columns == 0:
        return ArrowPlan(pa, data, [])
    arrays, flats = [], []
    for i, col in enumerate(data.columns):
        chunks = [c for c in col.chunks if len(c)]
        if len(chunks) == 1 and len(chunks[0]) == len(col):
            arrays.append(chunks[0])
            continue
        kind, width = _flat_kind(pa, col.type)
        if kind is None or not chunks or any(c.null_count for c in chunks):
            try:
                arrays.append(col.combine_chunks())
            except (pa.ArrowException, NotImplementedError):
                # e.g. dictionaries that differ between chunks
                return ArrowPlan(pa, data, [])
            continue
        flats.append(_Flat(i, kind, width, chunks))
        arrays.append(None)
    if flats:
        import numpy as np

        # One zero-filled allocation serves every placeholder: calloc maps
        # it lazily, and the IPC writer only reads it.
        size = max(max([f.data_bytes] + [b.size for b in f.vbufs]) for f in flats)
        zeros = pa.py_buffer(np.zeros(size or 1, dtype=np.uint8))
        for f in flats:
            arrays[f.index] = f.placeholder(pa, np, zeros)
    batch = pa.RecordBatch.from_arrays(arrays, schema=data.schema)
    return ArrowPlan(pa, batch, flats)


# ------------------------------------------------------------ copy-on-write


def _shared_root(values, np):
    """The ndarray at the bottom of values' base chain, if values is (or
    wraps) a read-only numpy array - a view of shared memory."""
    arr = values if isinstance(values, np.ndarray) else None
    if arr is None:
        for attr in ("_ndarray", "_data"):  # DatetimeArray, masked arrays
            inner = getattr(values, attr, None)
            if isinstance(inner, np.ndarray):
                arr = inner
                break
    if arr is None or arr.flags.writeable:
        return None
    while isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr


def share_pandas(value):
    """Makes a pandas DataFrame/Series whose blocks are views of shared
    memory copy-on-write, as pandas 3 does for data shared between frames:
    a write (``loc``/``iloc``/``at`` assignment, ``fillna(inplace=True)``,
    ``df["a"] *= 2``, ...) first copies the block it touches - one column,
    as frames come from Arrow with one block per column - and the other
    columns stay views.

    pandas copies a block before writing when its values are referenced
    from elsewhere (``BlockValuesRefs.has_reference()``). Each shared block
    gets one more such reference: a weak reference to the ndarray at the
    bottom of its values' base chain, which every view derived from the
    frame keeps alive. pandas has no public hook for this; if its internals
    differ, nothing is changed and writes keep raising "assignment
    destination is read-only". Writing through a raw numpy array
    (``df["a"].values[0] = 1``, ``to_numpy()``) bypasses pandas and raises
    that error too. Returns value."""
    import weakref

    import numpy as np

    try:
        blocks = value._mgr.blocks
        for blk in blocks:
            root = _shared_root(blk.values, np)
            if root is not None:
                blk.refs.referenced_blocks.append(weakref.ref(root))
    except (AttributeError, TypeError):
        pass
    return value


# ------------------------------------------------------- pandas to Arrow


def _has_nan(np, arr):
    """Whether a float array holds a NaN: one summing pass (NaN propagates;
    only inf - inf can fake one, then a precise check). It runs at memory
    speed; np.dot is no faster on one CPU and leaves BLAS threads spinning
    beside the put's own."""
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.add.reduce(arr)
    return bool(np.isnan(total)) and bool(np.isnan(arr).any())


def _nan_validity(np, pa, values):
    """(validity bitmap, null count) of a float array whose NaN slots are
    nulls: Arrow's bitmaps are LSB first, which packbits' little order is."""
    valid = values == values  # False exactly at NaN
    return pa.py_buffer(np.packbits(valid, bitorder="little")), len(values) - int(np.count_nonzero(valid))


def pandas_table(pa, df):
    """(table, nan_columns): ``pa.Table.from_pandas(df)``, except for how
    numpy float columns are converted.

    pyarrow turns each NaN into a null with a pass that builds a validity
    bitmap over every float column (~0.1 s per 10M values, most of a put's
    CPU time, even for a column without NaN), and leaves the null slots'
    values undefined, so that a reader's to_pandas() must copy the column to
    put NaN back: a float column with one NaN was never a view. Here the
    values are taken as they are (zero-copy); a column that holds NaN (one
    summing pass finds out) gets a validity bitmap with the NaN slots as
    nulls, and its values keep the NaN. So the Arrow and nullable backends
    see missing values without any work at get, and the default backend
    drops the bitmap (``nan_as_values``) and gets a view with the NaN in
    place - pandas' own representation, an exact round trip. nan_columns
    names those columns (kept in the object's header).
    """
    import json

    import numpy as np

    floats = set()
    for i in range(df.shape[1]):
        dt = df.dtypes.iloc[i]
        if isinstance(dt, np.dtype) and dt.kind == "f" and dt.itemsize in (4, 8):
            floats.add(i)
    if not floats:
        return pa.Table.from_pandas(df, preserve_index=None), []
    import pandas as pd

    proxy = df.copy(deep=False)
    values = {}
    for i in sorted(floats):
        arr = df.iloc[:, i].to_numpy()
        values[i] = arr
        # Same bits as integers: pyarrow takes them without a NaN scan. A
        # Series (copy=False) makes isetitem share the memory, not copy it.
        ints = arr.view(np.int64 if arr.itemsize == 8 else np.int32)
        proxy.isetitem(i, pd.Series(ints, index=df.index, copy=False))
    table = pa.Table.from_pandas(proxy, preserve_index=None)
    meta = json.loads(table.schema.metadata[b"pandas"])
    nan_columns = []
    for i in sorted(floats):
        arr = values[i]
        ftype = pa.float64() if arr.itemsize == 8 else pa.float32()
        name = table.schema.field(i).name
        has_nan = _has_nan(np, arr)
        chunks, at = [], 0
        for c in table.column(i).chunks:
            data = c.buffers()[1].slice(c.offset * arr.itemsize, len(c) * arr.itemsize)
            validity, nulls = None, 0
            if has_nan:
                validity, nulls = _nan_validity(np, pa, arr[at : at + len(c)])
            at += len(c)
            chunks.append(pa.Array.from_buffers(ftype, len(c), [validity, data], null_count=nulls))
        if has_nan:
            nan_columns.append(name)
        table = table.set_column(i, pa.field(name, ftype), pa.chunked_array(chunks, type=ftype))
        col = meta["columns"][i]
        col["pandas_type"] = col["numpy_type"] = str(arr.dtype)
    schema_meta = dict(table.schema.metadata)
    schema_meta[b"pandas"] = json.dumps(meta).encode()
    return table.replace_schema_metadata(schema_meta), nan_columns


def nan_as_values(pa, table, nan_columns):
    """The table with the validity bitmaps of nan_columns dropped, so that
    their null slots read as the NaN stored in them (the default pandas
    backend: the column stays a view of shared memory)."""
    for name in nan_columns:
        i = table.schema.get_field_index(name)
        if i < 0:
            continue  # not selected
        field = table.schema.field(i)
        chunks = [
            pa.Array.from_buffers(field.type, len(c), [None, c.buffers()[1]], null_count=0, offset=c.offset)
            for c in table.column(i).chunks
        ]
        table = table.set_column(i, field, pa.chunked_array(chunks, type=field.type))
    return table
