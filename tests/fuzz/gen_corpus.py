#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses (their input formats are
described at the top of tests/fuzz/fuzz_protocol.c and fuzz_daemon.c).

    tests/fuzz/gen_corpus.py            # rewrites the seed-* files

Seeds are small valid inputs: for fuzz_protocol one message per decoder
(plus edge cases of names), for fuzz_daemon one script per request type
and a few scripts that cross clients (a get that waits for a seal, a
create that waits for room, a subscriber, a creator that leaves). The
message layouts mirror src/common/protocol.h. Files the fuzzer found
(crash-*, leak-*, timeout-*) are left alone.
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = 0x4C4F4853

VERSION = 2

(HELLO, CREATE, SEAL, ABORT, GET, RELEASE, DELETE, CONTAINS, LIST, EVICT,
 STATS, SET_NAME, GET_NAME, DELETE_NAME, LIST_NAMES, SUBSCRIBE,
 DEBUG_CHECK) = range(1, 18)
EXPIRE, PERSIST, NAME_INFO, DELETE_PREFIX = range(19, 23)


def msg(kind, body, rid=7):
    return struct.pack("<IHHII", MAGIC, VERSION, kind, rid, len(body)) + body


def oid(n):
    return struct.pack("<I", n) + bytes(16)


def hello():
    return msg(HELLO, struct.pack("<IIQ", VERSION, 0, 1234))


def create(n, size=100, meta=0, timeout=0):
    return msg(CREATE, oid(n) + struct.pack("<IQq", meta, size, timeout))


def one_id(kind, n, flags=0):
    return msg(kind, oid(n) + struct.pack("<I", flags))


def get(ids, timeout=0):
    return msg(GET, struct.pack("<qII", timeout, len(ids), 0) +
               b"".join(oid(i) for i in ids))


def release(handles):
    return msg(RELEASE, struct.pack("<II", len(handles), 0) +
               b"".join(struct.pack("<Q", h) for h in handles))


def delete(ids):
    return msg(DELETE, struct.pack("<II", len(ids), 0) +
               b"".join(oid(i) for i in ids))


def listing(kind, cursor=0, limit=0, prefix="", after=""):
    if kind == LIST:
        return msg(kind, struct.pack("<QII", cursor, limit, 0))
    prefix, after = prefix.encode(), after.encode()
    return msg(kind, struct.pack("<IIII", limit, len(prefix), len(after), 0) +
               prefix + after)


def set_name(name, n, cas=False, expected=0, ttl_ms=0, evictable=False):
    name = name.encode()
    flags = (1 if cas else 0) | (2 if evictable else 0)
    return msg(SET_NAME, oid(n) + struct.pack("<IQQII", flags, expected,
                                              ttl_ms, len(name), 0) + name)


def expire_name(name, ttl_ms):
    name = name.encode()
    return msg(EXPIRE, struct.pack("<QII", ttl_ms, len(name), 0) + name)


def name_req(kind, name, flags=0):
    name = name.encode()
    return msg(kind, struct.pack("<II", flags, len(name)) + name)


def get_name(name, timeout=0):
    name = name.encode()
    return msg(GET_NAME, struct.pack("<qII", timeout, len(name), 0) + name)


def delete_name(name, cas=False, expected=0):
    name = name.encode()
    return msg(DELETE_NAME, struct.pack("<IIQ", 1 if cas else 0, len(name),
                                        expected) + name)


def evict(nbytes):
    return msg(EVICT, struct.pack("<Q", nbytes))


def subscribe(snapshot=True):
    return msg(SUBSCRIBE, struct.pack("<II", 1 if snapshot else 0, 0))


# fuzz_daemon script records (see tests/fuzz/fuzz_daemon.c).
def w(k, data):
    assert len(data) < 65536
    return bytes([k]) + struct.pack("<H", len(data)) + data


def turns(n=1, fail_alloc=0):
    """n turns; with fail_alloc, that allocation of the daemon fails."""
    if fail_alloc:
        return bytes([0x20 | 4 << 2, n - 1, fail_alloc - 1])
    return bytes([4 << 2, n - 1])


def bye(k):
    return bytes([(5 << 2) | k])


def expire():
    return bytes([6 << 2])


def hi(k):
    return bytes([(7 << 2) | k])


def lifecycle():
    return (create(1, 1000, 16) + one_id(SEAL, 1) + get([1, 1, 2]) +
            release([0]) + one_id(CONTAINS, 1) + listing(LIST) +
            set_name("a", 1) + get_name("a") + listing(LIST_NAMES) +
            set_name("a", 1, True, 1) + delete_name("a", True, 2) +
            delete([1]) + msg(STATS, b"") + evict(1 << 20) +
            msg(DEBUG_CHECK, b""))


def daemon_seeds():
    s = {}
    s["hello"] = hi(0) + turns()
    requests = {
        "create": create(1),
        "create_meta": create(1, 0, 64),
        "create_huge": create(1, 1 << 40),
        "seal": create(1) + one_id(SEAL, 1),
        "seal_noreply": create(1) + one_id(SEAL, 1, 1),
        "abort": create(1) + one_id(ABORT, 1),
        "get": create(1) + one_id(SEAL, 1) + get([1]),
        "get_missing": get([1, 2, 3]),
        "release": create(1) + one_id(SEAL, 1) + release([0, 1 << 32]),
        "delete": create(1) + one_id(SEAL, 1) + delete([1, 2]),
        "contains": one_id(CONTAINS, 1),
        "list": create(1) + create(2) + listing(LIST, 0, 1),
        "evict": create(1) + one_id(SEAL, 1) + release([0]) + evict(1),
        "stats": msg(STATS, b""),
        "set_name": create(1) + one_id(SEAL, 1) + set_name("name", 1),
        "get_name": get_name("nope"),
        "delete_name": delete_name("nope"),
        "list_names": create(1) + one_id(SEAL, 1) + set_name("x", 1) +
        set_name("y\u00e9\u4e2d", 1) + listing(LIST_NAMES, 0, 1),
        "subscribe": subscribe(),
        "debug_check": msg(DEBUG_CHECK, b""),
        "set_name_ttl": create(1) + one_id(SEAL, 1) +
        set_name("t", 1, ttl_ms=60000, evictable=True) +
        name_req(NAME_INFO, "t"),
        "expire": create(1) + one_id(SEAL, 1) + set_name("t", 1) +
        expire_name("t", 5000) + name_req(PERSIST, "t") +
        expire_name("t", 0) + expire_name("nope", 1),
        "list_prefix": create(1) + one_id(SEAL, 1) + set_name("a:1", 1) +
        set_name("a:2", 1) + set_name("b:1", 1) +
        listing(LIST_NAMES, 0, 1, "a:") + listing(LIST_NAMES, 0, 1, "a:", "a:1") +
        listing(LIST_NAMES, 0, 0, "", "a"),
        "delete_prefix": create(1) + one_id(SEAL, 1) + set_name("a:1", 1) +
        set_name("a:2", 1) + name_req(DELETE_PREFIX, "a:") +
        name_req(DELETE_PREFIX, ""),
        "lifecycle": lifecycle(),
    }
    for name, data in requests.items():
        s["req_" + name] = w(0, hello() + data) + turns(2)
    # A get that waits for another client's seal.
    s["wait_seal"] = (hi(0) + hi(1) + w(0, create(5)) + turns() +
                      w(1, get([5], -1)) + turns() + w(0, one_id(SEAL, 5)) +
                      turns(2))
    # A get whose object's creator leaves.
    s["wait_dropped"] = (hi(0) + hi(1) + w(0, create(5)) + turns() +
                         w(1, get([5, 6], 100000)) + turns() + bye(0) +
                         turns(3))
    # A name get that waits, then its deadline passes.
    s["wait_name"] = (hi(0) + hi(1) + w(1, get_name("n", 100000)) + turns() +
                      w(0, create(1) + one_id(SEAL, 1) + set_name("n", 1)) +
                      turns(2) + w(1, get_name("m", 100000)) + turns() +
                      expire() + turns(2))
    # Names that expire when the harness makes time jump.
    s["ttl_jump"] = (hi(0) + hi(1) + w(1, subscribe(False)) +
                     w(0, create(1) + one_id(SEAL, 1) +
                       set_name("t", 1, ttl_ms=100000) +
                       get_name("t") + release([0])) + turns() +
                     expire() + turns(2))
    # Evictable names make room like unnamed objects.
    s["evict_names"] = w(0, hello() + b"".join(
        create(i, 900 << 10) + one_id(SEAL, i) +
        set_name("e%d" % i, i, evictable=True) + release([i])
        for i in range(6)) + create(9, 2 << 20)) + turns(3)
    # A create that waits for room, which a delete makes.
    big = 4 << 20  # two do not fit in the harness's 6 MiB store
    s["wait_room"] = (hi(0) + hi(1) + w(0, create(1, big) + one_id(SEAL, 1)) +
                      turns() + w(1, create(2, big, 0, -1)) + turns() +
                      w(0, delete([1])) + turns(2) + w(0, release([0])) +
                      turns(3))
    # Eviction: unheld sealed objects make room for a new one.
    s["evict_lru"] = w(0, hello() + b"".join(
        create(i, 900 << 10) + one_id(SEAL, i) + release([i])
        for i in range(6)) + create(9, 2 << 20)) + turns(3)
    # A subscriber with a snapshot, then enough events to overflow it.
    s["subscriber"] = (hi(0) + w(0, create(1) + one_id(SEAL, 1) +
                                 set_name("s", 1)) + turns() +
                       w(1, hello() + subscribe()) + turns() +
                       w(0, b"".join(create(i + 10) + one_id(SEAL, i + 10)
                                     for i in range(100))) + turns(4) +
                       w(0, delete_name("s")) + turns(2))
    s["subscriber_request"] = (w(0, hello() + subscribe(False) +
                                 msg(STATS, b"")) + turns(2))
    # Private allocations failing in the middle of things.
    for n in (1, 2, 3, 5, 8):
        s["enomem_%d" % n] = (hi(0) + hi(1) + turns() +
                              w(1, subscribe()) + turns() +
                              w(0, lifecycle() + create(2, 1 << 20) +
                                create(3)) + turns(4, n) + bye(0) +
                              turns(2, n) + w(1, msg(STATS, b"")) + turns())
    # Protocol violations.
    s["bad_magic"] = w(0, b"\0" * 16) + turns()
    s["too_big"] = w(0, hello() + msg(STATS, b"")[:12] +
                     struct.pack("<I", 3 << 20)) + turns()
    s["unknown_type"] = w(0, hello() + msg(99, b"xyz")) + turns()
    s["no_hello"] = w(0, msg(STATS, b"")) + turns()
    s["hello_twice"] = w(0, hello() + hello()) + turns()
    s["bad_bodies"] = w(0, hello() + msg(CREATE, b"x") + msg(GET, b"") +
                        msg(SET_NAME, bytes(40)) + msg(STATS, b"x")) + turns()
    s["split_message"] = (w(0, hello()[:5]) + turns() + w(0, hello()[5:]) +
                          turns())
    return s


def protocol_seeds():
    s = {}
    body = lambda m: m[16:]
    s["header"] = b"\0" + hello()[:16]
    s["fixed_hello"] = b"\1\0" + body(hello())
    s["fixed_create"] = b"\1\1" + body(create(1))
    s["get"] = b"\2" + body(get([1, 2]))
    s["release"] = b"\3" + body(release([1, 2, 3]))
    s["delete"] = b"\4" + body(delete([1]))
    s["set_name"] = b"\5" + body(set_name("name", 1, ttl_ms=5))
    s["expire"] = b"\x09" + body(expire_name("n", 5))
    s["name_req"] = b"\x0a" + body(name_req(PERSIST, "n"))
    s["prefix_req"] = b"\x0b" + body(name_req(DELETE_PREFIX, ""))
    s["list_names"] = b"\x0c" + body(listing(LIST_NAMES, 0, 9, "p", "pq"))
    s["get_name"] = b"\6" + body(get_name("caf\u00e9"))
    s["delete_name"] = b"\7" + body(delete_name("\U0001f600"))
    for i, name in enumerate([b"a", b"\xe4\xb8\xad", b"\xed\x9f\xbf",
                              b"\xf4\x8f\xbf\xbf", b"\xc0\xaf",
                              b"\xed\xa0\x80", b"a\0b", b"x" * 1025]):
        s["name_%d" % i] = b"\x08" + name
    return s


def write(harness, seeds):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.unlink(os.path.join(d, f))
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("fuzz_protocol", protocol_seeds())
    write("fuzz_daemon", daemon_seeds())
