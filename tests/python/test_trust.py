"""The trust model from Python: a daemon run by another user, and a default
socket directory that is not private, are refused with PermissionError
(never handed data, never "auto-started" over); sealed data is read-only.

The tests that need a second uid run only as root (they skip otherwise).
"""

import os
import socket
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

import shoal
from conftest import BINARY, wait_until

STRANGER = 65534  # nobody
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to act as a second user"
)


@pytest.fixture
def open_dir():
    """A directory every user may write in (like /tmp)."""
    d = tempfile.mkdtemp(prefix="shoal-trust-py-", dir="/tmp")
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def accepts(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True


@needs_root
def test_stranger_daemon_refused(open_dir):
    sock = os.path.join(open_dir, "s.sock")
    proc = subprocess.Popen(
        [BINARY, "serve", "-s", sock, "-m", "16M"],
        user=STRANGER,
        group=STRANGER,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # The file appears at bind(), before listen(): wait for a connect.
        wait_until(lambda: accepts(sock), timeout=10, what="the stranger's daemon")
        for start in (False, True):
            with pytest.raises(PermissionError, match="another user"):
                shoal.connect(sock, start=start)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


@needs_root
def test_hijacked_default_directory_refused(open_dir, monkeypatch):
    monkeypatch.setenv("TMPDIR", open_dir)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("SHOAL_SOCKET", raising=False)
    d = os.path.join(open_dir, f"shoal-{os.getuid()}")
    # The stranger makes the directory first.
    subprocess.run(
        ["mkdir", "-m", "777", d], user=STRANGER, group=STRANGER, check=True, timeout=10
    )
    with pytest.raises(PermissionError, match="not private"):
        shoal.default_socket()
    with pytest.raises(PermissionError, match="not private"):
        shoal.connect()  # auto-start must not start anything there
    assert os.listdir(d) == []


@needs_root
def test_default_directory_is_private(open_dir, monkeypatch):
    monkeypatch.setenv("TMPDIR", open_dir)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("SHOAL_SOCKET", raising=False)
    path = shoal.default_socket()
    d = os.path.dirname(path)
    assert path == os.path.join(open_dir, f"shoal-{os.getuid()}", "shoal.sock")
    st = os.lstat(d)
    assert st.st_uid == os.geteuid()
    assert st.st_mode & 0o777 == 0o700


def test_sealed_data_is_read_only(store):
    store["ro"] = np.arange(1000, dtype=np.int64)
    a = store["ro"]
    with pytest.raises(ValueError):
        a[0] = 5
    assert a[0] == 0
