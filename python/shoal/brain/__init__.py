"""brain-plasma's API on shoal: ``from shoal.brain import Brain`` in place of
``from brain_plasma import Brain``.

brain-plasma 0.3 gave Plasma objects names and namespaces by hashing them
into ObjectIDs and keeping a metadata object per name. shoal has names of
its own, so a Brain is a thin layer over them:

- the value of NAME in namespace NS is the shoal name ``brain/<len(NS)>:NS/NAME``
  (the length makes the prefix of one namespace never a prefix of another's),
  its description (when given) ``brain.desc/<len(NS)>:NS/NAME``, and each
  namespace other than "default" has a marker name ``brain.ns/NS``;
- learning a value is one atomic set of the name: a reader sees the old or
  the new value, never none (brain-plasma deleted, then put);
- names are plain shoal names: never evicted;
- listing a namespace asks the daemon for the names with its prefix (no
  scan of every object), and removing one deletes its prefix in one request;
- remove_namespace(None) removes the current namespace.

Differences a brain-plasma user may notice: ``metadata_id`` in metadata is
None (there is no separate metadata object), ``value_id`` is the bytes of a
``shoal.ObjectID``, ``object_id()`` returns a ``shoal.ObjectID``, and
``Brain`` has no ``ClientClass`` (it talks to a shoal daemon, started on
demand unless ``start=False``).
"""

import shoal

from .exceptions import (
    BrainClientDisconnectedError,
    BrainError,
    BrainLearnNameError,
    BrainNameLengthError,
    BrainNameNotExistError,
    BrainNamespaceNameError,
    BrainNamespaceNotExistError,
    BrainNamespaceRemoveDefaultError,
    BrainNameTypeError,
    BrainRemoveOldNameValueError,
    BrainUpdateNameError,
)

__all__ = [
    "Brain",
    "BrainClientDisconnectedError",
    "BrainError",
    "BrainLearnNameError",
    "BrainNameLengthError",
    "BrainNameNotExistError",
    "BrainNamespaceNameError",
    "BrainNamespaceNotExistError",
    "BrainNamespaceRemoveDefaultError",
    "BrainNameTypeError",
    "BrainRemoveOldNameValueError",
    "BrainUpdateNameError",
]

DEFAULT_NAMESPACE = "default"
_VALUE = "brain/"
_DESC = "brain.desc/"
_MARKER = "brain.ns/"


def _scope(namespace):
    return f"{len(namespace)}:{namespace}/"


def _split(rest):
    """(namespace, name) of the part of a shoal name after its kind prefix,
    or None for a name that is not laid out as _scope() makes them."""
    digits, sep, tail = rest.partition(":")
    if not sep or not digits.isdigit():
        return None
    n = int(digits)
    if len(tail) <= n or tail[n] != "/":
        return None
    return tail[:n], tail[n + 1 :]


class Brain:
    """Named values in namespaces, shared by every process on the host.

    Brain(namespace="default", path=None, *, start=True, memory=None):
    path is the daemon's socket (None: shoal's default); with start, a
    daemon is started when none serves it (memory: its capacity, e.g. "4G").
    """

    def __init__(self, namespace=DEFAULT_NAMESPACE, path=None, *, start=True, memory=None):
        self.path = path
        self.namespace = DEFAULT_NAMESPACE
        self._start = start
        self._memory = memory
        self._store = None
        self.wake_up()
        self.set_namespace(namespace)

    # ------------------------------------------------------------ values

    def __setitem__(self, name, item):
        self.learn(name, item)

    def __getitem__(self, name):
        return self.recall(name)

    def __delitem__(self, name):
        self.forget(name)

    def __contains__(self, name):
        return self.exists(name)

    def __len__(self):
        return len(self.names())

    def learn(self, name, thing, description=None):
        """Stores thing under name in the current namespace, atomically
        replacing an older value. The description is kept across updates
        unless a new one is given. Raises BrainNameTypeError for a name that
        is not a str, BrainLearnNameError / BrainUpdateNameError when the
        value could not be stored (nothing changed then)."""
        if not isinstance(name, str):
            raise BrainNameTypeError(f'Type of name "{name}" must be str, not {type(name)}')
        store = self._s()
        key = self._key(name)
        try:
            store.set(key, thing)
        except shoal.StoreUnavailable as e:
            raise BrainClientDisconnectedError(str(e)) from e
        except Exception as e:
            # An update and a first set fail the same way: nothing changed.
            existed = key in store
            cls = BrainUpdateNameError if existed else BrainLearnNameError
            verb = "update" if existed else "set"
            raise cls(f"Unable to {verb} value with name: {name}: {e}") from e
        if description is not None:
            store.set(self._desc_key(name), str(description))

    def recall(self, name):
        """The value of name in the current namespace (KeyError if none)."""
        value = self._call(lambda s: s.get(self._key(name), _MISSING))
        if value is _MISSING:
            raise KeyError(f"Name {name} does not exist.")
        return value

    def exists(self, name):
        """Whether name has a value in the current namespace."""
        return self._call(lambda s: self._key(name) in s)

    def forget(self, name):
        """Removes name (and its description) from the current namespace;
        nothing happens when it does not exist. Readers holding the value
        keep it until they drop it."""

        def forget(s):
            for key in (self._key(name), self._desc_key(name)):
                try:
                    del s[key]
                except KeyError:
                    pass

        self._call(forget)

    # ----------------------------------------------------------- listing

    def names(self, namespace=None):
        """The names in the current namespace, in another one, or (with
        "all") in every namespace, as a list."""
        if namespace == "all":
            keys = self._call(lambda s: s.keys(prefix=_VALUE))
            out = []
            for key in keys:
                parts = _split(key[len(_VALUE) :])
                if parts is not None:
                    out.append(parts[1])
            return out
        prefix = _VALUE + _scope(namespace or self.namespace)
        return [k[len(prefix) :] for k in self._call(lambda s: s.keys(prefix=prefix))]

    def metadata(self, *names, output="dict"):
        """Metadata of names in the current namespace: a dict with "name",
        "value_id" (bytes of the value's ObjectID), "description",
        "metadata_id" (None), "namespace" and "size" (bytes).

        One name: its dict, or None when it does not exist. No names: every
        name of the namespace, as {name: metadata} (output="dict") or a
        list. Several names: the same for just those (None for a missing
        one). TypeError for another output."""
        if output not in ("dict", "list"):
            raise TypeError('Output must be "list" or "dict"')
        if len(names) == 1:
            info = self._info(names[0])
            return None if info is None else self._meta(names[0], info, None)
        prefix = _VALUE + _scope(self.namespace)
        desc_prefix = _DESC + _scope(self.namespace)
        # Two requests whatever the number of names: the namespace's names
        # with their IDs and sizes, and which of them have a description.
        infos = {k[len(prefix) :]: v for k, v in self._call(lambda s: s.names(prefix=prefix)).items()}
        described = {k[len(desc_prefix) :] for k in self._call(lambda s: s.keys(prefix=desc_prefix))}
        wanted = list(names) if names else sorted(infos)
        metas = [
            self._meta(n, infos[n], n in described) if n in infos else None for n in wanted
        ]
        if output == "list":
            return metas
        return dict(zip(wanted, metas))

    def _info(self, name):
        try:
            return self._call(lambda s: s.name_info(self._key(name)))
        except KeyError:
            return None

    def _meta(self, name, info, has_description):
        description = ""
        if has_description is not False:
            description = self._call(lambda s: s.get(self._desc_key(name), ""))
        return {
            "name": name,
            "value_id": info["id"].binary(),
            "description": description,
            "metadata_id": None,
            "namespace": self.namespace,
            "size": info["data_size"],
        }

    def ids(self):
        """The ObjectIDs of the values of the current namespace's names."""
        return list(self.object_ids().values())

    def object_id(self, name):
        """The ObjectID of name's current value, or None."""
        info = self._info(name)
        return None if info is None else info["id"]

    def object_ids(self):
        """{name: ObjectID} for the current namespace (one request)."""
        prefix = _VALUE + _scope(self.namespace)
        names = self._call(lambda s: s.names(prefix=prefix))
        return {k[len(prefix) :]: v["id"] for k, v in names.items()}

    # -------------------------------------------------------- namespaces

    def set_namespace(self, namespace=None):
        """Switches to namespace (5 to 15 characters, else
        BrainNamespaceNameError), creating it if new, and returns it; with
        None, returns the current namespace."""
        if namespace is None:
            return self.namespace
        if not isinstance(namespace, str) or not 5 <= len(namespace) <= 15:
            n = len(namespace) if isinstance(namespace, str) else type(namespace).__name__
            raise BrainNamespaceNameError(
                f"Namespace wrong length; 5 <= namespace <= 15; name {namespace!r} is {n}"
            )
        if namespace != DEFAULT_NAMESPACE:
            self._call(lambda s: s.set(_MARKER + namespace, b""))
        self.namespace = namespace
        return namespace

    def namespaces(self):
        """The set of namespaces (always including "default")."""
        keys = self._call(lambda s: s.keys(prefix=_MARKER))
        return {DEFAULT_NAMESPACE} | {k[len(_MARKER) :] for k in keys}

    def remove_namespace(self, namespace=None):
        """Removes namespace (None: the current one) with all its names. The
        current namespace becomes "default" if it was the one removed.
        Raises BrainNamespaceRemoveDefaultError for "default" and
        BrainNamespaceNotExistError for an unknown namespace."""
        if namespace is None:
            namespace = self.namespace
        if namespace == DEFAULT_NAMESPACE:
            raise BrainNamespaceRemoveDefaultError("Cannot remove default namespace")
        if namespace not in self.namespaces():
            raise BrainNamespaceNotExistError(f'Namespace "{namespace}" does not exist')

        def remove(s):
            # The marker goes last: while names remain, the namespace is listed.
            s.delete_prefix(_VALUE + _scope(namespace))
            s.delete_prefix(_DESC + _scope(namespace))
            try:
                del s[_MARKER + namespace]
            except KeyError:
                pass

        self._call(remove)
        if self.namespace == namespace:
            self.namespace = DEFAULT_NAMESPACE
        return f"Deleted namespace {namespace}. Using namespace {self.namespace}."

    # ------------------------------------------------------------- store

    @property
    def client(self):
        """The underlying shoal.Store (None while asleep)."""
        return self._store

    def size(self):
        """The store's capacity in bytes."""
        self.bytes = self._call(lambda s: s.capacity)
        self.mb = f"{round(self.bytes / 1000000)} MB"
        return self.bytes

    def used(self):
        """Bytes of the store in use (by every client, not only this Brain)."""
        return self._call(lambda s: s.stats()["used_bytes"])

    def free(self):
        """Bytes of the store not in use."""
        return self.size() - self.used()

    def sleep(self):
        """Disconnects; wake_up() connects again. Values read before stay
        readable."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def wake_up(self):
        """(Re)connects to the daemon (starting one unless start=False)."""
        self.sleep()
        try:
            self._store = shoal.connect(self.path, start=self._start, memory=self._memory)
        except shoal.StoreUnavailable as e:
            raise BrainClientDisconnectedError(str(e)) from e
        self.size()

    def __repr__(self):
        state = "asleep" if self._store is None else self._store.socket_path
        return f"<shoal.brain.Brain namespace={self.namespace!r} {state}>"

    # ----------------------------------------------------------- helpers

    def _key(self, name):
        if not isinstance(name, str):
            raise BrainNameTypeError(f'Type of name "{name}" must be str, not {type(name)}')
        return _VALUE + _scope(self.namespace) + name

    def _desc_key(self, name):
        return _DESC + _scope(self.namespace) + name

    def _s(self):
        if self._store is None:
            raise BrainClientDisconnectedError("the Brain is asleep: call wake_up() first")
        return self._store

    def _call(self, fn):
        try:
            return fn(self._s())
        except shoal.StoreUnavailable as e:
            raise BrainClientDisconnectedError(str(e)) from e


_MISSING = object()
