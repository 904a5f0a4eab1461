"""A small LRU of aggregates that is safe with other writers.

``eventsourcing``'s repository cache fast-forwards with events *after* the cached
version, which cannot tell "nothing new" from "erased by another process". Reading from
the cached version itself (``gt = version - 1``) answers both in the same single query:
no row means the stream is gone.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from eventsourcing.application import AggregateNotFoundError

_A = TypeVar("_A")


class AggregateCache(Generic[_A]):
    def __init__(
        self,
        *,
        load: Callable[[str], _A],
        events_from: Callable[[str, int], Iterable[Any]],
        maxsize: int = 1000,
    ) -> None:
        self._load = load
        self._events_from = events_from
        self._maxsize = maxsize
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, aggregate_id: str, *, trust_cached: bool = False) -> _A | None:
        """A private copy of the current aggregate, or ``None`` when it does not exist.

        ``trust_cached`` returns a cached aggregate without checking that it is still
        current: for the first attempt of a write whose transaction fails when it is not
        (a save from a stale version collides with the stored one), so that a write
        from the process that wrote last reads nothing first."""
        with self._lock:
            cached = self._items.get(aggregate_id)
        if trust_cached and cached is not None:
            return copy.deepcopy(cached)  # type: ignore[no-any-return]
        aggregate: Any
        if cached is None:
            try:
                aggregate = self._load(aggregate_id)
            except AggregateNotFoundError:
                return None
        else:
            events = list(self._events_from(aggregate_id, cached.version - 1))
            if not events or events[0].originator_version != cached.version:
                self.evict(aggregate_id)
                return self.get(aggregate_id) if events else None
            aggregate = copy.deepcopy(cached)
            for event in events[1:]:
                event.mutate(aggregate)
        self.put(aggregate)
        return copy.deepcopy(aggregate)  # type: ignore[no-any-return]

    def put(self, aggregate: Any) -> None:
        """Remember a committed aggregate (callers pass objects they no longer change)."""
        with self._lock:
            self._items[aggregate.id] = aggregate
            self._items.move_to_end(aggregate.id)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def evict(self, *aggregate_ids: str) -> None:
        with self._lock:
            for aggregate_id in aggregate_ids:
                self._items.pop(aggregate_id, None)
