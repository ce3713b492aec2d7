"""Fixtures of the Python tests: a real daemon per test module.

Each module gets its own `shoal serve` on a socket in a temporary directory
(256 MiB unless the module sets DAEMON_MEMORY), started from the shoal
executable the package finds ($SHOAL_BIN, the installed one, or the
source tree's build/shoal). Every wait has a deadline; the daemon is
stopped with SIGTERM (SIGKILL after 5 s) at teardown.
"""

import gc
import os
import signal
import subprocess
import time

import pytest

import shoal
import shoal.plasma
from shoal._daemon import find_binary

BINARY = find_binary()


def wait_child(pid, timeout):
    """Waits for the forked child pid; returns its exit code. A child still
    running at the deadline is killed and fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("forked child did not finish in time")
        time.sleep(0.01)


def wait_until(predicate, timeout=5.0, interval=0.01, what="condition"):
    """Polls predicate until true; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Daemon:
    """One `shoal serve` process on a private socket."""

    def __init__(self, path, memory="256M", args=()):
        self.path = str(path)
        self.memory = memory
        self.args = tuple(args)  # more `shoal serve` options
        self.proc = None

    def start(self, timeout=10.0):
        assert BINARY, "the shoal executable was not found: build it or set $SHOAL_BIN"
        self.proc = subprocess.Popen(
            [BINARY, "serve", "-s", self.path, "-m", str(self.memory), *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"shoal serve exited with {self.proc.returncode}: "
                    f"{self.proc.stderr.read().decode(errors='replace')}"
                )
            try:
                shoal._shoal.Client(self.path).close()
                return self
            except shoal.StoreUnavailable:
                if time.monotonic() > deadline:
                    raise AssertionError(f"shoal serve did not answer within {timeout} s") from None
                time.sleep(0.01)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stderr.close()

    def restart(self):
        self.stop()
        return self.start()

    def connect(self, **kw):
        return shoal.connect(self.path, start=False, **kw)

    def cli(self, *args, input=None):
        """Runs the shoal CLI against this daemon."""
        return subprocess.run(
            [BINARY, "-s", self.path, *args],
            input=input,
            capture_output=True,
            timeout=30,
        )


@pytest.fixture(scope="module")
def daemon(request, tmp_path_factory):
    memory = getattr(request.module, "DAEMON_MEMORY", "256M")
    d = Daemon(tmp_path_factory.mktemp("shoal") / "s.sock", memory).start()
    yield d
    d.stop()


@pytest.fixture
def client(daemon):
    """A shoal.plasma client of the module's daemon; every object is
    deleted afterwards."""
    c = shoal.plasma.connect(daemon.path)
    yield c
    gc.collect()
    c.delete(list(c.list()))
    c.disconnect()


@pytest.fixture
def store(daemon):
    """A Store on the module's daemon, with every name removed afterwards
    (so tests of one module do not see each other's values)."""
    if daemon.proc.poll() is not None:
        daemon.start()
    s = daemon.connect()
    yield s
    gc.collect()
    try:
        for name in s.keys():
            try:
                del s[name]
            except KeyError:
                pass
        s.evict(1 << 62)
    except shoal.StoreUnavailable:
        pass
    s.close()


def used_bytes(store):
    return store.stats()["used_bytes"]


def in_arena(store, address, size=1):
    """Whether [address, address+size) lies in this process's mapping of
    the store's arena (i.e. the bytes are shared memory, not a copy)."""
    a = store.client.arena
    return a["base"] <= address and address + size <= a["base"] + a["map_size"]
