"""The example app's data: the frame it serves and where it is shared.

make_frame(rows, generation) builds the seed's kind of frame: `rows` sales
rows with 20 columns (region, product, day, quantity, price, revenue and 14
numeric measures), deterministic per generation so a test can compute what
the app must show. Generation g's prices are (1 + g/2) times generation 0's,
so every aggregate changes when the loader swaps data sets.

open_backend() returns the three ways the app shares data between its
gunicorn workers, chosen with $DASH_APP_BACKEND:

- "shoal" (default): the frame is a plain shoal name (never evicted, read
  zero-copy), Flask-Caching and dash-extensions' Serverside outputs use
  shoal.flask_caching.ShoalCache and shoal.dash.ShoalBackend;
- "filesystem": cachelib's FileSystemCache for the frame, Flask-Caching's
  FileSystemCache, dash-extensions' FileSystemBackend, under
  $DASH_APP_CACHE_DIR;
- "redis": cachelib's RedisCache for the frame, Flask-Caching's RedisCache
  and dash-extensions' RedisBackend against $DASH_APP_REDIS_PORT on
  127.0.0.1.
"""

import os

import numpy as np
import pandas as pd

REGIONS = ["North", "South", "East", "West", "Central", "Coast", "Mountain", "Islands"]
PRODUCTS = 200
DAYS = 365
FRAME_NAME = os.environ.get("DASH_APP_FRAME", "sales")


def make_frame(rows, generation=0):
    """The data set of one generation: rows x 20 columns."""
    rng = np.random.default_rng(1000 + generation)
    qty = rng.integers(1, 20, rows, dtype=np.int32)
    price = np.round(rng.uniform(1.0, 100.0, rows), 2) * (1.0 + 0.5 * generation)
    cols = {
        "region": rng.integers(0, len(REGIONS), rows, dtype=np.int8),
        "product": rng.integers(0, PRODUCTS, rows, dtype=np.int16),
        "day": rng.integers(0, DAYS, rows, dtype=np.int16),
        "qty": qty,
        "price": price,
        "revenue": qty * price,
    }
    for i in range(14):
        cols[f"m{i:02d}"] = rng.standard_normal(rows)
    return pd.DataFrame(cols)


def select(df, region):
    """The rows of one region."""
    return df[df["region"].to_numpy() == REGIONS.index(region)]


def daily_revenue(sel):
    """Revenue per day of selected rows: (days, values) as lists."""
    daily = sel.groupby("day")["revenue"].sum()
    return [int(d) for d in daily.index], [round(float(v), 2) for v in daily.to_numpy()]


def top_products(sel, n=10):
    """The n products with the most revenue of selected rows, as table rows."""
    top = (
        sel.groupby("product")
        .agg(qty=("qty", "sum"), revenue=("revenue", "sum"))
        .nlargest(n, "revenue")
        .reset_index()
    )
    return [
        {"product": int(p), "qty": int(q), "revenue": round(float(r), 2)}
        for p, q, r in zip(top["product"], top["qty"], top["revenue"])
    ]


class ShoalFrames:
    """The frame as a plain shoal name: set atomically, read zero-copy."""

    def __init__(self, socket):
        import shoal

        self.store = shoal.connect(socket)

    def put(self, df):
        self.store[FRAME_NAME] = df

    def get(self, columns=None):
        return self.store.get(FRAME_NAME, columns=columns)

    def version(self):
        try:
            return self.store.version(FRAME_NAME)
        except KeyError:
            return 0


class CachelibFrames:
    """The frame as one entry of a cachelib cache (pickled), with a version
    counter beside it, written after the frame."""

    def __init__(self, cache):
        self.cache = cache

    def put(self, df):
        if not self.cache.set(FRAME_NAME, df, timeout=0):
            raise RuntimeError(f"{type(self.cache).__name__} refused the frame")
        self.cache.inc(FRAME_NAME + ":version")

    def get(self, columns=None):
        df = self.cache.get(FRAME_NAME)
        if df is None or columns is None:
            return df
        return df[columns]

    def version(self):
        return int(self.cache.get(FRAME_NAME + ":version") or 0)


def backend_name():
    return os.environ.get("DASH_APP_BACKEND", "shoal")


def open_backend():
    """(frames, Flask-Caching config, dash-extensions backend) of the
    backend chosen by $DASH_APP_BACKEND."""
    kind = backend_name()
    if kind == "shoal":
        from shoal.dash import ShoalBackend

        socket = os.environ.get("SHOAL_SOCKET")
        config = {
            "CACHE_TYPE": "shoal.flask_caching.ShoalCache",
            "CACHE_SHOAL_SOCKET": socket,
            "CACHE_KEY_PREFIX": "dash_app/",
        }
        # Serverside entries live $DASH_APP_SERVERSIDE_TTL seconds (default:
        # the backend's 24 h); they are evictable either way.
        ttl = os.environ.get("DASH_APP_SERVERSIDE_TTL")
        backend = ShoalBackend(socket) if ttl is None else ShoalBackend(socket, default_timeout=int(ttl))
        return ShoalFrames(socket), config, backend
    if kind == "filesystem":
        from cachelib import FileSystemCache
        from dash_extensions.enrich import FileSystemBackend

        root = os.environ.get("DASH_APP_CACHE_DIR", "/tmp/dash_app_cache")
        frames = CachelibFrames(FileSystemCache(os.path.join(root, "frames"), default_timeout=0))
        config = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": os.path.join(root, "flask")}
        return frames, config, FileSystemBackend(cache_dir=os.path.join(root, "serverside"))
    if kind == "redis":
        from cachelib import RedisCache
        from dash_extensions.enrich import RedisBackend

        port = int(os.environ.get("DASH_APP_REDIS_PORT", "6379"))
        frames = CachelibFrames(
            RedisCache(host="127.0.0.1", port=port, default_timeout=0, key_prefix="frames/")
        )
        config = {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_HOST": "127.0.0.1",
            "CACHE_REDIS_PORT": port,
        }
        return frames, config, RedisBackend(host="127.0.0.1", port=port)
    raise ValueError(f"DASH_APP_BACKEND must be shoal, filesystem or redis, not {kind!r}")
