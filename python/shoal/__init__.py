"""shoal: a shared-memory object store for one host.

    import shoal
    store = shoal.connect()          # starts a local daemon if none runs
    store["company_A"] = df          # pandas / pyarrow / polars / numpy / any picklable
    df = store["company_A"]          # zero-copy where the types allow
    oid = store.put(arr); arr = store.get(oid)

The store itself is the C daemon ``shoal serve``; this package is a client
(the C extension shoal._shoal, built from the same sources as libshoal)
plus the glue that writes pandas/pyarrow/polars/numpy values into shared
memory and reads them back without copying. numpy, pandas, pyarrow and
polars are optional. Plasma users: ``import shoal.plasma as plasma``.
"""

from shoal._shoal import (
    Buffer,
    Busy,
    Error,
    Event,
    InvalidArgument,
    NotOwner,
    ObjectExists,
    ObjectID,
    ObjectNotFound,
    ObjectNotSealed,
    ObjectSealed,
    ProtocolError,
    StoreFull,
    StoreUnavailable,
    Timeout,
    TooBig,
    VersionConflict,
    __version__,
    default_socket,
)
from shoal._store import Store, Subscription, connect

__all__ = [
    "Buffer",
    "Busy",
    "Error",
    "Event",
    "InvalidArgument",
    "NotOwner",
    "ObjectExists",
    "ObjectID",
    "ObjectNotFound",
    "ObjectNotSealed",
    "ObjectSealed",
    "ProtocolError",
    "Store",
    "StoreFull",
    "StoreUnavailable",
    "Subscription",
    "Timeout",
    "TooBig",
    "VersionConflict",
    "__version__",
    "connect",
    "default_socket",
]
