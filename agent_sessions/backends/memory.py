"""In-memory backend: ``eventsourcing``'s POPO recorder plus the same index, in dicts.

Everything happens under the recorder's one lock, checks before changes, so a save is
all or nothing exactly as on the SQL backends.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Notification,
    StoredEvent,
)
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory

from ..domain.aggregates import LOG_PREFIX, log_id
from ..ports.index import AgentEventRow, EventQuery, IndexHealth, IndexWrite, RunRow, SessionRow


class SessionsPOPORecorder(POPOApplicationRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._events_by_id: dict[str, AgentEventRow] = {}
        self._session_events: dict[str, list[AgentEventRow]] = defaultdict(list)
        self._sequences: dict[str, int] = {}
        self._sessions: dict[str, SessionRow] = {}
        self._runs: dict[str, RunRow] = {}
        # Erased positions of the notification list: ids stay stable, rows are gone.
        self._erased: set[int] = set()

    # writes ---------------------------------------------------------------------------

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._assert_uniqueness(stored_events, **kwargs)
        index: IndexWrite | None = kwargs.get("index")
        if not index:
            return
        erased = set(index.erase)
        for claim in index.claims:
            current = 0 if claim.session_id in erased else self._sequences.get(claim.session_id, 0)
            if current != claim.expected:
                msg = f"sequence of {claim.session_id} moved past {claim.expected}"
                raise IntegrityError(msg)
        new_ids: set[str] = set()
        for row in index.events:
            if row.event_id in new_ids or (
                row.event_id in self._events_by_id
                and self._events_by_id[row.event_id].session_id not in erased
            ):
                msg = f"event id already recorded: {row.event_id}"
                raise IntegrityError(msg)
            new_ids.add(row.event_id)

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._update_table(stored_events, **kwargs)
        index: IndexWrite | None = kwargs.get("index")
        if index:
            self._write_index(index)
        return notification_ids

    def _write_index(self, index: IndexWrite) -> None:
        for session_id in index.erase:
            self._erase(session_id)
        for session_id, sequences in index.prune:
            self._prune(session_id, sequences)
        for claim in index.claims:
            self._sequences[claim.session_id] = claim.new
        for row in index.events:
            self._events_by_id[row.event_id] = row
            self._session_events[row.session_id].append(row)
        for session_row in index.sessions:
            self._sessions[session_row.session_id] = session_row
        for run_row in index.runs:
            self._runs[run_row.run_id] = run_row

    def _erase(self, session_id: str) -> None:
        run_ids = [r.run_id for r in self._runs.values() if r.session_id == session_id]
        for originator_id in [session_id, log_id(session_id), *run_ids]:
            positions = self._stored_events_index.pop(originator_id, {})
            self._erased.update(positions.values())
        for row in self._session_events.pop(session_id, []):
            self._events_by_id.pop(row.event_id, None)
        for run_id in run_ids:
            del self._runs[run_id]
        self._sequences.pop(session_id, None)
        self._sessions.pop(session_id, None)

    def _prune(self, session_id: str, sequences: list[int]) -> None:
        doomed = set(sequences)
        positions = self._stored_events_index.get(log_id(session_id), {})
        for sequence in doomed:
            if sequence in positions:
                self._erased.add(positions.pop(sequence))
        kept = []
        for row in self._session_events.get(session_id, []):
            if row.sequence_number in doomed:
                self._events_by_id.pop(row.event_id, None)
            else:
                kept.append(row)
        self._session_events[session_id] = kept

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        with self._database_lock:
            first = 1 if start is None else (start if inclusive_of_start else start + 1)
            last = len(self._stored_events) if stop is None else min(stop, len(self._stored_events))
            results: list[Notification] = []
            for notification_id in range(max(first, 1), last + 1):
                if notification_id - 1 in self._erased:
                    continue
                s = self._stored_events[notification_id - 1]
                if topics and s.topic not in topics:
                    continue
                results.append(
                    Notification(
                        id=notification_id,
                        originator_id=s.originator_id,
                        originator_version=s.originator_version,
                        topic=s.topic,
                        state=s.state,
                    )
                )
                if len(results) == limit:
                    break
            return results

    # reads ----------------------------------------------------------------------------

    def _stored_at(self, row: AgentEventRow) -> StoredEvent:
        position = self._stored_events_index[log_id(row.session_id)][row.sequence_number]
        return self._stored_events[position]

    def latest_sequence(self, session_id: str) -> int:
        with self._database_lock:
            return self._sequences.get(session_id, 0)

    def latest_sequences(self, session_ids: Iterable[str]) -> dict[str, int]:
        with self._database_lock:
            return {session_id: self._sequences.get(session_id, 0) for session_id in session_ids}

    def select_stored_by_event_ids(self, event_ids: Sequence[str]) -> list[StoredEvent]:
        with self._database_lock:
            rows = [self._events_by_id.get(event_id) for event_id in dict.fromkeys(event_ids)]
            return [self._stored_at(row) for row in rows if row is not None]

    def select_log_events(self, query: EventQuery) -> list[StoredEvent]:
        with self._database_lock:
            rows = self._session_events.get(query.session_id, [])
            start = 0
            if query.after is not None:
                start = bisect.bisect_right(rows, query.after, key=lambda r: r.sequence_number)
            results: list[StoredEvent] = []
            for row in rows[start:]:
                if query.before is not None and row.sequence_number >= query.before:
                    break
                if query.run_id is not None and row.run_id != query.run_id:
                    continue
                if query.type is not None and row.type != query.type:
                    continue
                if query.since_us is not None and row.timestamp_us < query.since_us:
                    continue
                results.append(self._stored_at(row))
                if query.limit is not None and len(results) >= query.limit:
                    break
            return results

    def existing_session_ids(self, session_ids: Iterable[str]) -> set[str]:
        with self._database_lock:
            return {session_id for session_id in session_ids if session_id in self._sessions}

    def select_session_ids(
        self, *, status: str | None, agent_id: str | None, limit: int | None, offset: int
    ) -> list[str]:
        with self._database_lock:
            rows = sorted(self._sessions.values(), key=lambda r: (r.created_us, r.session_id))
        matching = [
            r.session_id
            for r in rows
            if (status is None or r.status == status)
            and (agent_id is None or r.agent_id == agent_id)
        ]
        return _page(matching, limit, offset)

    def select_run_ids(
        self, session_id: str, *, status: str | None, limit: int | None, offset: int
    ) -> list[str]:
        with self._database_lock:
            rows = sorted(
                (r for r in self._runs.values() if r.session_id == session_id),
                key=lambda r: (r.started_us, r.run_id),
            )
        matching = [r.run_id for r in rows if status is None or r.status == status]
        return _page(matching, limit, offset)

    def select_active_run_id(self, session_id: str) -> str | None:
        with self._database_lock:
            running = [
                r
                for r in self._runs.values()
                if r.session_id == session_id and r.status == "running"
            ]
        if not running:
            return None
        return max(running, key=lambda r: (r.started_us, r.run_id)).run_id

    def index_health(self) -> IndexHealth:
        with self._database_lock:
            sessions = self._sessions
            logged_sessions = {
                originator_id.removeprefix(LOG_PREFIX)
                for originator_id, positions in self._stored_events_index.items()
                if originator_id.startswith(LOG_PREFIX) and positions
            }
            mismatches: list[tuple[str, int, int]] = []
            log_mismatches: list[tuple[str, int, int]] = []
            for session_id in sorted(logged_sessions | set(self._session_events)):
                indexed = {row.sequence_number for row in self._session_events.get(session_id, [])}
                logged = set(self._stored_events_index.get(log_id(session_id), {}))
                counter = self._sequences.get(session_id, 0)
                if indexed and counter != max(indexed):
                    mismatches.append((session_id, counter, max(indexed)))
                if indexed != logged:
                    log_mismatches.append(
                        (session_id, len(indexed - logged), len(logged - indexed))
                    )
            return IndexHealth(
                orphaned_event_rows=sum(
                    len(rows) for sid, rows in self._session_events.items() if sid not in sessions
                ),
                orphaned_run_rows=sum(
                    1 for r in self._runs.values() if r.session_id not in sessions
                ),
                orphaned_counters=sorted(sid for sid in self._sequences if sid not in sessions),
                sequence_mismatches=mismatches,
                log_mismatches=log_mismatches,
            )


def _page(ids: list[str], limit: int | None, offset: int) -> list[str]:
    end = None if limit is None else offset + limit
    return ids[offset:end]


class Factory(POPOFactory):
    def application_recorder(self) -> ApplicationRecorder:
        return SessionsPOPORecorder()
