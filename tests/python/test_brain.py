"""shoal.brain.Brain: brain-plasma 0.3's public API on shoal names.

The first group mirrors the public-API cases of brain-plasma's own
tests/test_brain.py (against a real daemon instead of a mock client; its
hashing-internals cases do not apply). The second checks the flaws of
brain-plasma that shoal.brain fixes: atomic updates, names never evicted,
remove_namespace(None), namespaces that never see each other's names.
"""

import threading

import numpy as np
import pandas as pd
import pytest

import shoal
from shoal.brain import Brain, exceptions


@pytest.fixture
def brain(store):
    b = Brain(path=store.socket_path, start=False)
    yield b
    b.sleep()


# ------------------------------------------- brain-plasma's API cases


def test_init_defaults(brain, store):
    assert brain.path == store.socket_path
    assert brain.namespace == "default"
    assert brain.client is not None
    assert brain.bytes == store.capacity


def test_init_other(store):
    b = Brain(namespace="nondefault", path=store.socket_path, start=False)
    assert b.namespace == "nondefault"
    assert "nondefault" in b.namespaces()


def test_init_namespace_too_short(store):
    with pytest.raises(exceptions.BrainNamespaceNameError):
        Brain(namespace="abc", path=store.socket_path, start=False)


def test_recall_not_exist(brain):
    with pytest.raises(KeyError):
        brain.recall("this")
    with pytest.raises(KeyError):
        brain["this"]


def test_learn_exists(brain, store):
    brain.learn("this", "that")
    assert brain.exists("this")
    assert brain.recall("this") == "that"
    out = brain.metadata("this")
    assert out["name"] == "this"
    assert out["namespace"] == "default"
    assert store.get(shoal.ObjectID(out["value_id"])) == "that"


def test_setitem_getitem(brain):
    brain["this"] = "that"
    assert brain["this"] == "that"
    brain["frame"] = pd.DataFrame({"a": [1, 2, 3]})
    pd.testing.assert_frame_equal(brain["frame"], pd.DataFrame({"a": [1, 2, 3]}))


def test_forget_delitem(brain):
    brain["this"] = "that"
    del brain["this"]
    assert not brain.exists("this")
    assert "this" not in brain
    brain.forget("never-there")  # no error, as in brain-plasma


def test_exists_contains_len(brain):
    assert len(brain) == 0
    brain["this"] = "that"
    brain["other"] = 1
    assert brain.exists("this") and "this" in brain
    assert not brain.exists("that")
    assert len(brain) == 2


def test_names(brain):
    brain["this"] = "that"
    assert brain.names() == ["this"]
    brain.set_namespace("newspace")
    brain["that"] = "other"
    assert brain.names() == ["that"]
    assert sorted(brain.names(namespace="all")) == ["that", "this"]
    assert brain.names(namespace="default") == ["this"]


def test_namespaces(brain):
    brain.set_namespace("newspace")
    brain["this"] = "this"
    assert brain["this"] == "this"
    assert brain.namespaces() == {"default", "newspace"}
    brain.set_namespace("default")
    with pytest.raises(KeyError):
        brain["this"]


def test_ids(brain, store):
    brain["this"] = "this"
    brain["that"] = b"that"
    ids = brain.ids()
    assert len(ids) == 2
    assert {store.get(i) if not isinstance(store.get(i), shoal.Buffer) else bytes(store.get(i))
            for i in ids} == {"this", b"that"}


def test_object_id(brain):
    brain["this"] = "that"
    assert brain.object_id("this") == shoal.ObjectID(brain.metadata("this")["value_id"])
    assert brain.object_id("missing") is None


def test_object_ids(brain):
    brain["this"] = "that"
    assert brain.object_ids() == {"this": shoal.ObjectID(brain.metadata("this")["value_id"])}


def test_metadata_good(brain):
    brain["this"] = "that"
    assert len(brain.metadata()) == 1
    brain.learn("other", 5, description="a number")
    assert set(brain.metadata()) == {"this", "other"}
    assert brain.metadata("other")["description"] == "a number"
    listed = brain.metadata(output="list")
    assert sorted(m["name"] for m in listed) == ["other", "this"]
    two = brain.metadata("this", "missing")
    assert two["this"]["name"] == "this" and two["missing"] is None
    assert brain.metadata("missing") is None


def test_metadata_bad(brain):
    with pytest.raises(TypeError):
        brain.metadata("this", output="int")


def test_description_kept_on_update(brain):
    brain.learn("x", 1, description="first")
    brain.learn("x", 2)
    assert brain.metadata("x")["description"] == "first"
    brain.learn("x", 3, description="second")
    assert brain.metadata("x")["description"] == "second"
    assert brain["x"] == 3


def test_set_namespace_good(brain):
    assert brain.namespace == "default"
    assert brain.set_namespace("somespace") == "somespace"
    assert brain.namespace == "somespace"
    assert brain.set_namespace() == "somespace"


def test_set_namespace_bad(brain):
    with pytest.raises(exceptions.BrainNamespaceNameError):
        brain.set_namespace("1")
    with pytest.raises(exceptions.BrainNamespaceNameError):
        brain.set_namespace("some way too long namespace")
    assert brain.namespace == "default"
    brain.set_namespace("12345")  # 5 and 15 characters are allowed
    brain.set_namespace("123456789012345")


def test_remove_namespace(brain):
    brain.set_namespace("somespace")
    brain["that"] = "this"
    brain.remove_namespace("somespace")
    assert brain.namespace == "default"
    assert "that" not in brain
    assert "somespace" not in brain.namespaces()
    brain.set_namespace("somespace")
    assert brain.names() == []


def test_remove_namespace_errors(brain):
    with pytest.raises(exceptions.BrainNamespaceRemoveDefaultError):
        brain.remove_namespace("default")
    with pytest.raises(exceptions.BrainNamespaceNotExistError):
        brain.remove_namespace("nosuchspace")


def test_name_type(brain):
    with pytest.raises(exceptions.BrainNameTypeError):
        brain.learn(5, "x")


def test_size_used_free(brain, store):
    assert brain.size() == store.capacity
    before = brain.used()
    brain["big"] = np.ones(1 << 20)
    assert brain.used() >= before + (8 << 20)
    assert brain.free() == brain.size() - brain.used()


def test_sleep_wake_up(brain):
    brain["kept"] = "value"
    brain.sleep()
    assert brain.client is None
    with pytest.raises(exceptions.BrainClientDisconnectedError):
        brain["kept"]
    brain.wake_up()
    assert brain["kept"] == "value"


def test_exception_types():
    for name in (
        "BrainNameNotExistError",
        "BrainNamespaceNameError",
        "BrainNamespaceNotExistError",
        "BrainNamespaceRemoveDefaultError",
        "BrainNameLengthError",
        "BrainNameTypeError",
        "BrainClientDisconnectedError",
        "BrainRemoveOldNameValueError",
        "BrainLearnNameError",
        "BrainUpdateNameError",
    ):
        cls = getattr(exceptions, name)
        assert issubclass(cls, exceptions.BrainError)
        assert getattr(__import__("shoal.brain", fromlist=[name]), name) is cls


# --------------------------------------------- brain-plasma's flaws, fixed


def test_remove_current_namespace_with_none(brain):
    brain.set_namespace("scratchpad")
    brain["a"] = 1
    brain.remove_namespace()
    assert brain.namespace == "default"
    assert brain.names(namespace="all") == []
    assert brain.namespaces() == {"default"}


def test_namespaces_with_common_prefix_stay_apart(brain):
    brain.set_namespace("abcde")
    brain["x"] = 1
    brain.set_namespace("abcde/x")
    brain["y"] = 2
    brain.set_namespace("abcde")
    assert brain.names() == ["x"]
    brain.remove_namespace("abcde")
    brain.set_namespace("abcde/x")
    assert brain.names() == ["y"] and brain["y"] == 2


def test_update_is_atomic(brain, store):
    """A reader in another thread never finds the name missing while it is
    being replaced (brain-plasma deleted, then put)."""
    brain["hot"] = 0
    other = Brain(path=store.socket_path, start=False)
    missing = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            if not other.exists("hot"):
                missing.append(1)
            try:
                other["hot"]
            except KeyError:
                missing.append(2)

    t = threading.Thread(target=read)
    t.start()
    try:
        for i in range(300):
            brain["hot"] = i
    finally:
        stop.set()
        t.join(30)
    assert not t.is_alive()
    assert missing == []
    assert other["hot"] == 299
    other.sleep()


def test_names_are_never_evicted(brain, store):
    """Filling the store with anonymous objects evicts those, never a
    Brain's names."""
    brain["keep"] = np.arange(1 << 20)  # 8 MiB
    chunk = np.ones(4 << 20)  # 32 MiB
    for _ in range(3 * store.capacity // chunk.nbytes):
        store.put(chunk)
    assert store.stats()["evictions"] > 0
    assert np.array_equal(brain["keep"], np.arange(1 << 20))


def test_listing_asks_by_prefix(brain, store):
    """names() returns only this namespace's names, whatever else the store
    holds (other names, anonymous objects)."""
    store["plain"] = 1
    store.put(b"anonymous")
    brain["mine"] = 2
    assert brain.names() == ["mine"]
    assert len(brain) == 1
