"""A real store driven side by side with a plain-Python model of the port's semantics.

Example-based tests check one operation at a time; the bugs that matter in an
event-sourced store live in sequences of operations (a cached aggregate after an
erasure, a reused event id after a failed batch, a counter after a re-created
session). The model implements those semantics independently of the store code:

* per-session sequences are gap-free and start at 1;
* event ids are global, first write wins: a reused id returns the stored original (its
  sequence and payload) in its own session, and is ``already_exists`` in another one
  (in the store or earlier in the batch), refusing the whole batch;
* appending a new event to a session that does not exist is ``session_not_found`` and
  writes nothing of the batch;
* ``delete_session`` erases the session, its runs and its events and resets its counter
  (erasure, not a soft delete), so an erased event id is free again;
* ``get_active_run`` is the most recently started running run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pg_server import configured_url, fresh_schema, missing_server, with_options

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    open_store,
)

AGENTS = ["agent-a", "agent-b", "agent-c"]
EVENT_TYPES = [
    EventType.MESSAGE_SENT,
    EventType.MESSAGE_RECEIVED,
    EventType.TOOL_CALL_STARTED,
    EventType.RUN_STARTED,
]
UNKNOWN_SESSION = "ses_never_saved"


def exact(record: Session | Run | Event | None) -> str | None:
    """Type-exact comparison form (``==`` would equate ``True``, ``1`` and ``1.0``)."""
    return None if record is None else json.dumps(record.to_dict(), sort_keys=True)


def exact_all(records: Sequence[Session | Run | Event]) -> list[str | None]:
    return [exact(record) for record in records]


def refusal(call: Any) -> str | None:
    """The code the store refused ``call`` with, or ``None`` when it succeeded."""
    try:
        call()
    except AgentSessionsError as error:
        return str(error.code)
    return None


class ExpectedError(Exception):
    """The model's prediction that the store must refuse with ``code``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class StoreModel:
    """The port's semantics in plain Python, independent of the store's code."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.runs: dict[str, Run] = {}
        self.events: dict[str, list[Event]] = {}
        self.by_id: dict[str, Event] = {}
        self.erased: dict[str, Session] = {}
        self.erased_runs: set[str] = set()

    def latest_sequence(self, session_id: str) -> int:
        # No pruning here, so the counter is the number of events.
        return len(self.events.get(session_id, []))

    def save_session(self, session: Session) -> None:
        self.sessions[session.id] = session
        self.erased.pop(session.id, None)

    def save_run(self, run: Run) -> None:
        if run.session_id not in self.sessions:
            raise ExpectedError("session_not_found")
        self.runs[run.id] = run
        self.erased_runs.discard(run.id)

    def append(self, batch: Sequence[Event], also_known: str | None = None) -> list[Event]:
        first: dict[str, Event] = {}
        for event in batch:
            if first.setdefault(event.id, event).session_id != event.session_id:
                raise ExpectedError("already_exists")
        for event in first.values():
            stored = self.by_id.get(event.id)
            if stored is not None and stored.session_id != event.session_id:
                raise ExpectedError("already_exists")
        new = [event for event in first.values() if event.id not in self.by_id]
        known = set(self.sessions) | ({also_known} if also_known else set())
        if any(event.session_id not in known for event in new):
            raise ExpectedError("session_not_found")
        for event in new:
            log = self.events.setdefault(event.session_id, [])
            stored = event.with_sequence(len(log) + 1)
            log.append(stored)
            self.by_id[event.id] = stored
        return [self.by_id[event.id] for event in batch]

    def flush(self, session: Session, run: Run, events: Sequence[Event]) -> None:
        self.append(events, also_known=session.id)
        self.save_session(session)
        self.runs[run.id] = run
        self.erased_runs.discard(run.id)

    def delete_session(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        self.erased[session_id] = session
        for run_id in [r.id for r in self.runs.values() if r.session_id == session_id]:
            del self.runs[run_id]
            self.erased_runs.add(run_id)
        for event in self.events.pop(session_id, []):
            del self.by_id[event.id]

    def list_sessions(self, status: str | None, agent_id: str | None) -> list[Session]:
        ordered = sorted(self.sessions.values(), key=lambda s: (s.created_at, s.id))
        return [
            s
            for s in ordered
            if (status is None or s.status == status)
            and (agent_id is None or s.agent_id == agent_id)
        ]

    def list_runs(self, session_id: str, status: str | None) -> list[Run]:
        ordered = sorted(self.runs.values(), key=lambda r: (r.started_at, r.id))
        return [
            r
            for r in ordered
            if r.session_id == session_id and (status is None or r.status == status)
        ]

    def running_runs(self, session_id: str) -> list[Run]:
        return self.list_runs(session_id, "running")

    def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None,
        type: str | None,
        since: datetime | None,
        after: int | None,
        before: int | None,
        limit: int | None,
    ) -> list[Event]:
        selected = [
            e
            for e in self.events.get(session_id, [])
            if (run_id is None or e.run_id == run_id)
            and (type is None or e.type == type)
            and (since is None or e.timestamp >= since)
            and (after is None or e.sequence_number > after)  # type: ignore[operator]
            and (before is None or e.sequence_number < before)  # type: ignore[operator]
        ]
        return selected if limit is None else selected[:limit]


class StoreMachine(RuleBasedStateMachine):
    """Rules change store and model alike; invariants compare every read."""

    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.tmpdir: str | None = None
        self.pg_schema: ExitStack | None = None
        if self.backend == "memory":
            self.store = open_store("memory://")
        elif self.backend == "postgres":
            server = configured_url()
            if server is None:
                missing_server("the PostgreSQL state machine needs a server")
            assert server is not None
            self.pg_schema = ExitStack()
            schema = self.pg_schema.enter_context(fresh_schema(server))
            self.store = open_store(with_options(server, schema=schema, pool_size=2))
        else:
            self.tmpdir = tempfile.mkdtemp(prefix="agent_sessions_stateful_")
            path = str(Path(self.tmpdir, "store.db").resolve())
            self.store = open_store("sqlite:///" + path)
        self.model = StoreModel()
        self.sent: list[Event] = []  # every event ever offered, for id reuse
        self.counter = 0

    def teardown(self) -> None:
        self.store.close()
        if self.pg_schema is not None:
            self.pg_schema.close()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    # helpers --------------------------------------------------------------------------

    def tick(self) -> int:
        self.counter += 1
        return self.counter

    def new_id(self, prefix: str) -> str:
        """Ids from a counter: random ids would make hypothesis's replays draw
        differently (which session sorts first), and the examples unshrinkable."""
        return f"{prefix}_{self.tick():05d}"

    def any_session_id(self, data: st.DataObject) -> str:
        """Known, erased or never-saved: every kind of id a caller might pass."""
        choices = [*self.model.sessions, *self.model.erased, UNKNOWN_SESSION]
        return data.draw(st.sampled_from(choices))

    def make_event(self, data: st.DataObject, session_id: str | None = None) -> Event:
        """A new event, or one reusing the id of an event offered before (with another
        payload, so that returning the original is observable)."""
        n = self.tick()
        if session_id is None:
            if self.model.sessions and data.draw(st.integers(0, 3)) > 0:
                session_id = data.draw(st.sampled_from(sorted(self.model.sessions)))
            else:
                session_id = self.any_session_id(data)
        if self.sent and data.draw(st.integers(0, 3)) == 0:
            offered = data.draw(st.sampled_from(self.sent))
            original = self.model.by_id.get(offered.id, offered)
            reused_id: str | None = offered.id
            # A reused id keeps its session or moves to a live one: a stored id sent to
            # a session that does not exist is a case the port leaves undefined.
            session_id = data.draw(
                st.sampled_from([original.session_id, *sorted(self.model.sessions)])
            )
        else:
            reused_id = None
        runs = [r.id for r in self.model.runs.values() if r.session_id == session_id]
        run_id = data.draw(st.sampled_from([None, "run_not_saved", *runs]))
        event = Event.new(
            id=reused_id or self.new_id("evt"),
            type=data.draw(st.sampled_from(EVENT_TYPES)),
            session_id=session_id,
            run_id=run_id,
            data={"n": n, "text": f"payload {n}"},
            metadata={"origin": "stateful"},
        )
        if data.draw(st.booleans()):
            # Stores overwrite a caller's sequence number.
            event = event.with_sequence(data.draw(st.integers(1, 50)))
        self.sent.append(event)
        return event

    def expect(self, model_call: Any, store_call: Any) -> Any:
        """Run the model first; the store must then agree on the value or the refusal."""
        try:
            expected = model_call()
        except ExpectedError as refused:
            code = refused.code
        else:
            return expected, store_call()
        assert refusal(store_call) == code
        return None

    # sessions -------------------------------------------------------------------------

    @rule(agent=st.sampled_from(AGENTS), tags=st.lists(st.sampled_from("xyz"), max_size=2))
    def new_session(self, agent: str, tags: list[str]) -> None:
        session = Session.new(
            id=self.new_id("ses"), agent_id=agent, tags=tags, metadata={"created": self.tick()}
        )
        self.store.save_session(session)
        self.model.save_session(session)

    @precondition(lambda self: self.model.sessions)
    @rule(data=st.data())
    def change_session(self, data: st.DataObject) -> None:
        session = self.model.sessions[data.draw(st.sampled_from(sorted(self.model.sessions)))]
        kind = data.draw(st.sampled_from(["status", "metadata", "tags", "delete", "restore"]))
        if kind == "status":
            changed = session.with_status(data.draw(st.sampled_from(list(SessionStatus))))
        elif kind == "metadata":
            changed = session.with_metadata({data.draw(st.sampled_from("ab")): self.tick()})
        elif kind == "tags":
            changed = session.with_tags(data.draw(st.lists(st.sampled_from("xyz"), max_size=3)))
        elif kind == "delete":
            changed = session.soft_delete()
        else:
            changed = session.restore()
        self.store.save_session(changed)
        self.model.save_session(changed)

    @precondition(lambda self: self.model.sessions)
    @rule(data=st.data())
    def resave_unchanged_session(self, data: st.DataObject) -> None:
        """An unchanged save is a no-op, not an error and not a new version."""
        session = self.model.sessions[data.draw(st.sampled_from(sorted(self.model.sessions)))]
        stream = self.store.application.events
        before = len(list(stream.get(session.id)))
        self.store.save_session(session)
        assert len(list(stream.get(session.id))) == before

    @precondition(lambda self: self.model.erased)
    @rule(data=st.data())
    def recreate_erased_session(self, data: st.DataObject) -> None:
        """Saving an erased session's record again starts it afresh (sequence from 1)."""
        session = self.model.erased[data.draw(st.sampled_from(sorted(self.model.erased)))]
        self.store.save_session(session)
        self.model.save_session(session)

    @rule(data=st.data())
    def delete_session(self, data: st.DataObject) -> None:
        session_id = self.any_session_id(data)
        self.store.delete_session(session_id)
        self.model.delete_session(session_id)

    # runs -----------------------------------------------------------------------------

    @precondition(lambda self: self.model.sessions)
    @rule(data=st.data(), running=st.booleans())
    def new_run(self, data: st.DataObject, running: bool) -> None:
        session_id = data.draw(st.sampled_from(sorted(self.model.sessions)))
        run = Run.new(id=self.new_id("run"), session_id=session_id, input={"prompt": self.tick()})
        if running:
            run = run.with_status(RunStatus.RUNNING)
        self.expect(lambda: self.model.save_run(run), lambda: self.store.save_run(run))

    @precondition(lambda self: self.model.runs)
    @rule(data=st.data(), status=st.sampled_from(list(RunStatus)))
    def change_run_status(self, data: st.DataObject, status: RunStatus) -> None:
        run = self.model.runs[data.draw(st.sampled_from(sorted(self.model.runs)))]
        changed = run.with_status(status)
        self.expect(lambda: self.model.save_run(changed), lambda: self.store.save_run(changed))

    # events ---------------------------------------------------------------------------

    @rule(data=st.data())
    def append_one(self, data: st.DataObject) -> None:
        event = self.make_event(data)
        outcome = self.expect(
            lambda: self.model.append([event])[0],
            lambda: self.store.append_event_with_sequence(event),
        )
        if outcome is not None:
            expected, stored = outcome
            assert exact(stored) == exact(expected)

    @rule(data=st.data(), size=st.integers(1, 5))
    def append_batch(self, data: st.DataObject, size: int) -> None:
        batch: list[Event] = []
        for _ in range(size):
            if batch and data.draw(st.integers(0, 4)) == 0:
                batch.append(data.draw(st.sampled_from(batch)))  # duplicate inside the batch
            else:
                batch.append(self.make_event(data))
        outcome = self.expect(
            lambda: self.model.append(batch), lambda: self.store.append_events(batch)
        )
        if outcome is not None:
            expected, stored = outcome
            assert len(stored) == len(batch)
            assert exact_all(stored) == exact_all(expected)

    @rule(data=st.data())
    def flush(self, data: st.DataObject) -> None:
        sessions = sorted(self.model.sessions)
        if sessions and data.draw(st.booleans()):
            session = self.model.sessions[data.draw(st.sampled_from(sessions))]
            if data.draw(st.booleans()):
                session = session.with_status(data.draw(st.sampled_from(list(SessionStatus))))
        else:
            session = Session.new(
                id=self.new_id("ses"), agent_id=data.draw(st.sampled_from(AGENTS))
            )
        runs = [r for r in self.model.runs.values() if r.session_id == session.id]
        if runs and data.draw(st.booleans()):
            run = data.draw(st.sampled_from(runs))
        else:
            run = Run.new(id=self.new_id("run"), session_id=session.id)
        run = run.with_status(data.draw(st.sampled_from(list(RunStatus))))
        events = [
            self.make_event(data, session_id=session.id)
            for _ in range(data.draw(st.integers(0, 4)))
        ]
        if data.draw(st.integers(0, 5)) == 0:
            # An event for a session nobody saved must sink the whole flush.
            events.append(self.make_event(data, session_id=UNKNOWN_SESSION))
        result = ExecutionResult(session=session, run=run, events=events)
        self.expect(
            lambda: self.model.flush(session, run, events), lambda: self.store.flush(result)
        )

    # queries --------------------------------------------------------------------------

    @rule(data=st.data())
    def query_events(self, data: st.DataObject) -> None:
        session_id = self.any_session_id(data)
        log = self.model.events.get(session_id, [])
        top = len(log) + 2
        runs = sorted({e.run_id for e in log if e.run_id is not None})
        choices = {
            "run_id": st.sampled_from(["run_not_saved", *runs]),
            "type": st.sampled_from(EVENT_TYPES),
            "since": st.sampled_from([e.timestamp for e in log] or [datetime.now(UTC)]),
            "after": st.integers(0, top),
            "before": st.integers(0, top),
            "limit": st.integers(1, 5),
        }
        # Each filter on or off independently, so that each is often tried alone.
        filters: dict[str, Any] = {
            name: data.draw(strategy) if data.draw(st.booleans()) else None
            for name, strategy in choices.items()
        }
        got = self.store.get_events(session_id, **filters)
        assert exact_all(got) == exact_all(self.model.get_events(session_id, **filters))

    @rule(
        status=st.sampled_from([None, *SessionStatus]),
        agent_id=st.sampled_from([None, *AGENTS, "nobody"]),
    )
    def query_sessions(self, status: SessionStatus | None, agent_id: str | None) -> None:
        got = self.store.list_sessions(status=status, agent_id=agent_id)
        assert exact_all(got) == exact_all(self.model.list_sessions(status, agent_id))

    @rule(data=st.data(), status=st.sampled_from([None, *RunStatus]))
    def query_runs(self, data: st.DataObject, status: RunStatus | None) -> None:
        session_id = self.any_session_id(data)
        got = self.store.list_runs(session_id, status=status)
        assert exact_all(got) == exact_all(self.model.list_runs(session_id, status))

    # invariants -----------------------------------------------------------------------

    @invariant()
    def live_sessions_agree(self) -> None:
        for session_id, session in self.model.sessions.items():
            assert exact(self.store.get_session(session_id)) == exact(session)
            assert self.store.get_latest_sequence(session_id) == self.model.latest_sequence(
                session_id
            )
            log = self.store.get_events(session_id)
            assert [e.sequence_number for e in log] == list(range(1, len(log) + 1))
            assert exact_all(log) == exact_all(self.model.events.get(session_id, []))
            if log:
                # ``since`` is inclusive on every backend: the boundary event is in.
                since = log[-1].timestamp
                expected = [e for e in log if e.timestamp >= since]
                got = self.store.get_events(session_id, since=since)
                assert exact_all(got) == exact_all(expected)

    @invariant()
    def erased_sessions_are_gone(self) -> None:
        for session_id in [*self.model.erased, UNKNOWN_SESSION]:
            assert refusal(partial(self.store.get_session, session_id)) == "session_not_found"
            assert self.store.get_events(session_id) == []
            assert self.store.get_latest_sequence(session_id) == 0
            assert self.store.list_runs(session_id) == []
            assert self.store.get_active_run(session_id) is None

    @invariant()
    def runs_agree(self) -> None:
        for run_id, run in self.model.runs.items():
            assert exact(self.store.get_run(run_id)) == exact(run)
        for run_id in self.model.erased_runs:
            assert refusal(partial(self.store.get_run, run_id)) == "run_not_found"

    @invariant()
    def session_list_agrees(self) -> None:
        got = self.store.list_sessions()
        assert exact_all(got) == exact_all(self.model.list_sessions(None, None))

    @invariant()
    def active_runs_agree(self) -> None:
        for session_id in self.model.sessions:
            got = self.store.get_active_run(session_id)
            running = self.model.running_runs(session_id)
            if not running:
                assert got is None
                continue
            assert got is not None
            latest = max(r.started_at for r in running)
            candidates = [r for r in running if r.started_at == latest]
            # Ties on ``started_at`` have no documented winner: any of them will do.
            assert exact(got) in exact_all(candidates)


class SQLiteStoreMachine(StoreMachine):
    backend = "sqlite"


MACHINE_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    database=None,
    # Shrinking a failing run of this machine took 2-5 minutes here (every candidate
    # replays up to 30 steps and their invariants), past the suite's time budget. The
    # unshrunk steps are printed all the same; add Phase.shrink locally to minimise them.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

TestMemoryStoreAgainstModel = StoreMachine.TestCase
TestMemoryStoreAgainstModel.settings = MACHINE_SETTINGS

TestSQLiteStoreAgainstModel = SQLiteStoreMachine.TestCase
TestSQLiteStoreAgainstModel.settings = MACHINE_SETTINGS


class PostgresStoreMachine(StoreMachine):
    """A fresh schema per example on the real server (issue 3: the whole contract
    suite, state machine included, runs on PostgreSQL)."""

    backend = "postgres"


TestPostgresStoreAgainstModel = PostgresStoreMachine.TestCase
# 12 runs of the machine in `make test` (each a fresh schema, its slowest part); the
# long form is `make test-reliability`'s.
TestPostgresStoreAgainstModel.settings = settings(MACHINE_SETTINGS, max_examples=12)


# Deterministic cases of what the machine checks at random, so that a regression fails
# every run rather than when the generator happens to produce the case.


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = "memory://" if request.param == "memory" else "sqlite:///" + str(tmp_path / "s.db")
    with open_store(url) as opened:
        yield opened


def test_batch_duplicates_keep_input_order_for_sequence_numbers(store: Any) -> None:
    """New events are numbered in input order, first occurrence wins."""
    session = Session.new(agent_id="a")
    store.save_session(session)
    a = Event.new(id="evt_a", type="message_sent", session_id=session.id)
    b = Event.new(id="evt_b", type="message_sent", session_id=session.id)
    again = a.replace(data={"ignored": True})
    stored = store.append_events([a, b, again])
    assert [(e.id, e.sequence_number) for e in stored] == [
        ("evt_a", 1),
        ("evt_b", 2),
        ("evt_a", 1),
    ]
    assert stored[2].data == {}
    assert [(e.id, e.sequence_number) for e in store.get_events(session.id)] == [
        ("evt_a", 1),
        ("evt_b", 2),
    ]


def test_erasure_frees_ids_and_restarts_the_sequence(store: Any) -> None:
    session = Session.new(agent_id="a")
    store.save_session(session)
    first = Event.new(id="evt_1", type="message_sent", session_id=session.id)
    store.append_events([first, Event.new(type="message_sent", session_id=session.id)])
    store.delete_session(session.id)
    assert refusal(lambda: store.append_event(first)) == "session_not_found"
    store.save_session(session)
    again = first.replace(data={"second life": True})
    assert exact(store.append_event_with_sequence(again)) == exact(again.with_sequence(1))
    assert store.get_latest_sequence(session.id) == 1
