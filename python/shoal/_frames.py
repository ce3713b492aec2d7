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

    __slots__ = ("index", "kind", "width", "chunks", "length", "data_bytes")

    def __init__(self, index, kind, width, chunks):
        self.index = index
        self.kind = kind
        self.width = width
        self.chunks = chunks
        self.length = sum(len(c) for c in chunks)
        if kind == "fixed":
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
        offs = np.zeros(self.length + 1, dtype=np.int32 if self.kind == "binary32" else np.int64)
        offs[-1] = self.data_bytes
        return pa.Array.from_buffers(
            typ,
            self.length,
            [None, pa.py_buffer(offs), zeros.slice(0, self.data_bytes)],
            null_count=0,
        )

    def fill(self, np, dst, base, written):
        """Copies the chunks into the buffers of written (the placeholder as
        the IPC writer laid it out in dst, whose address is base)."""
        bufs = written.buffers()
        if self.kind == "fixed":
            pos = bufs[1].address - base
            w = self.width
            for c in self.chunks:
                n = len(c) * w
                if n:
                    src = np.frombuffer(c.buffers()[1], dtype=np.uint8)
                    dst[pos : pos + n] = src[c.offset * w : c.offset * w + n]
                    pos += n
            return
        dt = np.int32 if self.kind == "binary32" else np.int64
        opos = bufs[1].address - base
        offs = dst[opos : opos + (self.length + 1) * dt().itemsize].view(dt)
        dpos = bufs[2].address - base if self.data_bytes else 0
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


class ArrowPlan:
    """How a table becomes one record batch in an object: ``size`` bytes,
    written by ``write(buf)``."""

    def __init__(self, pa, batch, flats):
        self._pa = pa
        self._batch = batch
        self._flats = flats
        mock = pa.MockOutputStream()
        self._write_stream(mock)
        self.size = mock.size()

    def _write_stream(self, sink):
        with self._pa.ipc.new_stream(sink, self._batch.schema) as writer:
            if isinstance(self._batch, self._pa.RecordBatch):
                writer.write_batch(self._batch)
            else:
                writer.write_table(self._batch)

    def write(self, buf):
        pa = self._pa
        target = pa.py_buffer(buf)
        stream = pa.FixedSizeBufferWriter(target)
        stream.set_memcopy_threads(4)
        self._write_stream(stream)
        written = stream.tell()
        stream.close()
        if written != self.size:
            raise RuntimeError(f"Arrow IPC wrote {written} bytes, sized {self.size}")
        if not self._flats:
            return
        import numpy as np

        laid = pa.ipc.open_stream(target).read_next_batch()
        dst = np.frombuffer(buf, dtype=np.uint8)
        for flat in self._flats:
            flat.fill(np, dst, target.address, laid.column(flat.index))


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
        zeros = pa.py_buffer(np.zeros(max(f.data_bytes for f in flats) or 1, dtype=np.uint8))
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
