"""Put a large DataFrame into shoal and read it from another process, next
to pd.read_parquet of the same frame, measured in the same run.

    python bench/python/bench_frame.py [--rows 10000000] [--repeat 3]

The frame has 20 columns: 15 numeric (int64, float64, int32, float32, bool
mixes, non-zero random data) and 5 string columns (pandas' default string
dtype). A private daemon is started on a temporary socket (-m sized to the
frame) and stopped at the end; the Parquet file goes to a temporary
directory (page cache warm after the first read, as in a Dash app that
re-reads the same file).

Reported (median of --repeat runs, plus the first run):
  put            store["frame"] = df in this process
  put (recycled) the same into pages freed by a deleted earlier put
  get            store["frame"] in a fresh reader process (default backend)
  get pyarrow    store.get("frame", dtype_backend="pyarrow")
  read_parquet   pd.read_parquet(path) and with dtype_backend="pyarrow"
  ... + sum      the same, then a pass over every numeric column (what a
                 callback would pay to actually use the data: page faults
                 of a zero-copy read are paid here)
Quote the ratios; times move by ~15 % between runs on shared machines.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

READER = r"""
import json, sys, time, statistics
import numpy as np, pandas as pd, pyarrow
import shoal

path, parquet, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = shoal.connect(path, start=False)
numeric = None

def timed(fn, touch):
    global numeric
    t0 = time.perf_counter()
    df = fn()
    t1 = time.perf_counter()
    if touch:
        if numeric is None:
            numeric = [c for c in df.columns if c.startswith(("i", "f", "b"))]
        s = 0.0
        for c in numeric:
            s += float(df[c].sum())
    t2 = time.perf_counter()
    del df
    return t1 - t0, t2 - t0

cases = {
    "get": lambda: store["frame"],
    "get pyarrow": lambda: store.get("frame", dtype_backend="pyarrow"),
    "get 2 columns": lambda: store.get("frame", columns=["f0", "s0"]),
    "read_parquet": lambda: pd.read_parquet(parquet),
    "read_parquet pyarrow": lambda: pd.read_parquet(parquet, dtype_backend="pyarrow"),
    "read_parquet 2 columns": lambda: pd.read_parquet(parquet, columns=["f0", "s0"]),
}
out = {}
for name, fn in cases.items():
    runs = [timed(fn, touch=False) for _ in range(repeat)]
    touched = [timed(fn, touch=True) for _ in range(repeat)] if "columns" not in name else []
    out[name] = {
        "first_s": runs[0][0],
        "median_s": statistics.median(r[0] for r in runs),
    }
    if touched:
        out[name + " + sum"] = {
            "first_s": touched[0][1],
            "median_s": statistics.median(r[1] for r in touched),
        }
print(json.dumps(out))
"""


def make_frame(rows, seed=1):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols = {}
    for i in range(5):
        cols[f"i{i}"] = rng.integers(-(10**12), 10**12, rows, dtype=np.int64)
    for i in range(5):
        cols[f"f{i}"] = rng.standard_normal(rows)
    for i in range(2):
        cols[f"i32_{i}"] = rng.integers(-(10**6), 10**6, rows, dtype=np.int32)
    cols["f32_0"] = rng.standard_normal(rows).astype(np.float32)
    cols["b0"] = rng.random(rows) < 0.5
    cols["f_nan"] = np.where(rng.random(rows) < 0.05, np.nan, rng.random(rows))
    # 5 string columns: ids, categories as text, free text of varying length
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    cols["s0"] = pd.array(np.char.add("id-", rng.integers(0, 10**9, rows).astype(str)), dtype="str")
    cols["s1"] = pd.array(words[rng.integers(0, len(words), rows)], dtype="str")
    cols["s2"] = pd.array(np.char.add(words[rng.integers(0, 8, rows)], rng.integers(0, 10**4, rows).astype(str)), dtype="str")
    cols["s3"] = pd.array(np.char.add("user", rng.integers(0, 10**6, rows).astype(str)), dtype="str")
    cols["s4"] = pd.array(np.char.add(words[rng.integers(0, 8, rows)], words[rng.integers(0, 8, rows)]), dtype="str")
    df = pd.DataFrame(cols)
    assert df.shape[1] == 20
    return df


def start_daemon(binary, path, memory):
    proc = subprocess.Popen([binary, "serve", "-s", path, "-m", memory], stdout=subprocess.DEVNULL)
    import shoal

    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"shoal serve exited with {proc.returncode}")
        try:
            shoal._shoal.Client(path).close()
            return proc
        except shoal.StoreUnavailable:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("shoal serve did not start") from None
            time.sleep(0.01)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory", default=None, help="daemon -m (default: 3x the frame)")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args()

    import pandas as pd

    import shoal
    from shoal._daemon import find_binary

    t0 = time.perf_counter()
    df = make_frame(args.rows)
    build_s = time.perf_counter() - t0
    nbytes = int(df.memory_usage(deep=False, index=True).sum())

    tmp = tempfile.mkdtemp(prefix="shoal-bench-py-")
    path = os.path.join(tmp, "sock")
    parquet = os.path.join(tmp, "frame.parquet")
    memory = args.memory or str(max(3 * nbytes, 1 << 28))
    daemon = start_daemon(find_binary(), path, memory)
    results = {}
    try:
        store = shoal.connect(path, start=False)
        t0 = time.perf_counter()
        df.to_parquet(parquet)
        results["to_parquet"] = {"first_s": time.perf_counter() - t0}
        parquet_bytes = os.path.getsize(parquet)

        puts = []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            store["frame"] = df
            puts.append(time.perf_counter() - t0)
        results["put"] = {"first_s": puts[0], "median_s": statistics.median(puts)}
        # into recycled pages: delete, then put again (memory of the deleted
        # objects is reused without page faults)
        recycled = []
        for i in range(args.repeat):
            del store["frame"]
            store.evict(1 << 62)
            t0 = time.perf_counter()
            store["frame"] = df
            recycled.append(time.perf_counter() - t0)
        results["put (recycled)"] = {"first_s": recycled[0], "median_s": statistics.median(recycled)}
        object_bytes = store.names()["frame"]["data_size"]

        r = subprocess.run(
            [sys.executable, "-c", READER, path, parquet, str(args.repeat)],
            capture_output=True,
            timeout=3600,
        )
        if r.returncode != 0:
            raise SystemExit(r.stderr.decode())
        results.update(json.loads(r.stdout))
        store.close()
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)

    info = {
        "rows": args.rows,
        "columns": df.shape[1],
        "frame_bytes": nbytes,
        "object_bytes": object_bytes,
        "parquet_bytes": parquet_bytes,
        "build_s": build_s,
        "pandas": pd.__version__,
        "cpus": os.cpu_count(),
        "results": results,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(
        f"{args.rows:,} rows x {df.shape[1]} columns, frame {nbytes / 2**20:.0f} MiB, "
        f"object {object_bytes / 2**20:.0f} MiB, parquet {parquet_bytes / 2**20:.0f} MiB, "
        f"pandas {pd.__version__}, {os.cpu_count()} CPUs"
    )
    read_base = results["read_parquet"]["median_s"]
    write_base = results["to_parquet"]["first_s"]
    print(f"{'case':28s} {'first':>9s} {'median':>9s}  speed-up vs")
    for name, r in results.items():
        med = r.get("median_s", r["first_s"])
        if name.startswith("put"):
            ratio = f"{write_base / med:6.1f}x to_parquet"
        elif name != "to_parquet":
            ratio = f"{read_base / med:6.1f}x read_parquet"
        else:
            ratio = ""
        print(f"{name:28s} {r['first_s']:8.3f}s {med:8.3f}s  {ratio}")


if __name__ == "__main__":
    main()
