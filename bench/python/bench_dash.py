"""The example Dash app (examples/dash_app) under `gunicorn -w 4` with three
backends, same app and same data: shoal, Flask-Caching/cachelib
FileSystemCache, and RedisCache against a real redis-server.

    python bench/python/bench_dash.py [--rows 2000000] [--requests 100] [--repeat 3]
    make bench-dash

For each backend and repetition: start the store (a private shoal daemon on
a temporary socket, or redis-server on a free 127.0.0.1 port, or nothing for
the file system), load the frame with the app's loader, start gunicorn with
4 workers on a free port, then

  latency  --requests POSTs of the main callback (`update`: dropdown ->
           graph + table + Serverside selection), one at a time, cycling
           through the regions, after a warm-up; client-side time per
           request (connect to answer), p50 and p99;
  load     4 clients at once, --requests each, while the 4 workers' PSS
           (/proc/PID/smaps_rollup) is sampled every 20 ms: p50/p99 of the
           requests and the peak of the workers' summed PSS; the PSS of the
           store process (shoal daemon, redis-server) is reported apart.

Medians over --repeat repetitions are printed as a Markdown table and
written with every sample to build/bench-dash.json. The machine is shared:
quote ratios against the other backends of the same run.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP_DIR = os.path.join(ROOT, "examples", "dash_app")
sys.path.insert(0, APP_DIR)
import data  # noqa: E402

BACKENDS = ("shoal", "filesystem", "redis")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


class Services:
    """The store a backend needs, started on private addresses."""

    def __init__(self, kind, tmp, rows):
        self.kind, self.tmp, self.proc = kind, tmp, None
        self.env = dict(os.environ, DASH_APP_BACKEND=kind, DASH_APP_DATA=os.path.join(tmp, "data"))
        if kind == "shoal":
            from shoal._daemon import find_binary

            path = os.path.join(tmp, "shoal.sock")
            # The frame, Serverside selections and memoized results; entries
            # are evictable, so a few frames' worth is plenty.
            memory = max(256 << 20, rows * 200 * 3)
            self.proc = subprocess.Popen(
                [find_binary(), "serve", "-s", path, "-m", f"{memory >> 20}M"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            self.env["SHOAL_SOCKET"] = path
            import shoal

            def up():
                try:
                    shoal.connect(path, start=False).close()
                    return True
                except shoal.StoreUnavailable:
                    return False

            wait_until(up, 20, "the shoal daemon")
        elif kind == "redis":
            port = free_port()
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", tmp],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            self.env["DASH_APP_REDIS_PORT"] = str(port)

            def up():
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    return True
                except OSError:
                    return False

            wait_until(up, 20, "redis-server")
        else:
            self.env["DASH_APP_CACHE_DIR"] = os.path.join(tmp, "cache")

    def pss_kib(self):
        return pss_kib(self.proc.pid) if self.proc is not None else 0

    def held_bytes(self):
        """What the store holds: shoal's used bytes, Redis' used_memory, or
        the size of the cache files."""
        if self.kind == "shoal":
            import shoal

            with shoal.connect(self.env["SHOAL_SOCKET"], start=False) as s:
                return s.stats()["used_bytes"]
        if self.kind == "redis":
            import redis

            return redis.Redis(port=int(self.env["DASH_APP_REDIS_PORT"])).info("memory")["used_memory"]
        total = 0
        for d, _, files in os.walk(self.env["DASH_APP_CACHE_DIR"]):
            total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
        return total

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Gunicorn:
    def __init__(self, env, tmp):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        help_text = subprocess.run(
            [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True, timeout=60
        ).stdout
        extra = ["--no-control-socket"] if "--no-control-socket" in help_text else []
        self.log = open(os.path.join(tmp, "gunicorn.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *extra, "-w", "4", "-t", "300",
             "-b", f"127.0.0.1:{self.port}", "app:server"],
            cwd=APP_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "_dash-layout", timeout=5):
                    return len(children(self.proc.pid)) == 4
            except OSError:
                return False

        wait_until(up, 180, "gunicorn's 4 workers")

    def workers(self):
        return children(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def update_request(url, region, version_text):
    body = json.dumps({
        "output": "..graph.figure...table.data...selection.data..",
        "outputs": [
            {"id": "graph", "property": "figure"},
            {"id": "table", "property": "data"},
            {"id": "selection", "property": "data"},
        ],
        "inputs": [
            {"id": "region", "property": "value", "value": region},
            {"id": "version", "property": "children", "value": version_text},
        ],
        "changedPropIds": ["region.value"],
        "state": [],
    }).encode()
    req = urllib.request.Request(url + "_dash-update-component", data=body,
                                 headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        out = json.loads(r.read())
    dt = time.perf_counter() - t0
    title = out["response"]["graph"]["figure"]["layout"]["title"]["text"]
    if title != f"Daily revenue: {region}":
        raise RuntimeError(f"wrong answer: {title!r}")
    return dt


def run_once(kind, rows, requests, tmp):
    svc = Services(kind, tmp, rows)
    app = None
    try:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "loader.py", "--rows", str(rows), "--once"],
            cwd=APP_DIR, env=svc.env, check=True, timeout=1800, capture_output=True,
        )
        load_s = time.perf_counter() - t0
        app = Gunicorn(svc.env, tmp)
        boot = sum(pss_kib(p) for p in app.workers())
        regions = data.REGIONS
        for i in range(12):  # warm-up: every worker imports, maps, caches
            update_request(app.url, regions[i % len(regions)], "data version 1")
        lat = [update_request(app.url, regions[i % len(regions)], "data version 1")
               for i in range(requests)]

        # 4 clients at once, sampling the workers' PSS meanwhile.
        peak = {"workers": 0, "store": 0}
        done = threading.Event()
        pids = app.workers()

        def sample():
            while not done.is_set():
                peak["workers"] = max(peak["workers"], sum(pss_kib(p) for p in pids))
                peak["store"] = max(peak["store"], svc.pss_kib())
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        load_lat = []
        lock = threading.Lock()

        errors = []

        def client(c):
            mine = []
            for i in range(requests // 4 + 1):
                try:
                    mine.append(update_request(app.url, regions[(c + i) % len(regions)],
                                               "data version 1"))
                except OSError as e:  # a failed callback (HTTP 500, time-out)
                    errors.append(repr(e))
            with lock:
                load_lat.extend(mine)

        clients = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        done.set()
        sampler.join()
        after = sum(pss_kib(p) for p in pids)
        return {
            "p50_ms": 1000 * percentile(lat, 50),
            "p99_ms": 1000 * percentile(lat, 99),
            "load_p50_ms": 1000 * percentile(load_lat, 50),
            "load_p99_ms": 1000 * percentile(load_lat, 99),
            "workers_pss_peak_mib": peak["workers"] / 1024,
            "workers_pss_after_mib": after / 1024,
            "workers_pss_boot_mib": boot / 1024,
            "store_held_mib": svc.held_bytes() / (1 << 20),
            "store_pss_peak_mib": peak["store"] / 1024,
            "load_s": load_s,
            "load_errors": len(errors),
            "samples_ms": [1000 * x for x in lat],
        }
    finally:
        if app is not None:
            app.stop()
        svc.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--json", default=os.path.join(ROOT, "build", "bench-dash.json"))
    args = ap.parse_args(argv)
    kinds = args.backends.split(",")
    if "redis" in kinds and shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed (tests/deps.sh installs it)")

    runs = {k: [] for k in kinds}
    started = time.time()
    for rep in range(args.repeat):
        for kind in kinds:  # interleaved, so load changes hit every backend
            with tempfile.TemporaryDirectory(prefix=f"bench-dash-{kind}-") as tmp:
                r = run_once(kind, args.rows, args.requests, tmp)
            runs[kind].append(r)
            print(f"  rep {rep + 1} {kind:10s} "
                  + " ".join(f"{k} {v:.1f}" for k, v in r.items() if k != "samples_ms"), flush=True)
            # Written after every run, so a long run stopped early keeps its figures.
            os.makedirs(os.path.dirname(args.json), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump({"rows": args.rows, "requests": args.requests, "runs": runs}, f, indent=1)

    keys = ["p50_ms", "p99_ms", "load_p50_ms", "load_p99_ms", "workers_pss_peak_mib",
            "workers_pss_after_mib", "workers_pss_boot_mib", "store_pss_peak_mib", "store_held_mib",
            "load_s", "load_errors"]
    med = {k: {key: statistics.median(r[key] for r in runs[k]) for key in keys} for k in kinds}
    base = med.get("shoal")
    with open("/proc/loadavg") as f:
        loadavg = f.read().strip()
    print(f"\nbench-dash: {args.rows:,} rows x 20 columns, gunicorn -w 4, {args.requests} requests "
          f"per phase, medians of {args.repeat} repetitions, {time.time() - started:.0f} s; "
          f"load average at end {loadavg}\n")
    print("| backend | p50 ms | p99 ms | p50 ms, 4 clients | p99 ms, 4 clients "
          "| workers' PSS at boot MiB | workers' PSS peak MiB | workers' PSS after MiB "
          "| store process PSS peak MiB | store holds MiB | failed callbacks | p50 / shoal's |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in kinds:
        m = med[k]
        ratio = f"{m['p50_ms'] / base['p50_ms']:.1f}" if base else "-"
        print(f"| {k} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['load_p50_ms']:.1f} | "
              f"{m['load_p99_ms']:.1f} | {m['workers_pss_boot_mib']:.0f} | {m['workers_pss_peak_mib']:.0f} | "
              f"{m['workers_pss_after_mib']:.0f} | {m['store_pss_peak_mib']:.0f} | "
              f"{m['store_held_mib']:.0f} | {sum(r['load_errors'] for r in runs[k])} | {ratio} |")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"rows": args.rows, "requests": args.requests, "repeat": args.repeat,
                   "medians": med, "runs": runs}, f, indent=1)
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
