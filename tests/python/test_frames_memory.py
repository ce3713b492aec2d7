"""Memory across refreshes: replacing one name again and again with the
default daemon reuses the same warm pages, keeps a bounded warm reserve and
gives the rest back; a worker that reads every refresh keeps a flat RSS.
connect() passes daemon options to a daemon it starts.
"""

import os
import select
import signal
import subprocess
import sys
import textwrap

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

import shoal  # noqa: E402
from conftest import Daemon, wait_until  # noqa: E402

MiB = 1 << 20
CHUNK = 2 * MiB
FRAME_ROWS = 500_000  # 4 float64 columns: 16 MB
RESERVE = 24 * MiB
REFRESHES = 100

# Reads the name on every line of stdin, touches every byte, answers with
# its RSS (kB); holds nothing between refreshes.
WORKER = textwrap.dedent(
    r"""
    import sys, shoal
    store = shoal.connect(sys.argv[1], start=False)
    def rss_kb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    for line in sys.stdin:
        df = store["frame"]
        total = float(sum(df[c].sum() for c in df.columns))
        del df
        print(rss_kb(), total, flush=True)
    """
)


def _frame(k):
    rng = np.random.default_rng(k)
    return pd.DataFrame({f"c{i}": rng.random(FRAME_ROWS) for i in range(4)})


def _settled_backed(store, bound):
    """backed_bytes once trimming has brought it under bound (the daemon
    trims a few chunks per loop turn, after the free)."""
    seen = []

    def settled():
        seen.append(store.stats()["backed_bytes"])
        return seen[-1] <= bound

    wait_until(settled, timeout=10, what=f"backed_bytes <= {bound} (last {seen[-1:]})")
    return seen[-1]


def _arena_allocated(pid):
    """Bytes the kernel has allocated to the daemon's arena (the memfd's
    blocks): the truth behind backed_bytes, partial chunks included."""
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            if "shoal-arena" in os.readlink(f"{fds}/{fd}"):
                return os.stat(f"{fds}/{fd}").st_blocks * 512
        except OSError:
            continue
    raise AssertionError("the daemon's arena memfd was not found")


def test_refreshes_reuse_warm_memory_and_give_the_rest_back(tmp_path):
    d = Daemon(tmp_path / "r.sock", "256M", ["--reserve", str(RESERVE)]).start()
    worker = None
    try:
        store = d.connect()
        frame_bytes = _frame(0).memory_usage(index=False).sum()
        # Two frames (old and new) plus the reserve, plus the chunks that
        # the ends of objects share with free memory.
        bound = 2 * frame_bytes + RESERVE + 4 * CHUNK
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, d.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        backed, rss, allocated = [], [], []
        for k in range(REFRESHES):
            df = _frame(k)
            store["frame"] = df
            expected = float(sum(df[c].sum() for c in df.columns))
            del df
            worker.stdin.write("go\n")
            worker.stdin.flush()
            ready, _, _ = select.select([worker.stdout], [], [], 60)
            assert ready, "the worker did not answer within 60 s"
            kb, total = worker.stdout.readline().split()
            assert float(total) == pytest.approx(expected)
            rss.append(int(kb) * 1024)
            backed.append(_settled_backed(store, bound))
            allocated.append(_arena_allocated(d.proc.pid))
            assert allocated[-1] <= bound, (k, allocated[-1], bound)
        # After the first refreshes, no new memory is ever populated:
        # every put lands in warm pages, the others were given back.
        assert max(backed[3:]) <= max(backed[:3]), backed
        print(f"frame {frame_bytes} B, reserve {RESERVE} B: backed_bytes {backed[-1]} B "
              f"after {REFRESHES} refreshes (max {max(backed)}), memfd {allocated[-1]} B "
              f"(max {max(allocated)}); worker RSS {rss[9]} B "
              f"after 10, {rss[-1]} B after {REFRESHES}")
        # The worker's RSS is flat: it maps the same pages each time.
        assert max(rss[10:]) <= rss[9] + frame_bytes // 2, (rss[9], max(rss[10:]))
        # Deleting the name gives all but the reserve back.
        del store["frame"]
        _settled_backed(store, RESERVE + 2 * CHUNK)
        store.close()
    finally:
        if worker is not None:
            worker.stdin.close()
            worker.wait(timeout=30)
        d.stop()


def test_trim_gives_everything_back_and_no_trim_keeps_it(tmp_path):
    for args, after in ((["--trim"], 0), (["--no-trim"], None)):
        d = Daemon(tmp_path / f"t{len(args[0])}.sock", "64M", args).start()
        try:
            store = d.connect()
            store["x"] = np.ones(24 * MiB // 8)
            full = store.stats()["backed_bytes"]
            assert full >= 20 * MiB
            del store["x"]
            if after is None:
                assert store.stats()["backed_bytes"] == full
            else:
                _settled_backed(store, after)
            store.close()
        finally:
            d.stop()


def test_connect_passes_daemon_options(tmp_path):
    path = str(tmp_path / "auto.sock")
    store = shoal.connect(path, memory="64M", daemon_args=["--reserve", "0"], timeout=30)
    pid = store.client.arena["daemon_pid"]
    try:
        with open(path + ".log") as f:
            assert f"pid {pid}" in f.read()
        store["x"] = np.ones(24 * MiB // 8)
        assert store.stats()["backed_bytes"] >= 20 * MiB
        del store["x"]
        _settled_backed(store, 0)  # --reserve 0: everything is given back
        with pytest.raises(TypeError):
            shoal.connect(path, daemon_args="--trim")
    finally:
        store.close()
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=10, what="daemon exit")
