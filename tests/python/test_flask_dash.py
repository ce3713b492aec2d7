"""shoal.flask_caching.ShoalCache and shoal.dash.ShoalBackend across
processes, as gunicorn workers use them: a memoized function or cached view
runs once and every process gets its result; a frame returned by a Dash
Serverside output in one process is read zero-copy by the next callback in
another one.
"""

import json
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest

from conftest import in_arena, wait_until

DEADLINE = 120


def flask_app(path, runs_file):
    """A Flask app with one memoized function and one cached view, each
    appending a line to runs_file when it really runs."""
    from flask import Flask
    from flask_caching import Cache

    app = Flask("shoal_flask_test")
    cache = Cache(
        app,
        config={
            "CACHE_TYPE": "shoal.flask_caching.ShoalCache",
            "CACHE_SHOAL_SOCKET": path,
            "CACHE_SHOAL_START": False,
            "CACHE_KEY_PREFIX": "fc:",
            "CACHE_DEFAULT_TIMEOUT": 120,
        },
    )

    def ran(what):
        with open(runs_file, "a") as f:
            f.write(f"{what} {os.getpid()}\n")

    @cache.memoize()
    def expensive(x):
        ran("memoize")
        return {"x": x, "pid": os.getpid(), "frame": pd.DataFrame({"v": np.arange(1000) * x})}

    @app.route("/report")
    @cache.cached()
    def report():
        ran("cached")
        return f"report by {os.getpid()}"

    return app, cache, expensive


def _flask_worker(path, runs_file):
    app, cache, expensive = flask_app(path, runs_file)
    with app.app_context():
        r = expensive(7)
    body = app.test_client().get("/report").get_data(as_text=True)
    assert int(r["frame"]["v"].sum()) == 7 * sum(range(1000))
    return r["pid"], body, type(cache.cache).__name__, cache.cache.key_prefix


def runs(runs_file, what):
    with open(runs_file) as f:
        return [line.split()[1] for line in f if line.split()[0] == what]


def test_memoize_and_cached_run_once_across_processes(store, tmp_path):
    runs_file = tmp_path / "runs.txt"
    runs_file.touch()
    ctx = mp.get_context("spawn")
    t0 = time.monotonic()
    with ctx.Pool(4) as pool:
        first = pool.apply_async(_flask_worker, (store.socket_path, str(runs_file))).get(DEADLINE)
        rest = pool.starmap_async(_flask_worker, [(store.socket_path, str(runs_file))] * 6).get(DEADLINE)
    pid, body, cls, prefix = first
    assert cls == "ShoalCache" and prefix == "fc:"
    assert runs(runs_file, "memoize") == [str(pid)]
    assert len(runs(runs_file, "cached")) == 1
    for other_pid, other_body, _, _ in rest:
        assert other_pid == pid  # every process got the first one's result
        assert other_body == body
    # The entries are shoal names under the configured prefix, with the TTL.
    names = store.keys(prefix="cache/fc:")
    assert names
    ttl = store.ttl(names[0])
    # Set with a 120 s timeout at some point since t0.
    assert ttl is not None and 120 - (time.monotonic() - t0) - 1 < ttl <= 120


def test_factory_reads_config(tmp_path):
    """CACHE_SHOAL_SOCKET and CACHE_SHOAL_MEMORY start a daemon of that
    size on that socket; CACHE_KEY_PREFIX and CACHE_DEFAULT_TIMEOUT apply."""
    from flask import Flask
    from flask_caching import Cache

    path = str(tmp_path / "fc.sock")
    app = Flask("factory")
    cache = Cache(
        app,
        config={
            "CACHE_TYPE": "shoal.flask_caching.ShoalCache",
            "CACHE_SHOAL_SOCKET": path,
            "CACHE_SHOAL_MEMORY": "64M",
            "CACHE_KEY_PREFIX": "pfx:",
            "CACHE_DEFAULT_TIMEOUT": 42,
        },
    )
    backend = cache.cache
    try:
        assert backend.store.socket_path == path
        assert backend.store.capacity == 64 << 20
        with app.app_context():
            cache.set("k", "v")
            assert cache.get("k") == "v"
        ttl = backend.store.ttl("cache/pfx:k")
        assert ttl is not None and 40 < ttl <= 42
    finally:
        backend.store.close()
        _stop_daemon(path)


def _stop_daemon(path):
    """Stops the daemon that connect() started on path (found by its
    command line, which names our private socket)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if b"serve" in cmd and path.encode() in cmd:
            os.kill(int(pid), signal.SIGTERM)
            wait_until(lambda: not os.path.exists(f"/proc/{pid}/cmdline")
                       or b"serve" not in open(f"/proc/{pid}/cmdline", "rb").read(),
                       timeout=10, what="the started daemon to stop")


# ------------------------------------------------ dash-extensions Serverside


def serverside_app(path):
    from dash import dcc, html
    from dash_extensions.enrich import (
        DashProxy,
        Input,
        Output,
        Serverside,
        ServersideOutputTransform,
    )

    from shoal.dash import ShoalBackend

    backend = ShoalBackend(path, start=False)
    app = DashProxy("shoal_dash_test", transforms=[ServersideOutputTransform(backends=[backend])])
    app.layout = html.Div([dcc.Input(id="n", value=1), dcc.Store(id="frame"), html.Div(id="out")])

    @app.callback(Output("frame", "data"), Input("n", "value"))
    def make(n):
        return Serverside(pd.DataFrame({"x": np.arange(100_000, dtype=np.int64) * int(n)}))

    @app.callback(Output("out", "children"), Input("frame", "data"))
    def use(df):
        col = df["x"].to_numpy()
        return json.dumps(
            {
                "pid": os.getpid(),
                "zero_copy": in_arena(backend.store, col.__array_interface__["data"][0], col.nbytes),
                "read_only": not col.flags.writeable,
                "sum": int(col.sum()),
            }
        )

    return app, backend


def _post(app, output, outputs, inputs, changed):
    body = {"output": output, "outputs": outputs, "inputs": inputs,
            "changedPropIds": changed, "state": []}
    r = app.server.test_client().post("/_dash-update-component", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["response"]


def _dash_make(path, n):
    app, backend = serverside_app(path)
    out = _post(app, "frame.data", {"id": "frame", "property": "data"},
                [{"id": "n", "property": "value", "value": n}], ["n.value"])
    return os.getpid(), backend.uid, out["frame"]["data"]


def _dash_use(path, stored):
    app, backend = serverside_app(path)
    out = _post(app, "out.children", {"id": "out", "property": "children"},
                [{"id": "frame", "property": "data", "value": stored}], ["frame.data"])
    return backend.uid, json.loads(out["out"]["children"])


def test_serverside_frame_is_zero_copy_in_another_worker(store):
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        maker_pid, uid1, stored = pool.apply_async(_dash_make, (store.socket_path, 3)).get(DEADLINE)
        # The browser holds only a reference; the frame is in shoal.
        assert stored.startswith("SERVERSIDE_") and len(stored) < 300
        uid2, seen = pool.apply_async(_dash_use, (store.socket_path, stored)).get(DEADLINE)
        if seen["pid"] == maker_pid:  # same pool process: ask the other one
            uid2, seen = pool.apply_async(_dash_use, (store.socket_path, stored)).get(DEADLINE)
    assert uid1 == uid2
    assert seen["sum"] == 3 * sum(range(100_000))
    assert seen["zero_copy"] and seen["read_only"]
    key = json.loads(stored[len("SERVERSIDE_"):])["key"]
    assert f"cache/serverside/{key}" in store.keys(prefix="cache/serverside/")


def test_shoal_backend_defaults(store):
    from shoal.dash import ShoalBackend

    b = ShoalBackend(store.socket_path, start=False)
    assert b.uid == ShoalBackend(store.socket_path, start=False).uid
    assert b.uid != ShoalBackend(store.socket_path, start=False, key_prefix="x/").uid
    assert b.set("k", pd.DataFrame({"a": [1.0]}))
    assert b.has("k")
    pd.testing.assert_frame_equal(b.get("k", ignore_expired=True), pd.DataFrame({"a": [1.0]}))
    assert b.get(None) is None
    ttl = store.ttl("cache/serverside/k")
    assert ttl is not None and 24 * 3600 - 5 < ttl <= 24 * 3600
    short = ShoalBackend(store.socket_path, start=False, default_timeout=1)
    short.set("gone", 1)
    t0 = time.monotonic()
    wait_until(lambda: not short.has("gone"), timeout=5, what="a Serverside entry to expire")
    assert time.monotonic() - t0 < 2.5
    assert short.get("gone", ignore_expired=True) is None


@pytest.mark.parametrize("evictable", [True, False])
def test_shoal_backend_evictable(store, evictable):
    from shoal.dash import ShoalBackend

    b = ShoalBackend(store.socket_path, start=False, evictable=evictable, key_prefix=f"e{evictable}/")
    chunk = np.ones(4 << 20)
    ok = [b.set(f"c{i}", chunk) for i in range(3 * store.capacity // chunk.nbytes)]
    if evictable:
        assert all(ok) and not b.has("c0")
    else:
        assert not all(ok) and b.has("c0")
    b.clear()
