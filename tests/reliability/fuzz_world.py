"""The records each fuzzing example creates, and how ``test_fuzz.py`` judges a call.

Every example starts from fresh records (:class:`Example`): a *victim* session with a
running run, two events and an artifact, and an empty *host* session that fuzzed runs
and events go to. A call is then judged by three things: its outcome (an answer, or an
``AgentSessionsError`` with a stable code, ``validation_error`` naming an argument),
the store's content (records compared exactly, the notification log's head for "wrote
nothing"), and whether the store still works afterwards (:func:`still_works`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from fuzz_strategies import IdForm, Victims, id_forms, sometimes
from hypothesis import strategies as st

from agent_sessions import (
    AgentSessionsError,
    Artifact,
    ErrorCode,
    Event,
    EventType,
    Run,
    RunStatus,
    Session,
)
from agent_sessions.composition import Store

_T = TypeVar("_T")

# the records of an example ----------------------------------------------------------

T1 = datetime(2020, 1, 1, tzinfo=UTC)
T2 = datetime(2021, 1, 1, tzinfo=UTC)


@dataclass
class Example:
    """The records an example creates before its fuzzed call, all with fresh ids."""

    ids: Victims
    agent: str
    victim: Session
    run: Run
    events: list[Event]
    artifact: Artifact
    host: Session

    @classmethod
    def create(cls, store: Store) -> Example:
        n = uuid.uuid4().hex[:12]
        agent = f"agent_{n}"
        victim = Session.new(
            agent_id=agent, id=f"vs_{n}", metadata={"m": 1}, context={"c": [1.5, "x"]}, tags=["t"]
        )
        store.save_session(victim)
        run = Run.new(session_id=victim.id, id=f"vr_{n}", input={"prompt": "p"})
        run = run.with_status(RunStatus.RUNNING)
        store.save_run(run)
        events = store.append_events(
            [
                Event.new(
                    type=EventType.MESSAGE_SENT,
                    session_id=victim.id,
                    id=f"ve_{n}_1",
                    run_id=run.id,
                    timestamp=T1,
                    data={"n": 1},
                ),
                Event.new(
                    type=EventType.TOOL_CALL_STARTED,
                    session_id=victim.id,
                    id=f"ve_{n}_2",
                    timestamp=T2,
                    data={"n": 2.0},
                ),
            ]
        )
        artifact = store.put_artifact(victim.id, run.id, f"vk_{n}", b"victim", metadata={"k": 1})
        host = Session.new(agent_id=f"host_{n}", id=f"hs_{n}")
        store.save_session(host)
        ids = Victims(
            session=victim.id,
            run=run.id,
            event=events[0].id,
            key=artifact.key,
            host=host.id,
            fresh=f"fz_{n}",
        )
        return cls(ids, agent, victim, run, events, artifact, host)

    def snapshot(self, store: Store) -> dict[str, Any]:
        """Everything of the example's records a call could change, exactly."""
        v = self.ids
        q = store.query()
        return {
            "victim": exact(store.get_session(v.session)),
            "host": exact(store.get_session(v.host)),
            "listed": exact_all(store.list_sessions(agent_id=self.agent)),
            "searched": exact_all(q.search_sessions(agent_id=self.agent).sessions),
            "run": exact(store.get_run(v.run)),
            "runs": exact_all(store.list_runs(v.session)),
            "host runs": exact_all(store.list_runs(v.host)),
            "searched runs": exact_all(q.search_runs(session_id=v.session).runs),
            "active": exact(store.get_active_run(v.session)),
            "events": exact_all(store.get_events(v.session)),
            "host events": exact_all(store.get_events(v.host)),
            "searched events": exact_all(q.search_events(session_ids=[v.session]).events),
            "latest": (store.get_latest_sequence(v.session), store.get_latest_sequence(v.host)),
            "artifact": exact(store.registry.get_by_key(v.key)),
            "artifacts": exact_all(store.registry.list_by_session(v.session)),
            "blob": store.get_artifact(v.key),
        }


def head(store: Store) -> int:
    """The position of the newest stored event: a write that stored nothing leaves it."""
    return int(store.application.recorder.max_notification_id() or 0)


def still_works(store: Store, example: Example) -> None:
    """A normal write and read succeed, an append to the example's session is not
    blocked by whatever the call stored, and the store is consistent."""
    v = example.ids
    session = Session.new(agent_id="after", id=f"{v.fresh}_after")
    store.save_session(session)
    assert exact(store.get_session(session.id)) == exact(session)
    [mine] = store.append_events([Event.new(type=EventType.MESSAGE_SENT, session_id=session.id)])
    assert exact_all(store.get_events(session.id)) == [exact(mine)]
    [victims] = store.append_events(
        [Event.new(type=EventType.MESSAGE_SENT, session_id=v.session, id=f"{v.fresh}_late")]
    )
    assert victims.sequence_number == store.get_latest_sequence(v.session)
    assert store.maintenance().health_check() == []


# comparing exactly -------------------------------------------------------------------


def exact(record: Any) -> str | None:
    """A record (or ``None``) as canonical JSON: equal texts mean equal content, types
    of JSON values included. The record ``version`` (where records carry one) is the
    stream position it was read at, not content, and is left out."""
    if record is None:
        return None
    content = record.to_dict()
    content.pop("version", None)
    return json.dumps(content, sort_keys=True)


def exact_all(records: Any) -> list[str | None]:
    return [exact(record) for record in records]


def same_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# outcomes ----------------------------------------------------------------------------


@dataclass
class Refused:
    error: AgentSessionsError


def attempt(call: Callable[[], _T]) -> _T | Refused:
    """The call's result, or its coded refusal. Any other exception fails the test."""
    try:
        return call()
    except AgentSessionsError as error:
        return Refused(error)


def names_field(error: AgentSessionsError, fields: set[str]) -> bool:
    """The error names one of ``fields`` (``token_usage.input_tokens`` names
    ``token_usage``)."""
    field = error.details.get("field")
    return isinstance(field, str) and (field in fields or field.split(".")[0] in fields)


def assert_coded(
    error: AgentSessionsError, fields: set[str], codes: frozenset[str] = frozenset()
) -> None:
    """Bad input is ``validation_error`` naming one of ``fields``; ``codes`` are the
    other refusals the call may make (``session_not_found``...)."""
    detail = f"{error!r} details={error.details}"
    assert error.code in {ErrorCode.VALIDATION_ERROR, *codes}, detail
    if error.code == ErrorCode.VALIDATION_ERROR:
        assert names_field(error, fields), f"names no field of {sorted(fields)}: {detail}"


def build(
    make: Callable[[], _T], fields: set[str], codes: frozenset[str] = frozenset()
) -> _T | None:
    """A record, or ``None`` when its constructor refused it as it must."""
    outcome = attempt(make)
    if isinstance(outcome, Refused):
        assert_coded(outcome.error, fields, codes)
        return None
    return outcome


def draw_fields(
    data: st.DataObject, strategies: Mapping[str, st.SearchStrategy[Any]], label: str
) -> dict[str, Any]:
    """A random subset of the fields, each with a drawn value."""
    names = data.draw(st.sets(st.sampled_from(sorted(strategies))), label=f"{label} fields")
    return {name: data.draw(strategies[name], label=f"{label}.{name}") for name in sorted(names)}


def not_itself(bases: list[str]) -> Callable[[IdForm], bool]:
    """Forms other than the plain id of a record of the same kind (saving that would be
    a legitimate update of the example's own record)."""
    return lambda form: not (form.prefix == "" and form.suffix == "" and form.base in bases)


def record_ids(same_kind: list[str], *, valid: bool = False) -> st.SearchStrategy[Any]:
    """A record's id: a fresh one, or another record's (with a prefix or not), never
    the plain id of the example's record of the same kind. Anything at all sometimes,
    unless ``valid``."""
    forms = id_forms(valid=valid).filter(not_itself(same_kind))
    fresh = id_forms(bases=["fresh"], prefixes=[""], valid=valid)
    return forms | fresh if valid else sometimes(forms | fresh)


STATUS_CODES = frozenset({ErrorCode.INVALID_STATUS})
EVENT_CODES = frozenset({ErrorCode.INVALID_EVENT_TYPE})


__all__ = [
    "EVENT_CODES",
    "STATUS_CODES",
    "T1",
    "T2",
    "Example",
    "Refused",
    "assert_coded",
    "attempt",
    "build",
    "draw_fields",
    "exact",
    "exact_all",
    "head",
    "names_field",
    "not_itself",
    "record_ids",
    "same_json",
    "still_works",
]
