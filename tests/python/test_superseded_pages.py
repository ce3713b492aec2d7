"""A reader that follows a name drops the pages of the name's superseded
large objects from its own mapping: its RSS for the arena counts the
current object, not every place the name's value has been, while the data
of every object stays intact (also objects placed later in the old range,
and an object being written there through an open window).
"""

import subprocess
import sys
import textwrap

import pytest

np = pytest.importorskip("numpy")

import shoal  # noqa: E402
from conftest import Daemon  # noqa: E402

MiB = 1 << 20
SIZE = 48 * MiB  # above the client's 32 MiB threshold

# Puts an object of SIZE bytes filled with the byte of each line of stdin
# under the name "big" (the old value is still named while the new one is
# written, so it lands elsewhere), or under "other" for "other <byte>".
WRITER = textwrap.dedent(
    r"""
    import sys, shoal
    store = shoal.connect(sys.argv[1], start=False)
    size = int(sys.argv[2])
    for line in sys.stdin:
        words = line.split()
        name = words[0]
        data = bytes([int(words[1])]) * size
        store.client.put(shoal.ObjectID.from_random(), [data], name=name)
        print("ok", flush=True)
    """
)


def arena_rss(store):
    """Bytes of this process's mapping of the arena that are in its page
    tables (the Rss: line of that mapping in /proc/self/smaps)."""
    base = store.client.arena["base"]
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                inside = int(head.split("-")[0], 16) == base
            elif inside and head == "Rss:":
                return int(line.split()[1]) * 1024
    raise AssertionError("the arena mapping was not found in smaps")


def offset(store, buf):
    return np.frombuffer(buf, dtype=np.uint8).ctypes.data - store.client.arena["base"]


def read_all(buf):
    """Touches every page; returns the set of byte values found."""
    return set(np.unique(np.frombuffer(buf, dtype=np.uint8)).tolist())


def put_a_then_b(store, put):
    """Puts A (0x11) under "big", reads it and lets its view go, then puts
    B (0x22) over the name; returns A's offset in the arena."""
    put("big", 0x11)
    a, _ = store.client.get_name("big")
    a_off = offset(store, a)
    assert read_all(a) == {0x11}
    a.release()
    put("big", 0x22)
    return a_off


@pytest.fixture
def setup(tmp_path):
    # A warm reserve larger than every freed object: nothing is given back
    # by hole punching, so only the reader can drop its pages.
    d = Daemon(tmp_path / "s.sock", "512M", args=("--reserve", "400M")).start()
    w = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(d.path), str(SIZE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    store = d.connect()

    def put(name, byte):
        w.stdin.write(f"{name} {byte}\n")
        w.stdin.flush()
        assert w.stdout.readline() == "ok\n"

    yield store, put
    store.close()
    w.stdin.close()
    w.wait(timeout=30)
    d.stop()


def test_reader_drops_a_superseded_object_it_no_longer_views(setup):
    store, put = setup
    a_off = put_a_then_b(store, put)  # A is freed and stays backed in the reserve
    b, _ = store.client.get_name("big")
    b_off = offset(store, b)
    assert abs(b_off - a_off) >= SIZE, "B was placed over A: nothing to test"
    assert read_all(b) == {0x22}
    # Only B's pages are mapped: A's were dropped when B superseded it.
    assert arena_rss(store) < SIZE + 8 * MiB
    # A third object, placed in A's old range, reads correctly here.
    put("other", 0x33)
    c, _ = store.client.get_name("other")
    assert abs(offset(store, c) - a_off) < SIZE, "C was not placed in A's range"
    assert read_all(c) == {0x33}
    assert read_all(b) == {0x22}
    b.release()
    c.release()


def test_views_still_held_keep_their_pages_until_released(setup):
    store, put = setup
    put("big", 0x11)
    a, _ = store.client.get_name("big")
    assert read_all(a) == {0x11}
    put("big", 0x22)
    b, _ = store.client.get_name("big")
    assert read_all(b) == {0x22}
    # A is still viewed: both are mapped, and A's data is intact.
    assert arena_rss(store) >= 2 * SIZE - 4 * MiB
    assert read_all(a) == {0x11}
    a.release()
    # The last view of A went: its pages left this process's mapping.
    assert arena_rss(store) < SIZE + 8 * MiB
    assert read_all(b) == {0x22}
    b.release()


def test_open_window_in_the_dropped_range_stays_writable(setup):
    store, put = setup
    a_off = put_a_then_b(store, put)  # A's range is free (and backed)
    # This client writes a new object, which the store places in A's range.
    oid = shoal.ObjectID.from_random()
    w = store.client.create(oid, SIZE)
    assert abs(offset(store, w) - a_off) < SIZE, "not placed in A's range"
    arr = np.frombuffer(w, dtype=np.uint8)
    arr[: SIZE // 2] = 0x44
    # Getting B drops A's old range from the mapping, under the open window.
    b, _ = store.client.get_name("big")
    assert read_all(b) == {0x22}
    arr[SIZE // 2 :] = 0x55  # still writable, and the first half is kept
    del arr
    w.release()
    store.client.seal(oid)
    (got,) = store.client.get([oid])
    data = np.frombuffer(got, dtype=np.uint8)
    assert (data[: SIZE // 2] == 0x44).all()
    assert (data[SIZE // 2 :] == 0x55).all()
    del data
    got.release()
    b.release()
