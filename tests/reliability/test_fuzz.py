"""Fuzzing every public entry point with hostile input (issue 11, the reliability
suite's *Fuzzing* section), on memory, SQLite and PostgreSQL.

The property, for every call: either the value is stored and reads back identical
(records compared exactly: ``1``, ``1.0`` and ``True`` differ, key order does not),
through every read that returns it (the port, ``QueryAPI``, the registry), or the call
raises an ``AgentSessionsError`` with a stable code, ``validation_error`` naming the
argument in ``details["field"]`` for bad input. Never another exception; never a partial
write (after a refused write the store's notification log has not moved and the
records each example created first are unchanged); and the store still works
afterwards (a normal write and read succeed, appends to the example's session are not
blocked, ``health_check()`` is clean).

Each example creates its own records first, with fresh ids (``Example`` in
``fuzz_world.py``): a session with a run, two events and an artifact (the *victims*)
and an empty *host* session the fuzzed runs and events go to. Fuzzed ids are drawn as
forms of those ids (a run's id for a session, ``log:<session id>``, another session's
event id...), so that one store per test serves every example (a PostgreSQL schema per
test, not per example) and what each call must leave alone is known. Half the examples
draw records every field of which is valid, so that they reach the store; the others
draw hostile values and wrong types. Strategies live in ``fuzz_strategies.py``.

``make test`` runs each property with a few examples (``QUICK``); the ``_long`` forms,
marked ``slow``, run many more (``make test-reliability``).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from fuzz_strategies import (
    BASES,
    OPTION_NAMES,
    ORDERS,
    CursorForm,
    IdForm,
    ManyIds,
    anything,
    artifact_targets,
    aware,
    costs,
    counts,
    cursor_forms,
    cursor_values,
    envelopes,
    event_types,
    flags,
    hostile_json_values,
    hostile_text,
    id_forms,
    ids,
    json_maps,
    json_values,
    limits,
    many_ids,
    map_field,
    nested,
    option_values,
    optional_text,
    positions,
    sometimes,
    statuses,
    tags,
    text,
    timestamps,
    token_usage,
    valid_text,
    waits,
    word,
)
from fuzz_world import (
    EVENT_CODES,
    STATUS_CODES,
    Example,
    Refused,
    assert_coded,
    attempt,
    build,
    draw_fields,
    exact,
    exact_all,
    head,
    not_itself,
    record_ids,
    same_json,
    still_works,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from pg_server import fresh_schema
from s3_server import CREDENTIALS, s3_client, s3_endpoint

from agent_sessions import (
    ErrorCode,
    Event,
    EventType,
    ExecutionResult,
    FileArtifactStore,
    RetentionPolicy,
    Run,
    RunStatus,
    S3ArtifactStore,
    ScriptedProvider,
    Session,
    SessionManager,
    SessionStatus,
    open_store,
    stream_session_events,
)
from agent_sessions.artifacts.artifact_input import MAX_METADATA_BYTES, key_bytes
from agent_sessions.composition import Store

__all__ = ["s3_endpoint"]  # the fixture, imported so that pytest finds it here

_T = TypeVar("_T")

INT64_MAX = 2**63 - 1
QUICK = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
LONG = settings(QUICK, max_examples=300)

# the store of a test ------------------------------------------------------------------


def outcome_kind(outcome: Any) -> str:
    """How a call ended, for Hypothesis' statistics (``--hypothesis-show-statistics``):
    a fuzzer whose calls are all refused by the record constructors tests little."""
    return f"refused: {outcome.error.code}" if isinstance(outcome, Refused) else "stored"


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """One store per test (every example of it), with a file artifact store."""
    with open_store(store_url, artifacts=(tmp_path / "artifacts").as_uri()) as opened:
        yield opened


# sessions ------------------------------------------------------------------------------

SESSION_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "agent_id": sometimes(word | hostile_text),
    "status": statuses(SessionStatus),
    "parent_session_id": st.none() | ids(),
    "metadata": map_field(),
    "context": map_field(),
    "tags": tags,
    "created_at": timestamps,
    "updated_at": timestamps,
    "deleted_at": st.none() | timestamps,
}
#: Values each field takes: half the records are drawn from these, so that they reach
#: the store (a hostile value in any field refuses the whole record).
SESSION_VALID: dict[str, st.SearchStrategy[Any]] = {
    "agent_id": word | valid_text.filter(bool),
    "status": st.sampled_from([*SessionStatus]),
    "parent_session_id": st.none() | id_forms(valid=True),
    "metadata": json_maps(),
    "context": json_maps(),
    "tags": st.lists(word | valid_text, max_size=3),
    "created_at": aware,
    "updated_at": aware,
    "deleted_at": st.none() | aware,
}
#: A hostile value put into a record's map after it was built: maps are mutable.
late_values = st.none() | st.tuples(
    st.sampled_from(["metadata", "context"]), hostile_json_values() | json_values()
)


def draw_session(
    data: st.DataObject, example: Example, label: str, *, valid: bool
) -> Session | None:
    """A session of fields drawn from ``SESSION_VALID`` (``valid``: it reaches the
    store) or ``SESSION_FIELDS`` (hostile), or ``None`` when refused as it must be."""
    fields = draw_fields(data, SESSION_VALID if valid else SESSION_FIELDS, label)
    same_kind = ["session", "host"]
    fields["id"] = data.draw(record_ids(same_kind, valid=valid), label=f"{label}.id")
    fields.setdefault("agent_id", f"{example.agent}_fuzz")
    fields = {k: example.ids.resolve(v) for k, v in fields.items()}
    return build(lambda: Session(**fields), set(fields), STATUS_CODES)


def check_save_session(store: Store, data: st.DataObject) -> None:
    example = Example.create(store)
    valid = data.draw(st.booleans(), label="valid")
    session = draw_session(data, example, "session", valid=valid)
    if session is None:
        still_works(store, example)
        return
    late = data.draw(late_values, label="late")
    fields = {"id", "agent_id", "metadata", "context", "tags", "status", "parent_session_id"}
    if late is not None:
        name, value = late
        getattr(session, name)["late"] = value
        fields = {name}
    before, position = example.snapshot(store), head(store)
    outcome = attempt(lambda: store.save_session(session))
    hypothesis_event(outcome_kind(outcome))
    if isinstance(outcome, Refused):
        assert_coded(outcome.error, fields | {"session"})  # "session": too large
        assert head(store) == position, "a refused save_session wrote"
        if example.ids.fresh in session.id:
            assert isinstance(attempt(lambda: store.get_session(session.id)), Refused)
    else:
        stored = exact(session)
        assert exact(store.get_session(session.id)) == stored
        listed = store.list_sessions(agent_id=session.agent_id)
        assert stored in exact_all(listed)
        found = store.query().search_sessions(
            agent_id=session.agent_id,
            created_after=session.created_at,
            created_before=session.created_at,
            include_deleted=True,
        )
        assert stored in exact_all(found.sessions)
        assert exact(store.query().export_session(session.id).session) == stored
    assert example.snapshot(store) == before
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_save_session(store: Store, data: st.DataObject) -> None:
    check_save_session(store, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_save_session_long(store: Store, data: st.DataObject) -> None:
    check_save_session(store, data)


# runs ----------------------------------------------------------------------------------

RUN_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "status": statuses(RunStatus),
    "input": st.none() | map_field(),
    "output": st.none() | map_field(),
    "error": st.none() | map_field(),
    "metadata": map_field(),
    "turn_count": counts,
    "token_usage": token_usage,
    "started_at": timestamps,
    "ended_at": st.none() | timestamps,
    "provider": optional_text,
    "provider_metadata": map_field(),
    "cost_usd": costs,
}
RUN_VALID: dict[str, st.SearchStrategy[Any]] = {
    "status": st.sampled_from([*RunStatus]),
    "input": st.none() | json_maps(),
    "output": st.none() | json_maps(),
    "error": st.none() | json_maps(),
    "metadata": json_maps(),
    "turn_count": st.integers(0, INT64_MAX),
    "token_usage": st.dictionaries(
        st.sampled_from(["input_tokens", "output_tokens", "total_tokens", "x"]),
        st.integers(0, INT64_MAX) | st.floats(0, 1e18) | json_values(max_leaves=2),
        max_size=4,
    ),
    "started_at": aware,
    "ended_at": st.none() | aware,
    "provider": st.none() | word | valid_text,
    "provider_metadata": json_maps() | st.builds(lambda m: {"model": m}, text),
    "cost_usd": st.none() | st.floats(0, 1e300) | st.integers(0, 10**30),
}
#: A run's session: the host (exists), a fresh id (does not), or another form.
run_sessions = sometimes(
    st.just(IdForm("host"))
    | st.just(IdForm("host"))
    | id_forms(prefixes=["", "log:", "run:"]).filter(not_itself(["session"]))
)


def draw_run(
    data: st.DataObject, example: Example, label: str, session_id: Any, *, valid: bool
) -> Run | None:
    fields = draw_fields(data, RUN_VALID if valid else RUN_FIELDS, label)
    fields["id"] = data.draw(record_ids(["run"], valid=valid), label=f"{label}.id")
    fields["session_id"] = session_id
    fields = {k: example.ids.resolve(v) for k, v in fields.items()}
    return build(lambda: Run(**fields), set(fields), STATUS_CODES)


def check_save_run(store: Store, data: st.DataObject) -> None:
    example = Example.create(store)
    v = example.ids
    valid = data.draw(st.booleans(), label="valid")
    sessions = st.just(IdForm("host")) if valid else run_sessions
    run_session = data.draw(sessions, label="run.session_id")
    run = draw_run(data, example, "run", run_session, valid=valid)
    if run is None:
        still_works(store, example)
        return
    late = data.draw(
        st.none()
        | st.tuples(
            st.sampled_from(["metadata", "provider_metadata", "token_usage"]),
            hostile_json_values() | json_values(),
        ),
        label="late",
    )
    fields = set(RUN_FIELDS) | {"id", "session_id"}
    if late is not None:
        name, value = late
        getattr(run, name)["late"] = value
        fields = {name}
    before, position = example.snapshot(store), head(store)
    outcome = attempt(lambda: store.save_run(run))
    hypothesis_event(outcome_kind(outcome))
    if isinstance(outcome, Refused):
        codes = frozenset({ErrorCode.SESSION_NOT_FOUND})
        assert_coded(outcome.error, fields | {"run"}, codes)
        if outcome.error.code == ErrorCode.SESSION_NOT_FOUND:
            assert run.session_id != v.host, outcome.error
        assert head(store) == position, "a refused save_run wrote"
        if v.fresh in run.id:
            assert isinstance(attempt(lambda: store.get_run(run.id)), Refused)
    else:
        assert run.session_id == v.host, "a run of a session that does not exist was saved"
        stored = exact(run)
        assert exact(store.get_run(run.id)) == stored
        assert exact_all(store.list_runs(v.host)) == [stored]
        assert exact_all(store.query().search_runs(session_id=v.host).runs) == [stored]
        active = store.get_active_run(v.host)
        assert exact(active) == (stored if run.status is RunStatus.RUNNING else None)
        before["host runs"] = [stored]
    assert example.snapshot(store) == before
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_save_run(store: Store, data: st.DataObject) -> None:
    check_save_run(store, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_save_run_long(store: Store, data: st.DataObject) -> None:
    check_save_run(store, data)


# events --------------------------------------------------------------------------------

EVENT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "timestamp": timestamps,
    "run_id": st.none() | ids(),
    "data": map_field(),
    "metadata": map_field(),
    "sequence_number": positions,
    "schema_version": sometimes(st.sampled_from([1, 2, 0, -1, 10**30])),
    "provider": optional_text,
    "correlation_id": optional_text,
}
EVENT_VALID: dict[str, st.SearchStrategy[Any]] = {
    "timestamp": aware,
    "run_id": st.none() | id_forms(valid=True),
    "data": json_maps(),
    "metadata": json_maps(),
    "sequence_number": st.none() | st.integers(1, INT64_MAX),
    "schema_version": st.just(1),
    "provider": st.none() | word | valid_text,
    "correlation_id": st.none() | word | valid_text,
}
#: An event's id: fresh (one of a few, so batches repeat ids), another session's event
#: id (``already_exists``), another record's id, or anything.
event_ids = sometimes(
    st.sampled_from([IdForm("fresh", suffix=f"_e{i}") for i in range(3)])
    | id_forms(bases=["event", "session", "run", "host"])
)
valid_event_ids = st.sampled_from([IdForm("fresh", suffix=f"_e{i}") for i in range(3)]) | id_forms(
    bases=["event", "session", "run", "host"], valid=True
)
valid_event_sessions = st.sampled_from([IdForm("host")] * 3) | id_forms(
    prefixes=["", "log:", "session:"], valid=True
).filter(lambda form: form != IdForm("session"))
event_sessions = sometimes(
    st.just(IdForm("host")) | st.just(IdForm("host")) | id_forms(prefixes=["", "log:", "session:"])
).filter(lambda form: form != IdForm("session"))


def draw_event(
    data: st.DataObject, example: Example, label: str, session_id: Any, *, valid: bool
) -> Event | None:
    fields = draw_fields(data, EVENT_VALID if valid else EVENT_FIELDS, label)
    fields["id"] = data.draw(valid_event_ids if valid else event_ids, label=f"{label}.id")
    types = st.sampled_from([*EventType]) if valid else event_types
    fields["type"] = data.draw(types, label=f"{label}.type")
    fields["session_id"] = session_id
    fields = {k: example.ids.resolve(v) for k, v in fields.items()}
    codes = EVENT_CODES | {ErrorCode.MIGRATION_REQUIRED}  # a newer schema_version
    return build(lambda: Event(**fields), set(fields), codes)


def draw_batch(
    data: st.DataObject, example: Example, session: Any, *, valid: bool
) -> list[Event] | None:
    """One to four events, mostly of ``session``; ``None`` when one is refused."""
    size = data.draw(st.integers(1, 4), label="batch size")
    batch = []
    for i in range(size):
        sid = session if data.draw(st.integers(0, 3), label=f"event{i} here") else None
        if sid is None:
            others = valid_event_sessions if valid else event_sessions
            sid = data.draw(others, label=f"event{i}.session_id")
        event = draw_event(data, example, f"event{i}", sid, valid=valid)
        if event is None:
            return None
        batch.append(event)
    return batch


def expected_append(
    batch: list[Event], stored: dict[str, Event], sessions: set[str], latest: dict[str, int]
) -> tuple[str | None, list[Event]]:
    """What the port promises for ``batch``: the refusal's code, or the new events in
    order (first occurrence of an id wins, an id stored in the same session is the
    stored original)."""
    first: dict[str, Event] = {}
    for event in batch:
        if first.setdefault(event.id, event).session_id != event.session_id:
            return ErrorCode.ALREADY_EXISTS, []
    for event in first.values():
        if event.id in stored and stored[event.id].session_id != event.session_id:
            return ErrorCode.ALREADY_EXISTS, []
    new = [event for event in first.values() if event.id not in stored]
    if any(event.session_id not in sessions for event in new):
        return ErrorCode.SESSION_NOT_FOUND, []
    numbered = []
    for event in new:
        latest[event.session_id] += 1
        numbered.append(event.with_sequence(latest[event.session_id]))
    return None, numbered


def check_append_events(store: Store, data: st.DataObject) -> None:
    example = Example.create(store)
    v = example.ids
    valid = data.draw(st.booleans(), label="valid")
    batch = draw_batch(data, example, IdForm("host"), valid=valid)
    if batch is None:
        still_works(store, example)
        return
    how = data.draw(st.sampled_from(["append_events", "append_event", "with_sequence"]))
    if how != "append_events":
        batch = batch[:1]
    stored = {e.id: e for e in example.events}
    latest = {v.session: 2, v.host: 0}
    code, new = expected_append(batch, stored, {v.session, v.host}, latest)
    before, position = example.snapshot(store), head(store)
    calls: dict[str, Callable[[], Any]] = {
        "append_events": lambda: store.append_events(batch),
        "append_event": lambda: store.append_event(batch[0]),
        "with_sequence": lambda: store.append_event_with_sequence(batch[0]),
    }
    outcome = attempt(calls[how])
    hypothesis_event(outcome_kind(outcome))
    if isinstance(outcome, Refused):
        # Valid records: the only validation_error left is the size bound ("event").
        assert_coded(outcome.error, {"event_id", "event"}, frozenset({code or ""}))
        if code is not None:
            assert outcome.error.code == code, outcome.error
        assert head(store) == position, "a refused append wrote"
        if not any(v.session in e.session_id for e in batch):
            assert v.session not in str(outcome.error.to_dict()), "the refusal names the victim"
    else:
        assert code is None, f"expected {code}, the append succeeded"
        by_id = {**stored, **{e.id: e for e in new}}
        expected = [by_id[e.id] for e in batch]
        if how == "append_events":
            assert exact_all(outcome) == exact_all(expected)
        elif how == "with_sequence":
            assert exact(outcome) == exact(expected[0])
        host_events = exact_all(e for e in new if e.session_id == v.host)
        assert exact_all(store.get_events(v.host)) == host_events
        by_ids = store.get_events_by_ids([e.id for e in batch])
        assert sorted(exact_all(by_ids)) == sorted(set(exact_all(expected)))
        searched = store.query().search_events(session_ids=[v.host]).events
        assert exact_all(searched) == host_events
        before["host events"] = host_events
        before["latest"] = (2, len(host_events))
    assert example.snapshot(store) == before
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_append_events(store: Store, data: st.DataObject) -> None:
    check_append_events(store, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_append_events_long(store: Store, data: st.DataObject) -> None:
    check_append_events(store, data)


# flush ---------------------------------------------------------------------------------


def check_flush(store: Store, data: st.DataObject) -> None:
    example = Example.create(store)
    v = example.ids
    valid = data.draw(st.booleans(), label="valid")
    session = draw_session(data, example, "session", valid=valid)
    if session is None:
        still_works(store, example)
        return
    # Mostly its own session; the host's is a run of another session (refused).
    sessions = st.just(session.id) | (st.just(IdForm("host")) if valid else run_sessions)
    run_session = data.draw(sessions, label="run.session_id")
    run = draw_run(data, example, "run", run_session, valid=valid)
    batch = draw_batch(data, example, session.id, valid=valid) if run is not None else None
    if run is None or batch is None:
        still_works(store, example)
        return
    given_result: Any = ExecutionResult(session=session, run=run, events=batch)
    if data.draw(st.booleans(), label="as a map"):
        given_result = {"session": session, "run": run, "events": batch}
    before, position = example.snapshot(store), head(store)
    stored = {e.id: e for e in example.events}
    latest = {v.session: 2, v.host: 0, session.id: 0}
    code, new = expected_append(batch, stored, {v.session, v.host, session.id}, latest)
    if run.session_id != session.id:
        code = ErrorCode.VALIDATION_ERROR
    outcome = attempt(lambda: store.flush(given_result))
    hypothesis_event(outcome_kind(outcome))
    if isinstance(outcome, Refused):
        fields = {"event_id", "events", "event", "session_id", "run", "session", "result"}
        assert_coded(outcome.error, fields, frozenset({code or ""}))
        assert head(store) == position, "a refused flush wrote"
        if v.fresh in run.id:
            assert isinstance(attempt(lambda: store.get_run(run.id)), Refused)
    else:
        assert code is None, f"expected {code}, the flush succeeded"
        assert exact(store.get_session(session.id)) == exact(session)
        assert exact(store.get_run(run.id)) == exact(run)
        mine = exact_all(e for e in new if e.session_id == session.id)
        assert exact_all(store.get_events(session.id)) == mine
        host_events = exact_all(e for e in new if e.session_id == v.host)
        before["host events"] = host_events
        before["latest"] = (2, len(host_events))
    assert example.snapshot(store) == before
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_flush(store: Store, data: st.DataObject) -> None:
    check_flush(store, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_flush_long(store: Store, data: st.DataObject) -> None:
    check_flush(store, data)


# records of the wrong type ---------------------------------------------------------------

#: Each write, and the names its refusal of a value of the wrong type may give.
WRITES: dict[str, set[str]] = {
    "save_session": {"session"},
    "save_run": {"run"},
    "append_events": {"events", "event"},
    "append_event": {"event", "events"},
    "append_event_with_sequence": {"event", "events"},
    "flush": {"result", "session", "run", "events"},
}


def wrong_records(example: Example) -> st.SearchStrategy[Any]:
    """Values a write must refuse: anything, records of another kind, a record's map,
    lists holding something else than events, results holding the wrong records."""
    session, run, event = example.host, example.run, example.events[0]
    return st.one_of(
        anything,
        st.sampled_from([session, run, event, example.artifact]),
        st.sampled_from([session.to_dict(), run.to_dict(), event.to_dict()]),
        st.sampled_from([[session], [event, run], [event, None], [event, event.to_dict()]]),
        st.sampled_from(
            [
                {"session": session},
                {"session": run, "run": session},
                {"session": session, "run": run, "events": event},
                {"session": session, "run": run, "events": [session]},
                ExecutionResult(session=session, run=run, events=event),  # type: ignore[arg-type]
            ]
        ),
    )


def valid_for(name: str, value: Any) -> bool:
    """Whether ``value`` is what the write takes (then it is not of the wrong type)."""

    def events(batch: Any) -> bool:
        return isinstance(batch, (list, tuple)) and all(isinstance(e, Event) for e in batch)

    if name == "save_session":
        return isinstance(value, Session)
    if name == "save_run":
        return isinstance(value, Run)
    if name == "flush":
        return (
            isinstance(value, ExecutionResult)
            and isinstance(value.session, Session)
            and isinstance(value.run, Run)
            and events(value.events)
        )
    if name == "append_events":
        return events(value)
    return isinstance(value, Event)


def check_wrong_record_types(store: Store, data: st.DataObject) -> None:
    example = Example.create(store)
    name = data.draw(st.sampled_from(sorted(WRITES)), label="write")
    value = data.draw(
        wrong_records(example).filter(lambda value: not valid_for(name, value)), label="value"
    )
    before, position = example.snapshot(store), head(store)
    outcome = attempt(lambda: getattr(store, name)(value))
    assert isinstance(outcome, Refused), f"{name}({value!r}) was accepted"
    assert_coded(outcome.error, WRITES[name])
    assert head(store) == position, f"a refused {name} wrote"
    assert example.snapshot(store) == before
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_records_of_the_wrong_type(store: Store, data: st.DataObject) -> None:
    check_wrong_record_types(store, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_records_of_the_wrong_type_long(store: Store, data: st.DataObject) -> None:
    check_wrong_record_types(store, data)


# artifacts -----------------------------------------------------------------------------

#: Artifact keys: plain, the store's own prefixes, paths that try to leave the root,
#: control characters, lone surrogates, more than 1,024 bytes, other types.
artifact_keys = sometimes(
    id_forms(bases=["fresh"], prefixes=["", "artifact:", "../", "/", "a/b/", "~/"])
    | id_forms(bases=["key"], prefixes=["artifact:", "../", "x/"])
    | st.sampled_from(["..", ".", "/", "\\", "a\nb", "\x7f", "k\x00", ".lock", "x" * 1025])
    | st.sampled_from(["é" * 512, "é" * 513, "\ud800"])
)
#: What ``put`` is given: bytes in its forms, chunks, a file, and what is not bytes.
artifact_data = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=64).map(bytearray),
    st.binary(max_size=64).map(memoryview),
    st.lists(st.binary(max_size=8), max_size=3),
    st.binary(max_size=64).map(io.BytesIO),
    st.sampled_from(["text", 5, None, ["text"], [b"ok", "text"], io.StringIO("x")]),
)
content_types = sometimes(
    st.none() | st.sampled_from(["text/plain", "application/json", "", "é", "a\nb", "a\x00"])
)
artifact_sessions = st.none() | sometimes(
    st.sampled_from([IdForm("host"), IdForm("fresh")]) | id_forms(prefixes=["", "log:"])
)


#: ``put_artifact``'s arguments: (hostile, valid) strategies. Each argument is hostile
#: one draw in four, so that one bad argument among good ones is common: the case where
#: a write that checks late has already written something.
PUT_ARGUMENTS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "session_id": (artifact_sessions, st.sampled_from([None, IdForm("host")])),
    "run_id": (st.none() | ids(), st.none() | id_forms(valid=True)),
    "key": (
        artifact_keys.filter(lambda k: k != IdForm("key")),
        id_forms(bases=["fresh"], prefixes=["", "artifact:", "../", "a/b/"], valid=True),
    ),
    "data": (artifact_data, st.binary(max_size=64)),
    "content_type": (content_types, st.sampled_from([None, "text/plain"])),
    "metadata": (st.none() | map_field(), st.none() | json_maps(max_leaves=4)),
}


def check_put_artifact(store: Store, data: st.DataObject) -> None:
    example = Example.create(store)
    v = example.ids
    arguments = {}
    for name, (hostile, valid) in PUT_ARGUMENTS.items():
        bad = data.draw(st.integers(0, 3), label=f"{name} hostile") == 0
        arguments[name] = v.resolve(data.draw(hostile if bad else valid, label=name))
    key = arguments["key"]
    payload = arguments["data"]
    expected = bytes(payload.getvalue() if isinstance(payload, io.BytesIO) else b"")
    if isinstance(payload, (bytes, bytearray, memoryview)):
        expected = bytes(payload)
    elif isinstance(payload, list) and all(isinstance(c, bytes) for c in payload):
        expected = b"".join(payload)
    valid_key = isinstance(key, str) and not isinstance(attempt(lambda: key_bytes(key)), Refused)
    before, position = example.snapshot(store), head(store)
    blobs = store.artifact_store
    assert blobs is not None
    outcome = attempt(
        lambda: store.put_artifact(
            arguments["session_id"],
            arguments["run_id"],
            key,
            payload,
            content_type=arguments["content_type"],
            metadata=arguments["metadata"],
        )
    )
    if isinstance(outcome, Refused):
        assert_coded(outcome.error, {*arguments, "artifact"})
        assert head(store) == position, "a refused put_artifact registered"
        if isinstance(key, str) and v.fresh in key and valid_key:
            assert store.registry.get_by_key(key) is None
            assert not blobs.exists(key), "a refused put_artifact left its blob"
    else:
        assert store.get_artifact(key) == expected
        assert store.open_artifact(key).read() == expected
        assert outcome.byte_size == len(expected)
        assert exact(store.registry.get_by_key(key)) == exact(outcome)
        session_id = arguments["session_id"]
        if session_id:
            assert exact(outcome) in exact_all(store.registry.list_by_session(session_id))
        store.delete_artifact(key)
        assert store.registry.get_by_key(key) is None
        assert not blobs.exists(key)
    assert example.snapshot(store) == before
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_put_artifact(store: Store, data: st.DataObject) -> None:
    check_put_artifact(store, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_put_artifact_long(store: Store, data: st.DataObject) -> None:
    check_put_artifact(store, data)


@pytest.fixture
def s3_store(s3_endpoint: str) -> Iterator[Store]:
    """A ``memory://`` store whose artifacts go to S3 (moto's server), under a prefix:
    keys count it against S3's 1,024 bytes."""
    bucket = f"fuzz-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    blobs = S3ArtifactStore(bucket, "fuzz/", endpoint_url=s3_endpoint, **CREDENTIALS)
    with open_store("memory://", artifacts=blobs) as opened:
        yield opened


@pytest.mark.slow
@settings(LONG, max_examples=100)
@given(data=st.data())
def test_put_artifact_s3_long(s3_store: Store, data: st.DataObject) -> None:
    check_put_artifact(s3_store, data)


REGISTER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "byte_size": counts,
    "checksum_sha256": sometimes(word | hostile_text),
    "storage_backend": sometimes(st.sampled_from(["file", "s3"]) | hostile_text),
    "storage_ref": sometimes(word | hostile_text),
    "session_id": artifact_sessions,
    "run_id": st.none() | ids(),
    "content_type": content_types,
    "metadata": st.none() | map_field(),
}


def check_registry(store: Store, data: st.DataObject) -> None:
    """The registry's own entry points: ``register`` with any fields, and its reads
    with any arguments."""
    example = Example.create(store)
    v = example.ids
    registry = store.registry
    fields = {
        "byte_size": 1,
        "checksum_sha256": "0" * 64,
        "storage_backend": "file",
        "storage_ref": "file:///nowhere",
        **draw_fields(data, REGISTER_FIELDS, "register"),
        "key": data.draw(artifact_keys.filter(lambda k: k != IdForm("key")), label="key"),
    }
    fields = {k: v.resolve(value) for k, value in fields.items()}
    before, position = example.snapshot(store), head(store)
    outcome = attempt(lambda: registry.register(**fields))
    if isinstance(outcome, Refused):
        assert_coded(outcome.error, {*fields, "artifact"})
        assert head(store) == position, "a refused register wrote"
    else:
        assert exact(registry.get_by_key(fields["key"])) == exact(outcome)
        registry.forget(fields["key"])
        assert registry.get_by_key(fields["key"]) is None
    name = data.draw(
        st.sampled_from(["get_by_key", "list_by_session", "stats", "orphans"]), label="read"
    )
    arguments: dict[str, Any] = {
        "get_by_key": lambda: {"key": data.draw(artifact_keys, label="key")},
        "list_by_session": lambda: {
            "session_id": data.draw(ids(), label="session_id"),
            "include_deleted": data.draw(flags, label="include_deleted"),
        },
        "stats": lambda: {"session_id": data.draw(st.none() | ids(), label="session_id")},
        "orphans": lambda: {"limit": data.draw(limits, label="limit")},
    }[name]()
    arguments = {k: v.resolve(value) for k, value in arguments.items()}
    position = head(store)
    answer = attempt(lambda: getattr(registry, name)(**arguments))
    if isinstance(answer, Refused):
        assert_coded(answer.error, set(arguments))
    elif name == "get_by_key" and isinstance(arguments["key"], str) and v.fresh in arguments["key"]:
        assert answer is None
    elif name == "get_by_key" and arguments["key"] == v.key:
        assert exact(answer) == exact(example.artifact)
    elif name == "list_by_session" and arguments["session_id"] == v.session:
        assert exact_all(answer) == [exact(example.artifact)]
    assert head(store) == position, "a registry read wrote"
    assert example.snapshot(store) == before
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_artifact_registry(store: Store, data: st.DataObject) -> None:
    check_registry(store, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_artifact_registry_long(store: Store, data: st.DataObject) -> None:
    check_registry(store, data)


def check_artifact_reads(store: Store, data: st.DataObject) -> None:
    """``get_artifact``, ``open_artifact`` and ``delete_artifact`` with any key: the
    example's own artifact is reached by its key only."""
    example = Example.create(store)
    v = example.ids
    key = v.resolve(data.draw(artifact_keys, label="key"))
    how = data.draw(st.sampled_from(["get", "open", "delete", "exists"]), label="call")
    before, position = example.snapshot(store), head(store)
    blobs = store.artifact_store
    assert blobs is not None
    calls: dict[str, Callable[[], Any]] = {
        "get": lambda: store.get_artifact(key),
        "open": lambda: store.open_artifact(key).read(),
        "delete": lambda: store.delete_artifact(key),
        "exists": lambda: blobs.exists(key),
    }
    outcome = attempt(calls[how])
    hypothesis_event(outcome_kind(outcome))
    if isinstance(outcome, Refused):
        assert_coded(outcome.error, {"key"}, frozenset({ErrorCode.NOT_FOUND}))
    elif how in ("get", "open"):
        assert key == v.key, "another key's bytes were read"
        assert outcome == b"victim"
    elif how == "exists":
        assert outcome is (key == v.key)
    if how != "delete" or key != v.key:
        assert head(store) == position
        assert example.snapshot(store) == before
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_artifact_reads(store: Store, data: st.DataObject) -> None:
    check_artifact_reads(store, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_artifact_reads_long(store: Store, data: st.DataObject) -> None:
    check_artifact_reads(store, data)


# the port's reads, erasure and pruning -------------------------------------------------

#: Ids for reads: any form, the example's own records included.
read_ids = sometimes(id_forms() | st.sampled_from([IdForm(b) for b in BASES]))
#: Ids for erasure: anything but the example's own sessions.
erase_ids = ids().filter(lambda form: form not in (IdForm("session"), IdForm("host")))


def port_arguments(data: st.DataObject, name: str) -> dict[str, Any]:
    """Drawn arguments of one port method (ids as forms, resolved by the caller)."""
    draws: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "get_session": {"session_id": read_ids},
        "get_run": {"run_id": read_ids},
        "get_active_run": {"session_id": read_ids},
        "get_latest_sequence": {"session_id": read_ids},
        "list_sessions": {
            "status": st.none() | statuses(SessionStatus),
            "agent_id": st.none() | st.just("victim agent") | optional_text,
            "limit": limits,
            "offset": positions,
        },
        "list_runs": {
            "session_id": read_ids,
            "status": st.none() | statuses(RunStatus),
            "limit": limits,
            "offset": positions,
        },
        "get_events": {
            "session_id": read_ids,
            "run_id": st.none() | read_ids,
            "type": st.none() | event_types,
            "since": st.none() | timestamps,
            "after": positions,
            "before": positions,
            "limit": limits,
            "wait_timeout_ms": waits,
        },
        "get_events_by_ids": {
            "event_ids": st.lists(read_ids, max_size=4) | many_ids | anything,
        },
        "stream_session_events": {
            "session_id": read_ids,
            "after": positions,
            "run_id": st.none() | read_ids,
            "type": st.none() | event_types,
            "since": st.none() | timestamps,
            "before": positions,
            "page_size": limits,
            "wait_timeout_ms": waits,
            "poll_interval_ms": st.sampled_from([1, 0, -1, 10**30, "1", 1.5]),
        },
        "delete_session": {"session_id": erase_ids},
        "prune_events": {
            "session_id": read_ids,
            "sequence_numbers": st.lists(positions, max_size=3) | anything,
        },
    }
    fields = draws[name]
    required = {"session_id", "run_id", "event_ids", "sequence_numbers"}
    optional = sorted(set(fields) - required)
    chosen = data.draw(st.sets(st.sampled_from(optional)), label="given") if optional else set()
    return {
        field: data.draw(strategy, label=field)
        for field, strategy in fields.items()
        if field in required or field in chosen
    }


def expected_read(name: str, args: dict[str, Any], example: Example) -> Any:
    """What a read must answer on the example's records, when every argument was
    accepted and names the example's records (``...`` when not predicted)."""
    v = example.ids
    own = {v.session, v.host, v.run, v.event, v.fresh, v.key}
    sid = args.get("session_id", args.get("run_id"))
    if isinstance(sid, str) and not any(i in sid for i in own):
        return ...
    if name == "get_session":
        return {v.session: exact(example.victim), v.host: exact(example.host)}.get(sid)
    if name == "get_run":
        return exact(example.run) if sid == v.run else None
    if name == "get_active_run":
        return exact(example.run) if sid == v.session else None
    if name == "get_latest_sequence":
        return 2 if sid == v.session else 0
    if name == "list_runs":
        runs = [example.run] if sid == v.session else []
        return _paged(runs, args, lambda r: r.status)
    if name == "list_sessions":
        if args.get("agent_id") != example.agent:
            return ...
        return _paged([example.victim], args, lambda s: s.status)
    if name == "get_events":
        return _events(example.events if sid == v.session else [], args)
    if name == "stream_session_events":
        return _events(example.events if sid == v.session else [], {**args, "limit": None})
    if name == "get_events_by_ids":
        wanted = set(args["event_ids"]) if isinstance(args["event_ids"], list) else set()
        return sorted(exact(e) for e in example.events if e.id in wanted)
    return ...


def _paged(records: list[Any], args: dict[str, Any], status: Callable[[Any], Any]) -> Any:
    wanted = args.get("status")
    kept = [r for r in records if wanted is None or status(r) == wanted]
    offset = args.get("offset") or 0
    limit = args.get("limit")
    return exact_all(kept[offset : None if limit is None else offset + limit])


def _events(events: list[Event], args: dict[str, Any]) -> list[str | None]:
    kept = [
        e
        for e in events
        if (args.get("run_id") is None or e.run_id == args["run_id"])
        and (args.get("type") is None or e.type == EventType(args["type"]))
        and (args.get("since") is None or e.timestamp >= args["since"])
        and (args.get("after") is None or (e.sequence_number or 0) > args["after"])
        and (args.get("before") is None or (e.sequence_number or 0) < args["before"])
    ]
    limit = args.get("limit")
    return exact_all(kept[:limit] if limit else kept)


def answer_of(name: str, answer: Any) -> Any:
    """An answer in the form :func:`expected_read` predicts it."""
    if name in ("get_session", "get_run", "get_active_run"):
        return exact(answer)
    if name == "get_events_by_ids":
        return sorted(exact_all(answer))
    if name in ("list_runs", "list_sessions", "get_events", "stream_session_events"):
        return exact_all(answer)
    return answer


PORT_METHODS = [
    "get_session",
    "get_run",
    "get_active_run",
    "get_latest_sequence",
    "list_sessions",
    "list_runs",
    "get_events",
    "get_events_by_ids",
    "stream_session_events",
    "delete_session",
    "prune_events",
]
NOT_FOUND = frozenset({ErrorCode.SESSION_NOT_FOUND, ErrorCode.RUN_NOT_FOUND})


def check_port_calls(store: Store, data: st.DataObject) -> None:
    """Every port read, ``delete_session`` and ``prune_events`` with any arguments: an
    answer (the predicted one on the example's records) or a coded refusal naming an
    argument; nothing written by a read or a refusal; no erasure or pruning of another
    session than the one named."""
    example = Example.create(store)
    v = example.ids
    name = data.draw(st.sampled_from(PORT_METHODS), label="method")
    args = {k: v.resolve(value) for k, value in port_arguments(data, name).items()}
    if args.get("agent_id") == "victim agent":
        args["agent_id"] = example.agent
    if isinstance(args.get("event_ids"), list):
        args["event_ids"] = [v.resolve(i) for i in args["event_ids"]]
    before, position = example.snapshot(store), head(store)
    call = getattr(store, name, None)
    if name == "stream_session_events":
        # Stops once caught up (max_idle_ms=0): the stream's answer is a list.
        call = lambda sid, **kw: list(stream_session_events(store, sid, max_idle_ms=0, **kw))  # noqa: E731
    positional = [args.pop(k) for k in ("session_id", "event_ids") if k in args]
    if name == "get_run":
        positional = [args.pop("run_id")]
    outcome = attempt(lambda: call(*positional, **args))
    args.update(zip(["run_id" if name == "get_run" else "session_id"], positional, strict=False))
    if name == "get_events_by_ids":
        args = {"event_ids": positional[0]}
    if isinstance(outcome, Refused):
        fields = set(args) | ({"event_id"} if name == "get_events_by_ids" else set())
        fields |= {"sequence_number"} if name == "prune_events" else set()
        assert_coded(outcome.error, fields, NOT_FOUND | STATUS_CODES | EVENT_CODES)
        if outcome.error.code in NOT_FOUND:
            assert name in ("get_session", "get_run"), outcome.error
            assert expected_read(name, args, example) in (None, ...), outcome.error
    else:
        expected = expected_read(name, args, example)
        if expected is not ...:
            assert answer_of(name, outcome) == expected, (name, args)
    pruned = name == "prune_events" and args["session_id"] == v.session
    if pruned and not isinstance(outcome, Refused) and outcome:
        gone = set(args["sequence_numbers"])
        kept = [e for e in example.events if e.sequence_number not in gone]
        assert outcome == len(example.events) - len(kept)
        before["events"] = exact_all(kept)
        before["searched events"] = exact_all(kept)
        example.events = kept
    elif name not in ("delete_session", "prune_events") or isinstance(outcome, Refused):
        assert head(store) == position, f"{name} wrote"
    assert example.snapshot(store) == before
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_port_calls(store: Store, data: st.DataObject) -> None:
    check_port_calls(store, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_port_calls_long(store: Store, data: st.DataObject) -> None:
    check_port_calls(store, data)


# QueryAPI: filters and cursors ---------------------------------------------------------

day_values = sometimes(st.none() | st.dates().map(lambda d: d.isoformat()) | text)
id_lists = sometimes(st.none() | st.lists(read_ids, max_size=3) | read_ids | many_ids)
session_statuses = (
    st.none() | statuses(SessionStatus) | st.lists(statuses(SessionStatus), max_size=2)
)
run_statuses = st.none() | statuses(RunStatus) | st.lists(statuses(RunStatus), max_size=2)
type_lists = st.none() | event_types | st.lists(event_types, max_size=2)
orders = sometimes(st.none() | st.sampled_from(ORDERS))
pricing_tables = sometimes(
    st.none()
    | st.dictionaries(word, st.fixed_dictionaries({"input": costs, "output": costs}), max_size=2)
)
instants = st.none() | timestamps
QUERY_ARGS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "search_sessions": {
        "agent_id": st.none() | st.just("victim agent") | optional_text,
        "status": session_statuses,
        "provider": id_lists,
        "tags": id_lists,
        "created_after": instants,
        "created_before": instants,
        "include_deleted": flags,
        "order_by": orders,
        "limit": limits,
        "cursor": cursor_values,
        "stale_ok": flags,
    },
    "get_session_stats": {"session_id": read_ids, "stale_ok": flags},
    "search_runs": {
        "session_id": st.none() | read_ids,
        "provider": optional_text,
        "status": run_statuses,
        "started_after": instants,
        "started_before": instants,
        "min_tokens": positions,
        "order_by": orders,
        "limit": limits,
        "cursor": cursor_values,
        "stale_ok": flags,
    },
    "get_usage_summary": {
        "session_id": st.none() | read_ids,
        "provider": optional_text,
        "since": instants,
        "until": instants,
        "stale_ok": flags,
    },
    "get_usage_by_day": {
        "provider": optional_text,
        "model": optional_text,
        "since_day": day_values,
        "until_day": day_values,
        "stale_ok": flags,
    },
    "get_cost_summary": {
        "session_id": st.none() | read_ids,
        "provider": optional_text,
        "since": instants,
        "until": instants,
        "agent_id": optional_text,
        "pricing_table": pricing_tables,
        "stale_ok": flags,
    },
    "search_events": {
        "session_ids": id_lists,
        "run_ids": id_lists,
        "types": type_lists,
        "providers": id_lists,
        "since": instants,
        "until": instants,
        "correlation_id": optional_text,
        "order_by": orders,
        "limit": limits,
        "cursor": cursor_values,
        "stale_ok": flags,
    },
    "count_events": {
        "session_ids": id_lists,
        "run_ids": id_lists,
        "types": type_lists,
        "providers": id_lists,
        "since": instants,
        "until": instants,
        "correlation_id": optional_text,
        "stale_ok": flags,
    },
    "export_session": {"session_id": read_ids, "include_artifacts": flags},
}


@dataclass(frozen=True)
class Genuine:
    """A cursor a query handed out, and the query (method and filters) that made it."""

    method: str
    filters: dict[str, Any]
    cursor: str
    foreign: bool = False


def genuine_cursors(store: Store, example: Example, foreign: Store) -> list[Genuine]:
    """First pages of distinct queries, in this store and in another one."""
    v = example.ids
    queries: list[tuple[str, dict[str, Any]]] = [
        ("search_sessions", {}),
        ("search_sessions", {"agent_id": example.agent}),
        ("search_sessions", {"order_by": "created_at_asc"}),
        ("search_runs", {}),
        ("search_runs", {"session_id": v.session}),
        ("search_events", {"session_ids": [v.session]}),
        ("search_events", {"session_ids": [v.session], "types": ["message_sent"]}),
        ("search_events", {"order_by": "timestamp_desc"}),
    ]
    made = []
    for method, filters in queries:
        for source, is_foreign in ((store, False), (foreign, True)):
            cursor = getattr(source.query(), method)(limit=1, **filters).cursor
            if cursor is not None:
                made.append(Genuine(method, filters, cursor, is_foreign))
    return made


def edited(cursor: str, form: CursorForm) -> str:
    """A genuine cursor, damaged (or not) as ``form`` says."""
    cut = form.cut % max(len(cursor), 1)
    if form.edit == "truncate":
        return cursor[: len(cursor) - 1 - cut]
    if form.edit == "drop_tail":
        return cursor[: len(cursor) // 2]
    if form.edit == "append":
        return cursor + form.junk
    if form.edit == "flip":
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        replacement = alphabet[(alphabet.index(cursor[cut]) + 1) % len(alphabet)]
        return cursor[:cut] + replacement + cursor[cut + 1 :]
    if form.edit == "padding":
        return cursor + "=" * (1 + form.cut % 3)
    if form.edit == "upper":
        return cursor.upper()
    if form.edit == "reencode":
        spaced = json.dumps(json.loads(_decoded(cursor) or b"null"), indent=1).encode()
        return base64.urlsafe_b64encode(spaced).decode()
    return cursor


def _decoded(cursor: str) -> bytes | None:
    """The payload bytes as the cursor format reads them: strict URL-safe base64,
    padding optional (``read_models/cursors.py``); ``None`` when it is not."""
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None


def same_cursor(given: str, original: str) -> bool:
    """Whether ``given`` reads as the same cursor as ``original``."""
    raw = _decoded(given)
    if raw is None:
        return False
    try:
        return bool(json.loads(raw) == json.loads(_decoded(original) or b"null"))
    except ValueError:
        return False


def cursor_argument(value: Any, genuine: list[Genuine]) -> Any:
    if isinstance(value, CursorForm):
        return edited(genuine[value.source % len(genuine)].cursor, value)
    if isinstance(value, tuple) and value[:1] == ("json",):
        return base64.urlsafe_b64encode(json.dumps(value[1]).encode()).decode().rstrip("=")
    return value


@pytest.fixture
def foreign(tmp_path: Path) -> Iterator[Store]:
    """Another store, whose cursors no query of ``store`` may accept."""
    with open_store("memory://", artifacts=(tmp_path / "foreign").as_uri()) as other:
        Example.create(other)
        Example.create(other)  # two of each: a query matching one example has a next page
        yield other


QUERY_CODES = frozenset({ErrorCode.INVALID_CURSOR, ErrorCode.SESSION_NOT_FOUND})


def check_queries(store: Store, foreign: Store, data: st.DataObject) -> None:
    """Any ``QueryAPI`` method with any arguments: an answer or a coded refusal naming
    the argument, nothing written. Then a cursor replayed: accepted by the query that
    made it (unless damaged), ``invalid_cursor`` for every other query and store."""
    if not store.list_sessions(limit=1):
        # The first example makes two: a search's last page has no cursor, so the
        # cursors handed out (and the draws from them) are the same from the first
        # example on only once every query matching one example matches two.
        Example.create(store)
    example = Example.create(store)
    v = example.ids
    q = store.query()
    genuine = genuine_cursors(store, example, foreign)
    name = data.draw(st.sampled_from(sorted(QUERY_ARGS)), label="method")
    strategies = QUERY_ARGS[name]
    chosen = data.draw(st.sets(st.sampled_from(sorted(strategies))), label="given")
    if "session_id" in strategies and name in ("get_session_stats", "export_session"):
        chosen = {*chosen, "session_id"}
    args = {field: data.draw(strategies[field], label=field) for field in sorted(chosen)}
    args = {k: v.resolve(value) for k, value in args.items()}
    for field in ("session_ids", "run_ids", "provider", "tags", "providers"):
        if isinstance(args.get(field), list) and not isinstance(args[field], ManyIds):
            args[field] = [v.resolve(item) for item in args[field]]
    if args.get("agent_id") == "victim agent":
        args["agent_id"] = example.agent
    if "cursor" in args:
        args["cursor"] = cursor_argument(args["cursor"], genuine)
    before, position = example.snapshot(store), head(store)
    outcome = attempt(lambda: getattr(q, name)(**args))
    if isinstance(outcome, Refused):
        assert_coded(outcome.error, set(args), QUERY_CODES)
        if outcome.error.code == ErrorCode.SESSION_NOT_FOUND:
            assert name in ("get_session_stats", "export_session")
            assert args["session_id"] not in (v.session, v.host), outcome.error
    elif name == "export_session":
        assert (
            exact(outcome.session)
            == before["victim" if args["session_id"] == v.session else "host"]
        )
    # Replay one genuine cursor against one query.
    made = data.draw(st.sampled_from(genuine), label="query")
    given = data.draw(st.sampled_from(genuine), label="cursor of")
    form = data.draw(cursor_forms, label="cursor edit")
    cursor = edited(given.cursor, form)
    replay = attempt(lambda: getattr(q, made.method)(limit=1, cursor=cursor, **made.filters))
    same_query = (given.method, given.filters) == (made.method, made.filters)
    expected_ok = same_query and not given.foreign and same_cursor(cursor, given.cursor)
    if expected_ok:
        assert not isinstance(replay, Refused), f"its own cursor refused: {replay}"
        if made.filters == {"session_ids": [v.session]}:
            assert exact_all(replay.events) == [exact(example.events[1])]
    else:
        assert isinstance(replay, Refused), f"{given} accepted by {made} as {cursor!r}"
        assert replay.error.code == ErrorCode.INVALID_CURSOR, replay.error
    assert head(store) == position, f"{name} wrote"
    assert example.snapshot(store) == before
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_queries_and_cursors(store: Store, foreign: Store, data: st.DataObject) -> None:
    check_queries(store, foreign, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_queries_and_cursors_long(store: Store, foreign: Store, data: st.DataObject) -> None:
    check_queries(store, foreign, data)


# maintenance ---------------------------------------------------------------------------

days = sometimes(
    st.none() | st.integers(1, 10**4) | st.sampled_from([0, -1, float("inf"), 1.5, 2**63])
)
POLICY_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "max_session_age_days": days,
    "max_completed_session_age_days": days,
    "max_events_per_session": sometimes(st.none() | st.integers(1, 4) | st.sampled_from([0, -1])),
    "max_total_events": sometimes(st.none() | st.integers(1, 50) | st.sampled_from([0, 2**64])),
    "hard_delete_after_days": days,
    "archive_before_prune": flags,
    "archive_store": st.none() | st.just("the artifact store") | anything,
    "exempt_statuses": sometimes(st.lists(statuses(SessionStatus), max_size=2)),
    "exempt_tags": sometimes(st.lists(word | hostile_text, max_size=2)),
    "prune_event_types_first": sometimes(st.lists(event_types, max_size=2)),
    "batch_size": sometimes(st.integers(1, 5) | st.sampled_from([0, -1, 10**30])),
    "no_such_option": anything,
}
MAINTENANCE_CALLS = [
    "execute",
    "soft_delete_expired_sessions",
    "hard_delete_expired_sessions",
    "prune_session_events",
    "prune_all_sessions",
    "prune_total_events",
    "list_orphaned_artifacts",
    "clean_orphaned_artifacts",
    "list_orphaned_sequences",
    "clean_orphaned_sequences",
    "health_check",
]
OLD = datetime(2001, 1, 1, tzinfo=UTC)


def check_maintenance(store: Store, data: st.DataObject) -> None:
    """Every ``Maintenance`` method with any policy and arguments: an answer or a coded
    refusal naming the argument (a refusal writes nothing); whatever retention did, the
    example's events keep their sequence numbers and the store is consistent."""
    example = Example.create(store)
    v = example.ids
    old = Session.new(agent_id=example.agent, id=f"{v.fresh}_old").replace(
        created_at=OLD, updated_at=OLD, status=SessionStatus.COMPLETED
    )
    store.save_session(old)
    store.append_events([Event.new(type=EventType.MESSAGE_STREAMED, session_id=old.id)] * 1)
    maintenance = store.maintenance()
    name = data.draw(st.sampled_from(MAINTENANCE_CALLS), label="method")
    fields = draw_fields(data, POLICY_FIELDS, "policy")
    if fields.get("archive_store") == "the artifact store":
        fields["archive_store"] = store.artifact_store
    policy: Any = build(lambda: RetentionPolicy.new(**fields), set(POLICY_FIELDS))
    if policy is None or data.draw(st.integers(0, 9), label="policy of the wrong type") == 0:
        policy = data.draw(anything, label="policy")
    arguments: dict[str, Any] = {}
    if name in ("execute", "prune_all_sessions", "prune_total_events") or "expired" in name:
        arguments["policy"] = policy
    elif name == "prune_session_events":
        arguments = {
            "session_id": v.resolve(data.draw(read_ids, label="session")),
            "policy": policy,
        }
    elif name == "list_orphaned_artifacts":
        arguments = {"limit": data.draw(limits, label="limit")}
    elif name == "clean_orphaned_artifacts":
        arguments = {"dry_run": data.draw(flags), "batch_size": data.draw(limits, label="batch")}
    elif name == "clean_orphaned_sequences":
        arguments = {"dry_run": data.draw(flags, label="dry_run")}
    elif name == "health_check":
        arguments = {"catch_up": data.draw(flags, label="catch_up")}
    arguments = {
        k: a for k, a in arguments.items() if a is not None or k in ("policy", "session_id")
    }
    position = head(store)
    outcome = attempt(lambda: getattr(maintenance, name)(**arguments))
    if isinstance(outcome, Refused):
        assert_coded(outcome.error, set(arguments) | set(POLICY_FIELDS))
        assert head(store) == position, f"a refused {name} wrote"
    else:
        # A switch is True or False: "no" would switch a dry run on, "" off.
        switches = {k: a for k, a in arguments.items() if k in ("dry_run", "catch_up")}
        assert all(isinstance(a, bool) for a in switches.values()), f"accepted {switches}"
        if name == "execute":
            assert outcome.errors == [], outcome.errors
    # Retention removes, never renumbers.
    events = store.get_events(v.session)
    numbers = {e.id: e.sequence_number for e in example.events}
    assert all(numbers.get(e.id) == e.sequence_number for e in events)
    assert store.get_latest_sequence(v.session) == 2
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_maintenance(store: Store, data: st.DataObject) -> None:
    check_maintenance(store, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_maintenance_long(store: Store, data: st.DataObject) -> None:
    check_maintenance(store, data)


# SessionManager ------------------------------------------------------------------------

MANAGER_ARGS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "start_session": {
        "agent_id": sometimes(word | hostile_text),
        "metadata": st.none() | map_field(),
        "context": st.none() | map_field(),
        "tags": st.none() | tags,
        "parent_session_id": st.none() | read_ids,
        "session_id": st.none() | record_ids(["session", "host"]),
    },
    "activate_session": {"session_id": read_ids},
    "complete_session": {"session_id": read_ids},
    "fail_session": {
        "session_id": read_ids,
        "error": sometimes(text | map_field()),
    },
    "record_event": {
        "session_id": read_ids,
        "event_type": event_types,
        "data": st.none() | map_field(),
        "run_id": st.none() | read_ids,
    },
    "record_approval": {
        "session_id": read_ids,
        "tool_name": sometimes(word | hostile_text),
        "granted": flags,
        "tool_call_id": optional_text,
        "run_id": st.none() | read_ids,
        "reason": optional_text,
    },
    "start_run": {
        "session_id": read_ids,
        "input": st.none() | map_field(),
        "metadata": st.none() | map_field(),
        "run_id": st.none() | record_ids(["run"]),
    },
    "cancel_run": {"run_id": read_ids, "reason": optional_text},
    "run_once": {"session_id": read_ids, "input": st.none() | map_field()},
}
#: The arguments a method cannot be called without (else: its first).
MANAGER_REQUIRED = {
    "fail_session": {"session_id", "error"},
    "record_event": {"session_id", "event_type"},
    "record_approval": {"session_id", "tool_name", "granted"},
}
MANAGER_CODES = frozenset(
    {
        ErrorCode.SESSION_NOT_FOUND,
        ErrorCode.RUN_NOT_FOUND,
        ErrorCode.INVALID_TRANSITION,
        ErrorCode.INVALID_STATUS,
        ErrorCode.INVALID_EVENT_TYPE,
    }
)


def check_session_manager(store: Store, data: st.DataObject) -> None:
    """``SessionManager``'s entry points with any arguments: an answer or a coded
    refusal naming the argument, and a refusal writes nothing."""
    example = Example.create(store)
    v = example.ids
    provider = ScriptedProvider([{"type": "message_received", "data": {"content": "hi"}}])
    manager = SessionManager(store, provider)
    name = data.draw(st.sampled_from(sorted(MANAGER_ARGS)), label="method")
    strategies = MANAGER_ARGS[name]
    required = MANAGER_REQUIRED.get(name, {next(iter(strategies))})
    optional = sorted(set(strategies) - required)
    chosen = data.draw(st.sets(st.sampled_from(optional)), label="given") if optional else set()
    args = {f: data.draw(strategies[f], label=f) for f in strategies if f in required | chosen}
    args = {k: v.resolve(value) for k, value in args.items()}
    position = head(store)
    outcome = attempt(lambda: getattr(manager, name)(**args))
    if isinstance(outcome, Refused):
        fields = set(args) | {"id", "type", "status"}  # the record field an argument fills
        assert_coded(outcome.error, fields, MANAGER_CODES)
        assert head(store) == position, f"a refused {name} wrote"
    elif "granted" in args:
        assert isinstance(args["granted"], bool), f"granted={args['granted']!r} accepted"
    still_works(store, example)


@QUICK
@given(data=st.data())
def test_session_manager(store: Store, data: st.DataObject) -> None:
    check_session_manager(store, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_session_manager_long(store: Store, data: st.DataObject) -> None:
    check_session_manager(store, data)


# open_store options --------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    name: str
    url: str
    schema: str | None = None


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A backend's base URL: the options are the test's to draw. PostgreSQL gets a
    schema of its own, which every opened store must use."""
    if request.param == "memory":
        yield Backend("memory", "memory://")
    elif request.param == "sqlite":
        yield Backend("sqlite", "sqlite:///" + str(tmp_path / "options.db"))
    else:
        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema:
            yield Backend("postgres", server, schema)


def _tiny_timeout(options: dict[str, Any]) -> bool:
    """A statement or lock timeout so short that opening may time out: a coded
    ``storage_error`` then is the database's answer, not the option check's."""
    for name in ("statement_timeout", "lock_timeout"):
        try:
            seconds = float(options.get(name, "x"))
        except (TypeError, ValueError, OverflowError):
            continue
        if 0 < seconds < 0.5:
            return True
    return False


#: PostgreSQL schema names ``open_store`` takes (``backends/postgres.py``).
PG_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: Store URLs of the wrong type or for no backend (never empty: that opens the default
#: file store in the working directory).
WRONG_URLS: list[Any] = [5, b"memory://", ["memory://"], "mysql://x", "memory", "x://y"]
ARTIFACT_OPTIONS: list[Any] = [None, {}, {"no_such_option": 1}, {"root": "/x"}]


def _quoted(value: Any) -> str:
    """URL-quoted text; a lone surrogate as the bytes Python would encode it with."""
    return quote(str(value), safe="", errors="surrogatepass")


def check_open_store(backend: Backend, tmp_path: Path, data: st.DataObject) -> None:
    """``open_store`` with any options, in the URL and as keywords, and any artifact
    store: it opens a store that works, or refuses with ``validation_error`` naming the
    option, before connecting (never a *retryable* failure for a bad value)."""
    names = data.draw(st.lists(st.sampled_from(OPTION_NAMES), max_size=3), label="options")
    in_url: dict[str, Any] = {}
    keywords: dict[str, Any] = {}
    for name in names:
        value = data.draw(option_values, label=name)
        if data.draw(st.booleans(), label=f"{name} in the URL"):
            in_url[name] = value
        else:
            keywords[name] = value
    if backend.schema is not None:
        # A valid schema name would create that schema: only this test's own is used.
        for options in (in_url, keywords):
            if isinstance(options.get("schema"), str) and PG_IDENTIFIER.fullmatch(
                options["schema"]
            ):
                options["schema"] = backend.schema
        if "schema" not in in_url:
            keywords.setdefault("schema", backend.schema)
    query = "&".join(f"{_quoted(k)}={_quoted(v)}" for k, v in in_url.items())
    url = backend.url + ("?" + query if query else "")
    artifacts = data.draw(st.none() | artifact_targets, label="artifacts")
    if artifacts == "file":
        artifacts = (tmp_path / "blobs").as_uri()
    target: Any = url
    if data.draw(st.integers(0, 9), label="a URL of the wrong kind") == 0:
        target = data.draw(st.sampled_from(WRONG_URLS), label="url")
    artifact_options = None
    if isinstance(artifacts, str):
        artifact_options = data.draw(st.sampled_from(ARTIFACT_OPTIONS), label="artifact_options")
    outcome = attempt(
        lambda: open_store(
            target, artifacts=artifacts, artifact_options=artifact_options, **keywords
        )
    )
    # An artifact URL's parts are named as the artifact store names them.
    given_names = set(in_url) | set(keywords) | {"url", "artifacts", "root", "bucket", "prefix"}
    given_names |= {"artifact_options", *(artifact_options or {})}
    if isinstance(outcome, Refused):
        error = outcome.error
        tiny = _tiny_timeout({**in_url, **keywords})
        if not (tiny and error.code in (ErrorCode.STORAGE_ERROR, ErrorCode.TIMEOUT)):
            assert_coded(error, given_names)
        assert not error.retryable, f"a bad option is retryable: {error!r} {error.details}"
        return
    with outcome as store:
        session = Session.new(agent_id="options")
        store.save_session(session)
        assert exact(store.get_session(session.id)) == exact(session)
        if isinstance(store.artifact_store, FileArtifactStore):
            store.put_artifact(session.id, None, "k", b"bytes")
            assert store.get_artifact("k") == b"bytes"


@QUICK
@given(data=st.data())
def test_open_store_options(backend: Backend, tmp_path: Path, data: st.DataObject) -> None:
    check_open_store(backend, tmp_path, data)


@pytest.mark.slow
@LONG
@given(data=st.data())
def test_open_store_options_long(backend: Backend, tmp_path: Path, data: st.DataObject) -> None:
    check_open_store(backend, tmp_path, data)


# class 1: maps shaped like the transcoder's envelope -----------------------------------

#: Envelopes the ``eventsourcing`` transcoder decoded (a known name, then a value of
#: another type, or an unknown name that made the stream unreadable), at the top of a
#: map field, inside it and deep down.
ENVELOPES: dict[str, Any] = {
    "datetime": {"_type_": "datetime_iso", "_data_": "x"},
    "valid datetime": {"_type_": "datetime_iso", "_data_": "2020-01-01T00:00:00+00:00"},
    "unknown": {"_type_": "unknown", "_data_": 1},
    "uuid": {"_type_": "uuid_hex", "_data_": "0" * 32},
    "decimal": {"_type_": "decimal_str", "_data_": "1.5"},
    "nested": {"a": [{"b": {"_type_": "unknown", "_data_": {"_type_": "x", "_data_": None}}}]},
    "deep": nested(60, {"_type_": "datetime_iso", "_data_": 5}),
}


def check_envelopes(store: Store, value: Any) -> None:
    """``value`` in every map a caller writes, read back identical through every read
    that returns it; every query and the health check keep working."""
    example = Example.create(store)
    v = example.ids
    as_map = value if isinstance(value, dict) else {"v": value}
    session = Session.new(
        agent_id=example.agent, id=f"{v.fresh}_s", metadata=as_map, context={"c": value}
    )
    store.save_session(session)
    run = Run(
        id=f"{v.fresh}_r",
        session_id=session.id,
        input=as_map,
        output={"o": value},
        error={"e": [value]},
        metadata=as_map,
        token_usage={"input_tokens": 1, "provider": value},
        provider="acme",
        provider_metadata={"model": "m", "extra": value},
    )
    store.save_run(run)
    events = store.append_events(
        [
            Event.new(
                type=EventType.MESSAGE_SENT,
                session_id=session.id,
                run_id=run.id,
                data=as_map,
                metadata={"m": value},
            )
        ]
    )
    key = f"{v.fresh}_k"
    if len(json.dumps(as_map, sort_keys=True)) > MAX_METADATA_BYTES:
        # Larger than S3's headers carry: refused on every artifact store, nothing kept.
        refused = attempt(
            lambda: store.put_artifact(session.id, run.id, key, b"x", metadata=as_map)
        )
        assert isinstance(refused, Refused)
        assert_coded(refused.error, {"metadata"})
        as_map = {"small": True}
    artifact = store.put_artifact(session.id, run.id, key, b"x", metadata=as_map)
    q = store.query()
    assert exact(store.get_session(session.id)) == exact(session)
    assert exact(session) in exact_all(store.list_sessions(agent_id=example.agent))
    assert exact(session) in exact_all(q.search_sessions(agent_id=example.agent).sessions)
    assert exact(store.get_run(run.id)) == exact(run)
    assert exact_all(store.list_runs(session.id)) == [exact(run)]
    assert exact_all(q.search_runs(session_id=session.id).runs) == [exact(run)]
    assert exact_all(store.get_events(session.id)) == exact_all(events)
    assert exact_all(store.get_events_by_ids([events[0].id])) == exact_all(events)
    assert exact_all(q.search_events(session_ids=[session.id]).events) == exact_all(events)
    assert exact(store.registry.get_by_key(artifact.key)) == exact(artifact)
    assert same_json(artifact.metadata) == same_json(as_map)
    exported = q.export_session(session.id, include_artifacts=True)
    assert exact(exported.session) == exact(session)
    assert exact_all(exported.runs) == [exact(run)]
    assert exact_all(exported.events) == exact_all(events)
    assert same_json(exported.artifacts) == same_json([artifact.public_dict()])
    q.get_usage_summary()
    q.get_usage_by_day()
    q.get_cost_summary()
    q.get_session_stats(session.id)
    q.count_events()
    still_works(store, example)


@pytest.mark.parametrize("value", ENVELOPES.values(), ids=ENVELOPES.keys())
def test_envelope_shaped_maps_come_back_identical(store: Store, value: Any) -> None:
    check_envelopes(store, value)


@QUICK
@given(
    value=envelopes(json_values(max_leaves=4)) | json_values().filter(lambda v: "_type_" in str(v))
)
def test_envelope_shaped_values_come_back_identical(store: Store, value: Any) -> None:
    check_envelopes(store, value)


@pytest.mark.slow
@LONG
@given(value=envelopes(json_values(max_leaves=12)) | json_values(max_leaves=20))
def test_envelope_shaped_values_come_back_identical_long(store: Store, value: Any) -> None:
    check_envelopes(store, value)


# class 2: ids of another kind ----------------------------------------------------------

#: Stream prefixes, the store's own and others, put before another record's id.
KIND_PREFIXES = ["", "log:", "erased:", "pruned:", "artifact:", "session:", "run:"]


#: The collisions the issue names: a session with a run's id or ``log:<session id>``,
#: ``erased:``, ``artifact:`` ids, and a run with a session's id.
NAMED = {
    ("session", "run", ""),
    ("session", "session", "log:"),
    ("session", "session", "erased:"),
    ("session", "key", "artifact:"),
    ("run", "session", ""),
    ("run", "session", "log:"),
}


def collisions(*, named: bool) -> list[Any]:
    """Each (what is saved, whose id, which prefix) but a record's own id: the named
    ones (``named``), or all the others (the slow form)."""
    cases = []
    for what, own in (("session", "session"), ("run", "run")):
        for base in ("session", "run", "event", "key"):
            for prefix in KIND_PREFIXES:
                if (base, prefix) != (own, "") and ((what, base, prefix) in NAMED) == named:
                    name = f"{what}-{prefix}{base}"
                    cases.append(pytest.param(what, IdForm(base, prefix), id=name))
    return cases


@pytest.mark.parametrize(("what", "form"), collisions(named=True))
def test_an_id_of_another_kind_reaches_no_other_stream(
    store: Store, what: str, form: IdForm
) -> None:
    """A session or run whose id is another record's id (a run's, ``log:<session id>``,
    ``artifact:<key>``...) is stored as its own record, or refused naming ``id``; the
    other records are unchanged, appends to the session go on, and the id names no
    record of another kind."""
    example = Example.create(store)
    v = example.ids
    record_id = v.resolve(form)
    before, position = example.snapshot(store), head(store)
    record: Session | Run
    if what == "session":
        record = Session.new(agent_id=f"{example.agent}_other", id=record_id)
        outcome = attempt(lambda: store.save_session(record))  # type: ignore[arg-type]
    else:
        record = Run.new(session_id=v.host, id=record_id)
        outcome = attempt(lambda: store.save_run(record))  # type: ignore[arg-type]
    if isinstance(outcome, Refused):
        assert_coded(outcome.error, {"id"})
        assert head(store) == position
    elif what == "session":
        assert exact(store.get_session(record_id)) == exact(record)
    else:
        assert exact(store.get_run(record_id)) == exact(record)
        before["host runs"] = [exact(record)]
    assert example.snapshot(store) == before
    # The example's ids name nothing of another kind, unless saved as one just now.
    if (what, record_id) != ("session", v.run):
        assert isinstance(attempt(lambda: store.get_session(v.run)), Refused)
    if (what, record_id) != ("run", v.session):
        assert isinstance(attempt(lambda: store.get_run(v.session)), Refused)
    if record_id != v.session:
        assert store.get_events(record_id) == []
    # Erasing by that id erases nothing of the example's own records.
    if record_id not in (v.session, v.host):
        store.delete_session(record_id)
        assert example.snapshot(store) == before
    still_works(store, example)


@pytest.mark.slow
@pytest.mark.parametrize(("what", "form"), collisions(named=False))
def test_every_id_of_another_kind_reaches_no_other_stream(
    store: Store, what: str, form: IdForm
) -> None:
    test_an_id_of_another_kind_reaches_no_other_stream(store, what, form)
