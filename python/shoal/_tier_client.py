"""The client side of shoal-tier (shoal/tier.py), kept free of redis-py so
that importing shoal stays cheap:

* lookup(): a local get that missed asks the host's tier process, over the
  Unix socket SOCKET.tier, to fetch the name from Redis (u32 length + UTF-8
  name; the reply is one byte, b"1" now local, b"0" absent). No tier, or no
  answer within the timeout, is "absent": a hung Redis adds at most the
  timeout to a miss, and never touches a hit.
* running()/ensure_running(): shoal.connect(tier=URL) starts one tier
  process per daemon, detached; the tier holds SOCKET.tier.lock for its
  life, so of several started at once all but one exit.
"""

import fcntl
import os
import socket
import struct
import sys
import time

from shoal import _shoal

def lookup(socket_path, name, timeout):
    """Asks the tier process next to the daemon at socket_path to fetch
    name. True if it is now in the local store; False if the tier does not
    have it, no tier runs, or it did not answer within timeout (s)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(socket_path + ".tier")
        raw = name.encode()
        s.sendall(struct.pack("<I", len(raw)) + raw)
        return s.recv(1) == b"1"
    except OSError:
        return False
    finally:
        s.close()


def running(socket_path):
    """Whether a tier process holds SOCKET.tier.lock."""
    try:
        fd = os.open(socket_path + ".tier.lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def ensure_running(socket_path, url, args=(), timeout=10.0):
    """Starts `shoal-tier --redis url -s socket_path ARGS` detached unless
    one already serves this daemon, and waits (up to timeout s) until it
    does. Many callers at once start one: they take SOCKET.tier.spawn (an
    flock, polled with a deadline) in turn, and the tier itself holds
    SOCKET.tier.lock, so a second tier would exit at once."""
    import subprocess

    socket_path = os.path.abspath(socket_path)
    if running(socket_path):
        return
    deadline = time.monotonic() + timeout
    fd = os.open(socket_path + ".tier.spawn", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise _shoal.StoreUnavailable(f"shoal-tier: {socket_path}.tier.spawn stayed locked") from None
                time.sleep(0.01)
        if not running(socket_path):
            with open(socket_path + ".tier.log", "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "shoal.tier", "--redis", url, "-s", socket_path,
                     "--exit-with-daemon", *args],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, close_fds=True, cwd="/",
                )
            while not (running(socket_path) and os.path.exists(socket_path + ".tier")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise _shoal.StoreUnavailable(
                        f"shoal-tier did not start within {timeout} s (see {socket_path}.tier.log)"
                    )
                time.sleep(0.02)
    finally:
        os.close(fd)
