"""shoal.plasma: code written for pyarrow.plasma (Arrow <= 11) runs with one
changed import."""

import gc
import os
import pickle
import select
import socket
import struct
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import shoal
import shoal.plasma as plasma
from conftest import wait_until

DAEMON_MEMORY = str(64 << 20)  # Plasma's plain-bytes -m form


def random_id():
    return plasma.ObjectID(np.random.bytes(20))


def test_object_id():
    oid = plasma.ObjectID(20 * b"a")
    assert oid.binary() == 20 * b"a"
    assert hash(oid) == hash(plasma.ObjectID(20 * b"a"))
    assert pickle.loads(pickle.dumps(oid)) == oid
    assert isinstance(plasma.ObjectID.from_random(), plasma.ObjectID)
    with pytest.raises(ValueError):
        plasma.ObjectID(b"too short")


def test_exceptions_derive_from_arrow():
    for cls in (plasma.PlasmaObjectExists, plasma.PlasmaObjectNotFound, plasma.PlasmaStoreFull):
        assert issubclass(cls, pa.lib.ArrowException)
        assert issubclass(cls, shoal.Error)
    assert plasma.PlasmaObjectNonexistent is plasma.PlasmaObjectNotFound


def test_connect_failure_is_oserror(tmp_path):
    with pytest.raises(OSError) as e:
        plasma.connect(str(tmp_path / "none.sock"), num_retries=2)
    assert isinstance(e.value, pa.lib.ArrowException)


def test_seed_record_batch_stream_round_trip(client):
    """The Arrow-documented flow from the user story: size with a
    MockOutputStream, create, write with FixedSizeBufferWriter, seal;
    read with get_buffers + RecordBatchStreamReader."""
    thing = pd.DataFrame({"col1": np.arange(1000), "col2": [f"r{i}" for i in range(1000)]})
    record_batch = pa.RecordBatch.from_pandas(thing)
    object_id = plasma.ObjectID(np.random.bytes(20))
    mock_sink = pa.MockOutputStream()
    stream_writer = pa.RecordBatchStreamWriter(mock_sink, record_batch.schema)
    stream_writer.write_batch(record_batch)
    stream_writer.close()
    data_size = mock_sink.size()
    buf = client.create(object_id, data_size)
    stream = pa.FixedSizeBufferWriter(buf)
    stream_writer = pa.RecordBatchStreamWriter(stream, record_batch.schema)
    stream_writer.write_batch(record_batch)
    stream_writer.close()
    client.seal(object_id)

    [data] = client.get_buffers([object_id])
    buffer = pa.BufferReader(data)
    reader = pa.RecordBatchStreamReader(buffer)
    record_batch = reader.read_next_batch()
    results = record_batch.to_pandas()
    pd.testing.assert_frame_equal(results, thing)


def test_create_buffer_is_mutable_arrow_buffer(client):
    oid = random_id()
    buf = client.create(oid, 16, b"meta")
    assert isinstance(buf, pa.Buffer) and buf.is_mutable and buf.size == 16
    arr = np.frombuffer(buf, dtype=np.uint8)
    arr[:] = np.arange(16)
    client.seal(oid)
    [got] = client.get_buffers([oid])
    assert isinstance(got, pa.Buffer) and not got.is_mutable
    assert got.to_pybytes() == bytes(range(16))
    with pytest.raises(ValueError):
        np.frombuffer(got, dtype=np.uint8)[0] = 1
    [(meta, data)] = client.get_buffers([oid], with_meta=True)
    assert meta == b"meta" and data.to_pybytes() == bytes(range(16))
    [m] = client.get_metadata([oid])
    assert m.to_pybytes() == b"meta"


def test_create_exists_and_full(client):
    oid = random_id()
    client.create_and_seal(oid, b"x")
    with pytest.raises(plasma.PlasmaObjectExists):
        client.create(oid, 1)
    with pytest.raises(pa.lib.ArrowException):
        client.create_and_seal(oid, b"y")
    cap = client.store_capacity()
    assert cap == 64 << 20
    with pytest.raises((plasma.PlasmaStoreFull, shoal.TooBig)):
        client.create(random_id(), cap + 1)
    keep = client.create(random_id(), cap // 2)  # held, unsealed: not evictable
    with pytest.raises(plasma.PlasmaStoreFull):
        client.create(random_id(), cap // 2 + cap // 4)
    del keep


def test_timeouts_and_not_available(client):
    missing = random_id()
    assert client.get_buffers([missing], timeout_ms=0) == [None]
    assert client.get_buffers([missing], timeout_ms=50) == [None]
    assert client.get([missing], timeout_ms=0) == [plasma.ObjectNotAvailable]
    assert client.get(missing, timeout_ms=10) is plasma.ObjectNotAvailable
    assert client.get_metadata([missing], timeout_ms=0) == [None]
    assert client.get_buffers([missing], timeout_ms=0, with_meta=True) == [(None, None)]


def test_put_get_values(client):
    values = [np.arange(10.0), {"a": 1, "b": [1, 2]}, pd.DataFrame({"x": [1, 2]}), "text", b"raw"]
    ids = [client.put(v) for v in values]
    got = client.get(ids)
    np.testing.assert_array_equal(got[0], values[0])
    assert got[1] == values[1]
    pd.testing.assert_frame_equal(got[2], values[2])
    assert got[3] == "text"
    assert bytes(got[4]) == b"raw"
    oid = random_id()
    assert client.put(5, object_id=oid) == oid and client.get(oid) == 5


def test_put_raw_buffer(client):
    oid = client.put_raw_buffer(b"hello", metadata=b"m")
    [data] = client.get_buffers([oid])
    assert data.to_pybytes() == b"hello"
    oid2 = client.put_raw_buffer(memoryview(np.arange(4, dtype=np.int32)))
    assert client.get_buffers([oid2])[0].to_pybytes() == np.arange(4, dtype=np.int32).tobytes()


def test_contains_hash_delete_list(client):
    oid = random_id()
    assert not client.contains(oid)
    buf = client.create(oid, 3)
    assert not client.contains(oid)  # created, not sealed
    info = client.list()[oid]
    assert info["state"] == "created"
    np.frombuffer(buf, dtype=np.uint8)[:] = [1, 2, 3]
    client.seal(oid)
    assert client.contains(oid)
    info = client.list()[oid]
    assert info["state"] == "sealed" and info["data_size"] == 3 and info["metadata_size"] == 0
    assert info["ref_count"] >= 1 and info["create_time"] > 0
    other = client.put_raw_buffer(bytes([1, 2, 3]))
    assert client.hash(oid) == client.hash(other) and len(client.hash(oid)) == 8
    with pytest.raises(plasma.PlasmaObjectNotFound) as e:
        client.hash(random_id())
    assert isinstance(e.value, pa.lib.ArrowException)
    del buf
    client.delete([oid, other])
    wait_until(lambda: not client.contains(oid) and not client.contains(other))


def test_evict_lru_by_release_time(client):
    """Plasma's LRU: least recently released goes first."""
    a = client.put_raw_buffer(b"a" * 1000)
    b = client.put_raw_buffer(b"b" * 1000)
    c = client.put_raw_buffer(b"c" * 1000)
    [ba] = client.get_buffers([a])
    del ba  # a is now the most recently released
    gc.collect()
    client.store_capacity()  # a round trip: the release was processed
    freed = client.evict(1)
    assert freed >= 1000
    assert client.contains(a) and client.contains(c)
    assert not client.contains(b)


def test_buffers_pin_objects(client):
    oid = client.put_raw_buffer(b"z" * 100)
    [data] = client.get_buffers([oid])
    client.delete([oid])
    assert not client.contains(oid)
    assert data.to_pybytes() == b"z" * 100
    del data


def test_misc(client):
    assert "capacity_bytes" in client.debug_string()
    client.set_client_options("me", 1 << 20)
    assert client.store_socket_name.endswith(".sock")


def test_start_plasma_store():
    with plasma.start_plasma_store(plasma_store_memory=10**7) as (name, proc):
        c = plasma.connect(name)
        assert c.store_capacity() == 10**7
        oid = c.put(np.arange(3))
        np.testing.assert_array_equal(c.get(oid), np.arange(3))
        c.disconnect()
    assert proc.poll() is not None
    assert not os.path.exists(name)


# ---------------------------------------------- what Plasma's own tests check


def test_object_id_from_str_is_value_error():
    with pytest.raises(ValueError):
        plasma.ObjectID("hello")
    with pytest.raises(ValueError):
        plasma.ObjectID("x" * 20)


def test_metadata_of_any_size(client):
    """Metadata lives in shared memory like data: 10 MB of it is fine."""
    oid = random_id()
    meta = bytes(range(256)) * (10_000_000 // 256)
    client.create_and_seal(oid, b"data", meta)
    [m] = client.get_metadata([oid])
    assert m.size == len(meta) and m.to_pybytes() == meta
    [(m2, d)] = client.get_buffers([oid], with_meta=True)
    assert d.to_pybytes() == b"data" and m2 == meta
    big = client.create(random_id(), 3, b"m" * (2 << 20))
    assert big.size == 3


def test_capacity_is_what_was_asked_for():
    """-m 10000 is a store of 10000 bytes, not of 10000 rounded up."""
    with plasma.start_plasma_store(plasma_store_memory=10000) as (name, _):
        c = plasma.connect(name)
        assert c.store_capacity() == 10000
        assert shoal._shoal.Client(name).stats()["capacity_bytes"] == 10000
        with pytest.raises(plasma.PlasmaStoreFull):
            c.create(random_id(), 10001)
        with pytest.raises(plasma.PlasmaStoreFull):
            c.create(random_id(), 9000, b"m" * 1001)
        oid = random_id()
        c.create_and_seal(oid, b"d" * 9000, b"m" * 1000)  # exactly full
        assert c.contains(oid)
        c.disconnect()


def test_evict_reports_requested_bytes(client):
    """evict() counts each object's data + metadata, as Plasma did, not the
    64-byte blocks they take."""
    a = random_id()
    b = client.create(a, 1000)
    client.seal(a)
    del b
    gc.collect()
    assert client.evict(1) == 1000
    c, d = random_id(), random_id()
    bc = client.create(c, 999)  # unsealed: not evictable
    bd = client.create(d, 998, b"mm")
    client.seal(d)
    del bd
    gc.collect()
    assert client.evict(1000) == 1000  # only d: 998 + 2
    client.seal(c)
    del bc
    gc.collect()
    assert client.evict(1) == 999


def _read_framed(sock, timeout=5.0):
    """One notification as Plasma framed it: a native 8-byte length, then
    that many bytes."""
    assert select.select([sock], [], [], timeout)[0], "no notification within the deadline"
    (length,) = struct.unpack("L", sock.recv(8, socket.MSG_WAITALL))
    return sock.recv(length, socket.MSG_WAITALL)


def test_notification_socket_framing_and_exact_sizes(daemon):
    c = plasma.connect(daemon.path)
    c2 = plasma.connect(daemon.path)
    try:
        c.subscribe()
        sock = c.get_notification_socket()
        # Drain the snapshot of objects other tests left (if any).
        while select.select([sock], [], [], 0.2)[0]:
            _read_framed(sock)
        oid = random_id()
        buf = c2.create(oid, 409, b"m" * 130)
        c2.seal(oid)
        del buf
        gc.collect()
        assert c.decode_notifications(_read_framed(sock)) == ([oid], [409], [130])
        c2.store_capacity()  # a round trip: the release was processed
        assert c2.evict(1) == 409 + 130
        assert c.decode_notifications(_read_framed(sock)) == ([oid], [-1], [-1])
    finally:
        c.disconnect()
        c2.disconnect()


def test_list_construct_duration(daemon):
    c = plasma.connect(daemon.path)
    s = daemon.connect()
    try:
        oid = random_id()
        buf = c.create(oid, 3)
        assert c.list()[oid]["construct_duration"] == -1
        assert s.list()[oid]["construct_duration"] is None
        time.sleep(1.1)
        c.seal(oid)
        assert c.list()[oid]["construct_duration"] == 1  # whole seconds
        assert 1.05 <= s.list()[oid]["construct_duration"] < 60
        del buf
        other = c.put_raw_buffer(b"x")
        assert c.list()[other]["construct_duration"] == 0
    finally:
        s.close()
        c.disconnect()


class _FakeSerialized:
    """What pyarrow.serialize returned (pyarrow < 12): total_bytes and
    write_to(stream). The bytes here are a pickle, framed by a marker."""

    def __init__(self, value):
        self.data = b"FAKE" + pickle.dumps(value)
        self.total_bytes = len(self.data)

    def write_to(self, stream):
        stream.write(self.data)


def test_put_uses_pyarrow_serialize_while_pyarrow_has_it(client, monkeypatch):
    """With pyarrow < 12 (which has serialize), put() stores what Plasma's
    did, so get_buffers() + pyarrow.deserialize reads it; get() too. The
    test environment's pyarrow has none: a stand-in is patched in."""
    seen = []

    def deserialize(buf):
        data = buf.to_pybytes()
        assert data[:4] == b"FAKE"
        return pickle.loads(data[4:])

    def serialize(value):
        seen.append(value)
        return _FakeSerialized(value)

    monkeypatch.setattr(pa, "serialize", serialize, raising=False)
    monkeypatch.setattr(pa, "deserialize", deserialize, raising=False)
    for value in (123, ["hello", "world", 3, 1.0], None):
        oid = client.put(value)
        [(meta, data)] = client.get_buffers([oid], with_meta=True)
        assert meta != b"RAW" and pa.deserialize(data) == value
        assert client.get(oid) == value
    assert seen == [123, ["hello", "world", 3, 1.0], None]
    # Frames keep shoal's zero-copy Arrow layout.
    df = pd.DataFrame({"x": [1, 2]})
    pd.testing.assert_frame_equal(client.get(client.put(df)), df)
    assert len(seen) == 3


def test_put_without_pyarrow_serialize(client, monkeypatch):
    monkeypatch.delattr(pa, "serialize", raising=False)
    oid = client.put({"a": 1})
    assert client.get(oid) == {"a": 1}
