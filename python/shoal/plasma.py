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
PlasmaBuffer did. ``put``/``get`` use shoal's serialization (pyarrow's
``serialize`` that Plasma used is gone from pyarrow).

Notifications (subscribe, get_notification_socket, get_next_notification,
decode_notifications) need the daemon's notification feature, which is not
built yet: they raise NotImplementedError.
"""

import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import time

import shoal
from shoal import _shoal
from shoal._daemon import find_binary
from shoal._serialize import decode, encode, encode_raw

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
        """Stores a Python value (shoal's serialization: Arrow IPC for
        frames and tables, raw numpy arrays, pickle 5 otherwise)."""
        oid = object_id if object_id is not None else ObjectID.from_random()
        enc = encode(value)
        if enc.parts is not None:
            self._c.put(oid, enc.parts, enc.metadata)
            return oid
        buf = self._c.create(oid, enc.size, enc.metadata)
        try:
            enc.writer(buf)
        except BaseException:
            self._c.abort(oid)
            raise
        self._c.seal(oid)
        buf.release()
        return oid

    @_plasma_errors
    def get(self, object_ids, timeout_ms=-1, serialization_context=None):
        """The value(s) of one ObjectID or a list; ObjectNotAvailable for
        objects not available within timeout_ms."""
        if isinstance(object_ids, (list, tuple)):
            bufs = self._c.get(_ids(object_ids), int(timeout_ms))
            return [ObjectNotAvailable if b is None else decode(b, b.metadata) for b in bufs]
        return self.get([object_ids], timeout_ms)[0]

    @_plasma_errors
    def contains(self, object_id):
        """Whether the object is present and sealed."""
        return self._c.contains(object_id) == _shoal.STATE_SEALED

    @_plasma_errors
    def hash(self, object_id):
        """An 8-byte digest of the object's data and metadata (b"" if the
        object is not in the store)."""
        [buf] = self._c.get([object_id], 0)
        if buf is None:
            return b""
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
        create_time, construct_duration, state}."""
        out = {}
        for oid, state, ds, ms, holders, names, ctime in self._c.list():
            out[oid] = {
                "data_size": ds,
                "metadata_size": ms,
                "ref_count": holders,
                "create_time": ctime // 1_000_000_000,
                "construct_duration": -1,
                "state": "sealed" if state == _shoal.STATE_SEALED else "created",
            }
        return out

    @_plasma_errors
    def store_capacity(self):
        """The store's capacity in bytes."""
        return self._c.arena["capacity"]

    def _notifications(self, *args, **kwargs):
        raise NotImplementedError(
            "shoal.plasma notifications need the daemon's notification "
            "support (subscribe to seal/delete events), which is not built "
            "yet; poll with contains()/get_buffers(timeout_ms=...) meanwhile"
        )

    subscribe = _notifications
    get_notification_socket = _notifications
    get_next_notification = _notifications
    decode_notifications = _notifications

    def disconnect(self):
        """Disconnects; buffers still alive keep their memory until they die."""
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
