"""Restarts: names kept by `--persist` (and `connect(persist=...)`), clients
that ride through a daemon restart, auto-start of a dead daemon exactly once
among many processes, and StoreUnavailable for calls that cannot be repeated.

Every daemon here is started by shoal.connect() (auto-start) on a socket in
a temporary directory and stopped at the end of its test.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import shoal
from conftest import wait_until

DEADLINE = 120  # s, for any group of worker processes


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill(pid, sig=signal.SIGKILL):
    os.kill(pid, sig)
    wait_until(lambda: not _alive(pid), timeout=10, what=f"daemon {pid} to exit")


@pytest.fixture
def persisted(tmp_path):
    """(socket path, persist dir); stops whatever daemon serves it last."""
    path, pdir = str(tmp_path / "p.sock"), str(tmp_path / "keep")
    yield path, pdir
    try:
        s = shoal.connect(path, start=False)
        pid = s.client.arena["daemon_pid"]
        s.close()
        _kill(pid, signal.SIGTERM)
    except shoal.StoreUnavailable:
        pass


def test_names_survive_kill_and_next_call_succeeds(persisted):
    path, pdir = persisted
    s = shoal.connect(path, memory="64M", persist=pdir)
    frame = np.arange(100_000, dtype=np.int64)
    s["frame"] = frame
    s["config"] = {"refresh": 5}
    s["config"] = {"refresh": 6}  # a replace
    version = s.version("config")
    held = s["frame"]
    pid1 = s.client.arena["daemon_pid"]
    _kill(pid1)
    # The first call after the kill restarts the daemon (auto-start, with
    # --persist) and finds the names again: nothing raises.
    assert s["config"] == {"refresh": 6}
    pid2 = s.client.arena["daemon_pid"]
    assert pid2 != pid1
    assert np.array_equal(s["frame"], frame)
    assert held[99_999] == 99_999  # the view from before is still valid
    assert s.version("config") == version
    del held
    s.close()


def test_clean_restart_keeps_names(persisted):
    path, pdir = persisted
    s = shoal.connect(path, memory="64M", persist=pdir)
    s["a"] = b"kept"
    pid1 = s.client.arena["daemon_pid"]
    _kill(pid1, signal.SIGTERM)
    assert s["a"] == b"kept"
    s.close()


WORKER = (
    "import sys, shoal\n"
    "s = shoal.connect(sys.argv[1], memory='64M', persist=sys.argv[2], timeout=30)\n"
    "s['w%s' % sys.argv[3]] = b'x'\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "assert s['w%s' % sys.argv[3]] == b'x'\n"
    "print(s.client.arena['daemon_pid'], flush=True)\n"
)


def test_dead_daemon_restarted_once_by_many_processes(persisted):
    path, pdir = persisted
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, path, pdir, str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        s = shoal.connect(path, start=False)
        pid1 = s.client.arena["daemon_pid"]
        s.close()
        _kill(pid1)
        for p in procs:  # all at once: each call finds the daemon dead
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=DEADLINE) for p in procs]
        assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
        pids = {int(o.split()[-1]) for o, _ in outs}
        assert len(pids) == 1 and pid1 not in pids, pids
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)


def test_call_that_cannot_be_repeated_raises(persisted):
    path, pdir = persisted
    s = shoal.connect(path, memory="64M", persist=pdir)
    s["n"] = b"1"
    pid = s.client.arena["daemon_pid"]
    os.kill(pid, signal.SIGSTOP)  # requests are written, never answered
    errors = []

    def put():
        try:
            s.put(b"payload")
        except Exception as e:  # noqa: BLE001 - the test inspects it
            errors.append(e)

    t = threading.Thread(target=put)
    t.start()
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    t.join(30)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], shoal.StoreUnavailable), errors
    # ... while a call that is safe to repeat goes on on a new daemon.
    assert s["n"] == b"1"
    assert s.client.arena["daemon_pid"] != pid
    s.close()
