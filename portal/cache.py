"""Process-local snapshots of small, rarely changed tables (settings, role rules), reloaded after
a few seconds. A change made in this process is seen at once (the writer invalidates); other
processes see it within `seconds` — what CloudStack's ConfigDepot and role caches do too."""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
_ALL: list["Snapshot"] = []


class Snapshot(Generic[T]):
    def __init__(self, loader: Callable[[], T], seconds: float = 5.0):
        self.loader = loader
        self.seconds = seconds
        self._value: T | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()
        _ALL.append(self)

    def get(self) -> T:
        now = time.monotonic()
        value = self._value
        if value is None or now - self._loaded > self.seconds:
            value = self.loader()
            with self._lock:
                self._value, self._loaded = value, now
        return value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None


def track(cache) -> None:
    """Let `invalidate_all` reach another process-local cache (it needs an `invalidate()`)."""
    _ALL.append(cache)


def invalidate_all() -> None:
    """Forget every snapshot (tests call this between tests: each rolls its data back)."""
    for snapshot in _ALL:
        snapshot.invalidate()


def invalidate_on_commit(snapshot: Snapshot) -> None:
    """Forget now and again after the surrounding transaction commits, so neither a value read
    inside the transaction nor an old one outlives the change."""
    from django.db import transaction

    snapshot.invalidate()
    transaction.on_commit(snapshot.invalidate)
