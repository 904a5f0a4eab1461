"""One write of each kind, with what the store must hold after it: the writes the fault
tests interrupt (a connection terminated or cut mid-transaction, a commit whose answer
is lost) and then expect to complete exactly once.

Each scenario prepares a session with a run and five events, makes its one write, and
checks the outcome: the returned value, the records, every event exactly once with
gap-free sequence numbers (pruned ones apart).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from store_checks import assert_gap_free

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    ExecutionResult,
    Run,
    Session,
)
from agent_sessions.composition import Store


@dataclass
class Prepared:
    session: Session
    run: Run
    event_ids: list[str]


def prepare(store: Store, name: str) -> Prepared:
    session = Session.new(id=f"s-{name}", agent_id="faults", metadata={"n": 0})
    store.save_session(session)
    run = Run.new(id=f"r-{name}-0", session_id=session.id).with_status("running")
    store.save_run(run)
    events = _events(f"{name}-0", session.id, 5)
    store.append_events(events)
    return Prepared(session, run, [e.id for e in events])


def _events(name: str, session_id: str, count: int, run_id: str | None = None) -> list[Event]:
    return [
        Event.new(
            id=f"e-{name}-{i}",
            type=EventType.MESSAGE_STREAMED,
            session_id=session_id,
            run_id=run_id,
            data={"id": f"e-{name}-{i}"},
        )
        for i in range(count)
    ]


def _stored_once(store: Store, prepared: Prepared, more: list[str]) -> None:
    stored = store.get_events(prepared.session.id)
    assert [e.id for e in stored] == [*prepared.event_ids, *more]
    assert [e.sequence_number for e in stored] == list(range(1, len(stored) + 1))
    assert all(e.data["id"] == e.id for e in stored)


class Scenario(Protocol):
    name: str

    def write(self, store: Store, prepared: Prepared) -> Any:
        """Make the one write; return what the store returned."""
        ...

    def check(self, store: Store, prepared: Prepared, result: Any) -> None:
        """Fail unless the store holds the write exactly once."""
        ...


class Append:
    name = "append"

    def write(self, store: Store, prepared: Prepared) -> Any:
        self.batch = _events("more", prepared.session.id, 4)
        return store.append_events(self.batch)

    def check(self, store: Store, prepared: Prepared, result: Any) -> None:
        assert [(e.id, e.sequence_number) for e in result] == [
            (e.id, 6 + i) for i, e in enumerate(self.batch)
        ]
        _stored_once(store, prepared, [e.id for e in self.batch])


class Flush:
    name = "flush"

    def write(self, store: Store, prepared: Prepared) -> Any:
        session = prepared.session.with_metadata({"n": 1}).with_status("active")
        run = Run.new(id=f"r-{session.id}-1", session_id=session.id).set_output({"n": 1})
        self.batch = _events("flushed", session.id, 3, run.id)
        self.run_id = run.id
        store.flush(ExecutionResult(session=session, run=run, events=self.batch))

    def check(self, store: Store, prepared: Prepared, result: Any) -> None:
        assert store.get_session(prepared.session.id).metadata["n"] == 1
        assert store.get_run(self.run_id).output == {"n": 1}
        runs = sorted(r.id for r in store.list_runs(prepared.session.id))
        assert runs == sorted([prepared.run.id, self.run_id])
        _stored_once(store, prepared, [e.id for e in self.batch])


class Save:
    name = "save"

    def write(self, store: Store, prepared: Prepared) -> Any:
        store.save_session(prepared.session.with_metadata({"n": 1}).with_tags(["saved"]))

    def check(self, store: Store, prepared: Prepared, result: Any) -> None:
        record = store.get_session(prepared.session.id)
        assert record.metadata["n"] == 1
        assert record.tags == ("saved",)
        _stored_once(store, prepared, [])


class Erase:
    name = "erase"

    def write(self, store: Store, prepared: Prepared) -> Any:
        store.delete_session(prepared.session.id)

    def check(self, store: Store, prepared: Prepared, result: Any) -> None:
        with pytest.raises(AgentSessionsError) as caught:
            store.get_session(prepared.session.id)
        assert caught.value.code == "session_not_found"
        assert store.get_events(prepared.session.id) == []
        assert store.get_events_by_ids(prepared.event_ids) == []
        assert store.list_runs(prepared.session.id) == []
        assert store.get_latest_sequence(prepared.session.id) == 0


class Prune:
    name = "prune"

    def write(self, store: Store, prepared: Prepared) -> Any:
        return store.prune_events(prepared.session.id, [2, 3])

    def check(self, store: Store, prepared: Prepared, result: Any) -> None:
        stored = assert_gap_free(store, prepared.session.id, [2, 3])
        assert stored == [1, 4, 5]
        assert result == 2, f"prune_events pruned 2 events but returned {result}"


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    scenario.name: scenario for scenario in (Append, Flush, Save, Erase, Prune)
}
