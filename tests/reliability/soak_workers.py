"""The worker process of the soak (``test_soak.py``): one store handle, a fixed number of
mixed operations, and a record of everything that was acknowledged.

Ownership keeps the final state predictable while every kind of write still contends:

* each worker alone writes the *state* (``save_session``, ``save_run``, ``flush``) of its
  own sessions and of the runs in them, always from a fresh read, so the last record it
  wrote is what the store must hold at the end;
* every worker appends events to every soak session (its own, the others', a shared
  hot one), so sequence claims, id checks and long-polls race on each of them;
* one shared session is the only one pruned, by whichever worker draws a maintenance
  step; pruning reports how many events went, so the parent can account for every gap;
* erasure touches only a scratch session the worker created for it.

It lives in its own module because workers are started with ``spawn``, which needs an
importable target. Checks made on the way (read-your-writes, long-poll order, sequence
blocks) raise, and the first failure ends the worker with its traceback in the
outcome: an operation that failed may or may not have been written, so what the worker
acknowledged after it would no longer be exact.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent_sessions import (
    Event,
    EventType,
    ExecutionResult,
    NotFoundError,
    RetentionPolicy,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    Store,
    open_store,
)

#: How long a worker waits for the others at the start line (seconds).
START_TIMEOUT = 300.0

#: Relative weights of the operation mix.
MIX: dict[str, int] = {
    "append": 28,
    "append_retry": 4,
    "flush": 12,
    "save_session": 10,
    "save_run": 10,
    "query": 16,
    "long_poll": 10,
    "maintenance": 7,
    "erase": 3,
}

#: Retention that finds nothing due in a fresh store (nothing is 90 days old) but runs
#: every step of ``Maintenance.execute`` against live data.
NOTHING_DUE = RetentionPolicy()


@dataclass(frozen=True)
class SoakPlan:
    """What one worker does; picklable, so it crosses the process boundary."""

    url: str
    worker: int
    operations: int
    seed: int
    own_sessions: tuple[str, ...]
    #: Sessions anyone appends to and long-polls (every worker's own and the hot one).
    shared_sessions: tuple[str, ...]
    prunable_session: str
    #: ``max_events_per_session`` of the pruning steps.
    prune_keep: int
    poll_timeout_ms: int


@dataclass
class SoakOutcome:
    """What a worker acknowledged, and how long each kind of operation took."""

    worker: int
    #: (event id, session id, sequence number) of every event an append returned.
    appended: list[tuple[str, str, int]] = field(default_factory=list)
    #: (event id, session id) of every event a successful flush wrote.
    flushed: list[tuple[str, str]] = field(default_factory=list)
    #: How many events of the prunable session the pruning steps removed.
    pruned: int = 0
    #: The last record this worker wrote, per session and per run (``to_dict`` form).
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Scratch sessions this worker erased.
    erased: list[str] = field(default_factory=list)
    #: Seconds per operation, by operation kind.
    latencies: dict[str, list[float]] = field(default_factory=dict)
    operations_done: int = 0
    error: str | None = None


def comparable(record: Session | Run) -> dict[str, Any]:
    """A record's stored fields, without the version it was read at (which is not
    state, and which a record written from a fresh object does not have)."""
    values = record.to_dict()
    values.pop("version", None)
    return values


class _Soaker:
    def __init__(self, plan: SoakPlan, store: Store, outcome: SoakOutcome) -> None:
        self.plan = plan
        self.store = store
        self.out = outcome
        self.rng = random.Random(plan.seed)
        self.serial = 0
        #: Runs this worker created, per own session.
        self.my_runs: dict[str, list[str]] = {sid: [] for sid in plan.own_sessions}
        #: The last batch appended to a session that is never pruned: re-sent as a retry.
        self.last_batch: list[Event] = []
        self.last_results: list[tuple[str, int]] = []

    # plumbing -------------------------------------------------------------------------

    def timed(self, kind: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = call()
        self.out.latencies.setdefault(kind, []).append(time.perf_counter() - started)
        return result

    def new_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}_{self.plan.seed}_{self.plan.worker}_{self.serial}"

    def own(self) -> str:
        return self.rng.choice(self.plan.own_sessions)

    def event(self, session_id: str, run_id: str | None = None) -> Event:
        return Event.new(
            id=self.new_id("evt"),
            type=EventType.MESSAGE_STREAMED,
            session_id=session_id,
            run_id=run_id,
            data={"worker": self.plan.worker, "serial": self.serial},
        )

    # operations -----------------------------------------------------------------------

    def append(self) -> None:
        # A quarter of the appends go to the pruned session, so pruning has work.
        if self.rng.random() < 0.25:
            session_id = self.plan.prunable_session
        else:
            session_id = self.rng.choice(self.plan.shared_sessions)
        batch = [self.event(session_id) for _ in range(self.rng.randint(1, 5))]
        stored = self.timed("append", lambda: self.store.append_events(batch))
        sequences = [e.sequence_number or 0 for e in stored]
        # New ids in one session get one claimed block: consecutive numbers.
        first = sequences[0]
        assert sequences == list(range(first, first + len(batch))), sequences
        assert [e.id for e in stored] == [e.id for e in batch]
        self.out.appended.extend((e.id, session_id, e.sequence_number or 0) for e in stored)
        if session_id != self.plan.prunable_session:
            self.last_batch = batch
            self.last_results = [(e.id, e.sequence_number or 0) for e in stored]

    def append_retry(self) -> None:
        """A client retrying an acknowledged append gets the same events back."""
        if not self.last_batch:
            self.append()
            return
        batch = self.last_batch
        stored = self.timed("append_retry", lambda: self.store.append_events(batch))
        assert [(e.id, e.sequence_number) for e in stored] == self.last_results

    def flush(self) -> None:
        session_id = self.own()
        session = self.store.get_session(session_id)
        runs = self.my_runs[session_id]
        if runs and self.rng.random() < 0.6:
            run = self.store.get_run(self.rng.choice(runs))
            run = run.replace(
                status=self.rng.choice(list(RunStatus)),
                output={"flush": self.serial},
                turn_count=run.turn_count + 1,
            )
        else:
            run = Run.new(session_id=session_id, id=self.new_id("run")).replace(
                status=RunStatus.RUNNING
            )
        session = session.with_metadata({"flushed_by": self.plan.worker, "serial": self.serial})
        events = [self.event(session_id, run.id) for _ in range(self.rng.randint(0, 3))]
        result = ExecutionResult(session=session, run=run, events=events)
        self.timed("flush", lambda: self.store.flush(result))
        if run.id not in runs:
            runs.append(run.id)
        self.out.sessions[session.id] = comparable(session)
        self.out.runs[run.id] = comparable(run)
        self.out.flushed.extend((e.id, session_id) for e in events)

    def save_session(self) -> None:
        session_id = self.own()
        session = self.store.get_session(session_id)
        change = self.rng.randrange(3)
        if change == 0:
            session = session.with_status(self.rng.choice(list(SessionStatus)))
        elif change == 1:
            session = session.with_metadata({f"k{self.rng.randrange(5)}": self.serial})
        else:
            session = session.with_tags([f"t{self.rng.randrange(4)}", f"w{self.plan.worker}"])
        self.timed("save_session", lambda: self.store.save_session(session))
        self.out.sessions[session.id] = comparable(session)
        # Only this worker writes this session's state: it reads back what it wrote.
        assert comparable(self.store.get_session(session_id)) == comparable(session)

    def save_run(self) -> None:
        session_id = self.own()
        runs = self.my_runs[session_id]
        if runs and self.rng.random() < 0.7:
            run = self.store.get_run(self.rng.choice(runs))
            if self.rng.random() < 0.5:
                run = run.with_status(self.rng.choice(list(RunStatus)))
            else:
                run = run.with_metadata({"serial": self.serial}).add_token_usage(
                    {"input_tokens": 10, "output_tokens": 5}
                )
        else:
            run = Run.new(session_id=session_id, id=self.new_id("run"), input={"q": 1})
        self.timed("save_run", lambda: self.store.save_run(run))
        if run.id not in runs:
            runs.append(run.id)
        self.out.runs[run.id] = comparable(run)
        assert comparable(self.store.get_run(run.id)) == comparable(run)

    def query(self) -> None:
        """One ``QueryAPI`` call, with the checks its read-your-writes promise allows:
        a query catches its views up first, so what this process acknowledged is seen."""
        api = self.store.query()
        session_id = self.own()
        mine = len(self.my_runs[session_id])
        kind = self.rng.randrange(7)
        if kind == 0:
            page = self.timed(
                "query.search_sessions",
                lambda: api.search_sessions(agent_id=f"soak-{self.plan.worker}", limit=50),
            )
            assert page.total_count == len(self.plan.own_sessions), page.total_count
        elif kind == 1:
            stats = self.timed("query.session_stats", lambda: api.get_session_stats(session_id))
            assert stats.run_count == mine, (stats.run_count, mine)
            acked = sum(1 for _, sid, _ in self.out.appended if sid == session_id)
            assert stats.event_count >= acked, (stats.event_count, acked)
        elif kind == 2:
            runs = self.timed(
                "query.search_runs", lambda: api.search_runs(session_id=session_id, limit=500)
            )
            assert len(runs.runs) == mine, (len(runs.runs), mine)
        elif kind == 3:
            self.timed("query.usage_summary", lambda: api.get_usage_summary())
        elif kind == 4:
            hot = self.rng.choice(self.plan.shared_sessions)
            count = self.timed("query.count_events", lambda: api.count_events(session_ids=[hot]))
            acked = sum(1 for _, sid, _ in self.out.appended if sid == hot)
            assert count >= acked, (count, acked)
        elif kind == 5:
            page = self.timed(
                "query.search_events",
                lambda: api.search_events(session_ids=list(self.plan.shared_sessions), limit=50),
            )
            assert len(page.events) <= 50
        else:
            export = self.timed("query.export_session", lambda: api.export_session(session_id))
            assert len(export.runs) == mine, (len(export.runs), mine)

    def long_poll(self) -> None:
        """Wait for events after the latest one: whatever comes back is newer, in order,
        and (in a session that is never pruned) starts right after it without a gap."""
        session_id = self.rng.choice(self.plan.shared_sessions)
        after = self.store.get_latest_sequence(session_id)
        timeout = self.rng.randint(self.plan.poll_timeout_ms // 4, self.plan.poll_timeout_ms)
        events = self.timed(
            "long_poll",
            lambda: self.store.get_events(session_id, after=after, wait_timeout_ms=timeout),
        )
        sequences = [e.sequence_number or 0 for e in events]
        assert sequences == list(range(after + 1, after + 1 + len(events))), (after, sequences)
        assert all(e.session_id == session_id for e in events)

    def maintenance(self) -> None:
        maintenance = self.store.maintenance()
        kind = self.rng.randrange(3)
        if kind == 0:
            policy = RetentionPolicy(
                max_events_per_session=self.plan.prune_keep,
                max_completed_session_age_days=None,
                hard_delete_after_days=None,
                batch_size=25,
            )
            session_id = self.plan.prunable_session
            self.out.pruned += self.timed(
                "maintenance.prune",
                lambda: maintenance.prune_session_events(session_id, policy),
            )
        elif kind == 1:
            report = self.timed("maintenance.execute", lambda: maintenance.execute(NOTHING_DUE))
            assert report.errors == [], report.errors
            assert report.sessions_soft_deleted == 0
            assert report.sessions_hard_deleted == 0
            assert report.orphaned_sequences_cleaned == 0
        else:
            issues = self.timed("maintenance.health_check", lambda: maintenance.health_check())
            assert issues == [], issues

    def erase(self) -> None:
        """A scratch session, written to and erased: nothing of it may remain."""
        session = Session.new(agent_id=f"scratch-{self.plan.worker}", id=self.new_id("ses"))
        self.store.save_session(session)
        run = Run.new(session_id=session.id, id=self.new_id("run"))
        events = [self.event(session.id, run.id) for _ in range(3)]
        self.store.flush(ExecutionResult(session=session, run=run, events=events))
        self.timed("erase", lambda: self.store.delete_session(session.id))
        self.out.erased.append(session.id)
        assert self.store.get_events(session.id) == []
        try:
            self.store.get_session(session.id)
        except NotFoundError:
            pass
        else:
            raise AssertionError(f"{session.id} survived its erasure")

    def run(self) -> None:
        kinds = list(MIX)
        weights = [MIX[kind] for kind in kinds]
        for _ in range(self.plan.operations):
            kind = self.rng.choices(kinds, weights)[0]
            getattr(self, kind)()
            self.out.operations_done += 1


def soak(plan: SoakPlan, start: Any, results: Any) -> None:
    """Process target: open a handle, wait at the start line, run the mix, and put the
    ``SoakOutcome`` on ``results`` (errors included, never raised: a child's traceback
    would otherwise be lost)."""
    outcome = SoakOutcome(worker=plan.worker)
    try:
        with open_store(plan.url) as store:
            start.wait(START_TIMEOUT)
            _Soaker(plan, store, outcome).run()
    except BaseException:
        outcome.error = traceback.format_exc()
    results.put(outcome)
