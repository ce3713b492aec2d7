"""Waiting calls: one request to the daemon however long they wait, and
Ctrl-C (or any signal whose handler raises) ends them at once."""

import signal
import subprocess
import sys
import textwrap
import threading
import time

import shoal
from shoal import _shoal

MISSING = b"\x42" * 20


def test_waiting_get_makes_no_repeated_requests(daemon):
    stats = _shoal.Client(daemon.path)
    c = _shoal.Client(daemon.path)
    assert c.get([MISSING], 1) == [None]  # opens the connection for waits
    before = stats.stats()["requests"]
    t0 = time.monotonic()
    assert c.get([MISSING], 1000) == [None]
    assert time.monotonic() - t0 >= 0.95
    after = stats.stats()["requests"]
    # The get and the second stats request: nothing while it waited (a wait
    # cut into 100 ms slices made ten requests of it).
    assert after - before == 2
    c.close()
    stats.close()


def test_waiting_name_and_create_make_no_repeated_requests(daemon):
    stats = _shoal.Client(daemon.path)
    c = _shoal.Client(daemon.path)
    assert c.get([MISSING], 1) == [None]  # opens the connection for waits
    c.create(b"\x01" * 20, 64 << 20)  # held, unsealed: the rest cannot fit
    before = stats.stats()["requests"]
    try:
        c.get_name("never-set", 500)
    except shoal.ObjectNotFound:
        pass
    else:
        raise AssertionError("get_name returned a name never set")
    try:
        c.create(b"\x02" * 20, 200 << 20, timeout=500)
    except shoal.StoreFull:
        pass
    else:
        raise AssertionError("a create that cannot fit succeeded")
    assert stats.stats()["requests"] - before == 3
    c.abort(b"\x01" * 20)
    c.close()
    stats.close()


def sigint_ends_wait(setup, wait):
    """Runs a child that does setup, says "waiting" and does wait (a wait
    forever); sends it SIGINT once it waits. The wait must end at once with
    KeyboardInterrupt."""
    script = textwrap.dedent(
        f"""
        from shoal import _shoal
        {setup}
        print("waiting", flush=True)
        {wait}
        print("returned", flush=True)
        """
    )
    p = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout.readline().strip() == "waiting"
        time.sleep(0.3)  # inside the wait by now
        assert p.poll() is None
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert "KeyboardInterrupt" in err
    assert "returned" not in out
    assert p.returncode != 0
    assert elapsed < 2.0, f"Ctrl-C took {elapsed:.2f} s to end the wait"


def test_sigint_ends_a_wait_forever_at_once(daemon):
    sigint_ends_wait(f"c = _shoal.Client({daemon.path!r})", f"c.get([{MISSING!r}], -1)")


def test_close_wakes_a_waiting_subscription_at_once(daemon):
    sub = _shoal.Subscription(daemon.path)
    result = []

    def wait():
        try:
            result.append(sub.next(-1))
        except shoal.Error as e:
            result.append(e)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.2)  # (most likely) waiting by now
    t0 = time.monotonic()
    sub.close()
    t.join(5)
    assert not t.is_alive() and time.monotonic() - t0 < 1.0
    assert isinstance(result[0], shoal.StoreUnavailable)


def test_sigint_ends_a_subscription_wait_at_once(daemon):
    sigint_ends_wait(f"sub = _shoal.Subscription({daemon.path!r})", "sub.next(-1)")


def test_a_signal_that_does_not_raise_resumes_the_wait(daemon):
    c = _shoal.Client(daemon.path)
    writer = _shoal.Client(daemon.path)
    oid = _shoal.ObjectID.from_random()
    seen = []
    old = signal.signal(signal.SIGALRM, lambda *a: seen.append(time.monotonic()))
    putter = threading.Timer(0.6, lambda: writer.put(oid, [b"late"]))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        putter.start()
        t0 = time.monotonic()
        [buf] = c.get([oid], 5000)
        assert buf is not None and bytes(buf) == b"late"
        assert seen and seen[0] - t0 < 0.5  # the handler ran during the wait
        buf.release()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        putter.join(5)
        c.close()
        writer.close()


def test_a_raising_handler_ends_a_timed_wait(daemon):
    c = _shoal.Client(daemon.path)

    class Stop(Exception):
        pass

    def raise_stop(*_):
        raise Stop

    old = signal.signal(signal.SIGALRM, raise_stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        t0 = time.monotonic()
        try:
            c.get([MISSING], 10_000)
        except Stop:
            pass
        else:
            raise AssertionError("the handler's exception did not end the wait")
        assert time.monotonic() - t0 < 5
        # The connection is in step afterwards.
        assert c.get([MISSING], 0) == [None]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        c.close()
