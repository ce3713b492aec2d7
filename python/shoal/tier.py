"""shoal-tier: one host's bridge between its shoal daemon and a shared
Redis / Valkey tier (standalone, cluster or Sentinel), so that names flow
between hosts while every read stays a local, zero-copy read.

    shoal-tier --redis redis://redis.internal:6379/0 -s /run/app/shoal.sock \\
               --prefix shared/ --eager 'shared/frames/*'

What it does (docs/tier.md has the user's view, docs/DESIGN.md the choice
of redis-py):

* Publishing. The tier subscribes to the daemon's name events. A name under
  the prefix that a local client set is written to Redis: a version from
  one global counter (INCR), the bytes (inline in the name's hash when
  small, else in chunks of --chunk-size, always under Redis's 512 MB string
  limit), the metadata, the absolute expiry and the evictable flag. The
  name's hash is replaced by a Lua script only if its version is older, so
  the last writer in the global order wins however the writes interleave;
  then the set is announced on a pub/sub channel. A local expire/persist
  of a synced value is a change of its own in the same global order
  (_SET_TTL): it applies only to the value it was made on, so it never
  gives a newer value (set on another host meanwhile) that value's TTL. In cluster mode every key
  of a name carries the hash tag {sha1(name)[:16]}, so one name's hash and
  chunks live in one slot. A replaced value's chunks are given a grace
  period (--grace) to expire in, so readers that are streaming them finish,
  and nothing accumulates.
* Receiving. An announced name that matches --eager (or that this host
  already holds) is streamed chunk by chunk straight into a new local
  object, sealed, and then pointed at by the name with a compare-and-set on
  the local version: readers see the old value or the new one, and a local
  set that raced in wins (it is published next, with a newer version).
  Other names are lazy: a local get that misses asks this process over the
  Unix socket SOCKET.tier (shoal.Store does it, with a short timeout), which
  pulls the name if Redis has it.
* Loops. Every name the tier handles has an entry (local object ID, tier
  version, value identity) in `self.synced`. A local event whose object is
  the one recorded is the echo of the tier's own write and is not published.
* Faults. Nothing local waits for Redis: events are only recorded by the
  event thread and worked off by workers that give up on Redis errors after
  the socket timeout. Whenever the connection comes back (and every
  --reconcile seconds) the whole name space is reconciled: local names are
  compared with Redis by object ID and version, local changes made meanwhile
  are published if they are newer than Redis's value (wall-clock times of
  the writes), missed announcements are applied. The sync table is saved in
  SOCKET.tier.state, so a restarted tier resumes where it left; a Redis that
  lost its data (a new epoch key) is refilled from the hosts' values.
* Visibility. SOCKET.tier.json (replaced atomically every second) holds
  connected, lag_ms, published, received, errors; `shoal stats --json`
  shows it as "tier". SOCKET.tier.lock is held for the process's life: one
  tier per daemon.
"""

import argparse
import fcntl
import fnmatch
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

import shoal
from shoal import _shoal
from shoal._tier_client import lookup, running  # noqa: F401 (re-exported)

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # reported by main()
    redis = None

# Values up to this size live in the name's hash itself: one round trip.
INLINE_MAX = 256 * 1024
DEFAULT_CHUNK = 64 << 20
REDIS_STRING_MAX = 512 << 20
# Longest name the lazy socket accepts (the daemon's own limit is 1 KiB).
NAME_MAX = 4096

# KEYS[1] = the name's hash, KEYS[2..] = the new value's chunks (one slot:
# they share the name's hash tag). ARGV = version, absolute expiry (ms, 0
# none), TTL of the hash (ms, 0 none; tombstones), the key prefix of the
# name's chunks, the grace (ms) of the replaced value's chunks, 1 for a
# refill (a value written again after Redis lost it) else 0, the value's
# write time (ms), then the hash's field/value pairs. In one step: if the
# hash is newer (a higher version; for a refill, also a write time no
# older than the refill's), the new
# chunks are deleted -> {0, current version}; if a new chunk has expired
# already -> {-1, 0}; else the chunks are kept (their pending TTL replaced
# by the value's expiry), the hash replaced, and the old value's chunks
# given the grace -> {1, old version}. Doing all of it in the script is
# what keeps two publishers of one name from leaving chunks behind. The
# hash's v is the version of the name's last change (a set, a delete or a
# TTL change); cv is the version the chunks are stored under (that of the
# set).
_SET_META = """
local cur = redis.call('HMGET', KEYS[1], 'v', 'nch', 'ts', 'cv')
local curv = tonumber(cur[1]) or 0
local oldnch = tonumber(cur[2]) or 0
local oldcv = tonumber(cur[4]) or curv
local newv = tonumber(ARGV[1])
local stale = false
if ARGV[6] == '1' and cur[3] then
  stale = tonumber(cur[3]) >= tonumber(ARGV[7])
end
if curv >= newv or stale then
  for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
  return {0, curv}
end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    for j = 2, #KEYS do redis.call('DEL', KEYS[j]) end
    return {-1, 0}
  end
end
local pxat = tonumber(ARGV[2])
local px = tonumber(ARGV[3])
for i = 2, #KEYS do
  if pxat > 0 then redis.call('PEXPIREAT', KEYS[i], pxat)
  else redis.call('PERSIST', KEYS[i]) end
end
redis.call('DEL', KEYS[1])
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'cv', ARGV[1], unpack(fields))
if pxat > 0 then redis.call('PEXPIREAT', KEYS[1], pxat)
elseif px > 0 then redis.call('PEXPIRE', KEYS[1], px) end
local grace = tonumber(ARGV[5])
for i = 0, oldnch - 1 do
  local key = ARGV[4] .. oldcv .. ':' .. i
  if grace > 0 then redis.call('PEXPIRE', key, grace) else redis.call('DEL', key) end
end
return {1, curv}
"""

# KEYS[1] = the name's hash. ARGV = the TTL change's version, the identity
# (uid) of the value it was made on, the new absolute expiry (ms, 0 none),
# the key prefix of the name's chunks. Applies only if the hash still holds
# that value (not replaced, not deleted) and has no newer change: then v
# becomes the new version and the hash and chunks expire at the new time
# -> {1, old version}; else {0, current version or 0}.
_SET_TTL = """
local cur = redis.call('HMGET', KEYS[1], 'v', 'uid', 'del', 'nch', 'cv')
if not cur[1] then return {0, 0} end
local curv = tonumber(cur[1])
if curv >= tonumber(ARGV[1]) or cur[2] ~= ARGV[2] or cur[3] == '1' then
  return {0, curv}
end
local cv = cur[5] or cur[1]
local pxat = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'cv', cv, 'exp', ARGV[3])
local keys = {KEYS[1]}
for i = 0, (tonumber(cur[4]) or 0) - 1 do keys[#keys + 1] = ARGV[4] .. cv .. ':' .. i end
for _, key in ipairs(keys) do
  if pxat > 0 then redis.call('PEXPIREAT', key, pxat) else redis.call('PERSIST', key) end
end
return {1, curv}
"""

# KEYS[1] = the counter; raises it to at least ARGV[1] (after a Redis
# restart from an older snapshot, versions must not be handed out twice).
_RAISE_SEQ = """
local cur = tonumber(redis.call('GET', KEYS[1])) or 0
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
"""


def _now_ms():
    return int(time.time() * 1000)


# Two absolute expiries (ms, 0 none) within this are the same: one read
# back from the daemon as "ms left" differs from the one set by the time
# the round trip took.
EXP_SLACK_MS = 500


def _same_exp(a, b):
    if not a or not b:
        return not a and not b
    return abs(a - b) <= EXP_SLACK_MS


def _size(text):
    """'64M' -> bytes."""
    text = str(text).strip().upper()
    mult = 1
    for suffix, m in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if text.endswith(suffix) or text.endswith(suffix + "B") or text.endswith(suffix + "IB"):
            text = text.split(suffix)[0]
            mult = m
            break
    return int(float(text) * mult)


def _redis_errors():
    """What a Redis call raises when Redis is down, hung, or refuses: the
    tier counts it, marks itself disconnected and retries later. (A cluster
    with no reachable node raises RedisClusterException, which is no
    RedisError.)"""
    return (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError)


class Missing(Exception):
    """A chunk of the value being pulled is gone (replaced meanwhile)."""


class Tier:
    """One tier process's state; see the module documentation."""

    def __init__(self, args):
        self.args = args
        self.sock = os.path.abspath(args.socket)
        self.prefix = args.prefix
        self.eager = list(args.eager or [])
        self.kp = args.key_prefix
        self.chunk = min(args.chunk_size, REDIS_STRING_MAX)
        self.grace_ms = int(args.grace * 1000)
        self.tomb_ms = int(args.tombstone_ttl * 1000)
        self.channel = f"{self.kp}:events"
        self.stop = threading.Event()
        self.lock = threading.Condition()
        # name -> {"oid": hex or None (a deleted name), "tv": tier version,
        #          "uid": identity of the value across republishing, "ts": ms}
        self.synced = {}
        self.epoch = None
        self.daemon_start = None
        self.state_dirty = False
        # Work: name -> time it became dirty; names being worked on.
        self.dirty = {}
        self.busy = set()
        self.lazy_waiters = {}  # name -> threading.Event list of lazy asks
        # What local events told: name -> ("set" / "ttl", oid hex, ms) or
        # ("deleted", None, ms).
        self.local_seen = {}
        self.connected = False
        self.need_reconcile = True
        self.counters = {"published": 0, "received": 0, "deleted": 0, "errors": 0, "lazy_hits": 0}
        self.last_error = ""
        self.store = None
        self.r = None
        self.name_locks = {}

    # ------------------------------------------------------------ keys

    def _tag(self, name):
        return hashlib.sha1(name.encode()).hexdigest()[:16]

    def meta_key(self, name):
        return f"{self.kp}:{{{self._tag(name)}}}:n:".encode() + name.encode()

    def chunk_key(self, name, version, i):
        return f"{self.kp}:{{{self._tag(name)}}}:c:{version}:{i}".encode()

    def _name_of_meta_key(self, key):
        marker = b"}:n:"
        at = key.find(marker)
        return key[at + len(marker) :].decode() if at >= 0 else None

    def covers(self, name):
        return name is not None and name.startswith(self.prefix)

    def is_eager(self, name):
        return any(fnmatch.fnmatchcase(name, g) for g in self.eager)

    # ------------------------------------------------------- connections

    def connect_redis(self):
        a = self.args
        kw = {
            "socket_timeout": a.redis_timeout,
            "socket_connect_timeout": a.redis_timeout,
            "retry": Retry(NoBackoff(), 1),
            "health_check_interval": 0,
        }
        data_kw = dict(kw, socket_timeout=max(a.transfer_timeout, a.redis_timeout))
        if a.sentinel:
            self.r, self.rd = _sentinel_clients(a, kw, data_kw)
        elif a.cluster:
            from redis.cluster import ClusterNode, RedisCluster

            nodes = []
            first = None
            for url in a.redis:
                for part in url.split(","):
                    part = part if "://" in part else "redis://" + part
                    u = urllib.parse.urlparse(part)
                    nodes.append(ClusterNode(u.hostname or "127.0.0.1", u.port or 6379))
                    first = first or part
            # The first URL's user, password, TLS and its query options
            # (e.g. ?ssl_ca_certs=) apply to every node, as redis-py's own
            # from_url does for one server.
            opts = _url_options(first)
            opts.pop("db", None)  # a cluster has database 0 only
            kw.update(opts)
            data_kw.update(opts)
            for d in (kw, data_kw):
                d.pop("health_check_interval")
            self.r = RedisCluster(startup_nodes=nodes, cluster_error_retry_attempts=2, **kw)
            # Chunks go on clients of their own, with a timeout for 64 MB.
            self.rd = RedisCluster(startup_nodes=nodes, cluster_error_retry_attempts=2, **data_kw)
        else:
            self.r = redis.Redis.from_url(a.redis[0], **kw)
            self.rd = redis.Redis.from_url(a.redis[0], **data_kw)
        self.set_meta = self.r.register_script(_SET_META)
        self.set_ttl = self.r.register_script(_SET_TTL)
        self.raise_seq = self.r.register_script(_RAISE_SEQ)

    def connect_store(self):
        self.store = shoal.connect(self.sock, start=False)
        st = self.store.stats()
        start = _now_ms() - st["uptime_ms"]
        if self.daemon_start is None or abs(start - self.daemon_start) > 2000:
            if self.daemon_start is not None:
                # Another daemon (restarted): what we knew of its names is void.
                with self.lock:
                    self.synced.clear()
                    self.local_seen.clear()
            self.daemon_start = start
            self.state_dirty = True

    # ----------------------------------------------------------- state file

    def state_path(self):
        return self.sock + ".tier.state"

    def load_state(self):
        try:
            with open(self.state_path()) as f:
                st = json.load(f)
        except (OSError, ValueError):
            return
        self.synced = st.get("names", {})
        self.epoch = st.get("epoch")
        self.daemon_start = st.get("daemon_start")

    def save_state(self):
        with self.lock:
            if not self.state_dirty:
                return
            doc = {"epoch": self.epoch, "daemon_start": self.daemon_start, "names": dict(self.synced)}
            self.state_dirty = False
        _write_atomic(self.state_path(), json.dumps(doc))

    def write_status(self, running=True):
        with self.lock:
            now = time.monotonic()
            lag = max((now - t for t in self.dirty.values()), default=0.0)
            doc = {
                "running": running,
                "connected": self.connected and running,
                "lag_ms": int(lag * 1000),
                "pending": len(self.dirty) + len(self.busy),
                **self.counters,
                "last_error": self.last_error,
                "pid": os.getpid(),
                "updated_ms": _now_ms(),
            }
        _write_atomic(self.sock + ".tier.json", json.dumps(doc))

    # ----------------------------------------------------------- work queue

    def mark(self, name):
        with self.lock:
            self.dirty.setdefault(name, time.monotonic())
            self.lock.notify()

    def _take(self):
        with self.lock:
            while not self.stop.is_set():
                if self.connected:
                    for name in self.dirty:
                        if name not in self.busy:
                            del self.dirty[name]
                            self.busy.add(name)
                            return name
                self.lock.wait(0.5)
            return None

    def _done(self, name):
        with self.lock:
            self.busy.discard(name)
            self.lock.notify_all()

    def worker(self):
        while not self.stop.is_set():
            name = self._take()
            if name is None:
                return
            try:
                self.sync_name(name)
            except _redis_errors() as e:
                self.error(f"{name}: {e}")
                self.lost_redis()
                self.mark(name)
            except (shoal.StoreUnavailable, Missing) as e:
                self.error(f"{name}: {e}")
                self.mark(name)
                time.sleep(0.2)
            except Exception as e:  # keep the worker alive; the name is retried at the next reconcile
                self.error(f"{name}: {type(e).__name__}: {e}")
            finally:
                self._done(name)

    def error(self, text):
        with self.lock:
            self.counters["errors"] += 1
            self.last_error = text[:300]
        print(f"shoal-tier: {text}", file=sys.stderr, flush=True)

    def lost_redis(self):
        with self.lock:
            self.connected = False
            self.need_reconcile = True

    # ----------------------------------------------------------- one name

    def remote(self, name, with_data=False):
        """The name's hash in Redis as a dict (bytes keys decoded), or None."""
        fields = ["v", "del", "size", "nch", "csz", "ts", "uid", "exp", "evict", "meta", "cv"]
        if with_data:
            fields.append("data")
        vals = self.r.hmget(self.meta_key(name), fields)
        if vals[0] is None:
            return None
        m = dict(zip(fields, vals))
        for k in ("v", "del", "size", "nch", "csz", "ts", "exp", "evict", "cv"):
            m[k] = int(m[k] or 0)
        m["cv"] = m["cv"] or m["v"]  # written before TTL changes had versions
        m["uid"] = (m["uid"] or b"").decode()
        m["meta"] = m["meta"] or b""
        return m

    def local(self, name):
        """(buffer, version) of the local name, or (None, 0)."""
        try:
            return self.store.client.get_name(name, 0)
        except shoal.ObjectNotFound:
            return None, 0

    def sync_name(self, name, want=False):
        """Brings one name in line between the local store and Redis (the
        whole decision table is here). want: pull it even if it is lazy.
        Returns whether the name exists locally afterwards."""
        buf, lv = self.local(name)
        with self.lock:
            seen = self.local_seen.get(name)
        try:
            done = self._sync(name, buf, lv, want)
            with self.lock:
                if self.local_seen.get(name) is seen:
                    self.local_seen.pop(name, None)  # handled
            return done
        finally:
            if buf is not None:
                buf.release()

    def _sync(self, name, buf, lv, want):
        with self.lock:
            s = self.synced.get(name)
            seen = self.local_seen.get(name)
        oid = buf.id.hex() if buf is not None else None
        r = self.remote(name)
        rlive = r is not None and not r["del"] and not (r["exp"] and r["exp"] <= _now_ms())
        if buf is not None:
            if s is not None and s["oid"] == oid:
                # The local value is the one we last synced.
                if r is None or r["v"] < s["tv"]:
                    if s.get("exp") and s["exp"] <= _now_ms() + 1000:
                        return True  # it expired in Redis and is about to here
                    # Redis lost it (restart, flush) or went back: refill it.
                    self.publish(name, buf, lv, uid=s["uid"], ts=s["ts"])
                elif r["v"] > s["tv"]:
                    if r["uid"] == s["uid"]:
                        self._same_value_changed(name, buf, lv, r, seen)
                    else:
                        self.apply(name, r, lv)
                else:
                    lexp = self._local_exp(name, buf)
                    if lexp is not None and not _same_exp(lexp, s.get("exp", 0)):
                        self.publish_ttl(name, buf, lv, lexp)  # a local expire/persist
                return True
            # A local set the tier has not published.
            ts = seen[2] if seen and seen[0] == "set" and seen[1] == oid else self._create_ms(buf)
            if r is None or (s is not None and r["v"] <= s["tv"]) or ts >= r["ts"]:
                self.publish(name, buf, lv, uid=None, ts=ts)
                return True
            self.apply(name, r, lv)  # Redis holds a newer value
            return True
        # Not local.
        if s is not None and s["oid"] is not None:
            # A delete event says it was deleted; without one (the tier was
            # not watching) an evictable or expiring name may have gone by
            # itself, which is not to be propagated.
            deleted = seen is not None and seen[0] == "deleted"
            gone_by_itself = not deleted and (
                s.get("evict") or (s.get("exp") and s["exp"] <= _now_ms() + 1000)
            )
            if not gone_by_itself and (r is None or r["v"] <= s["tv"]):
                self.publish_delete(name)  # a local delete
                return False
            # Expired, evicted, or Redis is newer: forget it; pull if wanted.
            with self.lock:
                self.synced.pop(name, None)
                self.state_dirty = True
            s = None
        if r is None:
            return False
        if not rlive:
            self._record(name, None, r["v"], r["uid"], r["ts"])
            return False
        if s is not None and s["tv"] >= r["v"] and not want:
            return False
        if want or self.is_eager(name):
            return self.apply(name, r, 0)
        return False

    def _same_value_changed(self, name, buf, lv, r, seen):
        """Redis has a newer change of the value this host holds: its TTL
        changed (or it was written again). A local TTL change not yet
        published is newer still in the tier's order: it is published;
        else Redis's expiry is applied here."""
        lexp = self._local_exp(name, buf)
        oid = buf.id.hex()
        if lexp is None or _same_exp(lexp, r["exp"]):
            self._record(name, oid, r["v"], r["uid"], r["ts"], r["exp"], r["evict"])
        elif seen is not None and seen[0] == "ttl" and seen[1] == oid:
            self._record(name, oid, r["v"], r["uid"], r["ts"], r["exp"], r["evict"])
            self.publish_ttl(name, buf, lv, lexp)
        else:
            self.apply_ttl(name, buf, lv, r)

    def _local_exp(self, name, buf):
        """The local name's absolute expiry (ms, 0 none), or None if it no
        longer points at buf's object."""
        try:
            row = self.store.client.name_info(name)
        except (shoal.Error, KeyError):
            return None
        if row[1] != buf.id:
            return None
        return _now_ms() + row[6] if row[6] >= 0 else 0

    def _create_ms(self, buf):
        """When the local object was created (wall clock, ms)."""
        try:
            info = self.store.client.list()
        except shoal.Error:
            return _now_ms()
        for row in info:
            if row[0] == buf.id:
                return int(row[6] // 1_000_000)
        return _now_ms()

    def _record(self, name, oid, tv, uid, ts, exp=0, evict=0):
        with self.lock:
            self.synced[name] = {"oid": oid, "tv": tv, "uid": uid, "ts": ts, "exp": exp, "evict": evict}
            self.state_dirty = True

    # -------------------------------------------------------- publishing

    def _name_flags(self, name):
        """(absolute expiry in ms or 0, evictable 0/1) of a local name."""
        try:
            row = self.store.client.name_info(name)
        except (shoal.Error, KeyError):
            return 0, 0
        ttl_ms, flags = row[6], row[5]
        exp = _now_ms() + ttl_ms if ttl_ms >= 0 else 0
        return exp, 1 if flags & _shoal.NAME_EVICTABLE else 0

    def publish(self, name, buf, lv, uid, ts):
        """Writes the local value to Redis under a new global version and
        announces it. uid/ts: the value's identity and write time when it is
        a re-publication of a synced value."""
        refill = uid is not None
        v = int(self.r.incr(f"{self.kp}:seq"))
        uid = uid or f"{self.epoch}:{v}"
        exp, evict = self._name_flags(name)
        size = len(buf)
        mv = memoryview(buf)
        fields = {
            "del": 0, "size": size, "ts": ts, "uid": uid, "exp": exp,
            "evict": evict, "meta": buf.metadata,
        }
        nch = 0
        if size <= INLINE_MAX:
            fields["data"] = mv.tobytes()
        else:
            nch = (size + self.chunk - 1) // self.chunk
            fields["csz"] = self.chunk
            # Chunks expire by themselves until the hash points at them, so
            # a publisher that dies or times out half-way leaves nothing.
            pending_ms = int(self.args.pending_ttl * 1000)
            for i in range(nch):
                part = mv[i * self.chunk : (i + 1) * self.chunk]
                self.rd.set(self.chunk_key(name, v, i), part, px=pending_ms)
        fields["nch"] = nch
        try:
            won = self._set_meta(name, v, fields, exp, 0, nch, refill=refill)
        finally:
            mv.release()
        if won < 0:
            # A chunk expired before the hash could point at it (a publish
            # slower than --pending-ttl): publish again.
            raise Missing(f"{name}: chunks of version {v} expired while publishing")
        if not won:
            # A later version (in the tier's order) got there first: it wins.
            r = self.remote(name)
            if r is not None and r["uid"] == uid and not r["del"]:
                self._record(name, buf.id.hex(), r["v"], uid, r["ts"], r["exp"], r["evict"])
            elif r is not None:
                self.apply(name, r, lv)
            return
        self._record(name, buf.id.hex(), v, uid, ts, exp, fields["evict"])
        self.r.publish(self.channel, f"s {v} {name}".encode())
        with self.lock:
            self.counters["published"] += 1

    def publish_ttl(self, name, buf, lv, exp):
        """Writes a local expire/persist of the synced value to Redis under
        a new global version and announces it. It applies only if Redis
        still holds that value: a TTL change of a value since replaced (or
        deleted) elsewhere is dropped, and the newer value applied here."""
        with self.lock:
            s = dict(self.synced[name])
        v = int(self.r.incr(f"{self.kp}:seq"))
        prefix = f"{self.kp}:{{{self._tag(name)}}}:c:"
        won, _ = self.set_ttl(keys=[self.meta_key(name)], args=[v, s["uid"], exp, prefix])
        if int(won):
            self._record(name, buf.id.hex(), v, s["uid"], s["ts"], exp, s.get("evict", 0))
            self.r.publish(self.channel, f"t {v} {name}".encode())
            with self.lock:
                self.counters["published"] += 1
            return
        r = self.remote(name)
        if r is None:
            self.mark(name)  # Redis lost it (or it expired there): settled next
        elif r["uid"] == s["uid"] and not r["del"]:
            self.apply_ttl(name, buf, lv, r)  # a later TTL change won
        else:
            self.apply(name, r, lv)  # replaced or deleted meanwhile

    def publish_delete(self, name):
        v = int(self.r.incr(f"{self.kp}:seq"))
        fields = {"del": 1, "size": 0, "nch": 0, "ts": _now_ms(), "uid": f"{self.epoch}:{v}"}
        if self._set_meta(name, v, fields, 0, self.tomb_ms) > 0:
            self.r.publish(self.channel, f"d {v} {name}".encode())
            with self.lock:
                self.counters["deleted"] += 1
        self._record(name, None, v, fields["uid"], fields["ts"])

    def _set_meta(self, name, v, fields, pxat, px, nch=0, refill=False):
        """Runs _SET_META: 1 won, 0 a newer version is there, -1 a chunk
        expired. refill: a value this host synced before, written again
        after Redis lost it; it loses to any value Redis holds that was
        written at the same time or later, whatever their versions (every
        host refills under fresh versions, so versions alone would let a
        stale copy win)."""
        keys = [self.meta_key(name)] + [self.chunk_key(name, v, i) for i in range(nch)]
        prefix = f"{self.kp}:{{{self._tag(name)}}}:c:"
        argv = [v, pxat, px, prefix, self.grace_ms, 1 if refill else 0, fields["ts"]]
        for k, val in fields.items():
            argv += [k, val]
        won, _ = self.set_meta(keys=keys, args=argv)
        return int(won)

    # ---------------------------------------------------------- receiving

    def apply(self, name, r, lv):
        """Makes the local name what Redis's hash r says (a value or a
        deletion), only if the local version is still lv (0: absent).
        Returns whether the name exists locally afterwards."""
        c = self.store.client
        if r["del"] or (r["exp"] and r["exp"] <= _now_ms()):
            if lv:
                self._record(name, None, r["v"], r["uid"], r["ts"])
                try:
                    c.delete_name(name, lv)
                except (shoal.ObjectNotFound, shoal.VersionConflict):
                    pass
            return False
        full = self.remote(name, with_data=True)
        if full is None or full["v"] != r["v"]:
            if full is None:
                return False
            r = full
        oid = shoal.ObjectID.from_random()
        if r["nch"] == 0:
            data = full.get("data") or b""
            c.put(oid, [data], r["meta"], None, None, 0)
        else:
            buf = c.create(oid, r["size"], r["meta"], 0)
            try:
                mv = memoryview(buf)
                off = 0
                for i in range(r["nch"]):
                    part = self.rd.get(self.chunk_key(name, r["cv"], i))
                    if part is None or off + len(part) > r["size"]:
                        raise Missing(f"{name}: chunk {i} of version {r['v']} is gone")
                    mv[off : off + len(part)] = part
                    off += len(part)
                    del part
                mv.release()
                if off != r["size"]:
                    raise Missing(f"{name}: version {r['v']} is short")
                c.seal(oid)
            except BaseException:
                mv.release()
                buf.release()
                c.abort(oid)
                raise
            buf.release()
        # Record first: the name_set event this causes must find the object.
        with self.lock:
            old = self.synced.get(name)
        self._record(name, oid.hex(), r["v"], r["uid"], r["ts"], r["exp"], r["evict"])
        try:
            newv = self._set_local(name, oid, lv, r)
        except (shoal.VersionConflict, shoal.ObjectExists):
            # A local set won the race: it is published next.
            with self.lock:
                if old is None:
                    self.synced.pop(name, None)
                else:
                    self.synced[name] = old
            c.delete([oid])
            return True
        with self.lock:
            self.counters["received"] += 1
        return newv is not None

    def apply_ttl(self, name, buf, lv, r):
        """Gives the local name Redis's expiry for the value it holds: the
        name is set again to the same object, with a compare-and-set on the
        local version, so a local set made meanwhile is not touched (it
        wins, and is published next)."""
        try:
            self._set_local(name, buf.id, lv, r)
        except (shoal.VersionConflict, shoal.ObjectNotFound, shoal.ObjectExists):
            return
        self._record(name, buf.id.hex(), r["v"], r["uid"], r["ts"], r["exp"], r["evict"])
        with self.lock:
            self.counters["received"] += 1

    def _set_local(self, name, oid, lv, r):
        """Points the local name at oid (if its version is still lv), with
        the remaining TTL and the evictable flag."""
        ttl_ms = 0
        if r["exp"]:
            ttl_ms = max(r["exp"] - _now_ms(), 1)
        return self.store.client.set_name(name, oid, lv, ttl_ms, bool(r["evict"]))

    # -------------------------------------------------------- the threads

    def events_loop(self):
        """Reads the daemon's events; never waits for Redis."""
        while not self.stop.is_set():
            try:
                sub = self.store.subscribe(ttl=True)
                self.need_reconcile = True
                while not self.stop.is_set():
                    ev = sub.next(0.5)
                    if ev is None:
                        continue
                    self.on_event(ev)
            except shoal.StoreUnavailable:
                self.wait_daemon()
            except Exception as e:  # the loop must survive anything
                self.error(f"events: {type(e).__name__}: {e}")
                time.sleep(0.2)

    def on_event(self, ev):
        if ev.kind == "overflow":
            self.need_reconcile = True
            return
        if not self.covers(ev.name):
            return
        if ev.kind == "name_set":
            oid = ev.id.hex()
            with self.lock:
                s = self.synced.get(ev.name)
                if s is not None and s["oid"] == oid:
                    return  # the echo of our own write
                self.local_seen[ev.name] = ("set", oid, _now_ms())
            self.mark(ev.name)
        elif ev.kind == "name_ttl":
            oid = ev.id.hex()
            with self.lock:
                s = self.synced.get(ev.name)
                if s is not None and s["oid"] == oid and _same_exp(ev.expires_ms, s.get("exp", 0)):
                    return  # nothing the tier does not know
                prev = self.local_seen.get(ev.name)
                if not (prev and prev[0] == "set" and prev[1] == oid):
                    self.local_seen[ev.name] = ("ttl", oid, _now_ms())
            self.mark(ev.name)
        elif ev.kind == "name_deleted":
            with self.lock:
                s = self.synced.get(ev.name)
                if s is None or s["oid"] is None:
                    return  # never synced, or the echo of our own delete
                self.local_seen[ev.name] = ("deleted", None, _now_ms())
            self.mark(ev.name)
        elif ev.kind in ("name_expired", "name_evicted"):
            # At its synced expiry, or evicted: not a delete, the other
            # hosts keep theirs (or expire it at the same time). Remember
            # the version so that this host does not pull it back by
            # itself (a get still does). Expired before its synced expiry
            # (expire to 0, or a shorter TTL not yet published): gone
            # everywhere, as a delete.
            with self.lock:
                self.local_seen.pop(ev.name, None)
                s = self.synced.get(ev.name)
                if s is None or s["oid"] != ev.id.hex():
                    return
                due = s.get("exp") and s["exp"] <= _now_ms() + 1000
                if ev.kind == "name_expired" and not due:
                    self.local_seen[ev.name] = ("deleted", None, _now_ms())
                else:
                    self.synced[ev.name] = dict(s, oid=None)
                    self.state_dirty = True
                    return
            self.mark(ev.name)

    def wait_daemon(self):
        """The daemon went away: reconnect (or stop, with --exit-with-daemon)."""
        gone = time.monotonic()
        while not self.stop.is_set():
            try:
                self.connect_store()
                self.need_reconcile = True
                return
            except shoal.StoreUnavailable:
                if self.args.exit_with_daemon and time.monotonic() - gone > 5:
                    print("shoal-tier: the daemon is gone; exiting", file=sys.stderr, flush=True)
                    self.stop.set()
                    return
                time.sleep(0.2)

    def pubsub_loop(self):
        """Applies announcements. Missed ones (while disconnected) are found
        by the reconciliation that follows every reconnect."""
        ps = None
        while not self.stop.is_set():
            try:
                if ps is None:
                    if not self.connected:
                        time.sleep(0.2)
                        continue
                    ps = self.r.pubsub(ignore_subscribe_messages=True)
                    ps.subscribe(self.channel)
                    self.need_reconcile = True  # announcements before now
                msg = ps.get_message(timeout=0.5)
                if msg is None or msg.get("type") != "message":
                    continue
                self.on_announce(msg["data"])
            except (Exception, *_redis_errors()) as e:
                self.error(f"pubsub: {e}")
                self.lost_redis()
                try:
                    ps.close()
                except Exception:
                    pass
                ps = None
                time.sleep(0.2)
        if ps is not None:
            try:
                ps.close()
            except Exception:
                pass

    def on_announce(self, data):
        try:
            kind, v, name = data.decode().split(" ", 2)
            v = int(v)
        except ValueError:
            return
        if not self.covers(name):
            return
        with self.lock:
            s = self.synced.get(name)
            if s is not None and s["tv"] >= v:
                return
        if kind == "d" or self.is_eager(name) or s is not None:
            self.mark(name)

    def health_loop(self):
        """Pings Redis, reconciles after a reconnect and periodically, and
        writes the status and state files."""
        last_reconcile = 0.0
        failing = None
        while not self.stop.is_set():
            try:
                self.r.ping()
                failing = None
                if not self.connected:
                    self.check_epoch()
                    with self.lock:
                        self.connected = True
                        self.lock.notify_all()
                due = time.monotonic() - last_reconcile > self.args.reconcile
                if self.need_reconcile or due:
                    self.need_reconcile = False
                    last_reconcile = time.monotonic()
                    self.reconcile()
            except _redis_errors() as e:
                # Said once per outage and whenever it changes (a wrong
                # password, a certificate Redis rejects): not every ping.
                text = f"redis: {type(e).__name__}: {e}"
                if self.connected or text != failing:
                    self.error(text)
                failing = text
                self.lost_redis()
            except shoal.StoreUnavailable:
                self.need_reconcile = True
            except Exception as e:  # the loop must survive anything
                self.error(f"health: {type(e).__name__}: {e}")
                self.lost_redis()
            try:
                self.write_status()
                self.save_state()
            except OSError as e:
                self.error(f"status: {e}")
            self.stop.wait(self.args.interval)

    def check_epoch(self):
        """Redis's data set identity: a new one means Redis lost its data
        (or this is the first contact): our tier versions are void."""
        key = f"{self.kp}:epoch"
        self.r.set(key, os.urandom(8).hex(), nx=True)
        epoch = self.r.get(key).decode()
        with self.lock:
            if epoch != self.epoch:
                for s in self.synced.values():
                    s["tv"] = 0
                self.epoch = epoch
                self.state_dirty = True
            top = max((s["tv"] for s in self.synced.values()), default=0)
        if top:
            self.raise_seq(keys=[f"{self.kp}:seq"], args=[top])

    def reconcile(self):
        """Marks every name whose local and Redis states differ from what
        was last synced; the workers then settle each one."""
        remote = {}
        keys = []
        for key in self.r.scan_iter(match=f"{self.kp}:{{*}}:n:*".encode(), count=1000):
            keys.append(key)
        for i in range(0, len(keys), 500):
            batch = keys[i : i + 500]
            pipe = self.r.pipeline(transaction=False)
            for key in batch:
                pipe.hmget(key, ["v", "del", "uid"])
            for key, (v, dl, _) in zip(batch, pipe.execute()):
                name = self._name_of_meta_key(key)
                if name is not None and v is not None and self.covers(name):
                    remote[name] = (int(v), int(dl or 0))
        local, local_exp = {}, {}
        wall = _now_ms()
        for row in self.store.client.list_names():
            if self.covers(row[0]):
                local[row[0]] = row[1].hex()
                local_exp[row[0]] = wall + row[6] if row[6] >= 0 else 0
        with self.lock:
            names = set(remote) | set(local) | set(self.synced)
            todo = []
            for name in names:
                s = self.synced.get(name)
                rv = remote.get(name)
                lo = local.get(name)
                if s is None:
                    if lo is not None or (rv is not None and not rv[1] and self.is_eager(name)):
                        todo.append(name)
                elif (s["oid"] != lo or rv is None or rv[0] != s["tv"]
                      or (lo is not None and not _same_exp(local_exp[name], s.get("exp", 0)))):
                    if s["oid"] is None and lo is None and (rv is None or rv[1]):
                        continue  # deleted everywhere
                    if s["oid"] is None and lo is None and not self.is_eager(name):
                        continue  # lazy: fetched when asked
                    todo.append(name)
            now = time.monotonic()
            for name in todo:
                self.dirty.setdefault(name, now)
            self.lock.notify_all()

    # ------------------------------------------------------- lazy lookups

    def lazy_loop(self, server):
        server.settimeout(0.5)
        while not self.stop.is_set():
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if threading.active_count() > 64 + self.args.workers:
                _reply(conn, b"0")  # too many asks at once: absent
                continue
            threading.Thread(target=self.lazy_one, args=(conn,), daemon=True).start()

    def lazy_one(self, conn):
        """One ask: u32 length + name; replies b"1" (now local) or b"0"."""
        try:
            conn.settimeout(self.args.redis_timeout + 1)
            head = _recv_exact(conn, 4)
            (n,) = struct.unpack("<I", head)
            if n > NAME_MAX:
                return
            name = _recv_exact(conn, n).decode()
            ok = False
            if self.covers(name) and self.connected:
                ok = self.lazy_fetch(name)
            _reply(conn, b"1" if ok else b"0")
        except (OSError, ValueError, UnicodeDecodeError):
            pass
        finally:
            conn.close()

    def lazy_fetch(self, name):
        """Pulls name now (waiting for a worker that holds it)."""
        deadline = time.monotonic() + self.args.redis_timeout
        with self.lock:
            while name in self.busy:
                if not self.lock.wait(max(deadline - time.monotonic(), 0)) and time.monotonic() > deadline:
                    return False
            self.busy.add(name)
        try:
            ok = self.sync_name(name, want=True)
            if ok:
                with self.lock:
                    self.counters["lazy_hits"] += 1
            return ok
        except _redis_errors() as e:
            self.error(f"lazy {name}: {e}")
            self.lost_redis()
            return False
        except (shoal.Error, Missing) as e:
            self.error(f"lazy {name}: {e}")
            return False
        finally:
            self._done(name)

    # --------------------------------------------------------------- run

    def run(self):
        self.load_state()
        path = self.sock + ".tier"
        try:
            os.unlink(path)  # a killed predecessor's
        except FileNotFoundError:
            pass
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        os.chmod(path, 0o600)
        server.listen(64)
        self.connect_redis()
        try:
            self.connect_store()
        except shoal.StoreUnavailable:
            self.wait_daemon()
        threads = [
            threading.Thread(target=self.events_loop, name="events", daemon=True),
            threading.Thread(target=self.pubsub_loop, name="pubsub", daemon=True),
            threading.Thread(target=self.health_loop, name="health", daemon=True),
            threading.Thread(target=self.lazy_loop, args=(server,), name="lazy", daemon=True),
        ]
        threads += [
            threading.Thread(target=self.worker, name=f"worker{i}", daemon=True)
            for i in range(self.args.workers)
        ]
        for t in threads:
            t.start()
        try:
            while not self.stop.wait(0.5):
                pass
        finally:
            self.stop.set()
            with self.lock:
                self.lock.notify_all()
            for t in threads:
                t.join(timeout=self.args.redis_timeout + 2)
            server.close()
            try:
                os.unlink(path)
            except OSError:
                pass
            self.state_dirty = True
            try:
                self.save_state()
                self.write_status(running=False)
            except OSError:
                pass


def _url_options(url):
    """redis-py's connection options from a URL (user, password, TLS, its
    query options such as ssl_ca_certs), without the address."""
    from redis.connection import SSLConnection, parse_url

    opts = parse_url(url)
    if opts.pop("connection_class", None) is SSLConnection:
        opts["ssl"] = True
    for k in ("host", "port", "path"):
        opts.pop(k, None)
    return opts


def _sentinel_clients(a, kw, data_kw):
    """Clients of the master that Sentinel names: --redis's host is the
    master's name, the rest of the URL (user, password, db, TLS) is for the
    master; --sentinel gives the sentinels (host:port, repeatable or
    comma-separated). After a failover the clients find the new master."""
    from redis.sentinel import Sentinel

    master = urllib.parse.urlparse(a.redis[0]).hostname
    opts = _url_options(a.redis[0])
    nodes = []
    for spec in a.sentinel:
        for part in spec.split(","):
            host, _, port = part.strip().rpartition(":")
            nodes.append((host or "127.0.0.1", int(port or 26379)))
    timeouts = {k: v for k, v in kw.items() if k.startswith("socket_")}
    sentinel = Sentinel(nodes, sentinel_kwargs=timeouts)
    return (sentinel.master_for(master, **kw, **opts),
            sentinel.master_for(master, **data_kw, **opts))


def _recv_exact(conn, n):
    out = b""
    while len(out) < n:
        part = conn.recv(n - len(out))
        if not part:
            raise OSError("short read")
        out += part
    return out


def _reply(conn, b):
    try:
        conn.sendall(b)
    except OSError:
        pass


def _write_atomic(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="shoal-tier",
        description="Attach a local shoal daemon to a shared Redis/Valkey tier.",
    )
    p.add_argument("--redis", action="append", required=True,
                   help="redis:// or rediss:// URL (user, password, /db); with --cluster, "
                        "seed nodes (repeat or comma-separate)")
    p.add_argument("--cluster", action="store_true", help="Redis Cluster mode")
    p.add_argument("--sentinel", action="append", default=[], metavar="HOST:PORT",
                   help="Sentinel mode: a sentinel (repeat or comma-separate); the --redis "
                        "URL's host is then the master's name")
    p.add_argument("-s", "--socket", default=None, help="the daemon's socket")
    p.add_argument("--prefix", default="", help="only names starting with this go to the tier")
    p.add_argument("--eager", action="append", default=[], metavar="GLOB",
                   help="names matching GLOB are pulled on announcement (else on a local miss)")
    p.add_argument("--key-prefix", default="shoal", help="prefix of the Redis keys (default shoal)")
    p.add_argument("--chunk-size", type=_size, default=DEFAULT_CHUNK, help="chunk size (default 64M)")
    p.add_argument("--grace", type=float, default=60.0,
                   help="seconds a replaced value's chunks stay readable (default 60)")
    p.add_argument("--tombstone-ttl", type=float, default=86400.0,
                   help="seconds a deletion is remembered in Redis (default 86400)")
    p.add_argument("--redis-timeout", type=float, default=2.0, help="socket timeout in s (default 2)")
    p.add_argument("--transfer-timeout", type=float, default=30.0,
                   help="socket timeout in s for chunk transfers (default 30)")
    p.add_argument("--pending-ttl", type=float, default=600.0,
                   help="s a chunk written for a publish that never completes stays (default 600)")
    p.add_argument("--reconcile", type=float, default=30.0, help="full reconcile every N s (default 30)")
    p.add_argument("--interval", type=float, default=0.5, help="health check every N s (default 0.5)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--exit-with-daemon", action="store_true",
                   help="exit when the daemon has been gone for 5 s")
    a = p.parse_args(argv)
    if a.socket is None:
        a.socket = _shoal.default_socket()
    if not a.cluster and len(a.redis) > 1:
        p.error("several --redis URLs need --cluster")
    if a.cluster and a.sentinel:
        p.error("--cluster and --sentinel exclude each other")
    if "{" in a.key_prefix or "}" in a.key_prefix:
        p.error("--key-prefix must not contain braces")
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if redis is None:
        print("shoal-tier: needs redis-py (pip install redis)", file=sys.stderr)
        return 1
    sock = os.path.abspath(args.socket)
    lockfd = os.open(sock + ".tier.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"shoal-tier: another tier process serves {sock}", file=sys.stderr)
        return 0
    tier = Tier(args)

    def on_signal(signum, frame):
        tier.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tier.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
