"""Processes and threads: many readers and writers, fork, threads sharing
one Store, a daemon restart, and the auto-start from many processes."""

import gc
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

import shoal
from conftest import wait_child, wait_until

DEADLINE = 120  # s, for any group of worker processes


def frame(version, n=20000):
    """A frame whose every cell says which version it belongs to."""
    return pd.DataFrame({"v": np.full(n, version, dtype=np.int64), "s": [str(version)] * n})


# --------------------------------------------------- readers and writers


def _writer(path, name, versions):
    s = shoal.connect(path, start=False)
    for v in versions:
        s[name] = frame(v)
    s.close()
    return len(versions)


def _reader(path, names):
    """Reads until the name "stop" exists, at least one full round."""
    s = shoal.connect(path, start=False)
    reads = 0
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        stop = "stop" in s
        for name in names:
            df = s.get(name)
            if df is None:
                continue
            v = int(df["v"].iloc[0])
            # a reader sees one whole version, never a mix or a torn frame
            assert (df["v"] == v).all() and (df["s"] == str(v)).all()
            reads += 1
        if stop:
            break
    s.close()
    return reads


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_many_readers_and_writers(daemon, method):
    ctx = mp.get_context(method)
    names = ["shared-a", "shared-b"]
    s = daemon.connect()
    with ctx.Pool(6) as pool:
        readers = [pool.apply_async(_reader, (daemon.path, names)) for _ in range(3)]
        writers = [
            pool.apply_async(_writer, (daemon.path, names[i % 2], range(i * 100, i * 100 + 30)))
            for i in range(3)
        ]
        assert sum(w.get(DEADLINE) for w in writers) == 90
        s["stop"] = b""
        assert all(r.get(DEADLINE) >= 2 for r in readers)
    for n in names + ["stop"]:
        del s[n]
    s.close()


def _sum_from(store, name):
    return int(store[name]["a"].sum())


def test_store_passed_to_spawned_process(store):
    """A Store pickles as its socket path: the receiver reconnects."""
    store["sent"] = pd.DataFrame({"a": np.arange(10)})
    with mp.get_context("spawn").Pool(1) as pool:
        assert pool.apply_async(_sum_from, (store, "sent")).get(DEADLINE) == 45


# ------------------------------------------------------------------ fork


def test_fork_child_reconnects(store):
    store["parent"] = np.arange(1000, dtype=np.int64)
    held = store["parent"]  # pinned by the parent's connection
    clients_before = store.stats()["clients"]
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            assert held[999] == 999  # inherited view stays readable
            assert store["parent"][10] == 10  # first use reconnects
            store["from-child"] = b"hi"
            assert store.stats()["clients"] >= clients_before + 1
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    assert wait_child(pid, DEADLINE) == 0
    # the parent's connection was not touched by the child
    assert store["from-child"] == b"hi"
    assert held[999] == 999
    del store["parent"]
    assert held[500] == 500  # still pinned by the parent
    del held


def test_fork_after_connect_module_global(daemon):
    """gunicorn --preload: connect in the parent, fork workers, each uses
    the inherited store object."""
    s = daemon.connect()
    s["preloaded"] = pd.DataFrame({"a": np.arange(100)})
    df = s["preloaded"]
    pids = []
    for i in range(4):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                assert int(df["a"].sum()) == 4950
                s[f"worker-{i}"] = pd.DataFrame({"w": [i]})
                assert int(s["preloaded"]["a"].sum()) == 4950
                code = 0
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        pids.append(pid)
    assert [wait_child(p, DEADLINE) for p in pids] == [0] * 4
    assert sorted(k for k in s.keys() if k.startswith("worker-")) == [f"worker-{i}" for i in range(4)]
    for k in s.keys():
        del s[k]
    s.close()


def test_fork_with_pending_create(store):
    """A child of a process with an unsealed create cannot seal it (the
    create belongs to the parent's connection), the parent still can."""
    oid = shoal.ObjectID.from_random()
    buf = store.create(oid, 3)
    buf.write(0, b"abc")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            store.seal(oid)
        except shoal.ObjectNotFound:
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        os._exit(code)
    assert wait_child(pid, DEADLINE) == 0
    store.seal(oid)
    del buf
    assert store.get(oid) == b"abc"


# --------------------------------------------------------------- threads


def test_threads_share_one_store(store):
    errors = []

    def work(t):
        try:
            for i in range(50):
                arr = np.full(1000, t * 1000 + i, dtype=np.int64)
                oid = store.put(arr)
                store[f"t{t}"] = arr
                assert (store.get(oid) == arr).all()
                assert (store[f"t{t}"] == arr).all()
                store.delete(oid)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_wait_in_one_thread_does_not_block_others(store):
    """Another thread's requests go while one thread waits: they finish
    before the wait does (which lasts until the test ends it), so the check
    holds however slow the machine is."""
    store["quick"] = b"q"
    started = threading.Event()
    got = []

    def waiter():
        started.set()
        got.append(store.wait_for("set-later", timeout=DEADLINE))

    t = threading.Thread(target=waiter)
    t.start()
    assert started.wait(DEADLINE)
    time.sleep(0.1)
    for _ in range(50):
        assert store["quick"] == b"q"
    assert t.is_alive(), "requests waited behind another thread's wait"
    store["set-later"] = b"now"
    t.join(DEADLINE)
    assert not t.is_alive()
    assert bytes(got[0]) == b"now"


def test_release_from_other_thread_while_get_waits(store):
    """Dropping values (release) never waits for a blocked request: the
    drop finishes while the other thread's get still waits for an object
    that only the test creates afterwards."""
    store["r"] = np.arange(10)
    values = [store["r"] for _ in range(100)]
    oid = shoal.ObjectID.from_random()
    got = []
    blocker = threading.Thread(target=lambda: got.append(store.get(oid, timeout=DEADLINE)))
    blocker.start()
    time.sleep(0.1)
    del values
    gc.collect()
    assert blocker.is_alive(), "the release waited for the blocked get"
    store.put(b"wake", id=oid)
    blocker.join(DEADLINE)
    assert not blocker.is_alive()
    assert bytes(got[0]) == b"wake"


# -------------------------------------------------------- daemon restart


def test_daemon_restart(daemon):
    s = daemon.connect()
    s["before"] = np.arange(100)
    assert s.get("nothing", timeout=0.05) is None  # a spare connection exists
    held = s["before"]
    daemon.restart()
    # the first call after the restart reconnects and succeeds (here on a
    # spare connection of the pool)
    assert s.get("nothing", timeout=0.05) is None
    assert s.stats()["names"] == 0
    assert "before" not in s
    s["after"] = b"ok"
    assert s["after"] == b"ok"
    assert held[99] == 99  # the old mapping is still readable
    assert s.get("nothing", timeout=0.05) is None  # waits use fresh connections too
    del s["after"]
    s.close()


def test_daemon_killed(daemon):
    s = daemon.connect()
    s["x"] = b"1"
    daemon.stop(signal.SIGKILL)
    with pytest.raises(shoal.StoreUnavailable):
        s["x"]
    with pytest.raises(shoal.StoreUnavailable):
        s["x"]  # still down: still unavailable, with no daemon started
    daemon.start()
    assert s.get("x") is None
    s.close()


# ------------------------------------------------------------ auto-start


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_pid(pid):
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not _pid_alive(pid), timeout=10, what=f"daemon {pid} to exit")


CONNECT_AND_REPORT = (
    "import sys, shoal\n"
    "s = shoal.connect(sys.argv[1], memory='64M', timeout=30)\n"
    "s['from-%s' % sys.argv[2]] = b'x'\n"
    "print(s.client.arena['daemon_pid'])\n"
)


def test_autostart_from_many_processes_starts_one(tmp_path):
    path = str(tmp_path / "auto.sock")
    procs = [
        subprocess.Popen([sys.executable, "-c", CONNECT_AND_REPORT, path, str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(8)
    ]
    outs = [p.communicate(timeout=DEADLINE) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e.decode() for _, e in outs]
    pids = {int(o) for o, _ in outs}
    assert len(pids) == 1, pids
    pid = pids.pop()
    try:
        assert _pid_alive(pid)  # outlived every process that started it
        s = shoal.connect(path, start=False)
        assert len(s) == 8
        assert s.capacity == 64 << 20
        assert os.path.exists(path + ".lock") and os.path.exists(path + ".log")
        s.close()
    finally:
        _stop_pid(pid)


def test_autostart_reports_daemon_error(tmp_path):
    with pytest.raises(shoal.StoreUnavailable) as e:
        shoal.connect(str(tmp_path / "bad.sock"), memory="1000T", timeout=10)
    assert "bad.sock.log" in str(e.value)


def test_autostart_after_daemon_died(tmp_path):
    path = str(tmp_path / "again.sock")
    s = shoal.connect(path, memory="32M")
    pid1 = s.client.arena["daemon_pid"]
    os.kill(pid1, signal.SIGKILL)
    wait_until(lambda: not _pid_alive(pid1), what="killed daemon gone")
    assert s.stats()["names"] == 0  # the reconnect starts a new daemon
    s["x"] = b"restarted"
    pid2 = s.client.arena["daemon_pid"]
    assert pid2 != pid1
    s.close()
    _stop_pid(pid2)
