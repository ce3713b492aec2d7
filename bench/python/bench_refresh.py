"""Memory and put time across refreshes at the seed's scale: a loader
replaces one ~409 MiB frame under one name 100 times while 4 readers keep
reading it.

    python bench/python/bench_refresh.py [--mib 409] [--refreshes 100]
        [--readers dash|workers] [--daemon-args "--reserve 512M"]
    make bench-refresh

The store is the daemon that `shoal.connect()` starts by itself (default
options, on a temporary $SHOAL_SOCKET), as a user's loader would; with
--daemon-args the loader passes those options through
`connect(daemon_args=...)`. The frame is seed-like: examples/dash_app's 20
numeric columns plus 3 string columns (200,000, 50 and 4 distinct values),
two data sets written as Parquet with 10 row groups and read back with
`pd.read_parquet`, put alternately.

Readers (--readers):

  dash     examples/dash_app under `gunicorn -w 4`; 4 client threads keep
           POSTing its main callback (`update`: get 5 columns of the frame
           by name, filter one region, two group-bys, a Serverside output
           with a --serverside-ttl), each client pausing --think s;
  workers  4 plain processes, each in a loop: get the whole frame, filter
           one region over all columns (which touches every page of the
           frame), group by a string column, drop it, sleep --think s.

After each put the loader waits until the readers have read the new frame
(8 callbacks started after the put, or one read per worker), then records:
the put time, `backed_bytes` and `used_bytes` (`stats`), each reader's RSS
and PSS (/proc/PID/smaps_rollup) and the daemon's; a sampler keeps the peak
of `backed_bytes` and of the readers' RSS in between. The baseline is the
same frame put under one name into a second daemon started with --no-trim
(every freed page stays allocated: a put lands in recycled memory after the
first two), interleaved with the refreshes (alternating which goes first),
so both see the same load. Writes build/bench-refresh.json and prints a
Markdown table. The machine may be shared: quote the ratio to the baseline.
"""

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bench_dash  # noqa: E402  (the app's gunicorn, requests, /proc helpers)
from bench_dash import Gunicorn, update_request, wait_until  # noqa: E402

data = bench_dash.data  # examples/dash_app/data.py
MiB = 1 << 20
ROUND_TIMEOUT = 180.0  # s: the readers read a new frame within this

CITIES = [f"city-{i:02d}" for i in range(50)]
CHANNELS = ["web", "store", "phone", "partner"]

WORKER = textwrap.dedent(
    r"""
    import sys, time, shoal
    name, region, think = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    store = shoal.connect(start=False)
    while True:
        t0 = time.monotonic()
        df = store[name]
        sel = df[df["region"].to_numpy() == region]
        total = float(sel.groupby("city")["revenue"].sum().sum())
        del df, sel
        print(t0, time.monotonic(), total, flush=True)
        time.sleep(think)
    """
)


def make_frame(rows, generation):
    """data.make_frame's 20 numeric columns plus 3 string columns."""
    df = data.make_frame(rows, generation)
    rng = np.random.default_rng(2000 + generation)
    customers = np.array([f"C{i:07d}" for i in range(200_000)], dtype=object)
    for col, values in (("customer", customers), ("city", np.array(CITIES, dtype=object)),
                        ("channel", np.array(CHANNELS, dtype=object))):
        df[col] = pd.array(values[rng.integers(0, len(values), rows)], dtype="str")
    return df


def arrow_bytes(df):
    return pa.Table.from_pandas(df, preserve_index=False).nbytes


def frames_for(mib, tmp, parquet):
    """Two data sets of about mib MiB (in Arrow), as the loader reads them."""
    sample = 100_000
    rows = int(mib * MiB / (arrow_bytes(make_frame(sample, 0)) / sample))
    out = []
    for g in range(2):
        df = make_frame(rows, g)
        if parquet:
            path = os.path.join(tmp, f"data-{g}.parquet")
            df.to_parquet(path, row_group_size=(rows + 9) // 10)
            del df
            df = pd.read_parquet(path)
            os.unlink(path)
        out.append(df)
    return rows, out


def proc_kib(pid, name, keys):
    """Fields of /proc/PID/<name> in KiB (0 when the process is gone)."""
    out = dict.fromkeys(keys, 0)
    try:
        with open(f"/proc/{pid}/{name}") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in out:
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def mem_kib(pid):
    """Rss and Pss of a process (smaps_rollup)."""
    return proc_kib(pid, "smaps_rollup", ("Rss", "Pss"))


def status_kib(pid, keys=("VmRSS",)):
    """Fields of /proc/PID/status: VmRSS, and RssAnon (private memory) and
    RssShmem (the store's pages this process maps)."""
    return proc_kib(pid, "status", keys)


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().rstrip("B").rstrip("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def reserve_of(daemon_args, capacity):
    """The warm reserve the daemon runs with (None: unbounded)."""
    reserve = capacity // 4
    args = list(daemon_args)
    for i, a in enumerate(args):
        if a == "--reserve" and i + 1 < len(args):
            reserve = parse_size(args[i + 1])
        elif a.startswith("--reserve="):
            reserve = parse_size(a.split("=", 1)[1])
        elif a == "--trim":
            reserve = 0
        elif a in ("--no-trim", "--prefault"):
            reserve = None
    return reserve


class Reads:
    """Completed reads, as (started, ended) in CLOCK_MONOTONIC, per reader."""

    def __init__(self, n):
        self.lock = threading.Lock()
        self.done = [[] for _ in range(n)]
        self.errors = []

    def add(self, i, t0, t1):
        with self.lock:
            self.done[i].append((t0, t1))

    def wait_after(self, since, per_reader, total, timeout):
        """Waits until the readers have completed reads started after since:
        per_reader each, or total in all."""
        def ok():
            if self.errors:
                raise RuntimeError(f"a reader failed: {self.errors[0]}")
            with self.lock:
                counts = [sum(1 for t0, _ in d if t0 > since) for d in self.done]
            return min(counts) >= per_reader and sum(counts) >= total

        wait_until(ok, timeout, "the readers to read the new frame")


class DashReaders:
    """examples/dash_app under gunicorn -w 4, 4 clients POSTing `update`."""

    def __init__(self, env, tmp, version, think):
        self.think = think
        self.app = Gunicorn(env, tmp)
        self.pids = self.app.workers()
        self.reads = Reads(4)
        self.version = version  # a callable: the data version to show
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                        for i in range(4)]
        for t in self.threads:
            t.start()

    def _client(self, i):
        k = i
        while not self.stop_event.is_set():
            region = data.REGIONS[k % len(data.REGIONS)]
            k += 1
            t0 = time.monotonic()
            try:
                update_request(self.app.url, region, f"data version {self.version()}")
            except Exception as e:  # an HTTP error, a time-out, a wrong answer
                self.reads.errors.append(repr(e))
                return
            self.reads.add(i, t0, time.monotonic())
            self.stop_event.wait(self.think)

    def wait_round(self, since):
        self.reads.wait_after(since, 0, 8, ROUND_TIMEOUT)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=330)
        self.app.stop()


class WorkerReaders:
    """4 plain processes reading the whole frame in a loop."""

    def __init__(self, env, think):
        self.reads = Reads(4)
        self.procs = [
            subprocess.Popen([sys.executable, "-c", WORKER, data.FRAME_NAME, str(i), str(think)],
                             env=env, stdout=subprocess.PIPE, text=True)
            for i in range(4)
        ]
        self.pids = [p.pid for p in self.procs]
        self.threads = [threading.Thread(target=self._follow, args=(i,), daemon=True)
                        for i in range(4)]
        for t in self.threads:
            t.start()

    def _follow(self, i):
        for line in self.procs[i].stdout:
            t0, t1, _ = line.split()
            self.reads.add(i, float(t0), float(t1))
        if self.procs[i].poll() not in (None, -signal.SIGTERM):
            self.reads.errors.append(f"worker {i} exited with {self.procs[i].returncode}")

    def wait_round(self, since):
        self.reads.wait_after(since, 1, 4, ROUND_TIMEOUT)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        for t in self.threads:
            t.join(timeout=10)


class Sampler:
    """Peaks of backed_bytes and of the readers' RSS between records."""

    def __init__(self, store, pids_of):
        self.store, self.pids_of = store, pids_of
        self.lock = threading.Lock()
        self.reset()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def reset(self):
        with self.lock:
            self.backed = 0
            self.rss = 0

    def take(self):
        with self.lock:
            out = {"backed_peak": self.backed, "reader_rss_peak_kib": self.rss}
        self.reset()
        return out

    def _run(self):
        while not self.stop_event.wait(0.1):
            try:
                backed = self.store.stats()["backed_bytes"]
            except Exception:
                continue
            rss = max([status_kib(p)["VmRSS"] for p in self.pids_of()] or [0])
            with self.lock:
                self.backed = max(self.backed, backed)
                self.rss = max(self.rss, rss)

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=10)


def timed_put(store, df):
    t0 = time.perf_counter()
    store[data.FRAME_NAME] = df
    return time.perf_counter() - t0


def frame_offset(store):
    """Where the named frame lies in the arena (bytes from its start)."""
    with store.get_buffer(data.FRAME_NAME) as buf:
        return np.frombuffer(buf, np.uint8).ctypes.data - store.client.arena["base"]


def record(store, readers, daemon_pid):
    s = store.stats()
    mem = [mem_kib(p) for p in readers.pids] if readers else []
    split = [status_kib(p, ("RssAnon", "RssShmem")) for p in readers.pids] if readers else []
    d = mem_kib(daemon_pid)
    return {
        "reader_rss_anon_kib": [m["RssAnon"] for m in split],
        "reader_rss_shmem_kib": [m["RssShmem"] for m in split],
        "backed_bytes": s["backed_bytes"],
        "used_bytes": s["used_bytes"],
        "reader_rss_kib": [m["Rss"] for m in mem],
        "reader_pss_kib": [m["Pss"] for m in mem],
        "daemon_rss_kib": d["Rss"],
        "daemon_pss_kib": d["Pss"],
    }


def settle(store, timeout=30.0):
    """Waits until backed_bytes stops falling (the daemon trims freed
    memory a few chunks per loop turn)."""
    last = [store.stats()["backed_bytes"]]

    def steady():
        time.sleep(0.5)
        now = store.stats()["backed_bytes"]
        same = now == last[0]
        last[0] = now
        return same

    try:
        wait_until(steady, timeout, "backed_bytes to settle")
    except RuntimeError:
        pass  # recorded as it is
    return last[0]


def start_baseline(tmp, capacity):
    import shoal
    from shoal._daemon import find_binary

    path = os.path.join(tmp, "baseline.sock")
    proc = subprocess.Popen([find_binary(), "serve", "-s", path, "-m", f"{capacity >> 20}M",
                             "--no-trim"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        if proc.poll() is not None:
            raise RuntimeError(f"the baseline daemon exited with {proc.returncode}")
        try:
            shoal.connect(path, start=False).close()
            return True
        except shoal.StoreUnavailable:
            return False

    wait_until(up, 20, "the baseline daemon")
    return proc, shoal.connect(path, start=False)


def stop_pid(pid, timeout=20.0):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    if os.path.exists(f"/proc/{pid}"):
        os.kill(pid, signal.SIGKILL)


def run(args, tmp):
    import shoal

    t_start = time.monotonic()
    rows, frames = frames_for(args.mib, tmp, not args.no_parquet)
    print(f"bench-refresh: {rows:,} rows x {len(frames[0].columns)} columns "
          f"({arrow_bytes(frames[0]) / MiB:.0f} MiB in Arrow), made in "
          f"{time.monotonic() - t_start:.0f} s", flush=True)

    sock = os.path.join(tmp, "shoal.sock")
    os.environ["SHOAL_SOCKET"] = sock
    env = dict(os.environ, DASH_APP_BACKEND="shoal", DASH_APP_DATA=os.path.join(tmp, "data"),
               DASH_APP_SERVERSIDE_TTL=str(args.serverside_ttl))
    daemon_args = shlex.split(args.daemon_args)
    # As a user's loader: the first connect() starts the daemon.
    store = shoal.connect(daemon_args=daemon_args) if daemon_args else shoal.connect()
    daemon_pid = store.client.arena["daemon_pid"]
    base_proc = base = readers = sampler = None
    try:
        capacity = store.stats()["capacity_bytes"]
        reserve = reserve_of(daemon_args, capacity)
        version = [0]
        readers_list = []
        sampler = Sampler(store, lambda: readers_list[0].pids if readers_list else [])

        put_s, base_s, per = [], [], []
        frame_bytes = None
        for k in range(args.refreshes):
            df = frames[k % 2]
            if k == 0:
                put_s.append(timed_put(store, df))
                frame_bytes = store.stats()["used_bytes"]
                base_proc, base = start_baseline(tmp, 3 * frame_bytes + 64 * MiB)
                base_s.append(timed_put(base, df))
                # The readers start once there is a frame to read.
                readers = (DashReaders(env, tmp, lambda: version[0], args.think) if args.readers == "dash"
                           else WorkerReaders(env, args.think))
                readers_list.append(readers)
            elif k % 2 == 0:
                put_s.append(timed_put(store, df))
                base_s.append(timed_put(base, df))
            else:
                base_s.append(timed_put(base, df))
                put_s.append(timed_put(store, df))
            version[0] = store.version(data.FRAME_NAME)
            since = time.monotonic()
            readers.wait_round(since)
            r = record(store, readers, daemon_pid)
            r.update(sampler.take(), refresh=k + 1, put_s=put_s[-1], baseline_put_s=base_s[-1],
                     offset=frame_offset(store), since=since)
            per.append(r)
            if args.verbose or (k + 1) in (1, 10, 50, 100) or (k + 1) % 10 == 0:
                print(f"  refresh {k + 1}: put {put_s[-1]:.3f} s (recycled {base_s[-1]:.3f} s), "
                      f"backed {r['backed_bytes'] / MiB:.0f} MiB (peak {r['backed_peak'] / MiB:.0f}), "
                      f"used {r['used_bytes'] / MiB:.0f} MiB, reader RSS "
                      f"{max(r['reader_rss_kib']) / 1024:.0f} MiB, PSS "
                      f"{sum(r['reader_pss_kib']) / 1024:.0f} MiB (4 summed)", flush=True)
        # After the last refresh: the readers go on reading while the daemon
        # finishes giving memory back.
        settle(store)
        readers.wait_round(time.monotonic())
        after = record(store, readers, daemon_pid)
        errors = list(readers.reads.errors)
        reads = sum(len(d) for d in readers.reads.done)
        with readers.reads.lock:
            read_times = [list(d) for d in readers.reads.done]
        if args.verbose:  # what the store holds at the end
            from shoal._daemon import find_binary

            subprocess.run([find_binary(), "ls", "-s", sock], timeout=60)
    finally:
        if sampler is not None:
            sampler.stop()
        if readers is not None:
            readers.stop()
        if base is not None:
            base.close()
        if base_proc is not None:
            base_proc.terminate()
            base_proc.wait(20)
        store.close()
        stop_pid(daemon_pid)
    return {
        "rows": rows,
        "columns": len(frames[0].columns),
        "frame_arrow_bytes": arrow_bytes(frames[0]),
        "frame_bytes": frame_bytes,
        "capacity_bytes": capacity,
        "reserve_bytes": reserve,
        "daemon_args": daemon_args,
        "readers": args.readers,
        "serverside_ttl_s": args.serverside_ttl if args.readers == "dash" else None,
        "reads": reads,
        "read_times": read_times,
        "reader_errors": errors,
        "refreshes": per,
        "after": after,
        "seconds": time.monotonic() - t_start,
    }


def summary(res):
    per = res["refreshes"]
    f, reserve = res["frame_bytes"], res["reserve_bytes"]
    puts = [r["put_s"] for r in per[2:]] or [r["put_s"] for r in per]
    base = [r["baseline_put_s"] for r in per[2:]] or [r["baseline_put_s"] for r in per]
    peak = max(r["backed_peak"] for r in per + [res["after"]] if "backed_peak" in r)
    peak = max(peak, max(r["backed_bytes"] for r in per))
    ref = per[min(9, len(per) - 1)]  # refresh 10: every reader has warmed up
    rss_growth = max(r["reader_rss_kib"][i] - ref["reader_rss_kib"][i]
                     for r in per[9:] + [res["after"]] for i in range(len(ref["reader_rss_kib"])))
    out = {
        "frame_places": len({r["offset"] for r in per}),
        "put_median_s": statistics.median(puts),
        "baseline_put_median_s": statistics.median(base),
        "put_over_recycled": statistics.median(puts) / statistics.median(base),
        "backed_peak_bytes": peak,
        "backed_bound_bytes": None if reserve is None else 2 * f + reserve,
        "reader_rss_growth_after_10_kib": rss_growth,
    }
    out.update(read_latency(res))
    # What the app stores besides the frame (its caches) comes on top.
    others = max(max(r["used_bytes"] - f, 0) for r in per)
    out["others_peak_bytes"] = others
    out["backed_within_bound"] = None if reserve is None else peak <= 2 * f + reserve + others
    return out


def read_latency(res):
    """Medians of the reads (callbacks) each reader started first after a
    refresh, which meet the new frame's pages, and of all its other reads:
    the cost of a refresh to a reader, against the same run's warm reads."""
    marks = [r["since"] for r in res["refreshes"][1:] if "since" in r]
    first, other = [], []
    for reads in res.get("read_times", []):
        firsts = set()
        for m in marks:
            after = [j for j, (t0, _) in enumerate(reads) if t0 > m]
            if after:
                firsts.add(after[0])
        for j, (t0, t1) in enumerate(reads):
            (first if j in firsts else other).append(t1 - t0)
    if not first or not other:
        return {}
    return {"first_read_after_refresh_median_s": statistics.median(first),
            "other_reads_median_s": statistics.median(other),
            "first_over_other": statistics.median(first) / statistics.median(other)}


def table(res):
    per = {r["refresh"]: r for r in res["refreshes"]}
    lines = ["| refresh | put s | recycled put s | backed_bytes MiB | used_bytes MiB "
             "| worker RSS MiB (max of 4) | of which store pages | worker private | "
             "workers' PSS MiB (4 summed) | daemon RSS MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def row(label, r):
        put = f"{r['put_s']:.3f}" if "put_s" in r else "-"
        bput = f"{r['baseline_put_s']:.3f}" if "baseline_put_s" in r else "-"
        i = max(range(len(r["reader_rss_kib"])), key=lambda j: r["reader_rss_kib"][j])
        lines.append(f"| {label} | {put} | {bput} | {r['backed_bytes'] / MiB:.0f} | "
                     f"{r['used_bytes'] / MiB:.0f} | {r['reader_rss_kib'][i] / 1024:.0f} | "
                     f"{r['reader_rss_shmem_kib'][i] / 1024:.0f} | {r['reader_rss_anon_kib'][i] / 1024:.0f} | "
                     f"{sum(r['reader_pss_kib']) / 1024:.0f} | {r['daemon_rss_kib'] / 1024:.0f} |")

    for k in (1, 10, 50, 100):
        if k in per:
            row(str(k), per[k])
    row(f"after {len(per)}, settled", res["after"])
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=float, default=409, help="frame size in Arrow (MiB)")
    ap.add_argument("--refreshes", type=int, default=100)
    ap.add_argument("--readers", choices=("dash", "workers"), default="dash")
    ap.add_argument("--think", type=float, default=0.5, help="each client or worker sleeps this long between reads (s)")
    ap.add_argument("--serverside-ttl", type=int, default=10,
                    help="dash: seconds the app's Serverside outputs live")
    ap.add_argument("--daemon-args", default="", help="options for connect(daemon_args=...)")
    ap.add_argument("--no-parquet", action="store_true", help="put frames built in memory")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--json", default=os.path.join(ROOT, "build", "bench-refresh.json"))
    args = ap.parse_args(argv)
    # Stopped with SIGTERM (a time-out): stop the daemons and readers too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as tmp:
        res = run(args, tmp)
    s = summary(res)
    res["summary"] = s
    with open("/proc/loadavg") as f:
        res["loadavg_end"] = f.read().strip()
    f = res["frame_bytes"]
    reserve = res["reserve_bytes"]
    print(f"\nbench-refresh: frame {f / MiB:.0f} MiB stored ({res['rows']:,} rows x "
          f"{res['columns']} columns), {len(res['refreshes'])} refreshes, readers: "
          f"{'examples/dash_app, gunicorn -w 4' if res['readers'] == 'dash' else '4 worker processes'}, "
          f"daemon: connect({'daemon_args=' + repr(res['daemon_args']) if res['daemon_args'] else ''}), "
          f"capacity {res['capacity_bytes'] / MiB:.0f} MiB, reserve "
          f"{'unbounded' if reserve is None else f'{reserve / MiB:.0f} MiB'}; "
          f"{res['seconds']:.0f} s, load average at end {res['loadavg_end']}\n")
    print(table(res))
    bound = s["backed_bound_bytes"]
    print(f"\nput median (refresh 3..) {s['put_median_s']:.3f} s vs recycled {s['baseline_put_median_s']:.3f} s "
          f"({s['put_over_recycled']:.2f}x); backed peak {s['backed_peak_bytes'] / MiB:.0f} MiB"
          + ("" if bound is None else f" vs 2 x frame + reserve = {bound / MiB:.0f} MiB")
          + f" (the app's other objects: up to {s['others_peak_bytes'] / MiB:.0f} MiB)"
          + f"; reader RSS growth after refresh 10: {s['reader_rss_growth_after_10_kib'] / 1024:.0f} MiB; "
          f"{res['reads']} reads, {len(res['reader_errors'])} failed; the frame was put in "
          f"{s['frame_places']} different places")
    if "first_over_other" in s:
        print(f"read (callback) medians: first of each reader after a refresh "
              f"{s['first_read_after_refresh_median_s'] * 1000:.1f} ms, other reads "
              f"{s['other_reads_median_s'] * 1000:.1f} ms ({s['first_over_other']:.2f}x)")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(res, fh, indent=1)
    print(f"written {args.json}")
    return 1 if res["reader_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
