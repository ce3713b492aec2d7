"""The Flask-Caching backend on shoal: ``CACHE_TYPE="shoal.flask_caching.ShoalCache"``.

Every gunicorn worker of a Flask or Dash app gets the same cache, so a
function under ``@cache.memoize()`` or a view under ``@cache.cached()`` runs
once and every worker then answers from its result; a cached DataFrame is
read zero-copy from shared memory. Configuration:

- ``CACHE_SHOAL_SOCKET``: the daemon's socket (default: shoal's default,
  i.e. $SHOAL_SOCKET or a per-user path); a daemon is started on it if none
  runs (``CACHE_SHOAL_START=False`` to never start one);
- ``CACHE_SHOAL_MEMORY``: the capacity of a daemon started so (e.g. "8G");
- ``CACHE_SHOAL_EVICTABLE``: whether entries may be evicted when the store
  is full (default True);
- ``CACHE_KEY_PREFIX`` and ``CACHE_DEFAULT_TIMEOUT`` as for every backend.

Entries are the names ``cache/<CACHE_KEY_PREFIX><key>`` (see shoal.cachelib).
"""

from flask_caching.backends.base import BaseCache

from shoal.cachelib import ShoalCache as _CachelibShoalCache

__all__ = ["ShoalCache"]


class ShoalCache(BaseCache, _CachelibShoalCache):
    """shoal.cachelib.ShoalCache with Flask-Caching's factory."""

    def __init__(
        self,
        socket=None,
        *,
        default_timeout=300,
        key_prefix=None,
        evictable=True,
        start=True,
        memory=None,
        ignore_delete_many_errors=False,
    ):
        _CachelibShoalCache.__init__(
            self,
            socket,
            default_timeout=default_timeout,
            key_prefix=key_prefix,
            evictable=evictable,
            start=start,
            memory=memory,
        )
        self.ignore_delete_many_errors = ignore_delete_many_errors

    @classmethod
    def factory(cls, app, config, args, kwargs):
        kwargs = dict(kwargs)
        kwargs.update(
            socket=config.get("CACHE_SHOAL_SOCKET"),
            memory=config.get("CACHE_SHOAL_MEMORY"),
            start=config.get("CACHE_SHOAL_START", True),
            evictable=config.get("CACHE_SHOAL_EVICTABLE", True),
            key_prefix=config.get("CACHE_KEY_PREFIX"),
            default_timeout=config.get("CACHE_DEFAULT_TIMEOUT", kwargs.get("default_timeout", 300)),
        )
        return cls(*args, **kwargs)
