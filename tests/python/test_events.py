"""Notifications: Store.subscribe(), the C Subscription and shoal.plasma's
subscribe / get_notification_socket / get_next_notification /
decode_notifications, against a real daemon. Every wait has a deadline."""

import gc
import multiprocessing as mp
import os
import pickle
import select
import signal
import struct
import threading
import time

import pytest

import shoal
import shoal.plasma as plasma
from conftest import Daemon, wait_child, wait_until
from shoal import _shoal

WAIT = 5.0  # seconds any single event may take to arrive
DEADLINE = 60


def next_event(sub):
    ev = sub.next(timeout=WAIT)
    assert ev is not None, f"no event within {WAIT} s"
    return ev


def events(sub, n):
    return [next_event(sub) for _ in range(n)]


def no_more(sub):
    assert sub.next(timeout=0.1) is None


def brief(evs):
    return [(e.kind, e.id, e.name) for e in evs]


@pytest.fixture
def private_daemon(tmp_path):
    """A daemon of its own, for tests that stop it or overflow a queue."""
    d = Daemon(tmp_path / "own.sock", "64M", args=("--event-queue", "64K")).start()
    yield d
    d.stop()


def _in_child(body):
    """Runs body() in a forked child; returns its exit code (0: passed)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return wait_child(pid, DEADLINE)


# ---------------------------------------------------------- Store.subscribe


def test_ttl_changes_are_events_for_who_asks(store):
    store.set("cfg", b"v")
    version = store.names()["cfg"]["version"]
    with store.subscribe(ttl=True) as sub, store.subscribe() as plain:
        before = time.time() * 1000
        store.expire("cfg", 30)
        after = time.time() * 1000
        ev = next_event(sub)
        assert (ev.kind, ev.name, ev.version) == ("name_ttl", "cfg", version)
        assert ev.id == store.names()["cfg"]["id"]
        assert before + 30000 <= ev.expires_ms <= after + 30000 + 1
        store.persist("cfg")
        ev = next_event(sub)
        assert (ev.kind, ev.name, ev.expires_ms) == ("name_ttl", "cfg", 0)
        assert len(ev) == 7  # expires_ms is outside the tuple
        del store["cfg"]
        assert next_event(sub).kind == "name_deleted"
        assert [e.kind for e in events(plain, 2)] == ["name_deleted", "deleted"]


def test_events_of_objects_and_names_in_order(store):
    with store.subscribe() as sub:
        no_more(sub)
        a = store.put(b"a" * 10)
        v1 = store.set("n", b"first")
        first = store.names()["n"]["id"]
        v2 = store.set("n", b"second")
        second = store.names()["n"]["id"]
        del store["n"]
        store.delete(a)
        oid = shoal.ObjectID.from_random()
        buf = store.create(oid, 4, metadata=b"meta")
        buf.write(0, b"abcd")
        store.seal(oid)
        buf.release()
        aborted = shoal.ObjectID.from_random()
        store.create(aborted, 8).release()
        store.abort(aborted)  # never sealed: no event
        freed = store.evict(1 << 30)
        assert freed > 0

        evs = events(sub, 11)
        assert brief(evs) == [
            ("sealed", a, None),
            ("sealed", first, None),
            ("name_set", first, "n"),
            ("sealed", second, None),
            ("deleted", first, None),  # the value the name left
            ("name_set", second, "n"),
            ("name_deleted", second, "n"),
            ("deleted", second, None),
            ("deleted", a, None),
            ("sealed", oid, None),
            ("evicted", oid, None),
        ]
        assert [e.seq for e in evs] == list(range(evs[0].seq, evs[0].seq + 11))
        assert (evs[0].data_size, evs[0].metadata_size) == (10, 0)
        assert (evs[9].data_size, evs[9].metadata_size) == (4, 4)
        assert [evs[2].version, evs[5].version] == [v1, v2]
        assert evs[6].version == v2
        no_more(sub)


def test_event_is_a_named_tuple(store):
    with store.subscribe() as sub:
        oid = store.put(b"xyz")
        ev = next_event(sub)
        assert isinstance(ev, shoal.Event) and isinstance(ev, tuple)
        kind, id_, data_size, metadata_size, name, version, seq = ev
        assert (kind, id_, data_size, name, version) == ("sealed", oid, 3, None, 0)
        assert seq == ev.seq >= 1 and metadata_size == ev.metadata_size
        assert pickle.loads(pickle.dumps(ev)) == ev


def test_snapshot_then_live_events(store):
    a = store.put(b"a")
    store["snap"] = b"named"
    named = store.names()["snap"]["id"]
    with store.subscribe(snapshot=True) as sub:
        evs = []
        while not evs or evs[-1].kind != "snapshot_end":
            evs.append(next_event(sub))
            assert len(evs) < 1000
        sealed = {e.id for e in evs if e.kind == "sealed"}
        assert {a, named} <= sealed
        assert [(e.name, e.id) for e in evs if e.kind == "name_set"] == [("snap", named)]
        assert evs[-1].id is None and evs[-1].name is None
        b = store.put(b"b")
        assert brief([next_event(sub)]) == [("sealed", b, None)]
    with store.subscribe() as sub:  # without snapshot: only what follows
        c = store.put(b"c")
        assert brief([next_event(sub)]) == [("sealed", c, None)]


def test_timeout_returns_none(store):
    with store.subscribe() as sub:
        t = time.monotonic()
        assert sub.next(timeout=0) is None
        assert sub.next(timeout=0.2) is None
        took = time.monotonic() - t
        assert 0.15 <= took < 3
    with _shoal.Subscription(store.socket_path) as csub:
        assert csub.next(0) is None
        assert csub.next(timeout=50) is None


def test_iteration_ends_when_closed_from_another_thread(store):
    sub = store.subscribe()
    seen = []
    done = threading.Event()

    def consume():
        for ev in sub:  # blocks with the GIL released
            seen.append(ev.kind)
        done.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    store.put(b"1")
    store.put(b"2")
    wait_until(lambda: len(seen) == 2, WAIT, what="two events through the iterator")
    sub.close()
    assert done.wait(WAIT), "iteration did not end after close()"
    t.join(WAIT)
    assert seen == ["sealed", "sealed"]
    assert sub.closed
    with pytest.raises(shoal.StoreUnavailable) as e:
        sub.next(0)
    assert e.value.code == _shoal.ECLOSED
    with pytest.raises(ValueError):
        sub.fileno()


def test_wait_is_interruptible(store):
    """next() waits with the GIL released, in slices that let a signal
    handler run (Ctrl-C)."""

    class Alarm(Exception):
        pass

    def on_alarm(signum, frame):
        raise Alarm

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with store.subscribe() as sub:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            t = time.monotonic()
            with pytest.raises(Alarm):
                sub.next()  # forever
            assert time.monotonic() - t < WAIT
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_fileno_with_select(store):
    with store.subscribe() as sub:
        assert select.select([sub], [], [], 0)[0] == []
        ids = [store.put(bytes([i])) for i in range(3)]
        assert select.select([sub], [], [], WAIT)[0] == [sub]
        got = []
        deadline = time.monotonic() + WAIT
        while len(got) < 3:
            # Drain what is buffered before waiting on the descriptor again.
            while (ev := sub.next(0)) is not None:
                got.append(ev.id)
            if len(got) < 3:
                assert time.monotonic() < deadline
                select.select([sub], [], [], WAIT)
        assert got == ids


def test_subscribe_to_missing_daemon(tmp_path):
    with pytest.raises(shoal.StoreUnavailable):
        shoal.Subscription(str(tmp_path / "none.sock"))


def test_overflow_is_an_event_then_the_subscription_ends(private_daemon):
    store = private_daemon.connect()
    slow = store.subscribe()
    with store.subscribe() as fast:
        # ~100 bytes an event, far more than the 64 KiB queue plus the
        # socket buffers; `fast` keeps up, `slow` reads nothing.
        for i in range(4000):
            oid = store.put(b"x")
            store.delete(oid)
            if i % 100 == 99:
                while fast.next(0) is not None:
                    pass
        last = None
        deadline = time.monotonic() + DEADLINE
        with pytest.raises(shoal.StoreUnavailable) as e:
            while True:
                assert time.monotonic() < deadline
                ev = slow.next(timeout=WAIT)
                assert ev is not None, "neither an event nor the end"
                last = ev.kind
        assert last == "overflow"
        assert "overflow" in str(e.value)
        # the other subscriber goes on
        while fast.next(0) is not None:
            pass
        oid = store.put(b"after")
        assert brief([next_event(fast)]) == [("sealed", oid, None)]
    slow.close()
    store.close()


def test_daemon_stop_ends_the_subscription(private_daemon):
    sub = shoal.Subscription(private_daemon.path)
    private_daemon.stop()
    with pytest.raises(shoal.StoreUnavailable) as e:
        sub.next(timeout=WAIT)
    assert "stopped" in str(e.value)
    sub.close()


def _subscriber(path, ready, n):
    """In another process: subscribe, say so, return the next n events."""
    with shoal.connect(path, start=False).subscribe() as sub:
        ready.set()
        return [(e.kind, e.id.binary(), e.name) for e in (sub.next(timeout=WAIT) for _ in range(n))]


def test_subscriber_in_another_process(store):
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(1) as pool:
        ready = manager.Event()
        result = pool.apply_async(_subscriber, (store.socket_path, ready, 3))
        assert ready.wait(DEADLINE), "the subscriber did not start"
        oid = store.put(b"to another process")
        store["remote"] = b"v"
        named = store.names()["remote"]["id"]
        got = result.get(DEADLINE)
    assert got == [
        ("sealed", oid.binary(), None),
        ("sealed", named.binary(), None),
        ("name_set", named.binary(), "remote"),
    ]


def test_fork_child_must_subscribe_again(store):
    sub = store.subscribe()
    csub = _shoal.Subscription(store.socket_path)
    store.put(b"before fork")

    def child():
        for s in (sub, csub):
            with pytest.raises(shoal.StoreUnavailable) as e:
                s.next(0)
            assert e.value.code == _shoal.EFORKED
            assert "fork" in str(e.value)
            with pytest.raises(shoal.StoreUnavailable):
                s.fileno()
        child_store = shoal.connect(store.socket_path, start=False)
        with child_store.subscribe() as own:
            oid = child_store.put(b"from the child")
            assert brief([next_event(own)]) == [("sealed", oid, None)]

    assert _in_child(child) == 0
    # The parent's subscriptions were not disturbed: they see their event
    # from before the fork, then the child's put, then the next one.
    first = next_event(sub)
    assert first.kind == "sealed" and first.data_size == len(b"before fork")
    assert next_event(sub).data_size == len(b"from the child")
    oid = store.put(b"after")
    assert brief([next_event(sub)]) == [("sealed", oid, None)]
    assert csub.next(int(WAIT * 1000)).data_size == len(b"before fork")
    sub.close()
    csub.close()


# ------------------------------------------------------------ shoal.plasma


def random_id():
    return plasma.ObjectID.from_random()


def test_plasma_notifications(client, store):
    before = random_id()
    client.create_and_seal(before, b"existing", b"m")
    client.subscribe()
    client.subscribe()  # again: keeps the subscription
    # As in Plasma, the objects sealed before subscribe() come first.
    assert client.get_next_notification() == (before, 8, 1)
    oid = random_id()
    buf = client.create(oid, 100, metadata=b"xy")
    client.seal(oid)
    del buf
    assert client.get_next_notification() == (oid, 100, 2)
    store["name"] = b"named"  # names are not Plasma notifications
    info = store.names()["name"]
    client.delete([before])
    assert client.get_next_notification() == (info["id"], info["data_size"], info["metadata_size"])
    assert client.get_next_notification() == (before, -1, -1)
    gc.collect()
    client.evict(1 << 30)  # evicted objects are deletions too
    assert client.get_next_notification() == (oid, -1, -1)


def test_plasma_not_subscribed(client):
    with pytest.raises(OSError):
        client.get_next_notification()
    with pytest.raises(OSError):
        client.get_notification_socket()


def _recv_exact(sock, n):
    data = b""
    while len(data) < n:
        assert select.select([sock], [], [], WAIT)[0], "no notification bytes within the deadline"
        chunk = sock.recv(n - len(data))
        assert chunk
        data += chunk
    return data


def _read_message(sock):
    """One notification as Plasma framed it (a native 8-byte length, then
    the message), split into the message's header and body."""
    (length,) = struct.unpack("=Q", _recv_exact(sock, 8))
    message = _recv_exact(sock, length)
    (body_len,) = struct.unpack_from("<I", message, 12)
    assert len(message) == 16 + body_len
    return message[:16], message[16:]


def test_plasma_notification_socket_select_and_decode(client):
    client.subscribe()
    sock = client.get_notification_socket()
    assert client.get_notification_socket() is sock
    assert select.select([sock], [], [], 0)[0] == []
    ids = [random_id() for _ in range(3)]
    for i, oid in enumerate(ids):
        client.create_and_seal(oid, b"d" * (i + 1), b"m" * i)
    client.delete([ids[0]])

    assert select.select([sock], [], [], WAIT)[0] == [sock]
    header, body = _read_message(sock)
    # a body alone, as Plasma code passed it after the length prefix
    assert client.decode_notifications(body) == ([ids[0]], [1], [0])
    assert client.decode_notifications(header + body) == ([ids[0]], [1], [0])
    # several whole messages at once
    raw = b"".join(h + b for h, b in (_read_message(sock) for _ in range(3)))
    assert client.decode_notifications(raw) == ([ids[1], ids[2], ids[0]], [2, 3, -1], [1, 2, -1])
    assert plasma.decode_notifications(memoryview(raw)) == client.decode_notifications(raw)
    assert select.select([sock], [], [], 0.05)[0] == []
    with pytest.raises(ValueError):
        client.decode_notifications(raw[:-1])
    with pytest.raises(ValueError):
        client.decode_notifications(raw[:20])
    # select + get_next_notification: nothing hides in a buffer
    oid = random_id()
    client.create_and_seal(oid, b"z", b"")
    assert select.select([sock], [], [], WAIT)[0] == [sock]
    assert client.get_next_notification() == (oid, 1, 0)
    assert select.select([sock], [], [], 0.05)[0] == []


def test_decode_notifications_skips_name_events():
    oid = random_id()

    def message(kind, name=b"", seq=1):
        body = struct.pack("<II20sIQQ", kind, len(name), oid.binary(), 7, 42, 3) + name
        return (
            struct.pack("<IHHII", _shoal.PROTO_MAGIC, _shoal.PROTO_VERSION, _shoal.PROTO_EVENT, seq, len(body))
            + body
        )

    raw = (
        message(_shoal.EVENT_NAME_SET, b"n")
        + message(_shoal.EVENT_SEALED)
        + message(_shoal.EVENT_NAME_EXPIRED, b"n")
        + message(_shoal.EVENT_NAME_EVICTED, b"n")
        + message(_shoal.EVENT_NAME_DELETED, b"n")
        + message(_shoal.EVENT_SNAPSHOT_END)
        + message(_shoal.EVENT_EVICTED)
    )
    assert plasma.decode_notifications(raw) == ([oid, oid], [42, -1], [7, -1])
    assert plasma.decode_notifications(b"") == ([], [], [])
    with pytest.raises(ValueError):
        plasma.decode_notifications(b"\x00" * 10)


def test_plasma_notifications_after_fork(client):
    client.subscribe()
    first = random_id()
    client.create_and_seal(first, b"1", b"")

    def child():
        with pytest.raises(OSError, match="fork"):
            client.get_next_notification()
        client.subscribe()  # a subscription of the child's own
        oid = random_id()
        client.create_and_seal(oid, b"22", b"")
        deadline = time.monotonic() + WAIT
        while client.get_next_notification() != (oid, 2, 0):
            assert time.monotonic() < deadline

    assert _in_child(child) == 0
    assert client.get_next_notification() == (first, 1, 0)
    assert client.get_next_notification()[1] == 2  # the child's object


def test_plasma_disconnect_ends_the_subscription(private_daemon):
    c = plasma.connect(private_daemon.path)  # an empty store: nothing to read
    c.subscribe()
    sock = c.get_notification_socket()
    thread = c._notifier.thread
    assert thread.is_alive()
    result = []

    def read():
        try:
            result.append(c.get_next_notification())
        except OSError as e:
            result.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.1)  # (most likely) blocked in recv by now
    c.disconnect()
    reader.join(WAIT)
    assert not reader.is_alive(), "disconnect() did not wake a waiting reader"
    assert isinstance(result[0], plasma.PlasmaConnectionError)
    thread.join(WAIT)
    assert not thread.is_alive()
    assert sock.fileno() == -1  # the client owns it
    # a dropped client ends its subscription too
    c = plasma.connect(private_daemon.path)
    c.subscribe()
    thread = c._notifier.thread
    del c
    gc.collect()
    thread.join(WAIT)
    assert not thread.is_alive()


def test_plasma_store_stopped(private_daemon):
    c = plasma.connect(private_daemon.path)
    c.subscribe()
    private_daemon.stop()
    with pytest.raises(plasma.PlasmaConnectionError, match="ended"):
        c.get_next_notification()
