"""A cachelib backend on shoal: ``shoal.cachelib.ShoalCache``.

Every process on the host that opens a ShoalCache on the same socket sees
the same entries (gunicorn workers, Dash callbacks, background jobs). An
entry is a shoal name ``cache/<key_prefix><key>``; its cachelib timeout is
the name's TTL (the daemon removes it at expiry, exact to a few ms), and by
default the name is *evictable*: when the store needs space, cold entries
are dropped in LRU order instead of a set failing. Entries therefore live
apart from an application's plain names (its frames), which are never
evicted and which clear() never touches.

Values go through shoal's own serialization unless the ``serializer``
attribute is replaced: a DataFrame, an Arrow table or a numpy array comes
back zero-copy and read-only (see docs/python.md), bytes come back as
bytes, anything else through pickle. Another serializer (any cachelib
serializer with ``dumps``/``loads``) stores the bytes it makes instead.

inc() and dec() are atomic across processes: they read the entry and its
version and write the new value only if the version did not change
(shoal's compare-and-set), retrying otherwise.

Timeouts follow cachelib: ``None`` is the default timeout, ``0`` never
expires, a negative timeout expires the entry at once.
"""

import logging

from cachelib.base import BaseCache
from cachelib.serializers import BaseSerializer

import shoal
from shoal._serialize import decode, describe

__all__ = ["ShoalCache", "ShoalSerializer"]

log = logging.getLogger(__name__)

# Attempts of a read-modify-write before inc()/dec() give up; each lost
# attempt means another process wrote the entry in between.
_CAS_ATTEMPTS = 1000


class ShoalSerializer(BaseSerializer):
    """The default: values are stored with shoal's own serialization (zero-
    copy frames and arrays). Its dumps/loads pickle, for code that calls a
    cache's serializer directly; ShoalCache itself does not call them."""


class ShoalCache(BaseCache):
    """A cachelib cache whose entries live in a shoal daemon.

    socket: the daemon's socket (None: shoal's default). default_timeout:
    seconds for set() without a timeout (0: never). key_prefix: prepended
    to every key; clear() removes only entries with it. evictable: whether
    entries may be evicted when the store needs space (a plain, unevictable
    entry stays until it expires or is deleted). start: start a daemon when
    none serves the socket (memory: its capacity, e.g. "4G").
    """

    serializer = ShoalSerializer()
    # Every ShoalCache entry's name starts with this, whatever the key_prefix.
    namespace = "cache/"

    def __init__(
        self,
        socket=None,
        *,
        default_timeout=300,
        key_prefix=None,
        evictable=True,
        start=True,
        memory=None,
    ):
        super().__init__(default_timeout=default_timeout)
        self.key_prefix = key_prefix or ""
        self.evictable = bool(evictable)
        self._store = shoal.connect(socket, start=start, memory=memory)

    @property
    def store(self):
        """The underlying shoal.Store."""
        return self._store

    # ------------------------------------------------------------ reads

    def get(self, key):
        found, value, _ = self._read(self._name(key))
        return value if found else None

    def has(self, key):
        return self._name(key) in self._store

    def get_many(self, *keys):
        return [self.get(k) for k in keys]

    def get_dict(self, *keys):
        return dict(zip(keys, self.get_many(*keys)))

    # ----------------------------------------------------------- writes

    def set(self, key, value, timeout=None):
        return self._write(self._name(key), value, timeout, None)

    def add(self, key, value, timeout=None):
        # expected_version=0: only if the entry does not exist (atomically).
        return self._write(self._name(key), value, timeout, 0)

    def set_many(self, mapping, timeout=None):
        return [k for k, v in dict(mapping).items() if self.set(k, v, timeout)]

    def delete(self, key):
        try:
            del self._store[self._name(key)]
        except KeyError:
            return False
        return True

    def delete_many(self, *keys):
        # cachelib: a key that does not exist counts as deleted.
        for k in keys:
            self.delete(k)
        return list(keys)

    def clear(self):
        """Removes every entry with this cache's key_prefix (every
        ShoalCache entry of the store when there is none), in one request."""
        self._store.delete_prefix(self.namespace + self.key_prefix)
        return True

    def inc(self, key, delta=1):
        """Adds delta to the entry (a missing one counts as 0) atomically
        across processes, keeping its remaining timeout; returns the new
        value, or None when the entry is not a number."""
        name = self._name(key)
        for _ in range(_CAS_ATTEMPTS):
            found, value, version = self._read(name)
            if not found:
                value, version = 0, 0
            if not isinstance(value, int) or isinstance(value, bool):
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    return None
            new = value + delta
            ttl = self._remaining(name) if found else None
            try:
                self._store.set(
                    name,
                    self._encode(new),
                    ttl=ttl,
                    evictable=self.evictable,
                    expected_version=version,
                )
            except shoal.VersionConflict:
                continue  # another process wrote first: read again
            except KeyError:
                continue  # it expired between the read and the write
            return new
        raise RuntimeError(f"inc({key!r}): {_CAS_ATTEMPTS} concurrent updates in a row won")

    def dec(self, key, delta=1):
        return self.inc(key, -delta)

    # ---------------------------------------------------------- helpers

    def _name(self, key):
        if callable(key):
            key = key()
        if not isinstance(key, str):
            key = str(key)
        return self.namespace + self.key_prefix + key

    def _native(self):
        return isinstance(self.serializer, ShoalSerializer)

    def _encode(self, value):
        if self._native():
            return value
        data = self.serializer.dumps(value)
        if data is None:
            raise ValueError("the serializer could not dump the value")
        return data

    def _read(self, name):
        """(found, value, version) of a name."""
        try:
            buf, version = self._store.client.get_name(name, 0)
        except KeyError:
            return False, None, 0
        if not self._native():
            try:
                data = buf.to_pybytes()
            finally:
                buf.release()
            return True, self.serializer.loads(data), version
        kind, _ = describe(buf.metadata)
        if kind == "bytes":
            # cachelib callers expect bytes back, not a view of the store.
            try:
                return True, buf.to_pybytes(), version
            finally:
                buf.release()
        return True, decode(buf, buf.metadata), version

    def _ttl(self, timeout):
        """The shoal TTL (s, or None: none) of a cachelib timeout, or False
        for an entry that expires at once."""
        timeout = self._normalize_timeout(timeout)
        if timeout == 0:
            return None
        if timeout < 0:
            return False
        return timeout

    def _remaining(self, name):
        try:
            return self._store.ttl(name)
        except KeyError:
            return None

    def _write(self, name, value, timeout, expected_version):
        ttl = self._ttl(timeout)
        if ttl is False:
            try:
                del self._store[name]
            except KeyError:
                pass
            return True
        try:
            self._store.set(
                name,
                self._encode(value),
                ttl=ttl,
                evictable=self.evictable,
                expected_version=expected_version,
            )
        except shoal.VersionConflict:
            return False
        except shoal.StoreUnavailable:
            raise
        except (shoal.Error, ValueError, TypeError) as e:
            # cachelib: a value that cannot be stored makes set() false.
            log.warning("shoal cache: cannot set %r: %s", name, e)
            return False
        return True

    def __repr__(self):
        return f"<shoal.cachelib.ShoalCache {self._store.socket_path} prefix={self.key_prefix!r}>"
