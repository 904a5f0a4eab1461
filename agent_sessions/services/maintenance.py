"""Retention and health checks (spec sections 4.2 and 4.3), run when the caller asks.

Candidates are read from the projections' views, caught up first (DESIGN.md section 3),
and every change goes through the store's own operations, so maintenance writes nothing
a normal caller could not: ``save_session`` soft-deletes, ``delete_session`` erases
(DESIGN.md section 4), ``prune_events`` prunes. Each record is re-read from the store
and re-checked against the policy before it is changed, so a view that lags behind
another process never deletes a session that was just touched.

Work goes in batches of ``policy.batch_size`` (pages of candidates, sequence numbers per
``prune_events`` call). Every step decides from the current state, never from a plan
made earlier, so a run that was interrupted (a crash, a failing write) is finished by
running it again, and running it twice changes nothing the second time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import groupby
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from ..backends.view_store import ViewCursor
from ..domain.aggregates import EventsPruned, pruned_id
from ..domain.artifact import Artifact
from ..domain.errors import AgentSessionsError, ErrorCode, NotFoundError, ValidationError
from ..domain.event import Event
from ..domain.retention_policy import (
    ARCHIVE_CONTENT_TYPE,
    PROTECTED_EVENT_TYPES,
    ArchiveStore,
    RetentionPolicy,
    archive_key,
)
from ..domain.session import Session
from ..domain.timestamps import utc_now
from ..ports.index import IndexReader, to_micros
from ..read_models.view_rows import loads
from .artifact_registry import ArtifactRegistry
from .maintenance_report import MaintenanceReport

if TYPE_CHECKING:
    from ..store.service import EventSourcedSessionStore

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Called after each batch with the operation's name and how many items the batch
#: handled: for progress bars, and for tests that count batches.
ProgressCallback = Callable[[str, int], None]

_PROTECTED = [str(t) for t in PROTECTED_EVENT_TYPES]


class BlobDeleter(Protocol):
    """The part of the ``ArtifactStore`` port orphan clean-up uses."""

    def delete(self, key: str) -> None: ...


@dataclass
class _Tally:
    operation: str
    done: int = 0


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def _checked(policy: object) -> RetentionPolicy:
    if not isinstance(policy, RetentionPolicy):
        raise ValidationError("policy must be a RetentionPolicy", details={"field": "policy"})
    # A policy is validated when built; this catches one changed behind its back.
    problem = policy.validate()
    if problem is not None:
        raise ValidationError(problem)
    return policy


def _batch_size(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(
            "batch_size must be a positive integer", details={"field": "batch_size"}
        )
    return value


def _fetch(view: ViewCursor, *, statement: str, params: list[Any]) -> list[Any]:
    return view.execute(statement, params).fetchall()


def _failure(operation: str, exc: Exception, completed: int) -> AgentSessionsError:
    cause = exc.message if isinstance(exc, AgentSessionsError) else str(exc)
    details: dict[str, Any] = {
        "operation": operation,
        "completed": completed,
        "cause": f"{type(exc).__name__}: {cause}",
    }
    if isinstance(exc, AgentSessionsError):
        details["cause_code"] = str(exc.code)
    return AgentSessionsError(
        f"{operation} failed: {cause}", code=ErrorCode.MAINTENANCE_ERROR, details=details
    )


class Maintenance:
    """Retention (soft delete, erasure, pruning, orphan clean-up) and health checks
    over one store. ``artifact_store`` deletes the blobs of orphaned artifacts (without
    it only their registry entries go, as in the spec); ``clock`` is the "now" of the
    age rules."""

    def __init__(
        self,
        store: EventSourcedSessionStore,
        *,
        artifact_store: BlobDeleter | None = None,
        clock: Callable[[], datetime] = utc_now,
        progress: ProgressCallback | None = None,
    ) -> None:
        self._store = store
        self._artifact_store = artifact_store
        self._clock = clock
        self._progress = progress

    # the whole run --------------------------------------------------------------------

    def execute(self, policy: RetentionPolicy) -> MaintenanceReport:
        """Every step in the spec's order (soft delete, erasure, pruning, orphaned
        artifacts, orphaned counters). A failing step does not stop the others: its
        message goes to ``errors`` and it counts what it completed before failing."""
        policy = _checked(policy)
        started = time.monotonic()
        errors: list[str] = []

        def step(work: Callable[[], int]) -> int:
            try:
                return work()
            except AgentSessionsError as error:
                errors.append(error.message)
                return int(error.details.get("completed", 0))

        soft = step(lambda: self.soft_delete_expired_sessions(policy))
        hard = step(lambda: self.hard_delete_expired_sessions(policy))
        pruned = step(lambda: self.prune_all_sessions(policy))
        pruned += step(lambda: self.prune_total_events(policy))
        artifacts = step(lambda: self.clean_orphaned_artifacts(batch_size=policy.batch_size))
        sequences = step(self.clean_orphaned_sequences)
        report = MaintenanceReport(
            sessions_soft_deleted=soft,
            sessions_hard_deleted=hard,
            events_pruned=pruned,
            artifacts_cleaned=artifacts,
            orphaned_sequences_cleaned=sequences,
            duration_ms=int((time.monotonic() - started) * 1000),
            errors=errors,
        )
        # The spec's telemetry event ``[agent_session_manager, maintenance, complete]``.
        _log.info("maintenance complete", extra={"maintenance_report": report.to_dict()})
        return report

    # sessions -------------------------------------------------------------------------

    def soft_delete_expired_sessions(self, policy: RetentionPolicy) -> int:
        """Soft-delete sessions past ``max_completed_session_age_days`` (by
        ``updated_at``) or ``max_session_age_days`` (by ``created_at``), unless their
        status or one of their tags is exempt (``RetentionPolicy.soft_delete_due``)."""
        policy = _checked(policy)
        now = self._clock()
        cut = policy.cutoffs(now)
        bounds = [
            (column, to_micros(cutoff))
            for column, cutoff in (
                ("updated_us", cut.updated_before),
                ("created_us", cut.created_before),
            )
            if cutoff is not None
        ]
        if not bounds:
            return 0
        where = ["deleted_us IS NULL", "(" + " OR ".join(f"{c} < ?" for c, _ in bounds) + ")"]
        params: list[Any] = [micros for _, micros in bounds]
        exempt = [str(status) for status in policy.exempt_statuses]
        if exempt:
            where.append(f"status NOT IN ({_marks(exempt)})")
            params += exempt
        with self._operation("soft_delete_expired_sessions") as tally:
            pages = self._pages(
                "SELECT session_id, created_us, record FROM view_sessions",
                where,
                params,
                key=("created_us", "session_id"),
                batch_size=policy.batch_size,
                catch_up=("sessions",),
            )
            for page in pages:
                for row in page:
                    # The view's copy filters out exempt tags cheaply; the store's copy
                    # decides.
                    if not policy.soft_delete_due(Session.from_dict(loads(row["record"])), now):
                        continue
                    session = self._current_session(row["session_id"])
                    if session is not None and policy.soft_delete_due(session, now):
                        self._store.save_session(session.soft_delete(now))
                        tally.done += 1
                self._batch_done(tally, len(page))
            return tally.done

    def hard_delete_expired_sessions(self, policy: RetentionPolicy) -> int:
        """Erase sessions soft-deleted more than ``hard_delete_after_days`` ago: their
        events, runs and index rows go in one transaction each (``delete_session``).
        Stops at the first failure; the sessions erased before it stay erased."""
        policy = _checked(policy)
        now = self._clock()
        cutoff = policy.cutoffs(now).deleted_before
        if cutoff is None:
            return 0
        with self._operation("hard_delete_expired_sessions") as tally:
            pages = self._pages(
                "SELECT session_id, deleted_us FROM view_sessions",
                ["deleted_us IS NOT NULL", "deleted_us < ?"],
                [to_micros(cutoff)],
                key=("deleted_us", "session_id"),
                batch_size=policy.batch_size,
                catch_up=("sessions",),
            )
            for page in pages:
                for row in page:
                    session = self._current_session(row["session_id"])
                    if session is not None and policy.hard_delete_due(session, now):
                        self._store.delete_session(session.id)
                        tally.done += 1
                self._batch_done(tally, len(page))
            return tally.done

    def _current_session(self, session_id: str) -> Session | None:
        try:
            return self._store.get_session(session_id)
        except NotFoundError:
            return None

    # pruning --------------------------------------------------------------------------

    def prune_session_events(self, session_id: str, policy: RetentionPolicy) -> int:
        """Bring one session down to ``max_events_per_session`` events: first the
        oldest of ``prune_event_types_first``, then the oldest of the rest, never a
        protected type. Returns how many went (fewer than the excess when only
        protected events remain). Sequence numbers and the counter never change."""
        policy = _checked(policy)
        if policy.max_events_per_session is None:
            return 0
        with self._operation("prune_session_events") as tally:
            self._prune_session(session_id, policy.max_events_per_session, policy, tally)
            return tally.done

    def prune_all_sessions(self, policy: RetentionPolicy) -> int:
        """``prune_session_events`` for every session above the limit, oldest sessions
        first. A failing session is skipped, as in the spec, and named in the error
        raised once all others are done (with what was pruned counted)."""
        policy = _checked(policy)
        limit = policy.max_events_per_session
        if limit is None:
            return 0
        failures: list[str] = []
        with self._operation("prune_all_sessions") as tally:
            pages = self._pages(
                "SELECT session_id, created_us FROM view_sessions s",
                [
                    "(SELECT SUM(event_count) FROM view_event_counts c "
                    "WHERE c.session_id = s.session_id) > ?"
                ],
                [limit],
                key=("created_us", "session_id"),
                batch_size=policy.batch_size,
                catch_up=("sessions", "events"),
            )
            for page in pages:
                for row in page:
                    try:
                        self._prune_session(row["session_id"], limit, policy, tally)
                    except Exception as exc:
                        failures.append(f"{row['session_id']}: {exc}")
            if failures:
                raise AgentSessionsError(
                    f"{len(failures)} session(s) could not be pruned: " + "; ".join(failures[:5]),
                    code=ErrorCode.MAINTENANCE_ERROR,
                )
            return tally.done

    def prune_total_events(self, policy: RetentionPolicy) -> int:
        """Bring the whole store down to ``max_total_events``: the same two phases as
        per-session pruning, across sessions, oldest sessions first."""
        policy = _checked(policy)
        cap = policy.max_total_events
        if cap is None:
            return 0
        type_order, order_params = self._type_order(policy, "e.type")

        def candidates(view: ViewCursor) -> list[Any]:
            total = int(view.execute("SELECT COUNT(*) AS n FROM view_events").fetchone()["n"])
            if total <= cap:
                return []
            return view.execute(
                "SELECT e.session_id, e.event_id, e.sequence_number FROM view_events e "
                "JOIN view_sessions s ON s.session_id = e.session_id "
                f"WHERE e.type NOT IN ({_marks(_PROTECTED)}) ORDER BY {type_order}, "
                "s.created_us, s.session_id, e.sequence_number LIMIT ?",
                [*_PROTECTED, *order_params, min(total - cap, policy.batch_size)],
            ).fetchall()

        with self._operation("prune_total_events") as tally:
            while rows := self._view_read(candidates, catch_up=("sessions", "events")):
                pruned = sum(
                    self._prune_rows(session_id, list(group), policy)
                    for session_id, group in groupby(rows, key=lambda r: str(r["session_id"]))
                )
                tally.done += pruned
                self._batch_done(tally, pruned)
                if pruned == 0:  # everything chosen went meanwhile; let the next run see
                    break
            return tally.done

    def _prune_session(
        self, session_id: str, limit: int, policy: RetentionPolicy, tally: _Tally
    ) -> None:
        type_order, order_params = self._type_order(policy, "type")

        def candidates(view: ViewCursor) -> list[Any]:
            count = view.execute(
                "SELECT COUNT(*) AS n FROM view_events WHERE session_id = ?", (session_id,)
            ).fetchone()["n"]
            excess = int(count) - limit
            if excess <= 0:
                return []
            return view.execute(
                "SELECT session_id, event_id, sequence_number FROM view_events "
                f"WHERE session_id = ? AND type NOT IN ({_marks(_PROTECTED)}) "
                f"ORDER BY {type_order}, sequence_number LIMIT ?",
                [session_id, *_PROTECTED, *order_params, min(excess, policy.batch_size)],
            ).fetchall()

        while rows := self._view_read(candidates, catch_up=("events",)):
            pruned = self._prune_rows(session_id, rows, policy)
            tally.done += pruned
            self._batch_done(tally, pruned)
            if pruned == 0:
                return

    @staticmethod
    def _type_order(policy: RetentionPolicy, column: str) -> tuple[str, list[str]]:
        """An ``ORDER BY`` term putting ``prune_event_types_first`` before the rest."""
        first = [str(t) for t in policy.prune_event_types_first]
        if not first:
            return "0", []
        return f"CASE WHEN {column} IN ({_marks(first)}) THEN 0 ELSE 1 END", first

    def _prune_rows(self, session_id: str, rows: list[Any], policy: RetentionPolicy) -> int:
        sequences = sorted(int(row["sequence_number"]) for row in rows)
        if policy.archive_before_prune and policy.archive_store is not None:
            events = sorted(
                self._store.get_events_by_ids([str(row["event_id"]) for row in rows]),
                key=lambda e: e.sequence_number or 0,
            )
            if not events:
                return 0
            # Archive what is really there, and prune exactly that.
            self._archive(session_id, events, policy.archive_store)
            sequences = [e.sequence_number for e in events if e.sequence_number is not None]
        return self._store.prune_events(session_id, sequences)

    def _archive(self, session_id: str, events: list[Event], archive_store: ArchiveStore) -> None:
        """Write the events as JSONL before they are pruned; a failure here leaves them
        in place. The archive is registered under its session, so erasing the session
        later makes it an orphan that ``clean_orphaned_artifacts`` removes too."""
        first, last = events[0].sequence_number or 0, events[-1].sequence_number or 0
        key = archive_key(session_id, first, last)
        lines = (json.dumps(e.to_dict(), ensure_ascii=False, separators=(",", ":")) for e in events)
        data = "".join(line + "\n" for line in lines).encode()
        metadata = {
            "session_id": session_id,
            "first_sequence": first,
            "last_sequence": last,
            "event_count": len(events),
        }
        try:
            blob = archive_store.put(
                key, data, content_type=ARCHIVE_CONTENT_TYPE, metadata=metadata
            )
        except Exception as exc:
            raise AgentSessionsError(
                f"archive write failed for {key}: {exc}",
                code=ErrorCode.MAINTENANCE_ERROR,
                details={"key": key, "cause": f"{type(exc).__name__}: {exc}"},
            ) from exc
        if blob is not None:
            ArtifactRegistry(self._store).register_blob(blob, session_id=session_id)

    # orphans --------------------------------------------------------------------------

    def list_orphaned_artifacts(self, *, limit: int | None = None) -> list[Artifact]:
        """Registry entries whose session no longer exists (erased)."""
        with self._operation("list_orphaned_artifacts"):
            if not self._has_artifact_registry():
                return []
            return ArtifactRegistry(self._store).orphans(limit=limit)

    def clean_orphaned_artifacts(self, *, dry_run: bool = False, batch_size: int = 100) -> int:
        """Remove orphaned registry entries (and their blobs, given an artifact store);
        with ``dry_run`` only count them. Blob first: if that fails the entry stays and
        a later run finds it again."""
        batch_size = _batch_size(batch_size)
        with self._operation("clean_orphaned_artifacts") as tally:
            if not self._has_artifact_registry():
                return 0
            registry = ArtifactRegistry(self._store)
            if dry_run:
                return len(registry.orphans())
            seen: set[str] = set()
            while orphans := registry.orphans(limit=batch_size):
                if {a.key for a in orphans} <= seen:
                    raise AgentSessionsError(
                        "orphaned artifacts stay registered after being forgotten",
                        code=ErrorCode.MAINTENANCE_ERROR,
                        details={"keys": sorted(a.key for a in orphans)},
                    )
                for artifact in orphans:
                    self._forget_artifact(registry, artifact)
                    seen.add(artifact.key)
                    tally.done += 1
                self._batch_done(tally, len(orphans))
                if len(orphans) < batch_size:
                    break
            return tally.done

    def _has_artifact_registry(self) -> bool:
        return "artifacts" in self._store.projections.names

    def _forget_artifact(self, registry: ArtifactRegistry, artifact: Artifact) -> None:
        if self._artifact_store is not None:
            self._artifact_store.delete(artifact.key)
        else:
            # The entry is the last pointer to the blob: leave a trace an operator can
            # follow.
            _log.warning(
                "forgetting orphaned artifact %s; its blob stays at %s",
                artifact.key,
                artifact.storage_ref,
            )
        registry.forget(artifact.key)

    def list_orphaned_sequences(self) -> list[str]:
        """Sessions that have a sequence counter but no session record."""
        with self._operation("list_orphaned_sequences"):
            return self._index().index_health().orphaned_counters

    def clean_orphaned_sequences(self, *, dry_run: bool = False) -> int:
        """Erase what is left of sessions that have a counter but no session record.

        Never the counter alone: a counter is what keeps a sequence number from being
        used twice, and the spec's deletion of the bare counter lets the next append
        collide with events that are still there. The erasure is ``delete_session``'s,
        which today ignores a session without a session record; the error says so.
        """
        with self._operation("clean_orphaned_sequences") as tally:
            orphans = self._index().index_health().orphaned_counters
            if dry_run:
                return len(orphans)
            for session_id in orphans:
                self._store.delete_session(session_id)
                if self._store.get_latest_sequence(session_id) != 0:
                    raise AgentSessionsError(
                        f"the sequence counter of {session_id} has no session record, and "
                        "delete_session does not erase a session without one",
                        code=ErrorCode.MAINTENANCE_ERROR,
                        details={"session_id": session_id, "orphaned": len(orphans)},
                    )
                tally.done += 1
            return tally.done

    # health ---------------------------------------------------------------------------

    def health_check(self, *, catch_up: bool = True) -> list[str]:
        """Inconsistencies, one message each; ``[]`` is healthy. Checks the index
        against itself and against the log, and the projections' positions: with
        ``catch_up`` (the default) they are caught up first, so only a projection that
        cannot catch up is reported; without it, every one that is behind."""
        with self._operation("health_check"):
            health = self._index().index_health()
            issues = [
                f"{count} {what} reference non-existent sessions"
                for count, what in (
                    (health.orphaned_event_rows, "events"),
                    (health.orphaned_run_rows, "runs"),
                    (len(health.orphaned_counters), "sequence counters"),
                )
                if count
            ]
            issues += [
                f"Sequence mismatch for {session_id}: counter={counter}, max_sequence={top}"
                for session_id, counter, top in health.sequence_mismatches
                if not (counter > top and self._pruned_tail(session_id, top, counter))
            ]
            issues += [
                f"Index mismatch for {session_id}: {unlogged} index rows without a log event, "
                f"{unindexed} log events without an index row"
                for session_id, unlogged, unindexed in health.log_mismatches
            ]
            engine = self._store.projections
            if catch_up:
                engine.catch_up()
            for name in engine.names:
                lag = engine.status(name).lag
                if lag:
                    issues.append(f"projection {name} is {lag} notifications behind")
            return issues

    def _pruned_tail(self, session_id: str, top: int, counter: int) -> bool:
        """Whether the events above ``top`` up to the counter were pruned (not lost):
        the counter then rightly stays ahead of the highest remaining sequence."""
        pruned: set[int] = set()
        for marker in self._store.application.events.get(pruned_id(session_id)):
            if isinstance(marker, EventsPruned):
                pruned.update(marker.sequence_numbers)
        return set(range(top + 1, counter + 1)) <= pruned

    # plumbing -------------------------------------------------------------------------

    def _index(self) -> IndexReader:
        return cast("IndexReader", self._store.application.recorder)

    @contextmanager
    def _operation(self, name: str) -> Iterator[_Tally]:
        """Failures leave as ``maintenance_error`` (the cause in ``details``) with how
        much was done before; refused input stays ``validation_error``."""
        tally = _Tally(name)
        try:
            yield tally
        except ValidationError:
            raise
        except Exception as exc:
            raise _failure(name, exc, tally.done) from exc

    def _batch_done(self, tally: _Tally, size: int) -> None:
        if self._progress is not None:
            self._progress(tally.operation, size)

    def _view_read(self, work: Callable[[ViewCursor], _T], *, catch_up: Sequence[str]) -> _T:
        engine = self._store.projections
        for name in catch_up:
            engine.catch_up(name)
        with engine.views.transaction(commit=False) as view:
            return work(view)

    def _pages(
        self,
        select: str,
        where: list[str],
        params: list[Any],
        *,
        key: tuple[str, str],
        batch_size: int,
        catch_up: Sequence[str],
    ) -> Iterator[list[Any]]:
        """Keyset pages of a view query, each read after catching up: rows changed by
        the previous page are never read twice, and skipped ones never block."""
        first, second = key
        after: tuple[Any, Any] | None = None
        while True:
            clauses, values = list(where), list(params)
            if after is not None:
                clauses.append(f"({first} > ? OR ({first} = ? AND {second} > ?))")
                values += [after[0], after[0], after[1]]
            statement = f"{select} WHERE {' AND '.join(clauses)} ORDER BY {first}, {second} LIMIT ?"
            page = self._view_read(
                partial(_fetch, statement=statement, params=[*values, batch_size]),
                catch_up=catch_up,
            )
            if page:
                yield page
            if len(page) < batch_size:
                return
            after = (page[-1][first], page[-1][second])


__all__ = ["BlobDeleter", "Maintenance", "MaintenanceReport", "ProgressCallback"]
