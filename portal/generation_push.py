"""Generation tokens pushed to the processes that keep values against them, guarded by leases.

Without this, a process learns the current token of a generation (portal.cache.Generation) by
one Redis GET per request. With it, each web process runs one subscriber thread per Redis and
namespace (the database name) that:

1. subscribes to the namespace's channel, then registers a *lease*: a Redis key with a TTL
   (`LEASE_SECONDS`) named in the namespace's registry set, whose value is the sequence number
   of the last change the holder has read (its acknowledgement);
2. reads every generation's token once (after subscribing, so no change can fall in between);
3. every `RENEW_SECONDS`: sends a PING on the subscription and reads every message before its
   answer (Redis delivers a subscription's messages in order), then renews the lease only if it
   still exists (`SET … XX PX`) — a lapsed lease is never revived — and trusts its copy of the
   tokens until the PING's send time plus the TTL minus `MARGIN_SECONDS`, which is before Redis
   can expire the lease it just renewed;
4. applies each message at once (the token in memory, then the acknowledgement in the lease).

A writer's bump (`publish`) replaces the token, counts a sequence number and PUBLISHes both in one
Lua script; `wait_for_holders` then waits until every registered holder has acknowledged that
number or lost its lease. Only then does the write's request (or job) go on, so every process's
next request sees the change: a holder either read the message before acknowledging it, or its
lease is gone from Redis, which happens only after the holder itself stopped trusting. A holder
that died, hangs or lost its subscription stops renewing, so a writer waits at most
`LEASE_SECONDS` for it; a subscription that breaks (connection closed, CLIENT KILL, Redis
restarted) makes its holder stop trusting at once and read tokens with a GET per request again
until it has subscribed and registered anew (with a new lease id, so a writer cleaning up the old
one never removes the new).

Redis must not evict keys (`maxmemory-policy noeviction`, Redis's default and what RQ needs too):
a lease evicted while its holder trusts would let a writer skip it. A FLUSHALL is noticed by the
holders at their next renewal (their lease is gone), so a write made within `RENEW_SECONDS` of a
flush may be seen a moment late; a restart drops the subscriptions and is noticed at once.

Only processes that answer requests subscribe (GenerationsMiddleware decides): an RQ job runs in a
forked work-horse that leaves with os._exit, which would leave its lease for writers to wait out;
jobs read tokens with GETs as before. The thread starts lazily in each process (after a fork the
child has none: gunicorn workers, RQ work-horses), leaves when the process exits, and stops after
`IDLE_SECONDS` without a request (a test that pointed REDIS_URL elsewhere).
"""
from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

LEASE_SECONDS = 2.0  # a lease's TTL in Redis: the longest a writer waits for a holder that died
RENEW_SECONDS = 0.5  # how often a holder proves its subscription (PING) and renews its lease
MARGIN_SECONDS = 0.25  # a holder stops trusting this long before Redis could expire its lease
PONG_SECONDS = 1.0  # a PING unanswered this long: the subscription lags; stop trusting, start over
IDLE_SECONDS = 300.0  # a subscriber asked for no token this long leaves
WAIT_SECONDS = LEASE_SECONDS + 0.5  # a writer's longest wait; longer means a holder broke the rules

MISSING = object()  # "no token I may trust": read it from Redis

_BUMP = """
local n = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], n .. ' ' .. KEYS[1] .. ' ' .. ARGV[1])
return n
"""


class Names:
    """The Redis names of one namespace (one database: installations and test runs sharing a
    Redis do not meet)."""

    def __init__(self, namespace: str):
        self.seq = f"nubo:generation-seq:{namespace}"
        self.channel = f"nubo:generation-changes:{namespace}"
        self.registry = f"nubo:generation-leases:{namespace}"
        self.lease_prefix = f"nubo:generation-lease:{namespace}:"


# -- the writer's side -----------------------------------------------------------------------------
_SCRIPTS: dict[int, object] = {}


def publish(client, url: str, namespace: str, key: str, token: str) -> int:
    """Replace `key`'s token and tell every subscriber; returns the change's sequence number.
    Raises when Redis does not answer. This process's own subscriber takes the token at once,
    so the writer's own later reads (inside its transaction too) see it."""
    names = Names(namespace)
    script = _SCRIPTS.get(id(client))
    if script is None:
        script = _SCRIPTS[id(client)] = client.register_script(_BUMP)
    seq = int(script(keys=[key, names.seq], args=[token, names.channel]))
    holder = _SUBSCRIBERS.get((url, namespace))
    if holder is not None:
        holder.apply(seq, key, token.encode())
    return seq


def wait_for_holders(client, namespace: str, seq: int, timeout: float = WAIT_SECONDS) -> list[str]:
    """Wait until every registered lease holder has read change `seq` or lost its lease; forget
    the lapsed ones. Returns the holders still unaccounted for at `timeout`.

    Giving up at `timeout` (more than a lease) is safe even when the acknowledgements could not
    be read (Redis went away): a holder that trusts its copy then renewed its lease after a PING
    sent after the change was published, so it read the change before renewing. Holders still
    pending then are logged: the protocol rules that out."""
    names = Names(namespace)
    deadline = time.monotonic() + timeout
    pause = 0.0005
    pending: list[str] | None = None
    lapsed: list[bytes] = []
    warned = False
    while True:
        try:
            if pending is None:
                pending = [m.decode() for m in client.smembers(names.registry)]
            if not pending:
                break
            acks = client.mget([names.lease_prefix + holder for holder in pending])
            still = []
            for holder, ack in zip(pending, acks):
                if ack is None:
                    lapsed.append(holder.encode())
                elif int(ack) < seq:
                    still.append(holder)
            pending = still
            if not pending:
                break
        except Exception as exc:  # noqa: BLE001 - waiting out the timeout is safe (docstring)
            if not warned:
                warned = True
                log.warning("waiting for generation holders: Redis did not answer (%s); waiting %.1f s instead",
                            exc.__class__.__name__, timeout)
        if time.monotonic() >= deadline:
            if pending:
                log.error("generation change %s: lease holders %s neither read it nor lost their lease in %.1f s",
                          seq, pending, timeout)
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.01)
    if lapsed:
        try:
            client.srem(names.registry, *lapsed)
        except Exception:  # noqa: BLE001 - the next writer cleans up
            pass
    return pending or []


# -- the holder's side ------------------------------------------------------------------------------
class Lapsed(Exception):
    """The lease is gone (expired, flushed): never revive it, register anew."""


class Lagging(Exception):
    """The subscription did not answer a PING in time."""


class Subscriber:
    """One thread keeping this process's copy of a namespace's tokens current (module docstring)."""

    def __init__(self, url: str, namespace: str, keys: Callable[[], list[str]]):
        import redis

        # Its own client, speaking RESP2: a subscribed RESP2 connection answers PING in order
        # with its messages, which is what the lease renewal relies on.
        self.client = redis.Redis.from_url(url, protocol=2, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.namespace = namespace
        self.names = Names(namespace)
        self.keys = keys  # the generation keys to read when (re)subscribing
        self.pid = os.getpid()
        self.tokens: dict[str, tuple[int, bytes]] = {}  # key -> (sequence number, token)
        self.position = 0  # the sequence number of the last message read, in order
        self.trusted_until = 0.0  # time.monotonic(); 0: read tokens from Redis
        self.used = time.monotonic()
        self.lease_id: str | None = None
        self.connection_id: int | None = None  # the subscription's Redis client id
        self.sessions = 0  # subscriptions made so far (tests watch it)
        self.running = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connections: list = []
        self._warned = -1e9
        self._thread = threading.Thread(target=self._run, name=f"nubo-generations-{namespace}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # what a request asks
    def token(self, key: str):
        """The token of `key` if this process may trust its copy now, else MISSING."""
        now = self.used = time.monotonic()
        if now < self.trusted_until:
            entry = self.tokens.get(key)
            if entry is not None:
                return entry[1]
        return MISSING

    def trusted(self) -> bool:
        return time.monotonic() < self.trusted_until

    def apply(self, seq: int, key: str, token: bytes) -> None:
        with self._lock:
            entry = self.tokens.get(key)
            if entry is None or seq > entry[0]:
                self.tokens[key] = (seq, token)

    def stop(self) -> None:
        """Leave now (process exit): stop trusting and give the lease up so no writer waits for it.
        The thread's own connections are left to it (it may be reading on them)."""
        self._stop.set()
        self.trusted_until = 0.0
        self._give_up(self.lease_id)

    # the thread
    def _run(self) -> None:
        backoff = 0.05
        try:
            while not self._stop.is_set() and not self._idle():
                try:
                    self._session()
                except Exception as exc:  # noqa: BLE001 - any failure: trust nothing, start over
                    self._leave()
                    if self._stop.is_set():
                        break
                    now = time.monotonic()
                    if now - self._warned > 60:
                        self._warned = now
                        log.warning("generation subscriber (%s): %s %s; reading tokens from Redis on every request "
                                    "until it subscribes again", self.namespace, exc.__class__.__name__, exc)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.05
        finally:
            self._leave()
            self.running = False

    def _idle(self) -> bool:
        return time.monotonic() - self.used > IDLE_SECONDS

    def _session(self) -> None:
        names = self.names
        pool = self.client.connection_pool
        sub, cmd = pool.make_connection(), pool.make_connection()
        self._connections = [sub, cmd]
        self.connection_id = _call(sub, "CLIENT", "ID")
        sub.send_command("SUBSCRIBE", names.channel)
        sub.read_response()  # [b"subscribe", channel, 1]
        self.sessions += 1
        # Register before reading the tokens: a writer that does not see this lease changed its
        # token before the read below, or published to this subscription (read before trusting).
        self.lease_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        lease = names.lease_prefix + self.lease_id
        _call(cmd, "SET", lease, "0", "PX", int(LEASE_SECONDS * 1000))
        _call(cmd, "SADD", names.registry, self.lease_id)
        self._snapshot(cmd)
        while not self._stop.is_set() and not self._idle():
            sent = time.monotonic()
            nonce = secrets.token_hex(4).encode()
            sub.send_command("PING", nonce)
            self._read(sub, cmd, lease, until=sent + PONG_SECONDS, pong=nonce)
            if _call(cmd, "SET", lease, str(self.position), "XX", "PX", int(LEASE_SECONDS * 1000)) is None:
                raise Lapsed("the lease expired or was removed")
            self.trusted_until = sent + LEASE_SECONDS - MARGIN_SECONDS
            self._read(sub, cmd, lease, until=sent + RENEW_SECONDS)

    def _snapshot(self, cmd) -> None:
        keys = list(self.keys())
        while True:
            values = _call(cmd, "MGET", self.names.seq, *keys)
            missing = [key for key, value in zip(keys, values[1:]) if value is None]
            if not missing:
                break
            for key in missing:  # a fresh Redis: a fresh token no kept value carries
                _call(cmd, "SET", key, secrets.token_hex(16), "NX")
        seq = int(values[0] or 0)
        with self._lock:
            self.tokens = {key: (seq, value) for key, value in zip(keys, values[1:])}
            self.position = seq

    def _read(self, sub, cmd, lease: str, *, until: float, pong: bytes | None = None) -> None:
        """Apply messages until `until` (or, given `pong`, until that PING's answer, which must
        come by then), acknowledging what was read."""
        read = False
        while True:
            remaining = until - time.monotonic()
            if remaining <= 0 or not sub.can_read(timeout=remaining):
                if read:
                    self._ack(cmd, lease)
                if pong is not None:
                    raise Lagging(f"no answer to PING in {PONG_SECONDS:g} s")
                return
            reply = sub.read_response()
            kind = reply[0]
            if kind == b"message":
                seq, key, token = reply[2].split(b" ", 2)
                seq = int(seq)
                self.apply(seq, key.decode(), token)
                if seq > self.position:
                    self.position = seq
                read = True
            elif kind == b"pong" and reply[1] == pong:
                if read:
                    self._ack(cmd, lease)
                return
            if read and not sub.can_read(timeout=0):
                self._ack(cmd, lease)
                read = False

    def _ack(self, cmd, lease: str) -> None:
        if _call(cmd, "SET", lease, str(self.position), "XX", "KEEPTTL") is None:
            raise Lapsed("the lease expired or was removed")

    def _leave(self) -> None:
        """Stop trusting first, then give the lease up (best effort: it expires anyway)."""
        self.trusted_until = 0.0
        lease_id, self.lease_id = self.lease_id, None
        connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.disconnect()
            except Exception:  # noqa: BLE001
                pass
        self._give_up(lease_id)

    def _give_up(self, lease_id: str | None) -> None:
        if lease_id is not None:
            try:
                self.client.delete(self.names.lease_prefix + lease_id)
                self.client.srem(self.names.registry, lease_id)
            except Exception:  # noqa: BLE001 - it expires by itself
                pass


def _call(connection, *args):
    connection.send_command(*args)
    return connection.read_response()


_SUBSCRIBERS: dict[tuple[str, str], Subscriber] = {}
_LOCK = threading.Lock()


def subscriber(url: str, namespace: str, keys: Callable[[], list[str]]) -> Subscriber:
    """This process's subscriber for the Redis at `url` and `namespace`, started on first use."""
    where = (url, namespace)
    found = _SUBSCRIBERS.get(where)
    if found is not None and found.running:
        return found
    with _LOCK:
        found = _SUBSCRIBERS.get(where)
        if found is None or not found.running:
            found = _SUBSCRIBERS[where] = Subscriber(url, namespace, keys)
            found.start()
    return found


def subscribers() -> list[Subscriber]:
    return list(_SUBSCRIBERS.values())


def _forget_after_fork() -> None:
    # The child has the parent's objects but not its threads: it subscribes on its own if it
    # answers requests, and must not give the parent's leases up when it exits.
    global _LOCK
    _SUBSCRIBERS.clear()
    _SCRIPTS.clear()
    _LOCK = threading.Lock()


def _leave_all() -> None:
    for holder in list(_SUBSCRIBERS.values()):
        if holder.pid == os.getpid():
            holder.stop()


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(_leave_all)
