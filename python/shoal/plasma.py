"""shoal.plasma: the pyarrow.plasma API (Arrow <= 11) on a shoal store.

Code written for Plasma runs with one changed import::

    import shoal.plasma as plasma          # was: import pyarrow.plasma as plasma
    client = plasma.connect("/tmp/plasma")
    object_id = plasma.ObjectID(np.random.bytes(20))
    buf = client.create(object_id, size)   # mutable pyarrow.Buffer
    ...; client.seal(object_id)
    [data] = client.get_buffers([object_id])

As in Plasma, when pyarrow is installed buffers are ``pyarrow.Buffer``
objects (mutable from ``create``, zero-copy, read-only from ``get_buffers``)
and the exception classes also derive from ``pyarrow.lib.ArrowException``;
without pyarrow, buffers are :class:`shoal.Buffer` (buffer protocol,
``to_pybytes()``, ``size``). A buffer pins its object until it dies, as a
PlasmaBuffer did. ``put``/``get`` use ``pyarrow.serialize`` as Plasma did
while pyarrow still has it (< 12), so ``pyarrow.deserialize`` of a buffer
from ``get_buffers`` works as it did; frames, tables, values it cannot take
and every value under newer pyarrow use shoal's serialization.

Notifications work as in Plasma: after ``subscribe()``, the existing sealed
objects and then every seal and delete (evictions included) arrive on the
notification socket in order; ``get_next_notification()`` returns
``(object_id, data_size, metadata_size)``, with -1, -1 for a deleted object.
The socket is framed as Plasma's was: an 8-byte length in native byte order,
then that many bytes, which ``decode_notifications()`` decodes. The bytes
are shoal's event message (a 16-byte header, then the event; see
docs/python.md), not Plasma's flatbuffer. Name events are not passed on.
shoal's own API for the same events is ``Store.subscribe()``.
"""

import contextlib
import functools
import hashlib
import os
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import warnings
import weakref

import shoal
from shoal import _shoal
from shoal._daemon import find_binary
from shoal._serialize import decode, encode, encode_raw
from shoal._store import _track

try:
    import pyarrow as _pa
    from pyarrow.lib import ArrowException as _ArrowException

    _ARROW = (_ArrowException,)
except ImportError:  # pragma: no cover - exercised without pyarrow
    _pa = None
    _ARROW = ()

__all__ = [
    "ObjectID",
    "ObjectNotAvailable",
    "PlasmaBuffer",
    "PlasmaClient",
    "PlasmaObjectExists",
    "PlasmaObjectNotFound",
    "PlasmaObjectNonexistent",
    "PlasmaStoreFull",
    "connect",
    "start_plasma_store",
]

ObjectID = shoal.ObjectID
PLASMA_WAIT_TIMEOUT = 2**30


class ObjectNotAvailable:
    """Placeholder for an object that was not available within the given
    timeout (``get`` returns this class itself, as Plasma did)."""


class PlasmaObjectExists(shoal.ObjectExists, *_ARROW):
    """An object with this ID already exists."""


class PlasmaObjectNotFound(shoal.ObjectNotFound, *_ARROW):
    """No such object."""


PlasmaObjectNonexistent = PlasmaObjectNotFound  # its name before Arrow 1.0


class PlasmaStoreFull(shoal.StoreFull, *_ARROW):
    """The store cannot hold the object even after evicting."""


class PlasmaConnectionError(shoal.StoreUnavailable, *_ARROW):
    """No store serves the socket: an OSError (Plasma raised ArrowIOError,
    an OSError and an ArrowException)."""


PlasmaBuffer = _pa.Buffer if _pa is not None else shoal.Buffer

_TRANSLATE = [
    (shoal.ObjectExists, PlasmaObjectExists),
    (shoal.ObjectNotFound, PlasmaObjectNotFound),
    (shoal.StoreFull, PlasmaStoreFull),
    (shoal.StoreUnavailable, PlasmaConnectionError),
]


def _plasma_errors(fn):
    """Re-raises shoal errors as their Plasma classes."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except shoal.Error as e:
            for src, dst in _TRANSLATE:
                if isinstance(e, src) and not isinstance(e, dst):
                    raise dst(*e.args) from e
            raise

    return wrapper


def _wrap(buf):
    """A shoal.Buffer as Plasma handed it out: a zero-copy pyarrow.Buffer
    (mutable while the object is being created) when pyarrow is there."""
    if buf is None or _pa is None:
        return buf
    return _pa.py_buffer(buf)


# Metadata of objects put with pyarrow.serialize (Plasma's put left it
# empty; shoal needs to know how to decode them in get).
_ARROW_SERIALIZED = b"shoal/1 pyarrow-serialize"


def _arrow_serialize(value):
    """pyarrow.serialize(value) as Plasma's put did it, or None: without a
    pyarrow that has it (>= 12 has not), for frames and tables (shoal's Arrow
    IPC keeps them zero-copy), and for values it cannot take (shoal pickles
    them instead of failing)."""
    if _pa is None or not hasattr(_pa, "serialize"):
        return None
    module = type(value).__module__ or ""
    if module.split(".")[0] in ("pandas", "pyarrow", "polars"):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return _pa.serialize(value)
        except _ArrowException:
            return None


def _decode(buf):
    """The value of one object from get()."""
    if buf.metadata == _ARROW_SERIALIZED and hasattr(_pa, "deserialize"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return _pa.deserialize(_pa.py_buffer(buf))
    return decode(buf, buf.metadata)


def _ids(object_ids):
    for oid in object_ids:
        if not isinstance(oid, ObjectID):
            raise TypeError(f"expected an ObjectID, got {type(oid).__name__}")
    return list(object_ids)


class PlasmaClient:
    """A client of a shoal store with Plasma's methods; see :func:`connect`."""

    def __init__(self, client, store_socket_name):
        self._c = client
        self._socket = store_socket_name
        self._options = None
        self._notifier = None

    @property
    def store_socket_name(self):
        return self._socket

    @_plasma_errors
    def create(self, object_id, data_size, metadata=b""):
        """Creates an object and returns its buffer, mutable until seal."""
        return _wrap(self._c.create(object_id, data_size, bytes(metadata)))

    @_plasma_errors
    def create_and_seal(self, object_id, data, metadata=b""):
        """Stores data (bytes) as a new sealed object."""
        self._c.put(object_id, [data], bytes(metadata))

    @_plasma_errors
    def seal(self, object_id):
        """Seals a created object: immutable and visible to every client."""
        self._c.seal(object_id)

    @_plasma_errors
    def get_buffers(self, object_ids, timeout_ms=-1, with_meta=False):
        """Buffers of the objects (None when not available within
        timeout_ms: -1 waits, 0 polls). with_meta: (metadata, buffer)
        pairs."""
        bufs = self._c.get(_ids(object_ids), int(timeout_ms))
        if not with_meta:
            return [_wrap(b) for b in bufs]
        return [(None, None) if b is None else (b.metadata, _wrap(b)) for b in bufs]

    @_plasma_errors
    def get_metadata(self, object_ids, timeout_ms=-1):
        """Metadata buffers of the objects (None when not available)."""
        out = []
        for b in self._c.get(_ids(object_ids), int(timeout_ms)):
            if b is None:
                out.append(None)
                continue
            meta = b.metadata
            b.release()
            out.append(_pa.py_buffer(meta) if _pa is not None else meta)
        return out

    @_plasma_errors
    def put_raw_buffer(self, value, object_id=None, metadata=b"", memcopy_threads=6):
        """Stores a bytes-like value as is; returns its ObjectID."""
        oid = object_id if object_id is not None else ObjectID.from_random()
        self._c.put(oid, encode_raw(value).parts, bytes(metadata))
        return oid

    @_plasma_errors
    def put(self, value, object_id=None, memcopy_threads=6, serialization_context=None):
        """Stores a Python value: with pyarrow.serialize (pyarrow < 12) as
        Plasma did, else shoal's serialization (Arrow IPC for frames and
        tables, raw numpy arrays, pickle 5 otherwise)."""
        oid = object_id if object_id is not None else ObjectID.from_random()
        serialized = _arrow_serialize(value)
        if serialized is not None:
            self._write(
                oid,
                serialized.total_bytes,
                _ARROW_SERIALIZED,
                lambda buf: serialized.write_to(_pa.FixedSizeBufferWriter(_pa.py_buffer(buf))),
            )
            return oid
        enc = encode(value)
        if enc.parts is not None:
            self._c.put(oid, enc.parts, enc.metadata)
        else:
            self._write(oid, enc.size, enc.metadata, enc.writer)
        return oid

    def _write(self, oid, size, metadata, writer):
        """Creates oid, has writer fill its buffer and seals it; a writer
        that raises leaves nothing behind."""
        buf = self._c.create(oid, size, metadata)
        try:
            writer(buf)
        except BaseException:
            self._c.abort(oid)
            raise
        self._c.seal(oid)
        buf.release()

    @_plasma_errors
    def get(self, object_ids, timeout_ms=-1, serialization_context=None):
        """The value(s) of one ObjectID or a list; ObjectNotAvailable for
        objects not available within timeout_ms."""
        if isinstance(object_ids, (list, tuple)):
            bufs = self._c.get(_ids(object_ids), int(timeout_ms))
            return [ObjectNotAvailable if b is None else _decode(b) for b in bufs]
        return self.get([object_ids], timeout_ms)[0]

    @_plasma_errors
    def contains(self, object_id):
        """Whether the object is present and sealed."""
        return self._c.contains(object_id) == _shoal.STATE_SEALED

    @_plasma_errors
    def hash(self, object_id):
        """An 8-byte digest of the object's data and metadata.
        PlasmaObjectNotFound (an ArrowException) if the object is not in
        the store, or not sealed."""
        [buf] = self._c.get([object_id], 0)
        if buf is None:
            raise PlasmaObjectNotFound(f"hash: object {object_id!r} is not in the store")
        with buf:
            h = hashlib.blake2b(digest_size=8)
            with memoryview(buf) as mv:
                h.update(mv)
            h.update(buf.metadata)
            return h.digest()

    @_plasma_errors
    def delete(self, object_ids):
        """Deletes objects (those in use go when their last reader releases
        them; missing ones are ignored)."""
        self._c.delete(_ids(object_ids))

    @_plasma_errors
    def evict(self, num_bytes):
        """Evicts unused objects, least recently released first, until
        num_bytes are freed; returns the bytes freed."""
        return self._c.evict(int(num_bytes))

    @_plasma_errors
    def list(self):
        """dict ObjectID -> {data_size, metadata_size, ref_count,
        create_time, construct_duration, state}: create_time in whole
        seconds since the epoch, construct_duration the whole seconds from
        create to seal (-1 while unsealed), as Plasma gave them."""
        out = {}
        for oid, state, ds, ms, holders, names, ctime, cms in self._c.list():
            out[oid] = {
                "data_size": ds,
                "metadata_size": ms,
                "ref_count": holders,
                "create_time": ctime // 1_000_000_000,
                "construct_duration": -1 if cms < 0 else cms // 1000,
                "state": "sealed" if state == _shoal.STATE_SEALED else "created",
            }
        return out

    @_plasma_errors
    def store_capacity(self):
        """The store's capacity in bytes."""
        return self._c.arena["capacity"]

    @_plasma_errors
    def subscribe(self):
        """Subscribes to notifications: every sealed object in the store
        now, then every seal and delete from now on, in order. Calling it
        again keeps the current subscription (unless it ended, or this is a
        forked child: then it subscribes anew)."""
        n = self._notifier
        if n is None or not n.usable():
            if n is not None:
                n.close()
            self._notifier = _Notifier(self._c.path)

    def get_notification_socket(self):
        """The notification socket, for select/poll: readable when a
        notification is waiting. Read it with get_next_notification(), or
        as Plasma's: an 8-byte length in native byte order, then that many
        bytes, which decode_notifications() decodes. The client owns it:
        disconnect() closes it."""
        return self._subscribed().user_socket()

    def get_next_notification(self):
        """Waits for the next notification: (object_id, data_size,
        metadata_size); data_size and metadata_size are -1 for an object
        that was deleted or evicted. Raises PlasmaConnectionError when the
        store ended the subscription (it stopped, or this subscriber fell
        too far behind)."""
        return self._subscribed().next()

    def decode_notifications(self, buf):
        """Decodes the bytes that follow a length on the notification
        socket (also several such messages one after another, without
        their lengths, or a single message body). Returns three lists as
        Plasma did: object IDs, data sizes and metadata sizes (-1 for a
        deleted object). Name events are skipped."""
        return decode_notifications(buf)

    def _subscribed(self):
        if self._notifier is None:
            raise PlasmaConnectionError("not subscribed to notifications: call subscribe() first")
        return self._notifier

    def disconnect(self):
        """Disconnects; buffers still alive keep their memory until they die."""
        if self._notifier is not None:
            self._notifier.close()
        self._c.close()

    @_plasma_errors
    def debug_string(self):
        """A human-readable summary of the store."""
        s = self._c.stats()
        return "\n".join(f"{k}: {v}" for k, v in s.items())

    def set_client_options(self, client_name, limit_output_memory):
        """Accepted for compatibility; shoal has no per-client memory quota."""
        self._options = (client_name, int(limit_output_memory))

    def __repr__(self):
        return f"<shoal.plasma.PlasmaClient {self._socket}>"


# ------------------------------------------------------------ notifications
#
# Why a thread: libshoal reads a subscription through a buffer, so bytes it
# has taken off the socket would be invisible to select() and to code that
# reads the socket itself, and the snapshot arrives together with the reply
# to SUBSCRIBE. Plasma's socket had no such buffer. So a thread reads the
# events with libshoal and writes the Plasma-relevant ones, as shoal event
# messages, into a socket pair whose other end is the notification socket:
# everything not yet read is in that socket, as in Plasma.

_LENGTH = struct.Struct("=Q")  # Plasma's framing: native 64-bit length
_HEADER = struct.Struct("<IHHII")  # magic, version, type, seq, body_len
_EVENT = struct.Struct("<II20sIQQ")  # kind, name_len, id, metadata, data, version
assert _HEADER.size == _shoal.PROTO_HEADER_SIZE and _EVENT.size == _shoal.PROTO_EVENT_SIZE
_MAGIC = _HEADER.pack(_shoal.PROTO_MAGIC, 0, 0, 0, 0)[:4]
_KINDS = {
    "sealed": _shoal.EVENT_SEALED,
    "deleted": _shoal.EVENT_DELETED,
    "evicted": _shoal.EVENT_EVICTED,
    "overflow": _shoal.EVENT_OVERFLOW,
}
_GONE = (_shoal.EVENT_DELETED, _shoal.EVENT_EVICTED)
_OVERFLOW_MSG = (
    "the store ended the notification subscription: this subscriber fell too "
    "far behind (overflow); call subscribe() again"
)


def _encode(ev):
    """ev (a shoal.Event of an object) as the daemon's wire message."""
    body = _EVENT.pack(
        _KINDS[ev.kind],
        0,
        ev.id.binary() if ev.id is not None else bytes(_shoal.ID_SIZE),
        ev.metadata_size,
        ev.data_size,
        ev.version,
    )
    header = _HEADER.pack(
        _shoal.PROTO_MAGIC, _shoal.PROTO_VERSION, _shoal.PROTO_EVENT, ev.seq & 0xFFFFFFFF, len(body)
    )
    return header + body


def _pump(sub, wsock):
    """The notification thread: events of sub into wsock until either ends."""
    try:
        while True:
            ev = sub.next(-1)
            if ev.kind in _KINDS:
                message = _encode(ev)
                wsock.sendall(_LENGTH.pack(len(message)) + message)
            if ev.kind == "overflow":
                return
    except (shoal.Error, OSError):
        return  # closed, the store went away, or the reader closed its end
    finally:
        wsock.close()
        sub.close()


def _end_notifier(sub, socks, pid):
    """Ends a subscription: sub, then the reading end of the socket pair and
    the socket handed out by get_notification_socket (socks)."""
    sub.close()  # wakes the thread, which closes its end
    if pid == os.getpid():
        # Wakes readers blocked in recv; in a forked child this would cut
        # the parent's socket, so there only the descriptors are closed.
        with contextlib.suppress(OSError):
            socks[0].shutdown(socket.SHUT_RDWR)
    for sock in socks:
        sock.close()


_notifiers = weakref.WeakSet()


def _notifiers_after_fork():
    for n in list(_notifiers):
        n.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_notifiers_after_fork)


class _Notifier:
    """One Plasma subscription: the libshoal subscription (with snapshot,
    as Plasma announced the existing objects), its thread and the socket
    pair."""

    def __init__(self, path):
        self.pid = os.getpid()
        sub = _track(_shoal.Subscription(path, snapshot=True))
        self.rsock, self.wsock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.user_sock = None
        self.thread = threading.Thread(
            target=_pump, args=(sub, self.wsock), name="shoal.plasma notifications", daemon=True
        )
        self.thread.start()
        # Also ends the subscription when the client is dropped unclosed.
        self._socks = [self.rsock]
        self._end = weakref.finalize(self, _end_notifier, sub, self._socks, self.pid)
        _notifiers.add(self)

    def close(self):
        self._end()

    def usable(self):
        return self.pid == os.getpid() and self._end.alive and self.thread.is_alive()

    def forget(self):
        """In a forked child: closes this process's copies of the sockets
        (without touching the parent's subscription)."""
        self._end.detach()
        self.wsock.close()
        for sock in self._socks:
            sock.close()

    def check(self):
        if self.pid != os.getpid():
            raise PlasmaConnectionError(
                f"this notification subscription belongs to process {self.pid}, "
                "before a fork: call subscribe() again in the child"
            )
        if not self._end.alive:
            raise PlasmaConnectionError("the client was disconnected")

    def user_socket(self):
        self.check()
        if self.user_sock is None or self.user_sock.fileno() == -1:
            # A descriptor of its own: closing it leaves the client's.
            self.user_sock = socket.socket(fileno=os.dup(self.rsock.fileno()))
            self._socks.append(self.user_sock)
        return self.user_sock

    def next(self):
        self.check()
        while True:
            try:
                message = _recv_message(self.rsock)
            except OSError:
                if self._end.alive:
                    raise
                message = None  # disconnect() closed the socket meanwhile
            if message is None:
                raise PlasmaConnectionError(
                    "the store ended the notification subscription (it stopped, "
                    "or the client was disconnected)"
                )
            ids, dsizes, msizes = decode_notifications(message)
            if ids:
                return ids[0], dsizes[0], msizes[0]
            if _EVENT.unpack_from(message, _HEADER.size)[0] == _shoal.EVENT_OVERFLOW:
                raise PlasmaConnectionError(_OVERFLOW_MSG)


def _recv_message(sock):
    """One whole message (the bytes after the length) from sock, or None at
    the end of the stream."""
    length = _recv_exact(sock, _LENGTH.size)
    if length is None:
        return None
    return _recv_exact(sock, _LENGTH.unpack(length)[0])


def _recv_exact(sock, n):
    """n bytes from sock, or None at the end of the stream. Waits in select
    when the user made the shared descriptor non-blocking."""
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except BlockingIOError:
            select.select([sock], [], [])
            continue
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def decode_notifications(buf):
    """Decodes notification bytes (see PlasmaClient.decode_notifications):
    returns (object_ids, data_sizes, metadata_sizes). ValueError for bytes
    that are not whole shoal event messages."""
    mv = memoryview(buf).cast("B")
    ids, dsizes, msizes = [], [], []
    if len(mv) and bytes(mv[:4]) != _MAGIC:
        _decode_event(mv, ids, dsizes, msizes)  # a single body
        return ids, dsizes, msizes
    off = 0
    while off < len(mv):
        if len(mv) - off < _HEADER.size:
            raise ValueError(
                "decode_notifications: a truncated message header (read 16 bytes, "
                "then the body_len bytes the header's last field gives)"
            )
        magic, version, kind, _, body_len = _HEADER.unpack_from(mv, off)
        if magic != _shoal.PROTO_MAGIC or version != _shoal.PROTO_VERSION or kind != _shoal.PROTO_EVENT:
            raise ValueError(f"decode_notifications: not a shoal event message at offset {off}")
        off += _HEADER.size
        if len(mv) - off < body_len:
            raise ValueError(
                f"decode_notifications: a truncated message ({len(mv) - off} of {body_len} body bytes)"
            )
        _decode_event(mv[off : off + body_len], ids, dsizes, msizes)
        off += body_len
    return ids, dsizes, msizes


def _decode_event(body, ids, dsizes, msizes):
    if len(body) < _EVENT.size:
        raise ValueError(f"decode_notifications: an event body of {len(body)} bytes (at least {_EVENT.size})")
    kind, name_len, oid, msize, dsize, _ = _EVENT.unpack_from(body)
    if len(body) != _EVENT.size + name_len or not 1 <= kind <= _shoal.EVENT_KIND_MAX:
        raise ValueError("decode_notifications: a malformed event")
    if kind == _shoal.EVENT_SEALED:
        ids.append(ObjectID(oid))
        dsizes.append(dsize)
        msizes.append(msize)
    elif kind in _GONE:
        ids.append(ObjectID(oid))
        dsizes.append(-1)
        msizes.append(-1)


def connect(store_socket_name, num_retries=-1):
    """Connects to the store at store_socket_name, trying num_retries times
    (-1: 50) with 100 ms between tries, as Plasma did. Raises an OSError
    (PlasmaConnectionError) when no store answers."""
    path = os.fspath(store_socket_name)
    tries = 50 if num_retries < 0 else max(1, int(num_retries))
    for attempt in range(tries):
        try:
            return PlasmaClient(_shoal.Client(path), path)
        except shoal.StoreUnavailable as e:
            if attempt + 1 == tries:
                raise PlasmaConnectionError(
                    f"could not connect to the shoal/plasma store at {path}: {e}"
                ) from e
            time.sleep(0.1)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def start_plasma_store(
    plasma_store_memory,
    use_valgrind=False,
    use_profiler=False,
    plasma_directory=None,
    use_hugepages=False,
    external_store=None,
):
    """Starts a store (``shoal serve``) with plasma_store_memory bytes on a
    socket in a fresh temporary directory; yields (socket_name, process)
    and kills the store on exit."""
    binary = find_binary()
    if binary is None:
        raise RuntimeError("the shoal executable was not found (set $SHOAL_BIN)")
    tmpdir = tempfile.mkdtemp(prefix="test_plasma-")
    proc = None
    try:
        socket_name = os.path.join(tmpdir, "plasma.sock")
        command = [binary, "serve", "-s", socket_name, "-m", str(int(plasma_store_memory))]
        if plasma_directory:
            command += ["-d", plasma_directory]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            rc = proc.poll()
            if rc is not None:
                raise RuntimeError(f"shoal serve exited unexpectedly with code {rc}")
            try:
                _shoal.Client(socket_name).close()
                break
            except shoal.StoreUnavailable:
                if time.monotonic() > deadline:
                    raise RuntimeError("shoal serve did not start within 10 s") from None
                time.sleep(0.01)
        yield socket_name, proc
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(tmpdir, ignore_errors=True)
