"""make bench-python: the seed's workload side by side, one run, one frame.

    python bench/python/bench_python.py [--rows 1000000,10000000] [--repeat 5]
        [--json build/bench-python.json] [--chart build/bench-python.png]
        [--only shoal,ray,...]

For each size, a 20-column frame (15 numeric columns; 5 string columns of 8,
1000, 100k and all-distinct values plus free text) is written to a Parquet
file with 10 row groups, and every system is measured on the frame as a
user gets it from that file:

  shoal            store["f"] = pd.read_parquet(path); store["f"] elsewhere
  shoal pyarrow    the same with dtype_backend="pyarrow" at both ends
  shoal 2 columns  store.get("f", columns=[2 columns])
  shoal polars     a pl.read_parquet frame, read back as polars
  read_parquet     pd.read_parquet (put: df.to_parquet), and 2 columns
  feather mmap     write_feather(uncompressed); read_table(memory_map) + to_pandas
  redis            Arrow IPC bytes in a real redis-server (Debian's), SET/GET
  pickle shm       pickle protocol 5 bytes in multiprocessing.shared_memory
  ray              a detached actor ray.put()s the frame; the reader ray.get()s

Measured: put into fresh memory and again into recycled memory (in the
process that holds the frame); in a fresh reader process, the first get,
the warm get (median of --repeat), one groupby right after a get (first use
pays the page faults of a zero-copy read), and the reader's RSS and PSS
growth over the get. For shoal, where the first-use time goes: the get, a
first pass over the numeric columns, a second pass, and the same first pass
after MADV_POPULATE_READ of the object (decides whether populating at get
would pay off), and a fresh put whose memory one thread reserves (the
baseline of the client's multi-threaded reservation).

Systems whose software is missing are skipped with a message. Everything a
system starts (shoal serve, redis-server, a Ray head) runs on temporary
sockets or 127.0.0.1 ports and is stopped by process id at the end.
Times move by ~15 % between runs on shared machines: read the ratios.
"""

import argparse
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GROUP_COL, VALUE_COL = "s_mid", "f0"
TWO_COLS = [GROUP_COL, VALUE_COL]


# ------------------------------------------------------------------ data


def make_parquet(rows, path, seed=1):
    """Writes the workload; returns (frame bytes in Arrow, Parquet bytes)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    cols = {}
    for i in range(6):
        cols[f"f{i}"] = rng.standard_normal(rows)
    for i in range(4):
        cols[f"i{i}"] = rng.integers(-(10**12), 10**12, rows, dtype=np.int64)
    for i in range(2):
        cols[f"i32_{i}"] = rng.integers(-(10**6), 10**6, rows, dtype=np.int32)
    cols["f32_0"] = rng.standard_normal(rows).astype(np.float32)
    cols["u8_0"] = rng.integers(0, 200, rows, dtype=np.uint8)
    cols["f_nan"] = np.where(rng.random(rows) < 0.05, np.nan, rng.random(rows))

    def pick(values, k):
        return pc.take(pa.array(values), pa.array(rng.integers(0, k, rows)))

    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    cols["s_low"] = pick(words, len(words))
    cols["s_mid"] = pick([f"city-{i:04d}" for i in range(1000)], 1000)
    cols["s_high"] = pick([f"user{i:06d}" for i in range(100_000)], 100_000)
    cols["s_uniq"] = pc.binary_join_element_wise(
        "id-", pc.cast(pa.array(rng.permutation(rows)), pa.string()), ""
    )
    text = [" ".join(rng.choice(words, 3 + i % 6)) + f" #{i}" for i in range(1000)]
    cols["s_text"] = pick(text, 1000)
    table = pa.table(cols)
    assert table.num_columns == 20
    pq.write_table(table, path, row_group_size=max(1, rows // 10))
    return table.nbytes, os.path.getsize(path)


# ---------------------------------------------------------------- helpers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
            if value:
                return value
        except Exception:  # noqa: BLE001 - the service is not up yet
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def stop_group(proc, timeout=30):
    """Stops a process started with start_new_session=True, and its group."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_reader(case, params, timeout=1800):
    """Runs bench/python/reader.py for one case in a fresh process."""
    r = subprocess.run(
        [sys.executable, os.path.join(HERE, "reader.py"), case, json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if r.returncode != 0:
        raise RuntimeError(f"reader {case} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- systems


class Shoal:
    name = "shoal"

    def __init__(self, tmp, frame_bytes):
        from shoal._daemon import find_binary

        self.binary = find_binary()
        if self.binary is None:
            raise RuntimeError("the shoal executable was not found (make, or set SHOAL_BIN)")
        self.path = os.path.join(tmp, "shoal.sock")
        # Room for a refresh (old + new) and a reserve of one frame: the
        # recycled put reuses warm memory.
        self.memory = str(int(2.5 * frame_bytes) + (64 << 20))
        self.reserve = str(int(1.2 * frame_bytes) + (8 << 20))
        self.proc = None

    def start(self):
        import shoal

        self.proc = subprocess.Popen(
            [self.binary, "serve", "-s", self.path, "-m", self.memory, "--reserve", self.reserve],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: shoal._shoal.Client(self.path).close() or True, 30, "shoal serve")
        return shoal.connect(self.path, start=False)

    def stop(self):
        stop_group(self.proc)

    def puts(self, value, repeat, one_thread=None):
        """(fresh put, recycled put) times: each fresh put in a new daemon;
        recycled puts after deleting the previous value. With a list as
        one_thread, each daemon also takes a fresh put whose memory one
        thread reserves (SHOAL_POPULATE_THREADS=1, the baseline of the
        client's multi-threaded reservation), before or after the default
        one in alternate repetitions; its times go to that list."""
        fresh, recycled = [], []
        for i in range(repeat):
            store = self.start()
            try:
                order = [False] if one_thread is None else [i % 2 == 0, i % 2 != 0]
                for single in order:
                    if single:
                        os.environ["SHOAL_POPULATE_THREADS"] = "1"
                        try:
                            one_thread.append(timed(lambda: store.__setitem__("g", value))[0])
                        finally:
                            del os.environ["SHOAL_POPULATE_THREADS"]
                    else:
                        fresh.append(timed(lambda: store.__setitem__("f", value))[0])
                if one_thread is not None:
                    del store["g"]
                del store["f"]
                time.sleep(0.2)  # let the daemon settle its trimming
                recycled.append(timed(lambda: store.__setitem__("f", value))[0])
                store.close()
            finally:
                if i < repeat - 1:
                    self.stop()
        return fresh, recycled


def bench_shoal(ctx, results):
    import pandas as pd

    sh = Shoal(ctx["tmp"], ctx["frame_bytes"])
    variants = [
        ("shoal", lambda: pd.read_parquet(ctx["parquet"]), {}),
        ("shoal pyarrow", lambda: pd.read_parquet(ctx["parquet"], dtype_backend="pyarrow"), {"dtype_backend": "pyarrow"}),
    ]
    try:
        import polars as pl

        variants.append(("shoal polars", lambda: pl.read_parquet(ctx["parquet"]), {}))
    except ImportError:
        print("  shoal polars: skipped (polars is not installed)")
    for name, load, kw in variants:
        value = load()
        one_thread = [] if name == "shoal" else None
        fresh, recycled = sh.puts(value, ctx["repeat"], one_thread)
        del value
        gc.collect()
        try:
            params = {"path": sh.path, "repeat": ctx["repeat"], "kw": kw}
            r = run_reader("shoal", params)
            r.update(put_s=statistics.median(fresh), put_recycled_s=statistics.median(recycled))
            if one_thread:
                r["put_one_thread_s"] = statistics.median(one_thread)
            results[name] = r
            if name == "shoal":
                r2 = run_reader("shoal", dict(params, kw={"columns": TWO_COLS}))
                r2.update(put_s=r["put_s"], put_recycled_s=r["put_recycled_s"])
                results["shoal 2 columns"] = r2
                # Where a first use goes, and what populating would change.
                r["faults"] = {
                    "lazy": run_reader("shoal", dict(params, mode="pass")),
                    "populated": run_reader("shoal", dict(params, mode="populate")),
                }
        finally:
            sh.stop()
        report(name, results)
        if name == "shoal":
            report("shoal 2 columns", results)
            one = results["shoal"].get("put_one_thread_s")
            if one:
                print(f"    fresh put with one thread reserving memory: {fmt(one, 's')} "
                      f"({one / results['shoal']['put_s']:.2f}x the default)", flush=True)
            f = results["shoal"]["faults"]
            print(f"    first use: get {fmt(f['lazy']['get_s'], 's')}, first pass over the numeric "
                  f"columns {fmt(f['lazy']['first_pass_s'], 's')}, second pass "
                  f"{fmt(f['lazy']['second_pass_s'], 's')}; with MADV_POPULATE_READ at get: "
                  f"populate {fmt(f['populated']['populate_s'], 's')} + first pass "
                  f"{fmt(f['populated']['first_pass_s'], 's')}", flush=True)


def bench_parquet(ctx, results):
    import pandas as pd

    df = pd.read_parquet(ctx["parquet"])
    out = os.path.join(ctx["tmp"], "written.parquet")
    puts = [timed(lambda: df.to_parquet(out))[0] for _ in range(ctx["repeat"])]
    del df
    gc.collect()
    r = run_reader("read_parquet", {"parquet": ctx["parquet"], "repeat": ctx["repeat"]})
    r.update(put_s=puts[0], put_recycled_s=statistics.median(puts[1:] or puts))
    results["read_parquet"] = r
    r2 = run_reader("read_parquet", {"parquet": ctx["parquet"], "repeat": ctx["repeat"], "columns": TWO_COLS})
    results["read_parquet 2 columns"] = r2
    report("read_parquet", results)
    report("read_parquet 2 columns", results)


def bench_feather(ctx, results):
    import pandas as pd
    import pyarrow.feather as feather

    df = pd.read_parquet(ctx["parquet"])
    path = os.path.join(ctx["tmp"], "frame.feather")
    puts = []
    for _ in range(ctx["repeat"]):
        if os.path.exists(path):
            os.unlink(path)  # a new file: fresh page-cache pages
        puts.append(timed(lambda: feather.write_feather(df, path, compression="uncompressed"))[0])
    recycled = [
        timed(lambda: feather.write_feather(df, path, compression="uncompressed"))[0]
        for _ in range(ctx["repeat"])
    ]
    del df
    gc.collect()
    r = run_reader("feather", {"path": path, "repeat": ctx["repeat"]})
    r.update(put_s=statistics.median(puts), put_recycled_s=statistics.median(recycled))
    results["feather mmap"] = r
    report("feather mmap", results)
    os.unlink(path)


def bench_redis(ctx, results):
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        print("  redis: skipped (redis-server is not installed: apt-get install redis-server)")
        return
    try:
        import redis
    except ImportError:
        print("  redis: skipped (the redis Python package is not installed)")
        return
    import pandas as pd
    import pyarrow as pa

    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--proto-max-bulk-len", "8gb", "--client-query-buffer-limit", "8gb",
         "--dir", ctx["tmp"]],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        r = redis.Redis(host="127.0.0.1", port=port)
        wait_for(r.ping, 30, "redis-server")
        df = pd.read_parquet(ctx["parquet"])

        def put():
            sink = pa.BufferOutputStream()
            table = pa.Table.from_pandas(df)
            with pa.ipc.new_stream(sink, table.schema) as w:
                w.write_table(table)
            r.set("f", memoryview(sink.getvalue()))

        fresh = []
        for _ in range(ctx["repeat"]):
            r.delete("f")
            fresh.append(timed(put)[0])
        recycled = [timed(put)[0] for _ in range(ctx["repeat"])]
        del df
        gc.collect()
        res = run_reader("redis", {"port": port, "repeat": ctx["repeat"]})
        res.update(put_s=statistics.median(fresh), put_recycled_s=statistics.median(recycled))
        results["redis"] = res
        r.close()
    finally:
        stop_group(proc)
    report("redis", results)


def bench_pickle_shm(ctx, results):
    import pickle
    from multiprocessing import shared_memory

    import pandas as pd

    df = pd.read_parquet(ctx["parquet"])
    shms = []

    def put():
        data = pickle.dumps(df, protocol=5)
        shm = shared_memory.SharedMemory(create=True, size=len(data))
        shm.buf[: len(data)] = data
        shms.append(shm)
        return shm.name, len(data)

    fresh = []
    for _ in range(ctx["repeat"]):
        t, (name, size) = timed(put)
        fresh.append(t)
    del df
    gc.collect()
    try:
        res = run_reader("pickle_shm", {"name": name, "size": size, "repeat": ctx["repeat"]})
        res.update(put_s=statistics.median(fresh), put_recycled_s=None)
        results["pickle shm"] = res
    finally:
        for shm in shms:
            shm.close()
            shm.unlink()
    report("pickle shm", results)


def bench_ray(ctx, results):
    try:
        import ray
    except ImportError:
        print("  ray: skipped (Ray is not installed: pip install ray)")
        return
    ray_bin = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")
    port = free_port()
    store_bytes = int(2.5 * ctx["frame_bytes"]) + (256 << 20)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
         f"--object-store-memory={store_bytes}", "--num-cpus=2", "--include-dashboard=false",
         "--disable-usage-stats", f"--temp-dir={ctx['tmp']}/ray"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    address = f"127.0.0.1:{port}"
    try:
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True, 120, "ray head")
        ray.init(address=address, namespace="shoal-bench", log_to_driver=False, _node_ip_address="127.0.0.1")
        holder = ray.remote(num_cpus=0)(RayHolder).options(name="holder", lifetime="detached").remote()
        fresh, recycled = ray.get(holder.puts.remote(ctx["parquet"], ctx["repeat"]), timeout=1800)
        res = run_reader("ray", {"address": address, "repeat": ctx["repeat"]})
        res.update(put_s=statistics.median(fresh), put_recycled_s=statistics.median(recycled))
        results["ray"] = res
        ray.kill(holder)
        ray.shutdown()
    finally:
        stop_group(head, timeout=60)
    report("ray", results)


class RayHolder:
    """The detached actor that holds the frame in Ray's object store."""

    def __init__(self):
        self.ref = None

    def puts(self, parquet, repeat):
        import gc as _gc
        import time as _t

        import pandas as pd
        import ray as _ray

        df = pd.read_parquet(parquet)
        fresh, recycled = [], []
        # The first put fills fresh object-store memory; after a delete the
        # next put reuses it.
        for i in range(repeat):
            self.ref = None
            _gc.collect()
            t0 = _t.perf_counter()
            self.ref = _ray.put(df)
            (fresh if i == 0 else recycled).append(_t.perf_counter() - t0)
        return fresh, recycled

    def get_ref(self):
        return [self.ref]


def measure_floor(nbytes, tmp, repeat):
    """What fresh memory costs on this machine, for frame-sized data: the
    shared-memory pages a put into fresh memory must get (a new memfd,
    MADV_POPULATE_WRITE, then a memcpy into it) next to writing the same
    bytes to a new file in the temporary directory (page cache), which is
    what a Feather write does; and the two kernel paths a put can take
    instead of populating: pwrite into a new memfd (one thread, 8 MiB at a
    time, as the client's writer does) and fallocate of a new memfd's
    range. Medians in seconds."""
    import mmap

    block = os.urandom(1 << 20)
    src = bytearray(block * (nbytes >> 20))
    n = len(src)
    out = {"populate_s": [], "memcpy_s": [], "file_write_s": [], "memfd_pwrite_s": [], "memfd_fallocate_s": []}
    step = 8 << 20
    view = memoryview(src)
    def on_new_memfd(key, fn):
        fd = os.memfd_create("shoal-bench-floor")
        try:
            os.ftruncate(fd, n)
            out[key].append(timed(lambda: fn(fd))[0])
        finally:
            os.close(fd)

    for _ in range(repeat):
        on_new_memfd("memfd_pwrite_s", lambda fd: [os.pwrite(fd, view[o : o + step], o) for o in range(0, n, step)])
        on_new_memfd("memfd_fallocate_s", lambda fd: os.posix_fallocate(fd, 0, n))
        fd = os.memfd_create("shoal-bench-floor")
        try:
            os.ftruncate(fd, n)
            m = mmap.mmap(fd, n)
            t, _ = timed(lambda: m.madvise(23, 0, n))  # MADV_POPULATE_WRITE
            out["populate_s"].append(t)
            t, _ = timed(lambda: m.__setitem__(slice(0, n), src))
            out["memcpy_s"].append(t)
            m.close()
        finally:
            os.close(fd)
        path = os.path.join(tmp, "floor.bin")

        def write():
            with open(path, "wb") as f:
                f.write(src)

        t, _ = timed(write)
        out["file_write_s"].append(t)
        os.unlink(path)
    return {k: statistics.median(v) for k, v in out.items()}


# ---------------------------------------------------------------- output

COLUMNS = [
    ("put_s", "put"),
    ("put_recycled_s", "put recycled"),
    ("first_get_s", "first get"),
    ("warm_get_s", "warm get"),
    ("groupby_s", "groupby after get"),
    ("rss_mb", "reader RSS +MB"),
    ("pss_mb", "reader PSS +MB"),
]


def fmt(v, key):
    if v is None:
        return "-"
    if key.endswith("_mb"):
        return f"{v:.0f}"
    if v < 0.01:
        return f"{v * 1000:.2f} ms"
    return f"{v:.3f} s"


def report(name, results):
    r = results.get(name)
    if r:
        print("  " + f"{name:24s}" + " ".join(f"{fmt(r.get(k), k):>11s}" for k, _ in COLUMNS), flush=True)


def header():
    print("  " + f"{'':24s}" + " ".join(f"{label[:11]:>11s}" for _, label in COLUMNS))


def chart(data, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("chart: skipped (matplotlib is not installed)")
        return
    size = max(data["sizes"], key=lambda s: s["rows"])
    res = size["results"]
    names = list(res)
    metrics = [("put_s", "put"), ("first_get_s", "first get"), ("warm_get_s", "warm get"), ("groupby_s", "groupby after get")]
    fig, ax = plt.subplots(figsize=(12, 5.5))
    width = 0.8 / len(metrics)
    for k, (key, label) in enumerate(metrics):
        xs = [i + (k - (len(metrics) - 1) / 2) * width for i in range(len(names))]
        ys = [res[n].get(key) or float("nan") for n in names]
        ax.bar(xs, ys, width, label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=25, ha="right")
    ax.set_ylabel("seconds (log scale)")
    ax.set_title(f"{size['rows']:,} rows x 20 columns ({size['frame_bytes'] / 2**30:.2f} GiB in Arrow), "
                 f"median of {data['repeat']}")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"chart: {path}")


def markdown(data):
    lines = []
    for size in data["sizes"]:
        lines.append(f"\n{size['rows']:,} rows ({size['frame_bytes'] / 2**20:.0f} MiB in Arrow, "
                     f"{size['parquet_bytes'] / 2**20:.0f} MiB of Parquet in 10 row groups):\n")
        lines.append("| system | " + " | ".join(label for _, label in COLUMNS) + " |")
        lines.append("|---|" + "---:|" * len(COLUMNS))
        for name, r in size["results"].items():
            lines.append(f"| {name} | " + " | ".join(fmt(r.get(k), k) for k, _ in COLUMNS) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ main

SYSTEMS = {
    "shoal": bench_shoal,
    "parquet": bench_parquet,
    "feather": bench_feather,
    "redis": bench_redis,
    "pickle": bench_pickle_shm,
    "ray": bench_ray,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="1000000,10000000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default="build/bench-python.json")
    ap.add_argument("--chart", default="build/bench-python.png")
    ap.add_argument("--only", default=",".join(SYSTEMS), help="comma-separated: " + ",".join(SYSTEMS))
    args = ap.parse_args()

    import pandas as pd
    import pyarrow as pa

    data = {
        "repeat": args.repeat,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "pandas": pd.__version__,
                    "pyarrow": pa.__version__},
        "sizes": [],
    }
    for rows in [int(r) for r in args.rows.split(",")]:
        tmp = tempfile.mkdtemp(prefix="shoal-bench-py-")
        try:
            parquet = os.path.join(tmp, "frame.parquet")
            frame_bytes, parquet_bytes = make_parquet(rows, parquet)
            print(f"\n{rows:,} rows x 20 columns: {frame_bytes / 2**20:.0f} MiB in Arrow, "
                  f"{parquet_bytes / 2**20:.0f} MiB of Parquet; median of {args.repeat}", flush=True)
            header()
            ctx = {"tmp": tmp, "parquet": parquet, "frame_bytes": frame_bytes, "repeat": args.repeat}
            results = {}
            floor = measure_floor(frame_bytes, tmp, args.repeat)
            print(f"  fresh memory for {frame_bytes / 2**20:.0f} MiB: memfd populate "
                  f"{floor['populate_s']:.3f} s + memcpy {floor['memcpy_s']:.3f} s; "
                  f"file write {floor['file_write_s']:.3f} s; memfd pwrite "
                  f"{floor['memfd_pwrite_s']:.3f} s; memfd fallocate {floor['memfd_fallocate_s']:.3f} s",
                  flush=True)
            for key in args.only.split(","):
                try:
                    SYSTEMS[key](ctx, results)
                except Exception as e:  # noqa: BLE001 - one system failing does not stop the others
                    print(f"  {key}: failed: {e}", flush=True)
                gc.collect()
            data["sizes"].append({"rows": rows, "frame_bytes": frame_bytes, "parquet_bytes": parquet_bytes,
                                  "fresh_memory": floor, "results": results})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(data, f, indent=2)
    print(markdown(data))
    print(f"\njson: {args.json}")
    chart(data, args.chart)


if __name__ == "__main__":
    main()
