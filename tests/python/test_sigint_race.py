"""Ctrl-C during a wait is never lost to a race.

A SIGINT that arrives after the last check for signals and before the
client sleeps used to run its handler too early: the wait then lasted its
whole timeout. A child process here waits again and again (get, get_name,
Subscription.next, each with a minute's timeout) while this process sends
one SIGINT per wait, at a varied delay after the child said it was about to
wait, many of them at once. Each must end its wait with KeyboardInterrupt
within a few seconds.
"""

import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time

MISSING = b"\x43" * 20
ROUNDS = 300
DEADLINE = 5.0  # seconds for one SIGINT to end its wait

CHILD = textwrap.dedent(
    """
    import os, sys
    from shoal import _shoal

    path, rounds = sys.argv[1], int(sys.argv[2])
    c = _shoal.Client(path)
    sub = _shoal.Subscription(path)
    c.get([b"\\x43" * 20], 1)  # opens the connection for waits
    calls = [
        lambda: c.get([b"\\x43" * 20], 60000),
        lambda: c.get_name("never-set", 60000),
        lambda: sub.next(60000),
    ]
    for i in range(rounds):
        try:
            os.write(1, b"w\\n")
            calls[i % 3]()
            os.write(1, b"returned\\n")
            sys.exit(3)
        except KeyboardInterrupt:
            os.write(1, b"k\\n")
    """
)


class Lines:
    """Reads lines from a pipe, each within a deadline."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""

    def next(self, timeout):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def test_every_sigint_ends_its_wait(daemon):
    rng = random.Random(1234)
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, daemon.path, str(ROUNDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines = Lines(p.stdout)
    late = []
    try:
        for i in range(ROUNDS):
            assert lines.next(10) == "w", f"round {i}: the child did not start a wait"
            # At once (inside the race window, most likely), or after up
            # to 2 ms (early in the wait, or already asleep).
            delay = rng.choice([0, 0, 0, 1e-5, 1e-4, 5e-4, 2e-3])
            if delay:
                time.sleep(delay)
            t0 = time.monotonic()
            os.kill(p.pid, signal.SIGINT)
            line = lines.next(DEADLINE)
            if line != "k":
                late.append((i, delay, line))
                break
            assert time.monotonic() - t0 < DEADLINE
        if not late:
            p.stdout.close()
            assert p.wait(10) == 0, p.stderr.read().decode(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        p.stderr.close()
    assert not late, (
        f"SIGINT of round {late[0][0]} (sent {late[0][1] * 1e3:.3f} ms after the "
        f"child began its wait) did not end the wait within {DEADLINE} s: {late[0][2]!r}"
    )
