"""The last sequence number this store saw committed for each session, to plan the
first attempt of a write without reading.

An append must know each session's latest sequence number and that the session
exists; reading them (and looking up the batch's event ids for duplicates) took three
read transactions, half of a single append's time on SQLite and more on PostgreSQL.
What this process committed last is usually still true, so the first attempt of a write
plans from here and reads nothing. It is never trusted blindly: every write's sequence
claim is checked inside its transaction (``SqlIndex.write``), and a stored duplicate
event id violates the index's primary key, so a stale entry or a duplicate makes the
attempt a conflict, rolled back whole; the retry then reads everything, as every write
did before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from ..ports.index import SequenceClaim

#: Sessions remembered; the least recently written are forgotten first.
CAPACITY = 10_000


class KnownSequences:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._latest: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def latest(self, session_ids: Iterable[str]) -> dict[str, int] | None:
        """The remembered latest sequence of every one of ``session_ids``, or ``None``
        when one of them is not remembered."""
        with self._lock:
            found = {}
            for session_id in session_ids:
                latest = self._latest.get(session_id)
                if latest is None:
                    return None
                found[session_id] = latest
            return found

    def committed(self, claims: Iterable[SequenceClaim]) -> None:
        """A write holding these claims committed."""
        with self._lock:
            for claim in claims:
                self._latest[claim.session_id] = claim.new
                self._latest.move_to_end(claim.session_id)
            while len(self._latest) > self._capacity:
                self._latest.popitem(last=False)

    def forget(self, session_ids: Iterable[str]) -> None:
        with self._lock:
            for session_id in session_ids:
                self._latest.pop(session_id, None)
