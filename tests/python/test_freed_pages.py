"""A worker of a Dash-like app keeps its store pages flat across refreshes:
a loader keeps replacing a frame while callbacks keep storing mid-size
outputs that expire a few rounds later, each placed wherever the store has
room. Memory freed into the warm reserve stays allocated, but every freed
range leaves the page tables of the processes that touched it at their
next call, so a reader's mapping holds what it reads now, not every place
it ever read.
"""

import pytest

np = pytest.importorskip("numpy")

from conftest import Daemon  # noqa: E402
from test_superseded_pages import arena_rss  # noqa: E402

MiB = 1 << 20
ROUNDS = 40
FRAME = 6 * MiB  # under the 32 MiB of superseded-name dropping
OUTPUTS = 4  # outputs stored per round (one is this worker's)
LIFE = 3  # rounds an output lives
OUTPUT_MAX = 3 * MiB


@pytest.fixture
def stores(tmp_path):
    # A warm reserve above all the store ever frees: nothing is punched,
    # so only the freed-range log can take pages out of a mapping.
    d = Daemon(tmp_path / "s.sock", "256M", args=("--reserve", "200M")).start()
    loader, worker = d.connect(), d.connect()
    assert loader.client.arena["base"] != worker.client.arena["base"]
    yield loader, worker
    worker.close()
    loader.close()
    d.stop()


def test_worker_store_pages_stay_flat_across_refreshes(stores):
    loader, worker = stores
    rng = np.random.default_rng(7)
    live = []
    rss = []
    for k in range(ROUNDS):
        # The data changes size a little from one refresh to the next.
        loader["frame"] = np.full((FRAME + (k % 5) * 64 * 1024) // 8, k, np.int64)
        for i in range(OUTPUTS):
            size = int(rng.integers(MiB, OUTPUT_MAX)) // 8
            loader[f"out:{k}:{i}"] = np.full(size, i + 1, np.int64)
            live.append((k, f"out:{k}:{i}"))
        while live[0][0] <= k - LIFE:  # expired
            del loader[live.pop(0)[1]]
        # The worker's callback: the whole frame and its own output.
        frame = worker["frame"]
        assert (frame == k).all()
        out = worker[f"out:{k}:0"]
        assert (out == 1).all()
        del frame, out
        worker.stats()  # its next call
        rss.append(arena_rss(worker))
    # What it reads now: the frame and its live outputs, plus the pages
    # the kernel maps around each fault (up to 64 KiB a side).
    bound = FRAME + 5 * 64 * 1024 + LIFE * OUTPUT_MAX + 2 * MiB
    assert max(rss[10:]) <= bound, [r // MiB for r in rss]
