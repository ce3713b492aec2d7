"""make bench-tier: shoal-tier on loopback, against redis-py's own SET/GET.

Starts a standalone redis-server on a free 127.0.0.1 port, two `shoal
serve` daemons ("hosts" A and B) and a shoal-tier for each (names under
bench/ eager), then measures:

* propagation latency: from the start of a set on A to the name_set event
  on B (the value is then readable there), for 1 KiB and 100 MiB, against
  redis-py's SET of the same bytes on one connection and GET on another
  (the least any A -> Redis -> B hand-over costs; no notification);
* replication throughput for 1 GiB: from the end of the local set on A to
  readable on B (A -> Redis -> B), against redis-py writing the same bytes
  with SET and reading them with GET (in the same 64 MiB chunks: a Redis
  string holds at most 512 MB) - the baseline, same run;
* a local get of a replicated name against a local get of a name set
  locally (the tier must not make a local get slower).

Prints a table of medians, each figure next to its baseline from the same
run and their ratio, and writes build/bench-tier.json. Non-zero data
(os.urandom). Repetitions: --reps (default 5; 1 GiB: max(3, reps//2)).
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

import shoal
from shoal._daemon import find_binary

CHUNK = 64 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench-tier: timed out waiting for {what}")
        time.sleep(0.01)


class Env:
    def __init__(self, memory):
        self.tmp = tempfile.mkdtemp(prefix="shoal-bench-tier-")
        self.procs = []
        self.port = free_port()
        self.procs.append(subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.r = redis.Redis(port=self.port, socket_timeout=60)
        wait(self._ping, 10, "redis-server")
        binary = find_binary()
        self.stores = []
        for h in ("a", "b"):
            sock = os.path.join(self.tmp, f"{h}.sock")
            self.procs.append(subprocess.Popen([binary, "serve", "-s", sock, "-m", memory],
                                               stdout=subprocess.DEVNULL))
            wait(lambda: os.path.exists(sock), 10, "daemon")
            time.sleep(0.1)
            store = shoal.connect(sock, start=False, tier_timeout=5)
            tier = subprocess.Popen(
                [sys.executable, "-m", "shoal.tier", "-s", sock, "--redis",
                 f"redis://127.0.0.1:{self.port}/0", "--eager", "bench/*", "--grace", "2"],
                stdout=subprocess.DEVNULL, stderr=open(sock + ".tier.log", "ab"))
            self.procs.append(tier)
            wait(lambda: self._connected(sock), 15, "tier")
            self.stores.append(store)

    def _ping(self):
        try:
            return self.r.ping()
        except redis.exceptions.ConnectionError:
            return False

    def _connected(self, sock):
        try:
            with open(sock + ".tier.json") as f:
                return json.load(f).get("connected")
        except (OSError, ValueError):
            return False

    def close(self):
        for h in ("a", "b"):
            try:
                with open(os.path.join(self.tmp, f"{h}.sock.tier.log")) as f:
                    log = f.read().strip()
                if log:
                    print(f"tier {h} log:\n{log[-2000:]}", file=sys.stderr)
            except OSError:
                pass
        for s in self.stores:
            s.close()
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def propagate(a, b, name, data):
    """(seconds set-start -> readable on B, seconds local-set-end -> readable)."""
    sub = b.subscribe()
    try:
        t0 = time.perf_counter()
        a[name] = data
        t1 = time.perf_counter()
        deadline = time.monotonic() + 120
        while True:
            ev = sub.next(1.0)
            if ev is not None and ev.kind == "name_set" and ev.name == name:
                t2 = time.perf_counter()
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"bench-tier: {name} never reached B")
    finally:
        sub.close()
    return t2 - t0, t2 - t1


def baseline(r, data, reader=None):
    """redis-py SET then GET (on reader, default r) of data in CHUNK
    pieces: seconds."""
    mv = memoryview(data)
    keys = [f"bench-baseline:{i}" for i in range((len(data) + CHUNK - 1) // CHUNK)]
    reader = reader or r
    t0 = time.perf_counter()
    for i, k in enumerate(keys):
        r.set(k, mv[i * CHUNK:(i + 1) * CHUNK])
    for k in keys:
        part = reader.get(k)
        del part
    t = time.perf_counter() - t0
    r.delete(*keys)
    return t


def local_get_us(store, names, n=2000, rounds=7):
    """Median us per local get of each of names, measured in alternating
    rounds so that every name sees the same machine (a shared machine's
    load moves over seconds)."""
    c = store.client
    samples = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            t0 = time.perf_counter()
            for _ in range(n):
                buf, _v = c.get_name(name, 0)
                buf.release()
            samples[name].append((time.perf_counter() - t0) / n * 1e6)
    return [statistics.median(samples[name]) for name in names]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", default="build/bench-tier.json")
    ap.add_argument("--memory", default="3G")
    args = ap.parse_args()
    env = Env(args.memory)
    a, b = env.stores
    res = {}
    try:
        reader = redis.Redis(port=env.port, socket_timeout=60)
        small = os.urandom(1024)
        n = max(args.reps * 4, 11)
        lat = [propagate(a, b, f"bench/small{i}", small)[0] for i in range(n)]
        base = [baseline(env.r, small, reader) for _ in range(n)]
        res["latency_1k_ms"] = statistics.median(lat) * 1e3
        res["latency_1k_redis_py_ms"] = statistics.median(base) * 1e3
        big = os.urandom(1 << 20) * 100
        lat, base = [], []
        for _ in range(args.reps):
            base.append(baseline(env.r, big, reader))
            lat.append(propagate(a, b, "bench/100m", big)[0])
        res["latency_100m_ms"] = statistics.median(lat) * 1e3
        res["latency_100m_redis_py_ms"] = statistics.median(base) * 1e3
        res["latency_100m_ratio"] = statistics.median(t_ / b_ for b_, t_ in zip(base, lat))
        reader.close()
        del big
        gib = os.urandom(1 << 20) * 1024
        reps = max(3, args.reps // 2)
        tier_t, base_t = [], []
        for _ in range(reps):
            base_t.append(baseline(env.r, gib))
            tier_t.append(propagate(a, b, "bench/1g", gib)[1])
        res["throughput_1g_tier_gbps"] = len(gib) / statistics.median(tier_t) / 1e9
        res["throughput_1g_redis_py_gbps"] = len(gib) / statistics.median(base_t) / 1e9
        res["throughput_ratio"] = statistics.median(b_ / t_ for b_, t_ in zip(base_t, tier_t))
        del gib
        b["local/1k"] = small
        res["local_get_replicated_us"], res["local_get_local_us"] = local_get_us(
            b, ["bench/small0", "local/1k"])
        res["local_get_ratio"] = res["local_get_replicated_us"] / res["local_get_local_us"]
        res["samples"] = {"tier_1g_s": tier_t, "redis_py_1g_s": base_t}
    finally:
        env.close()
    res["load_average"] = os.getloadavg()
    res["latency_1k_ratio"] = res["latency_1k_ms"] / res["latency_1k_redis_py_ms"]
    load = ", ".join(f"{x:.1f}" for x in res["load_average"])
    print(f"shoal-tier bench: medians; loopback, standalone redis-server; reps={args.reps}; "
          f"load average {load} (a shared machine moves the times, not the ratios)")
    # (what, shoal-tier figure, its baseline, the baseline's name, ratio, how to read it, target)
    rows = [
        ("set on A -> readable on B, 1 KiB (ms)", "latency_1k_ms", "latency_1k_redis_py_ms",
         "redis-py SET + GET", "latency_1k_ratio", "tier/baseline time", None),
        ("set on A -> readable on B, 100 MiB (ms)", "latency_100m_ms", "latency_100m_redis_py_ms",
         "redis-py SET + GET", "latency_100m_ratio", "tier/baseline time", None),
        ("A -> Redis -> B, 1 GiB (GB/s)", "throughput_1g_tier_gbps", "throughput_1g_redis_py_gbps",
         "redis-py SET + GET", "throughput_ratio", "tier/baseline speed", ">= 0.8"),
        ("local get of a replicated name (us)", "local_get_replicated_us", "local_get_local_us",
         "local get, local name", "local_get_ratio", "tier/baseline time", "<= 1.1"),
    ]
    print(f"{'figure':42s} {'shoal-tier':>10s} {'baseline':>10s}  {'ratio':>7s}  "
          f"{'(ratio is)':20s} {'target':8s} baseline")
    for what, key, bkey, bname, rkey, how, target in rows:
        print(f"{what:42s} {res[key]:10.3f} {res[bkey]:10.3f}  {res[rkey]:6.2f}x  {how:20s} "
              f"{target or '':8s} {bname}")
    ok = res["throughput_ratio"] >= 0.8 and res["local_get_ratio"] <= 1.1
    res["targets_met"] = ok
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)
    print("targets", "PASS" if ok else "MISS")


if __name__ == "__main__":
    main()
