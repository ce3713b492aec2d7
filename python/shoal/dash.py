"""A dash-extensions server-side backend on shoal: ``shoal.dash.ShoalBackend``.

With ``ServersideOutputTransform(backends=[ShoalBackend()])`` a callback that
returns ``Serverside(df)`` stores the frame in shoal, and the browser gets
only a key. The next callback that takes that output as input may run in any
gunicorn worker: it maps the frame from shared memory, zero-copy and
read-only, instead of unpickling a file or a Redis value.

Entries are evictable by default (the store drops cold ones instead of
failing when it is full) and expire after ``default_timeout`` seconds (24 h,
as dash-extensions' RedisBackend: a key must outlive the user's session). An
entry that expired or was evicted reads as None; unlike the file-system
backend, ``ignore_expired=True`` cannot bring it back, since the store has
already freed it. ``uid`` depends only on the socket and the key prefix, so
every worker that opens the backend the same way registers it under the
same uid.
"""

from dash_extensions.enrich import ServersideBackend

from shoal.cachelib import ShoalCache

__all__ = ["ShoalBackend"]


class ShoalBackend(ShoalCache, ServersideBackend):
    """ShoalBackend(socket=None, *, default_timeout=86400,
    key_prefix="serverside/", evictable=True, start=True, memory=None)."""

    def __init__(
        self,
        socket=None,
        *,
        default_timeout=24 * 3600,
        key_prefix="serverside/",
        evictable=True,
        start=True,
        memory=None,
    ):
        super().__init__(
            socket,
            default_timeout=default_timeout,
            key_prefix=key_prefix,
            evictable=evictable,
            start=start,
            memory=memory,
        )

    def get(self, key, ignore_expired=False):
        if key is None:
            return None
        return super().get(key)

    @property
    def uid(self):
        return f"{type(self).__name__}:{self.store.socket_path}:{self.key_prefix}"
