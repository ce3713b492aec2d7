"""Test harness of the tier tests: real redis-server processes (standalone,
or a 3-master cluster made with `redis-cli --cluster create`) on 127.0.0.1
ports, and "hosts" - each a `shoal serve` daemon plus its `shoal-tier`
process - on temporary sockets. Every wait has a deadline; every process is
stopped at teardown (SIGKILL after 5 s).
"""

import os
import signal
import shutil
import socket
import subprocess
import sys
import time

import pytest

import shoal

from conftest import Daemon, wait_until

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
OPENSSL = shutil.which("openssl")

needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None or REDIS_CLI is None,
    reason="redis-server / redis-cli not installed (tests/deps.sh installs them)",
)

# Fast settings so that faults are noticed and recovered from within seconds.
TIER_ARGS = (
    "--interval", "0.1", "--reconcile", "3", "--redis-timeout", "0.5",
    "--grace", "1", "--tombstone-ttl", "2", "--chunk-size", "8M", "--transfer-timeout", "20",
    "--pending-ttl", "20",
)


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port():
    """A free loopback port below 55535 whose cluster bus port (+10000) is
    free too (redis-server refuses higher ones in cluster mode)."""
    import random

    for _ in range(1000):
        port = random.randrange(20000, 45000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise AssertionError("no free port pair")


def make_tls_files(d):
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost,
    signed by it, in directory d (openssl, EC keys: fast). Returns
    {"ca": ..., "cert": ..., "key": ...} paths."""
    out = {k: os.path.join(d, f"{k}.pem") for k in ("ca", "ca_key", "cert", "key", "csr", "ext")}
    with open(out["ext"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (
        ["req", "-x509", *ec, "-keyout", out["ca_key"], "-out", out["ca"], "-days", "2",
         "-subj", "/CN=shoal test CA"],
        ["req", *ec, "-keyout", out["key"], "-out", out["csr"], "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", out["csr"], "-CA", out["ca"], "-CAkey", out["ca_key"],
         "-CAcreateserial", "-out", out["cert"], "-days", "2", "-extfile", out["ext"]],
    ):
        r = subprocess.run([OPENSSL, *cmd], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
    return out


def _stop(proc, sig=signal.SIGTERM):
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGCONT)
    except OSError:
        pass
    proc.send_signal(sig)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class RedisServers:
    """One standalone redis-server, or three cluster masters."""

    def __init__(self, tmp, cluster=False, extra=(), url_auth="", db=0, tls=False):
        self.tmp = tmp
        self.cluster = cluster
        # TLS only (no plain port): the files of make_tls_files().
        self.tls = make_tls_files(tmp) if tls else None
        self.extra = tuple(extra)  # more redis-server options
        self.url_auth = url_auth  # "user:password@" in the tier's URLs
        self.db = db
        self.ports = [free_port() for _ in range(3 if cluster else 1)]
        self.procs = [None] * len(self.ports)

    def _spawn(self, i):
        port = self.ports[i]
        d = os.path.join(self.tmp, f"redis-{port}")
        os.makedirs(d, exist_ok=True)
        if self.tls:
            listen = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", self.tls["cert"],
                      "--tls-key-file", self.tls["key"], "--tls-ca-cert-file", self.tls["ca"],
                      "--tls-auth-clients", "no"]
        else:
            listen = ["--port", str(port)]
        args = [REDIS_SERVER, *listen, "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", d, "--protected-mode", "no",
                "--proto-max-bulk-len", "536870912", *self.extra]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "2000"]
        self.procs[i] = subprocess.Popen(args, stdout=open(os.path.join(d, "log"), "ab"),
                                         stderr=subprocess.STDOUT)
        wait_until(lambda: self._ping(port), 10, what=f"redis-server on {port}")

    def _ping(self, port):
        tls = ["--tls", "--cacert", self.tls["ca"]] if self.tls else []
        r = subprocess.run([REDIS_CLI, "-p", str(port), *tls, "ping"], capture_output=True, timeout=5)
        return r.stdout.strip() in (b"PONG", b"NOAUTH Authentication required.")

    def start(self):
        for i in range(len(self.ports)):
            self._spawn(i)
        if self.cluster:
            r = subprocess.run(
                [REDIS_CLI, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                 "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, timeout=60,
            )
            assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
            self.wait_cluster_ok()
        return self

    def wait_cluster_ok(self):
        def ok():
            for p in self.ports:
                r = subprocess.run([REDIS_CLI, "-p", str(p), "cluster", "info"],
                                   capture_output=True, timeout=5)
                if b"cluster_state:ok" not in r.stdout:
                    return False
            return True

        wait_until(ok, 30, interval=0.1, what="cluster_state:ok")

    def urls(self):
        if self.tls:
            # How redis-py takes a CA in a URL: a query option.
            return [f"rediss://{self.url_auth}127.0.0.1:{p}/{self.db}?ssl_ca_certs={self.tls['ca']}"
                    for p in self.ports]
        return [f"redis://{self.url_auth}127.0.0.1:{p}/{self.db}" for p in self.ports]

    def tier_args(self):
        out = []
        for u in self.urls():
            out += ["--redis", u]
        return out + (["--cluster"] if self.cluster else [])

    def client(self):
        import redis
        from redis.cluster import ClusterNode, RedisCluster

        if self.cluster:
            return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.ports],
                                socket_timeout=5)
        if self.tls:
            return redis.Redis(port=self.ports[0], socket_timeout=5, ssl=True,
                               ssl_ca_certs=self.tls["ca"])
        return redis.Redis(port=self.ports[0], socket_timeout=5)

    def keys(self):
        c = self.client()
        try:
            return sorted(c.scan_iter(match=b"*", count=1000))
        finally:
            c.close()

    def signal(self, sig, i=0):
        os.kill(self.procs[i].pid, sig)

    def kill_and_restart(self):
        """SIGKILL every server and start it again, empty (no persistence);
        a cluster keeps its slot map (nodes.conf) and so comes back."""
        for p in self.procs:
            p.kill()
            p.wait(5)
        for i in range(len(self.ports)):
            self._spawn(i)
        if self.cluster:
            self.wait_cluster_ok()

    def stop(self):
        for p in self.procs:
            _stop(p)


class SentinelSet:
    """A master, a replica of it and one sentinel (redis-server --sentinel)
    watching them as `name`, on loopback ports."""

    def __init__(self, tmp, name="shoal-master"):
        self.tmp = tmp
        self.name = name
        self.master = RedisServers(os.path.join(tmp, "master"))
        self.replica = None
        self.port = free_port()
        self.proc = None

    def start(self):
        os.makedirs(self.master.tmp, exist_ok=True)
        self.master.start()
        mport = self.master.ports[0]
        d = os.path.join(self.tmp, "replica")
        os.makedirs(d, exist_ok=True)
        self.replica = RedisServers(d, extra=("--replicaof", "127.0.0.1", str(mport))).start()
        wait_until(lambda: b"master_link_status:up" in self._cli(self.replica.ports[0], "info",
                                                                  "replication"),
                   15, what="replica in sync")
        conf = os.path.join(self.tmp, "sentinel.conf")
        with open(conf, "w") as f:
            f.write(f"port {self.port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.tmp}\n"
                    f"sentinel monitor {self.name} 127.0.0.1 {mport} 1\n"
                    f"sentinel down-after-milliseconds {self.name} 1000\n"
                    f"sentinel failover-timeout {self.name} 5000\n")
        self.proc = subprocess.Popen([REDIS_SERVER, conf, "--sentinel"],
                                     stdout=open(os.path.join(self.tmp, "sentinel.log"), "ab"),
                                     stderr=subprocess.STDOUT)
        wait_until(lambda: str(self.replica.ports[0]).encode()
                   in self._cli(self.port, "sentinel", "replicas", self.name),
                   20, interval=0.1, what="the sentinel knows the replica")
        return self

    def _cli(self, port, *args):
        r = subprocess.run([REDIS_CLI, "-p", str(port), *args], capture_output=True, timeout=5)
        return r.stdout

    def master_port(self):
        out = self._cli(self.port, "sentinel", "get-master-addr-by-name", self.name).split()
        return int(out[1]) if len(out) == 2 else None

    def tier_args(self):
        return ["--redis", f"redis://{self.name}/0", "--sentinel", f"127.0.0.1:{self.port}"]

    def stop(self):
        _stop(self.proc)
        if self.replica is not None:
            self.replica.stop()
        self.master.stop()


class Host:
    """A daemon and its tier process, standing in for one machine."""

    def __init__(self, tmp, name, servers, memory="256M", eager=("e/*",), extra=(), redis_args=None):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "s.sock")
        self.daemon = Daemon(self.sock, memory)
        self.servers = servers
        self.eager = eager
        self.extra = tuple(extra)
        self.redis_args = redis_args  # instead of servers.tier_args()
        self.tier = None
        self.store = None

    def start(self, wait=True):
        self.daemon.start()
        self.store = shoal.connect(self.sock, start=False, tier_timeout=5.0)
        self.start_tier(wait)
        return self

    def start_tier(self, wait=True):
        """Starts the tier process; wait: until it is connected to Redis."""
        redis_args = self.redis_args or self.servers.tier_args()
        args = [sys.executable, "-m", "shoal.tier", "-s", self.sock, *redis_args,
                *TIER_ARGS, *self.extra]
        for g in self.eager:
            args += ["--eager", g]
        self.tier = subprocess.Popen(args, stdout=open(self.sock + ".tier.log", "ab"),
                                     stderr=subprocess.STDOUT)
        if wait:
            wait_until(lambda: self.status().get("connected"), 15, what="tier connected")

    def status(self):
        try:
            with open(self.sock + ".tier.json") as f:
                import json

                st = json.load(f)
        except (OSError, ValueError):
            return {}
        return st if st.get("pid") == (self.tier.pid if self.tier else None) else {}

    def log(self):
        try:
            with open(self.sock + ".tier.log", errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop_tier(self, sig=signal.SIGTERM):
        _stop(self.tier, sig)

    def stop(self):
        if self.store is not None:
            self.store.close()
        self.stop_tier()
        self.daemon.stop()


def value(store, name):
    """The bytes of a local name, or None; never asks the tier."""
    try:
        buf, _ = store.client.get_name(name, 0)
    except shoal.ObjectNotFound:
        return None
    with buf:
        return bytes(buf)


def wait_value(store, name, expected, timeout=15.0):
    wait_until(lambda: value(store, name) == expected, timeout,
               what=f"{name} == {expected[:20] if expected else expected!r}")
