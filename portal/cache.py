"""Process-local snapshots of small, rarely changed tables, and the generations that say when
they are stale.

Two kinds of freshness:

- time (`Snapshot(loader, seconds=5)`): settings are reloaded after a few seconds. A change made
  in this process is seen at once (the writer invalidates); other processes see it within
  `seconds` — what CloudStack's ConfigDepot does too.
- a generation (`Snapshot(loader, generation=ACCESS)`): a token in Redis, shared by every process
  on every machine, replaced by whoever changes the rows the snapshot is read from. A value is
  used only while the token it was read under is still the current one, so a change made by any
  process is seen by every process on its very next read. A process answering requests learns the
  token by push (portal.generation_push: a subscriber thread holding a lease, which every writer
  waits for before its request returns), so a request costs no Redis read; without a healthy
  subscription, and outside requests (jobs, commands), reading the token is one Redis GET, at most
  one per generation and request under `GenerationsMiddleware`.

Values kept against a generation are only kept when they were read outside a transaction: rows
read inside one may be this transaction's own uncommitted changes, which a rollback would undo
behind the cache's back. Without Redis nothing is kept (every read goes to the database) and
changes are refused (`Generation.bump` raises), so no process can serve what another changed.
"""
from __future__ import annotations

import contextvars
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable, Generic, TypeVar

from . import generation_push as push

T = TypeVar("T")
_ALL: list = []
_GENERATIONS: list["Generation"] = []
log = logging.getLogger(__name__)

# Within a request (GenerationsMiddleware): generation key -> the token read for this request.
_PER_REQUEST: contextvars.ContextVar[dict | None] = contextvars.ContextVar("nubo_generation_tokens", default=None)
_CLIENTS: dict[str, object] = {}
_CLIENTS_LOCK = threading.Lock()
_THREAD = threading.local()  # .connections: URL -> this thread's own connection for GETs


def _redis():
    """A Redis client for settings.REDIS_URL (one per URL and process), with short timeouts: a
    Redis that hangs must cost a request a fraction of a second, not the worker thread."""
    from django.conf import settings

    url = settings.REDIS_URL
    client = _CLIENTS.get(url)
    if client is None:
        import redis

        with _CLIENTS_LOCK:
            client = _CLIENTS.get(url)
            if client is None:
                client = _CLIENTS[url] = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return client


def _get(key: str) -> bytes | None:
    """GET on a connection of this thread's own: a third of what the client's command path costs
    (pool checkout, retries, instrumentation), paid on every request. A connection that failed is
    dropped; the next call opens a new one."""
    client = _redis()
    connections = getattr(_THREAD, "connections", None)
    if connections is None or _THREAD.pid != os.getpid():  # a forked child (an RQ job) opens its own
        connections = _THREAD.connections = {}
        _THREAD.pid = os.getpid()
    connection = connections.get(client)
    if connection is None:
        connection = connections[client] = client.connection_pool.make_connection()
    try:
        connection.send_command("GET", key)
        return connection.read_response()
    except BaseException:
        connections.pop(client, None)
        connection.disconnect()
        raise


def committed_view() -> bool:
    """True when this thread's database connection reads only committed rows (no transaction
    is open on it), so what it reads may be kept for other requests."""
    from django.db import transaction

    return not transaction.get_connection().in_atomic_block


class Generation:
    """A token in Redis naming the current version of some rows; `bump()` replaces it.

    Tokens are random, never counters: a Redis that lost its data (restarted without
    persistence, flushed) gets a fresh token on the next read, which no kept value carries."""

    def __init__(self, name: str):
        self.name = name
        self._warned = -1e9
        _GENERATIONS.append(self)

    def key(self) -> str:
        return f"nubo:generation:{self.name}:{namespace()}"

    def current(self) -> bytes | None:
        """The current token, or None when Redis does not answer (then nothing may be trusted).

        Within a request: this process's pushed copy while its lease holds, else one GET."""
        key = self.key()
        tokens = _PER_REQUEST.get()
        if tokens is not None:
            token = tokens.get(key, push.MISSING)
            if token is not push.MISSING:
                return token
            holder = _holder()
            if holder is not None:
                token = holder.token(key)
                if token is not push.MISSING:
                    tokens[key] = token
                    return token
        try:
            token = _get(key)
            if token is None:
                _redis().set(key, secrets.token_hex(16), nx=True)
                token = _get(key)
        except Exception as exc:  # noqa: BLE001 - any Redis failure means: trust nothing kept
            now = time.monotonic()
            if now - self._warned > 60:  # once a minute, not once a request
                self._warned = now
                log.warning("generation %s unreadable (%s): reading from the database until Redis answers",
                            self.name, exc.__class__.__name__)
            token = None
        if tokens is not None:
            tokens[key] = token
        return token

    def bump(self) -> None:
        """Replace the token now and again when the surrounding transaction commits, each time
        telling the processes that hold a lease (portal.generation_push); once the change is
        committed, wait until each of them has read the new token or lost its lease.

        Now: this transaction's own later reads miss, and a Redis that does not answer refuses the
        change (raised as an InternalError, which rolls the transaction back) rather than let other
        processes go on serving what it changed. After commit: a process that re-read the old rows
        between the first bump and the commit is made to read them again, and this returns only
        when no process can serve the old rows on its next request."""
        from django.db import transaction

        from portal.errors import InternalError

        try:
            seq = self._replace()
        except Exception as exc:  # noqa: BLE001
            raise InternalError(f"The change was refused: Redis did not answer, so the other processes could not "
                                f"be told about it ({exc.__class__.__name__}); try again when Redis runs") from exc
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(self._replace_after_commit)
        else:  # already committed (autocommit): the holders must have it before the caller goes on
            push.wait_for_holders(_redis(), namespace(), seq)

    def _replace(self) -> int:
        from django.conf import settings

        key = self.key()
        seq = push.publish(_redis(), settings.REDIS_URL, namespace(), key, secrets.token_hex(16))
        tokens = _PER_REQUEST.get()
        if tokens is not None:
            tokens.pop(key, None)
        return seq

    def _replace_after_commit(self) -> None:
        for attempt in range(3):
            try:
                seq = self._replace()
                push.wait_for_holders(_redis(), namespace(), seq)
                return
            except Exception as exc:  # noqa: BLE001 - committed: all that is left is to say so
                if attempt == 2:
                    log.error("generation %s: could not replace the token after commit (%s); other processes may "
                              "serve the old rows for up to their maximum age", self.name, exc.__class__.__name__)
                time.sleep(0.05)


def namespace() -> str:
    """One namespace per database: two installations (or test runs) sharing a Redis do not have
    to agree on anything."""
    from django.conf import settings

    return settings.DATABASES["default"]["NAME"]


def _generation_keys() -> list[str]:
    return [generation.key() for generation in _GENERATIONS]


def _holder():
    """This process's subscriber for the current Redis and namespace (started on first use), or
    None when settings.NUBO_GENERATION_PUSH is off."""
    from django.conf import settings

    if not settings.NUBO_GENERATION_PUSH:
        return None
    return push.subscriber(settings.REDIS_URL, namespace(), _generation_keys)


@contextmanager
def one_read_per_request() -> Iterator[None]:
    """Within this block each generation's token is read from Redis at most once."""
    reset = _PER_REQUEST.set({})
    try:
        yield
    finally:
        _PER_REQUEST.reset(reset)


class GenerationsMiddleware:
    """Every generation is read at most once per request (and not at all by requests that keep
    nothing against one, such as static files)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with one_read_per_request():
            return self.get_response(request)


class Snapshot(Generic[T]):
    """A value loaded by `loader`, kept for `seconds` at most and, given a generation, only while
    that generation's token is the one it was read under."""

    def __init__(self, loader: Callable[[], T], seconds: float = 5.0, generation: Generation | None = None):
        self.loader = loader
        self.seconds = seconds
        self.generation = generation
        self._kept: tuple[T, float, bytes | None] | None = None  # (value, loaded at, token)
        self._lock = threading.Lock()
        _ALL.append(self)

    def get(self) -> T:
        now = time.monotonic()
        token = self.generation.current() if self.generation is not None else None
        kept = self._kept
        if kept is not None and now - kept[1] <= self.seconds and kept[2] == token:
            return kept[0]
        value = self.loader()
        if self.generation is None or (token is not None and committed_view()):
            with self._lock:
                self._kept = (value, now, token)
        return value

    def invalidate(self) -> None:
        with self._lock:
            self._kept = None


def track(cache) -> None:
    """Let `invalidate_all` reach another process-local cache (it needs an `invalidate()`)."""
    _ALL.append(cache)


def invalidate_all() -> None:
    """Forget every snapshot (tests call this between tests: each rolls its data back)."""
    for snapshot in _ALL:
        snapshot.invalidate()


def bump_all_generations() -> None:
    """After a change no model code sees (a database flushed or restored): every process
    re-reads everything kept against a generation."""
    for generation in _GENERATIONS:
        generation.bump()


def invalidate_on_commit(snapshot: Snapshot) -> None:
    """Forget now and again after the surrounding transaction commits, so neither a value read
    inside the transaction nor an old one outlives the change."""
    from django.db import transaction

    snapshot.invalidate()
    transaction.on_commit(snapshot.invalidate)
