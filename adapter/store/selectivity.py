"""How many rows search filters matched in recent probes, so that a poll repeated every few seconds
does not count them again.

A search first counts, up to a limit, the rows each selective filter matches (search_sql.PROBE_LIMIT),
and the smallest set drives. Manufacturers poll with the same owner and a `_lastUpdated` bound that
moves forward a little each time: the owner's count does not change between two polls, and a later
bound never matches more rows than an earlier one. Remembering the counts for a few seconds turns the
probe, a statement as costly as the search itself, into a dictionary lookup.

Only the plan depends on these counts, never the results: a stale count at worst makes one search read
more rows than it needed to, until the entry expires.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from sqlalchemy import Engine, Pool

TTL_SECONDS = 5.0
_MAX_KEYS = 4096
_BOUNDS_PER_TYPE = 32


@dataclass
class _Bound:
    lower: int  # the _lastUpdated lower bound probed (microseconds)
    count: int  # rows of the type updated at or after it, counted up to the probe limit
    expires: float


@dataclass
class Selectivity:
    """Recent probe counts: per filter value, and per resource type for _lastUpdated lower bounds."""

    ttl_seconds: float = TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    _counts: dict[Hashable, tuple[float, int]] = field(default_factory=dict)
    _bounds: dict[str, list[_Bound]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, key: Hashable) -> int | None:
        """The remembered count of a filter (its shape and values), or None."""
        entry = self._counts.get(key)
        if entry is None or entry[0] < self.clock():
            return None
        return entry[1]

    def updated_since(self, res_type: str, lower: int, limit: int) -> int | None:
        """A count that answers "fewer than `limit` rows updated at or after `lower`?", or None.

        A bound probed earlier at or below `lower` with fewer than `limit` rows bounds this one from
        above; one probed at or above `lower` with `limit` rows or more bounds it from below.
        """
        now = self.clock()
        for bound in self._bounds.get(res_type, ()):
            if bound.expires < now:
                continue
            if bound.count < limit and bound.lower <= lower:
                return bound.count
            if bound.count >= limit and bound.lower >= lower:
                return bound.count
        return None

    def remember(self, key: Hashable, count: int) -> None:
        with self._lock:
            if len(self._counts) >= _MAX_KEYS:
                self._counts.clear()
            self._counts[key] = (self.clock() + self.ttl_seconds, count)

    def remember_updated(self, res_type: str, lower: int, count: int) -> None:
        with self._lock:
            now = self.clock()
            kept = [b for b in self._bounds.get(res_type, ()) if b.expires >= now and b.lower != lower]
            kept.append(_Bound(lower, count, now + self.ttl_seconds))
            self._bounds[res_type] = kept[-_BOUNDS_PER_TYPE:]

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self._bounds.clear()


# Keyed by the connection pool: an engine with other execution options (the snapshot reads) shares its
# parent's pool, and the counts are about the database, not about how it is read.
_by_pool: weakref.WeakKeyDictionary[Pool, Selectivity] = weakref.WeakKeyDictionary()
_by_pool_lock = threading.Lock()


def for_engine(engine: Engine) -> Selectivity:
    """The counts remembered for one database (each engine, hence each test database, has its own)."""
    found = _by_pool.get(engine.pool)
    if found is None:
        with _by_pool_lock:
            found = _by_pool.setdefault(engine.pool, Selectivity())
    return found
