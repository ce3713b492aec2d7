"""shoal.Store: the store as a Python mapping of names, plus objects by ID.

The store logic is in C (shoal._shoal.Client: connections, pins, fork and
restart handling, the daemon auto-start); this class maps Python values to
objects with shoal._serialize and gives the API a Dash/pandas user expects:

    store = shoal.connect()
    store["company_A"] = df          # atomic replace
    df = store["company_A"]          # zero-copy where the types allow

Timeouts here are seconds (float) or None; the C layer takes milliseconds.
"""

import math
import os
import weakref
from collections.abc import MutableMapping

from shoal import _shoal, _tier_client
from shoal._daemon import find_binary
from shoal._serialize import decode, describe, encode

_DEFAULT_START_TIMEOUT = 10.0

# Every live Client, so that a forked child drops the parent's connections
# at once (the C layer would also notice on first use, by pid).
_clients = weakref.WeakSet()
# Every live _shoal.Subscription: a child frees its inherited copy, so the
# daemon sees a subscription end when the parent closes it.
_subscriptions = weakref.WeakSet()


def _after_fork_in_child():
    for client in list(_clients):
        client._after_fork()
    for sub in list(_subscriptions):
        sub._after_fork()


def _track(sub):
    """Registers a _shoal.Subscription for the at-fork cleanup."""
    _subscriptions.add(sub)
    return sub


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _ms(timeout, none_means):
    """Seconds (or None) to the C layer's milliseconds (-1: forever)."""
    if timeout is None:
        return none_means
    if timeout < 0:
        return -1
    return int(timeout * 1000 + 0.5)


def _ttl_ms(ttl):
    """A time to live in seconds (float) as whole ms for the daemon: rounded
    up, so a positive ttl never becomes 0 ("no expiry")."""
    ms = math.ceil(ttl * 1000)
    if ms > _shoal.TTL_MAX_MS:
        raise ValueError(f"ttl {ttl} s is over the limit of {_shoal.TTL_MAX_MS // 1000} s")
    return ms


def _name_meta(row):
    """A list_names / name_info row as the metadata dict of a name."""
    _, oid, version, ds, ms, flags, ttl_ms = row
    return {
        "id": oid,
        "version": version,
        "data_size": ds,
        "metadata_size": ms,
        "ttl": None if ttl_ms < 0 else ttl_ms / 1000,
        "evictable": bool(flags & _shoal.NAME_EVICTABLE),
    }


def _is_id(key):
    return isinstance(key, (_shoal.ObjectID, bytes)) and not isinstance(key, str)


class Store(MutableMapping):
    """A connection to a shoal daemon; see :func:`shoal.connect`.

    Names map to values (``store[name]``, ``del store[name]``, ``name in
    store``, iteration over names); objects are also reachable by
    :class:`ObjectID` (``put``/``get``/``delete``). One Store may be used
    from several threads and survives ``os.fork()`` (the child reconnects).
    """

    def __init__(self, client, tier_timeout=None):
        self._c = client
        _clients.add(client)
        # A miss asks the host's shoal-tier (if one runs) for this long (s).
        if tier_timeout is None:
            tier_timeout = float(os.environ.get("SHOAL_TIER_TIMEOUT", "0.5"))
        self._tier_timeout = tier_timeout

    def _get_name_or_tier(self, name, tmo):
        """get_name; on a miss, one lookup in the tier (docs/tier.md)."""
        try:
            return self._c.get_name(name, tmo)
        except _shoal.ObjectNotFound:
            if self._tier_timeout <= 0 or not _tier_client.lookup(self._c.path, name, self._tier_timeout):
                raise
        return self._c.get_name(name, 0)

    # -------------------------------------------------------------- names

    def __getitem__(self, key):
        if isinstance(key, str):
            buf, _ = self._get_name_or_tier(key, 0)
            return decode(buf, buf.metadata)
        if _is_id(key):
            [buf] = self._c.get([key], 0)
            if buf is None:
                raise _shoal.ObjectNotFound(key)
            return decode(buf, buf.metadata)
        raise TypeError(f"store keys are names (str) or ObjectIDs, not {type(key).__name__}")

    def __setitem__(self, name, value):
        self.set(name, value)

    def __delitem__(self, name):
        if _is_id(name):
            self.delete(name)
            return
        self._c.delete_name(name)

    def __contains__(self, key):
        if isinstance(key, str):
            try:
                buf, _ = self._get_name_or_tier(key, 0)
            except _shoal.ObjectNotFound:
                return False
            buf.release()
            return True
        if _is_id(key):
            return self.contains(key)
        return False

    def __len__(self):
        return self._c.stats()["names"]

    def __iter__(self):
        return iter(self.keys())

    def keys(self, prefix=None):
        """The names, as a list in name order; with prefix, only those that
        start with it (the daemon finds them in its name-ordered index and
        sends no others)."""
        return [n[0] for n in self._c.list_names(prefix)]

    # Mapping's __eq__ would load every value: a Store is equal to itself.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def names(self, prefix=None):
        """dict name -> {"id", "version", "data_size", "metadata_size",
        "ttl", "evictable"} (ttl: seconds left, or None); with prefix, only
        the names that start with it."""
        return {row[0]: _name_meta(row) for row in self._c.list_names(prefix)}

    def name_info(self, name):
        """The metadata of one name, as in :meth:`names` (KeyError if it
        does not exist). Does not get the value."""
        return _name_meta(self._c.name_info(name))

    def set(self, name, value, *, ttl=None, evictable=False, expected_version=None, timeout=None):
        """Stores value under name, atomically replacing any old value (which
        is freed once no reader holds it). Returns the name's new version.

        ttl: seconds (float) until the name expires (None: never); setting a
        name again replaces its ttl. evictable: the store may evict the value
        (and drop the name) when it needs space, least recently used first,
        instead of failing a put; plain names are never evicted.
        expected_version: compare-and-set, only if the name's version is
        that (0: the name must not exist), else VersionConflict. timeout (s)
        waits for space instead of StoreFull."""
        if not isinstance(name, str):
            raise TypeError(f"names are str, not {type(name).__name__}")
        ttl_ms = 0
        if ttl is not None:
            if ttl <= 0:
                raise ValueError(f"ttl must be positive (or None for no expiry), not {ttl}")
            ttl_ms = _ttl_ms(ttl)
        return self._write(
            value,
            _shoal.ObjectID.from_random(),
            name,
            expected_version,
            timeout,
            ttl_ms=ttl_ms,
            evictable=bool(evictable),
        )

    def expire(self, name, ttl):
        """Gives name a time to live of ttl seconds from now, replacing any
        earlier one; ttl <= 0 makes it expire now. KeyError if name does not
        exist."""
        self._c.expire(name, 0 if ttl <= 0 else _ttl_ms(ttl))

    def ttl(self, name):
        """Seconds name has left to live (a float), or None if it does not
        expire. KeyError if name does not exist."""
        ttl_ms = self._c.name_info(name)[6]
        return None if ttl_ms < 0 else ttl_ms / 1000

    def persist(self, name):
        """Takes name's time to live away: it no longer expires. KeyError if
        name does not exist."""
        self._c.persist(name)

    def delete_prefix(self, prefix):
        """Deletes every name that starts with prefix, in one step (no other
        process sees part of them gone); "" deletes every name. Values are
        freed once no reader holds them. Returns how many names went."""
        if not isinstance(prefix, str):
            raise TypeError(f"a prefix is a str, not {type(prefix).__name__}")
        return self._c.delete_prefix(prefix)

    def replace(self, name, value, expected_version, *, ttl=None, evictable=False):
        """Compare-and-set: sets name to value only if its version is still
        expected_version (0: it must not exist yet). Returns the new version;
        raises VersionConflict when someone else changed it first. ttl and
        evictable as in :meth:`set` (the new value gets them)."""
        return self.set(name, value, ttl=ttl, evictable=evictable, expected_version=expected_version)

    def version(self, name):
        """The current version of name (KeyError if it does not exist)."""
        buf, version = self._c.get_name(name, 0)
        buf.release()
        return version

    def get_with_version(self, name, *, columns=None, dtype_backend=None, copy=False):
        """(value, version) of name, for a read-modify-replace loop."""
        buf, version = self._get_name_or_tier(name, 0)
        return self._decode(buf, columns, dtype_backend, copy), version

    def wait_for(self, name, timeout=None, *, columns=None, dtype_backend=None, copy=False):
        """Waits until name exists (timeout in s, None: forever) and returns
        its value. Raises shoal.Timeout when it did not appear in time."""
        try:
            buf, _ = self._c.get_name(name, _ms(timeout, -1))
        except _shoal.ObjectNotFound:
            raise _shoal.Timeout(f"wait_for: {name!r} did not appear within {timeout} s") from None
        return self._decode(buf, columns, dtype_backend, copy)

    # ------------------------------------------------------------ objects

    def put(self, value, id=None, *, timeout=None):
        """Stores value as an anonymous object (evictable once nobody holds
        it) and returns its ObjectID."""
        oid = _shoal.ObjectID.from_random() if id is None else _shoal.ObjectID(id)
        self._write(value, oid, None, None, timeout)
        return oid

    def get(self, key, default=None, *, columns=None, dtype_backend=None, timeout=None, copy=False):
        """The value of a name or ObjectID, or a list of values for a list of
        keys; default for a key that does not exist (within timeout seconds;
        None: do not wait).

        columns: for stored frames/tables, only these columns are converted.
        dtype_backend: for pandas frames, None (numpy types; numeric columns
        without nulls are views of shared memory), "pyarrow" (ArrowDtype:
        every column stays in shared memory) or "numpy_nullable".
        copy: a private, writable copy instead of a zero-copy view.
        """
        kw = {"columns": columns, "dtype_backend": dtype_backend, "copy": copy}
        tmo = _ms(timeout, 0)
        if isinstance(key, list):
            return self._get_many(key, default, tmo, kw)
        if isinstance(key, str):
            return self._get_name(key, default, tmo, kw)
        [buf] = self._c.get([key], tmo)
        return default if buf is None else self._decode(buf, **kw)

    def _get_name(self, name, default, tmo, kw):
        try:
            buf, _ = self._get_name_or_tier(name, tmo)
        except _shoal.ObjectNotFound:
            return default
        return self._decode(buf, **kw)

    def _get_many(self, keys, default, tmo, kw):
        """IDs in one round trip; names one by one."""
        out = [default] * len(keys)
        ids = [(i, k) for i, k in enumerate(keys) if not isinstance(k, str)]
        if ids:
            bufs = self._c.get([k for _, k in ids], tmo)
            for (i, _), buf in zip(ids, bufs):
                if buf is not None:
                    out[i] = self._decode(buf, **kw)
        for i, k in enumerate(keys):
            if isinstance(k, str):
                out[i] = self._get_name(k, default, tmo, kw)
        return out

    def get_buffer(self, key, timeout=None):
        """The raw object (a read-only shoal.Buffer, pinned until released),
        or None."""
        if isinstance(key, str):
            try:
                return self._get_name_or_tier(key, _ms(timeout, 0))[0]
            except _shoal.ObjectNotFound:
                return None
        return self._c.get([key], _ms(timeout, 0))[0]

    def create(self, id, size, metadata=b"", *, timeout=None):
        """Creates an object of size bytes and returns its writable Buffer;
        write it, then seal(id) (or abort(id))."""
        return self._c.create(id, size, metadata, _ms(timeout, 0))

    def seal(self, id, name=None, *, expected_version=None):
        """Seals a created object, making it visible; with name, also points
        the name at it. Returns the name's version (or None)."""
        return self._c.seal(id, name, expected_version)

    def abort(self, id):
        """Drops a created, unsealed object."""
        self._c.abort(id)

    def contains(self, id):
        """Whether a sealed object with this ID exists."""
        return self._c.contains(id) == _shoal.STATE_SEALED

    def delete(self, ids):
        """Deletes objects by ID (one or a list). Missing IDs are ignored;
        an object still held by readers goes once they release it; a named
        object raises ObjectExists (delete its names first)."""
        many = isinstance(ids, (list, tuple))
        codes = self._c.delete(list(ids) if many else [ids])
        for oid, code in zip(ids if many else [ids], codes):
            if code not in (0, _shoal.ENOTFOUND):
                raise _shoal.ObjectExists(
                    f"delete {oid!r}: {_shoal.strerror(code)} (names still point at it)"
                    if code == _shoal.EEXISTS
                    else f"delete {oid!r}: {_shoal.strerror(code)}"
                )

    def list(self):
        """dict ObjectID -> {"state", "data_size", "metadata_size", "holders",
        "names", "create_time", "construct_duration"}: construct_duration
        is the seconds from create to seal (None while unsealed)."""
        out = {}
        for oid, state, ds, ms, holders, names, ctime, cms in self._c.list():
            out[oid] = {
                "state": "sealed" if state == _shoal.STATE_SEALED else "created",
                "data_size": ds,
                "metadata_size": ms,
                "holders": holders,
                "names": names,
                "create_time": ctime / 1e9,
                "construct_duration": None if cms < 0 else cms / 1e3,
            }
        return out

    def stats(self):
        """The daemon's counters (the keys of ``shoal stats --json``)."""
        return self._c.stats()

    def evict(self, nbytes):
        """Evicts objects nobody holds that are unnamed or only have
        evictable names (which go with them), least recently released first,
        until nbytes are freed; returns the bytes freed."""
        return self._c.evict(nbytes)

    def describe(self, key):
        """How the object of a name or ID is stored: (kind, header)."""
        buf = self.get_buffer(key)
        if buf is None:
            raise _shoal.ObjectNotFound(key)
        with buf:
            return describe(buf.metadata)

    # -------------------------------------------------------- events

    def subscribe(self, snapshot=False, ttl=False):
        """A :class:`Subscription` to the store's events: every seal,
        delete, eviction and name change from now on, in order. With
        snapshot, the current objects and names come first (as "sealed" and
        "name_set" events), ended by a "snapshot_end" event. With ttl, a
        change of a name's time to live alone (expire, persist) is a
        "name_ttl" event too."""
        return Subscription(self._c.path, snapshot=snapshot, ttl=ttl)

    # -------------------------------------------------------- the rest

    @property
    def socket_path(self):
        return self._c.path

    @property
    def capacity(self):
        return self._c.arena["capacity"]

    @property
    def client(self):
        """The underlying shoal._shoal.Client."""
        return self._c

    def reconnect(self):
        """Opens a new connection now (normally done on the next call)."""
        self._c.reconnect()

    def close(self):
        """Closes the connections. Values still alive keep their memory
        mapped (and pinned) until they die."""
        self._c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __reduce__(self):
        # Sent to another process (multiprocessing spawn): reconnect there.
        return (_reopen, (self._c.path,))

    def __repr__(self):
        return f"<shoal.Store {self._c.path}{' (closed)' if self._c.closed else ''}>"

    # ---------------------------------------------------------- helpers

    def _decode(self, buf, columns=None, dtype_backend=None, copy=False):
        value = decode(buf, buf.metadata, columns=columns, dtype_backend=dtype_backend, copy=copy)
        if copy:
            buf.release()  # the value lives in private memory: unpin now
        return value

    def _write(self, value, oid, name, expected_version, timeout, ttl_ms=0, evictable=False):
        enc = encode(value)
        tmo = _ms(timeout, 0)
        if enc.parts is not None:
            return self._c.put(
                oid, enc.parts, enc.metadata, name, expected_version, tmo, ttl_ms, evictable
            )
        # The segments are copied in as the object's memory is reserved.
        buf = self._c.create(oid, enc.size, enc.metadata, tmo, enc.segments)
        try:
            if enc.segments is None:
                enc.writer(buf)
            else:
                enc.writer(buf, filled=True)
        except BaseException:
            self._c.abort(oid)
            raise
        version = self._c.seal(oid, name, expected_version, ttl_ms, evictable)
        buf.release()
        return version


class Subscription:
    """The store's events, for cache invalidation across processes; see
    :meth:`Store.subscribe`.

    Each event is a :class:`shoal.Event` named tuple ``(kind, id, data_size,
    metadata_size, name, version, seq)`` with kind one of "sealed",
    "deleted", "evicted" (objects), "name_set", "name_deleted",
    "name_expired" (its ttl ran out), "name_evicted" (evicted with its
    object; an "evicted" event of the object follows), "name_ttl" (only
    with ``ttl=True``: its time to live changed; ``expires_ms``, a field
    outside the tuple, says when it now expires, 0 never) (names; ``id`` is the
    object the name points or pointed at), "snapshot_end" and "overflow". A subscriber that falls far behind gets "overflow", and the
    daemon then closes the subscription: the next call raises
    StoreUnavailable, and the subscriber subscribes again (with
    ``snapshot=True`` to rebuild its view).

    ``next(timeout)`` waits for one event (None when none came in time);
    iterating waits forever and ends when the subscription is closed, also
    from another thread. ``fileno()`` is for select/poll/asyncio: events may
    already be buffered, so drain with ``next(0)`` until it returns None
    before waiting on the descriptor. A subscription belongs to the process
    that opened it: after ``os.fork()`` the child subscribes again.
    """

    def __init__(self, path=None, *, snapshot=False, ttl=False):
        self._s = _track(_shoal.Subscription(path, snapshot=snapshot, ttl=ttl))

    def next(self, timeout=None):
        """The next Event, waiting up to timeout seconds (None: forever; 0:
        only what has arrived); None if none came in time."""
        return self._s.next(_ms(timeout, -1))

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self._s.next(-1)
        except _shoal.StoreUnavailable:
            if self._s.closed:
                raise StopIteration from None
            raise

    def fileno(self):
        """The socket to wait on (see the class documentation)."""
        return self._s.fileno()

    def close(self):
        """Ends the subscription."""
        self._s.close()

    @property
    def closed(self):
        return self._s.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"<shoal.Subscription {self._s.path}{' (closed)' if self._s.closed else ''}>"


def _reopen(path):
    return connect(path, start=False)


def connect(
    path=None,
    *,
    start=True,
    memory=None,
    persist=None,
    timeout=_DEFAULT_START_TIMEOUT,
    daemon_args=(),
    tier=None,
    tier_args=(),
    tier_timeout=None,
):
    """Connects to the shoal daemon at path (default: $SHOAL_SOCKET, else
    $XDG_RUNTIME_DIR/shoal.sock, else /tmp/shoal-<uid>/shoal.sock).

    If no daemon serves it and start is true, starts one in the background
    (detached, default capacity or ``memory``, e.g. "4G"), with the further
    ``shoal serve`` options in daemon_args (e.g. ``["--reserve", "2G"]``);
    many processes doing so at once start exactly one. With ``persist``, a
    directory, that daemon keeps its arena and names there (`shoal serve
    --persist DIR`): named objects survive its restart or crash. With
    start=False, raises StoreUnavailable instead. timeout (s) bounds the
    wait for a new daemon. A daemon that already runs keeps its own options.

    The connection rides through daemon restarts: the next call after one
    reconnects (with start=True it starts the daemon again, still exactly
    once among many processes) and goes on; calls that change nothing are
    repeated once if the daemon died while answering, others then raise
    StoreUnavailable.

    tier: a Redis URL ("redis://host:6379/0"); a shoal-tier process
    (``shoal-tier --redis tier -s path *tier_args``) is started next to the
    daemon unless one runs, exactly one per daemon (docs/tier.md).
    tier_timeout (s, default $SHOAL_TIER_TIMEOUT or 0.5): how long a get
    of a name missing locally waits for the tier; 0 never asks it.
    """
    path = os.fspath(path) if path is not None else _shoal.default_socket()
    if isinstance(daemon_args, (str, bytes)):
        raise TypeError("daemon_args is a sequence of options, e.g. ['--reserve', '2G']")
    extra = tuple(str(a) for a in daemon_args)
    autostart = None
    if start:
        binary = find_binary()
        if binary is not None:
            args = (("-m", str(memory)) if memory is not None else ()) + extra
            if persist is not None:
                args += ("--persist", os.fspath(persist))
            autostart = (binary, args, _ms(timeout, 10000))
    try:
        client = _shoal.Client(path, autostart=autostart)
    except _shoal.StoreUnavailable as e:
        if start and autostart is None:
            raise _shoal.StoreUnavailable(
                f"no shoal daemon serves {path}, and the shoal executable was not "
                "found to start one (set $SHOAL_BIN or reinstall shoal)"
            ) from e
        if not start:
            raise _shoal.StoreUnavailable(
                f"no shoal daemon serves {path}: start one with `shoal serve -s {path}` "
                "or call shoal.connect() with start=True"
            ) from e
        raise
    if tier is not None:
        _tier_client.ensure_running(client.path, tier, tuple(tier_args), timeout)
    return Store(client, tier_timeout)
