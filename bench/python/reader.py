"""One reader process of make bench-python (see bench_python.py).

    python reader.py CASE PARAMS_JSON

Imports every library first (not part of any timing), then: the first get
of the frame, its RSS and PSS growth, one groupby on it, and warm gets
(median). With mode "pass" (shoal): the first pass over the numeric columns
after a first get, then a second pass; with mode "populate": the same first
pass after MADV_POPULATE_READ of the whole object (ctypes here, only to
measure). Prints one JSON line.
"""

import ctypes
import gc
import json
import pickle
import statistics
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

GROUP_COL, VALUE_COL = "s_mid", "f0"
MADV_POPULATE_READ = 22


def mem():
    """(RSS, PSS) of this process in bytes."""
    out = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key] = int(rest.split()[0]) * 1024
    return out["Rss"], out["Pss"]


def timed(fn):
    t0 = time.perf_counter()
    v = fn()
    return time.perf_counter() - t0, v


def groupby(v):
    if type(v).__module__.startswith("polars"):
        import polars as pl

        return v.group_by(GROUP_COL).agg(pl.col(VALUE_COL).mean())
    return v.groupby(GROUP_COL, observed=True)[VALUE_COL].mean()


def numeric_pass(v):
    total = 0.0
    for c in v.columns:
        s = v[c]
        if type(v).__module__.startswith("polars"):
            if s.dtype.is_numeric():
                total += float(s.sum())
        elif s.dtype.kind in "fiu":
            total += float(s.sum())
    return total


def getter(case, p):
    if case == "shoal":
        import shoal

        store = shoal.connect(p["path"], start=False)
        kw = p.get("kw", {})
        return (lambda: store.get("f", **kw)), store
    if case == "read_parquet":
        cols = p.get("columns")
        return (lambda: pd.read_parquet(p["parquet"], columns=cols)), None
    if case == "feather":
        return (lambda: feather.read_table(p["path"], memory_map=True).to_pandas()), None
    if case == "redis":
        import redis

        r = redis.Redis(host="127.0.0.1", port=p["port"])
        r.ping()
        return (lambda: pa.ipc.open_stream(r.get("f")).read_all().to_pandas()), r
    if case == "pickle_shm":
        from multiprocessing import resource_tracker, shared_memory

        shm = shared_memory.SharedMemory(name=p["name"])
        # The writer owns the segment: this process must not unlink it.
        resource_tracker.unregister(shm._name, "shared_memory")  # noqa: SLF001
        return (lambda: pickle.loads(shm.buf[: p["size"]])), shm
    if case == "ray":
        import ray

        ray.init(address=p["address"], namespace="shoal-bench", log_to_driver=False, _node_ip_address="127.0.0.1")
        holder = ray.get_actor("holder")
        [ref] = ray.get(holder.get_ref.remote())
        return (lambda: ray.get(ref)), ref
    raise SystemExit(f"unknown case {case}")


def populate(store, nbytes_hint=None):
    """MADV_POPULATE_READ over the frame's object in this process's mapping."""
    buf = store.get_buffer("f")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    start = buf.address & ~4095
    end = buf.address + len(memoryview(buf))
    rc = libc.madvise(start, end - start, MADV_POPULATE_READ)
    buf.release()
    if rc != 0:
        raise OSError(ctypes.get_errno(), "madvise(MADV_POPULATE_READ)")


def main():
    case, p = sys.argv[1], json.loads(sys.argv[2])
    get, keep = getter(case, p)
    mode = p.get("mode", "standard")
    gc.collect()
    out = {}
    if mode == "pass":
        out["get_s"], v = timed(get)
        out["first_pass_s"], _ = timed(lambda: numeric_pass(v))
        out["second_pass_s"], _ = timed(lambda: numeric_pass(v))
    elif mode == "populate":
        out["get_s"], v = timed(get)
        out["populate_s"], _ = timed(lambda: populate(keep))
        out["first_pass_s"], _ = timed(lambda: numeric_pass(v))
    else:
        rss0, pss0 = mem()
        out["first_get_s"], v = timed(get)
        rss1, pss1 = mem()
        out["rss_mb"] = (rss1 - rss0) / 2**20
        out["pss_mb"] = (pss1 - pss0) / 2**20
        out["groupby_s"], _ = timed(lambda: groupby(v))
        del v
        gc.collect()
        warm = []
        for _ in range(p["repeat"]):
            t, v = timed(get)
            warm.append(t)
            del v
            gc.collect()
        out["warm_get_s"] = statistics.median(warm)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
