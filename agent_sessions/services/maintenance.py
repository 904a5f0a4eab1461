"""Retention and health checks, run when the caller asks.

Candidates come from the read models: sessions by age from the sessions view (caught up
first), events from the event index (always current). Every change goes through the
store's own operations, so maintenance writes nothing a normal caller could not:
``save_session`` soft-deletes, ``delete_session`` erases, ``prune_events`` prunes. Each
record is re-read from the store and re-checked against the policy before it is
changed, so a view that lags behind another process never deletes a session that was
just touched.

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
from typing import Any, Protocol, TypeVar

from ..domain.artifact import Artifact
from ..domain.checks import checked_int, require_id
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
from ..ports.views import ViewCursor
from ..read_models.catalog import ReadModels
from ..read_models.events import EventSearch, PruneCandidate
from ..read_models.sql_filters import Key, KeysetPage
from .artifact_registry import ArtifactRegistry
from .conflicts import reread_and_retry
from .maintenance_report import MaintenancePlan, MaintenanceReport
from .query_api import EventReader

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Called after each batch with the operation's name and how many items the batch
#: handled: for progress bars, and for tests that count batches.
ProgressCallback = Callable[[str, int], None]

_PROTECTED = [str(t) for t in PROTECTED_EVENT_TYPES]


class RetentionStore(EventReader, Protocol):
    """The ``SessionStore`` port plus what retention needs beyond it: reading events
    by id (to archive them) and pruning them."""

    def prune_events(self, session_id: str, sequence_numbers: Sequence[int]) -> int: ...


class BlobDeleter(Protocol):
    """The part of the ``ArtifactStore`` port orphan clean-up uses."""

    def delete(self, key: str) -> None: ...


@dataclass
class _Tally:
    operation: str
    done: int = 0


def _checked(policy: object) -> RetentionPolicy:
    if not isinstance(policy, RetentionPolicy):
        raise ValidationError("policy must be a RetentionPolicy", details={"field": "policy"})
    # A policy is validated when built; this catches one changed behind its back.
    problem = policy.validate()
    if problem is not None:
        raise ValidationError(problem)
    return policy


def _flag(value: object, field: str) -> bool:
    """A switch is ``True`` or ``False``, nothing that merely tests false: a
    ``dry_run=""`` read as "no" would delete for real."""
    if not isinstance(value, bool):
        raise ValidationError(f"{field} must be true or false", details={"field": field})
    return value


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
    over one store and its read models.

    ``index`` is the store's index, for the health checks and orphaned counters
    (without it those find nothing); ``registry`` is the artifact registry, for orphan
    clean-up and for registering archives (without it there are no artifacts to
    clean); ``artifact_store`` deletes the blobs of orphaned artifacts (without it only
    their registry entries go); ``clock`` is the "now" of the age rules.
    """

    def __init__(
        self,
        store: RetentionStore,
        read_models: ReadModels,
        *,
        index: IndexReader | None = None,
        registry: ArtifactRegistry | None = None,
        artifact_store: BlobDeleter | None = None,
        clock: Callable[[], datetime] = utc_now,
        progress: ProgressCallback | None = None,
    ) -> None:
        self._store = store
        self._read_models = read_models
        self._index = index
        self._registry = registry
        self._artifact_store = artifact_store
        self._clock = clock
        self._progress = progress

    # the whole run --------------------------------------------------------------------

    def execute(self, policy: RetentionPolicy) -> MaintenanceReport:
        """Every step, in this order: soft delete, erasure, pruning, orphaned
        artifacts, orphaned counters. A failing step does not stop the others: its
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
        # The telemetry event ``[agent_session_manager, maintenance, complete]``.
        _log.info("maintenance complete", extra={"maintenance_report": report.to_dict()})
        return report

    # dry run --------------------------------------------------------------------------

    def plan(self, policy: RetentionPolicy) -> MaintenancePlan:
        """What :meth:`execute` would do with ``policy`` now, changing nothing: the same
        candidate queries, in the same order, each step seeing what the steps before it
        would have removed (erased sessions are not pruned; per-session pruning comes
        before the store-wide cap). Candidates are judged on the views' copies; a run
        re-checks each record against the store, so it may do less, never more."""
        policy = _checked(policy)
        now = self._clock()
        with self._operation("plan"):
            soft = self._planned_soft_deletes(policy, now)
            hard = self._planned_erasures(policy, now)
            prune = self._planned_pruning(policy, set(hard))
            registry = self._registry
            orphans = 0 if registry is None else len(registry.orphans())
            counters = [] if self._index is None else self._index.index_health().orphaned_counters
        return MaintenancePlan(
            sessions_to_soft_delete=soft,
            sessions_to_hard_delete=hard,
            events_to_prune=prune,
            orphaned_artifacts=orphans,
            orphaned_sequences=len(counters),
        )

    def _planned_soft_deletes(self, policy: RetentionPolicy, now: datetime) -> list[str]:
        cut = policy.cutoffs(now)
        if cut.updated_before is None and cut.created_before is None:
            return []
        candidates = partial(
            self._read_models.sessions.soft_delete_candidates,
            updated_before_us=None if cut.updated_before is None else to_micros(cut.updated_before),
            created_before_us=None if cut.created_before is None else to_micros(cut.created_before),
            exempt_statuses=[str(status) for status in policy.exempt_statuses],
            limit=policy.batch_size,
        )
        return [
            session.id
            for page in self._pages(candidates, policy.batch_size, catch_up=("sessions",))
            for session in page
            if policy.soft_delete_due(session, now)
        ]

    def _planned_erasures(self, policy: RetentionPolicy, now: datetime) -> list[str]:
        cutoff = policy.cutoffs(now).deleted_before
        if cutoff is None:
            return []
        candidates = partial(
            self._read_models.sessions.erasure_candidates,
            deleted_before_us=to_micros(cutoff),
            limit=policy.batch_size,
        )
        pages = self._pages(candidates, policy.batch_size, catch_up=("sessions",))
        return [session_id for page in pages for session_id in page]

    def _planned_pruning(self, policy: RetentionPolicy, erased: set[str]) -> dict[str, int]:
        events = self._read_models.events
        first = [str(t) for t in policy.prune_event_types_first]
        planned: set[str] = set()
        counts: dict[str, int] = {}
        limit = policy.max_events_per_session
        if limit is not None:
            over = partial(events.sessions_over, more_than=limit, limit=policy.batch_size)
            for page in self._pages(over, policy.batch_size, catch_up=()):
                for session_id in page:
                    if session_id in erased:
                        continue

                    def candidates(view: ViewCursor, session_id: str = session_id) -> list[str]:
                        excess = events.count(view, EventSearch(session_ids=[session_id])) - limit
                        if excess <= 0:
                            return []
                        rows = events.prune_candidates(
                            view,
                            session_id=session_id,
                            first_types=first,
                            protected_types=_PROTECTED,
                            limit=excess,
                        )
                        return [row.event_id for row in rows]

                    chosen = self._read(candidates)
                    if chosen:
                        counts[session_id] = len(chosen)
                        planned.update(chosen)
        cap = policy.max_total_events
        if cap is not None:

            def store_wide(view: ViewCursor) -> list[PruneCandidate]:
                gone = events.count(view, EventSearch(session_ids=sorted(erased))) if erased else 0
                excess = events.count(view, EventSearch()) - gone - len(planned) - cap
                if excess <= 0:
                    return []
                rows = events.prune_candidates(
                    view,
                    session_id=None,
                    first_types=first,
                    protected_types=_PROTECTED,
                    limit=excess + len(planned) + gone,
                )
                left = (r for r in rows if r.event_id not in planned and r.session_id not in erased)
                return list(left)[:excess]

            for row in self._read(store_wide):
                counts[row.session_id] = counts.get(row.session_id, 0) + 1
        return counts

    # sessions -------------------------------------------------------------------------

    def soft_delete_expired_sessions(self, policy: RetentionPolicy) -> int:
        """Soft-delete sessions past ``max_completed_session_age_days`` (by
        ``updated_at``) or ``max_session_age_days`` (by ``created_at``), unless their
        status or one of their tags is exempt (``RetentionPolicy.soft_delete_due``)."""
        policy = _checked(policy)
        now = self._clock()
        cut = policy.cutoffs(now)
        if cut.updated_before is None and cut.created_before is None:
            return 0
        sessions = self._read_models.sessions
        candidates = partial(
            sessions.soft_delete_candidates,
            updated_before_us=None if cut.updated_before is None else to_micros(cut.updated_before),
            created_before_us=None if cut.created_before is None else to_micros(cut.created_before),
            exempt_statuses=[str(status) for status in policy.exempt_statuses],
            limit=policy.batch_size,
        )
        with self._operation("soft_delete_expired_sessions") as tally:
            for page in self._pages(candidates, policy.batch_size, catch_up=("sessions",)):
                for candidate in page:
                    # The view's copy filters out exempt tags cheaply; the store's copy
                    # decides.
                    if not policy.soft_delete_due(candidate, now):
                        continue
                    if reread_and_retry(partial(self._soft_delete, candidate.id, policy, now)):
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
        candidates = partial(
            self._read_models.sessions.erasure_candidates,
            deleted_before_us=to_micros(cutoff),
            limit=policy.batch_size,
        )
        with self._operation("hard_delete_expired_sessions") as tally:
            for page in self._pages(candidates, policy.batch_size, catch_up=("sessions",)):
                for session_id in page:
                    session = self._current_session(session_id)
                    if session is not None and policy.hard_delete_due(session, now):
                        self._store.delete_session(session.id)
                        tally.done += 1
                self._batch_done(tally, len(page))
            return tally.done

    def _soft_delete(self, session_id: str, policy: RetentionPolicy, now: datetime) -> bool:
        """Soft-delete the store's current copy if it is still due. Run again after a
        ``concurrency_conflict`` (someone restored or deleted it meanwhile): the newer
        copy decides again."""
        session = self._current_session(session_id)
        if session is None or not policy.soft_delete_due(session, now):
            return False
        self._store.save_session(session.soft_delete(now))
        return True

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
        require_id(session_id, "session_id")
        policy = _checked(policy)
        if policy.max_events_per_session is None:
            return 0
        with self._operation("prune_session_events") as tally:
            self._prune_session(session_id, policy.max_events_per_session, policy, tally)
            return tally.done

    def prune_all_sessions(self, policy: RetentionPolicy) -> int:
        """``prune_session_events`` for every session above the limit, oldest sessions
        first. A failing session is skipped, and named in the error
        raised once all others are done (with what was pruned counted)."""
        policy = _checked(policy)
        limit = policy.max_events_per_session
        if limit is None:
            return 0
        failures: list[str] = []
        candidates = partial(
            self._read_models.events.sessions_over, more_than=limit, limit=policy.batch_size
        )
        with self._operation("prune_all_sessions") as tally:
            # The event index is current: nothing to catch up.
            for page in self._pages(candidates, policy.batch_size, catch_up=()):
                for session_id in page:
                    try:
                        self._prune_session(session_id, limit, policy, tally)
                    except Exception as exc:
                        failures.append(f"{session_id}: {exc}")
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
        events = self._read_models.events

        def candidates(view: ViewCursor) -> list[PruneCandidate]:
            total = events.count(view, EventSearch())
            if total <= cap:
                return []
            return events.prune_candidates(
                view,
                session_id=None,
                first_types=[str(t) for t in policy.prune_event_types_first],
                protected_types=_PROTECTED,
                limit=min(total - cap, policy.batch_size),
            )

        with self._operation("prune_total_events") as tally:
            while rows := self._read(candidates):
                pruned = sum(
                    self._prune_rows(session_id, list(group), policy)
                    for session_id, group in groupby(rows, key=lambda row: row.session_id)
                )
                tally.done += pruned
                self._batch_done(tally, pruned)
                if pruned == 0:  # everything chosen went meanwhile; let the next run see
                    break
            return tally.done

    def _prune_session(
        self, session_id: str, limit: int, policy: RetentionPolicy, tally: _Tally
    ) -> None:
        events = self._read_models.events

        def candidates(view: ViewCursor) -> list[PruneCandidate]:
            excess = events.count(view, EventSearch(session_ids=[session_id])) - limit
            if excess <= 0:
                return []
            return events.prune_candidates(
                view,
                session_id=session_id,
                first_types=[str(t) for t in policy.prune_event_types_first],
                protected_types=_PROTECTED,
                limit=min(excess, policy.batch_size),
            )

        while rows := self._read(candidates):
            pruned = self._prune_rows(session_id, rows, policy)
            tally.done += pruned
            self._batch_done(tally, pruned)
            if pruned == 0:
                return

    def _prune_rows(
        self, session_id: str, rows: list[PruneCandidate], policy: RetentionPolicy
    ) -> int:
        sequences = sorted(row.sequence_number for row in rows)
        if policy.archive_before_prune and policy.archive_store is not None:
            events = sorted(
                self._store.get_events_by_ids([row.event_id for row in rows]),
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
        if blob is not None and self._registry is not None:
            self._registry.register_blob(blob, session_id=session_id)

    # orphans --------------------------------------------------------------------------

    def list_orphaned_artifacts(self, *, limit: int | None = None) -> list[Artifact]:
        """Registry entries whose session no longer exists (erased)."""
        with self._operation("list_orphaned_artifacts"):
            if self._registry is None:
                return []
            return self._registry.orphans(limit=limit)

    def clean_orphaned_artifacts(self, *, dry_run: bool = False, batch_size: int = 100) -> int:
        """Remove orphaned registry entries (and their blobs, given an artifact store);
        with ``dry_run`` only count them. Blob first: if that fails the entry stays and
        a later run finds it again."""
        dry_run = _flag(dry_run, "dry_run")
        batch_size = checked_int(batch_size, "batch_size", minimum=1)
        with self._operation("clean_orphaned_artifacts") as tally:
            registry = self._registry
            if registry is None:
                return 0
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
            return [] if self._index is None else self._index.index_health().orphaned_counters

    def clean_orphaned_sequences(self, *, dry_run: bool = False) -> int:
        """Erase what is left of sessions that have a counter but no session record.

        Never the counter alone: a counter is what keeps a sequence number from being
        used twice, and deleting the bare counter would let the next append
        collide with events that are still there. ``delete_session`` erases whatever a
        session left (counter, index rows, log events, runs) even without its session
        record; a counter that survives it is reported as an error.
        """
        dry_run = _flag(dry_run, "dry_run")
        with self._operation("clean_orphaned_sequences") as tally:
            orphans = [] if self._index is None else self._index.index_health().orphaned_counters
            if dry_run:
                return len(orphans)
            for session_id in orphans:
                self._store.delete_session(session_id)
                if self._store.get_latest_sequence(session_id) != 0:
                    raise AgentSessionsError(
                        f"the sequence counter of {session_id} survived its erasure",
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
        cannot catch up is reported; without it, every one that is behind. A projection
        stopped at an event it cannot apply is reported with its position, the
        notification and the event (``ProjectionFailure.message``), caught up or not."""
        catch_up = _flag(catch_up, "catch_up")
        with self._operation("health_check"):
            # Positions first: telling pruned events from lost ones below catches the
            # ``events`` view up, which must not hide that it was behind.
            behind = self._projections_behind(catch_up)
            if self._index is None:
                return behind
            health = self._index.index_health()
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
            return issues + behind

    def _projections_behind(self, catch_up: bool) -> list[str]:
        """Failed projections, and the ones behind the log as it was when the check
        began: what other processes append meanwhile is not lag this check found."""
        engine = self._read_models.engine
        target = engine.head()
        if catch_up:
            # Goes on past a failed projection; reported below.
            engine.catch_up(until=target)
        failures = engine.failures()
        issues = [failures[name].message() for name in engine.names if name in failures]
        lags = (
            (name, target - engine.views.position(name))
            for name in engine.names
            if name not in failures
        )
        return issues + [
            f"projection {name} is {lag} notifications behind" for name, lag in lags if lag > 0
        ]

    def _pruned_tail(self, session_id: str, top: int, counter: int) -> bool:
        """Whether the events above ``top`` up to the counter were pruned (not lost):
        the counter then rightly stays ahead of the highest remaining sequence. Not
        known while the ``events`` view is failed (reported on its own): the mismatch
        is then reported as it is."""
        events = self._read_models.events
        try:
            return self._read(
                lambda view: events.all_pruned(view, session_id, top + 1, counter),
                catch_up=("events",),
            )
        except AgentSessionsError as error:
            if error.code != ErrorCode.PROJECTION_FAILED:
                raise
            return False

    # plumbing -------------------------------------------------------------------------

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

    def _read(self, work: Callable[[ViewCursor], _T], *, catch_up: Sequence[str] = ()) -> _T:
        return self._read_models.read(work, catch_up=catch_up, operation="maintenance")

    def _pages(
        self,
        fetch: Callable[..., KeysetPage[_T]],
        batch_size: int,
        *,
        catch_up: Sequence[str],
    ) -> Iterator[list[_T]]:
        """Keyset pages of a named query (called with the cursor and ``after=``), each
        read after catching up: rows changed by the previous page are never read twice,
        and skipped ones never block."""
        after: Key | None = None
        while True:
            page = self._read(partial(fetch, after=after), catch_up=catch_up)
            if page.items:
                yield page.items
            if len(page.items) < batch_size or page.last is None:
                return
            after = page.last


__all__ = [
    "BlobDeleter",
    "Maintenance",
    "MaintenancePlan",
    "MaintenanceReport",
    "ProgressCallback",
    "RetentionStore",
]
