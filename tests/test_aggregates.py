"""The event-sourced aggregates behind the state-based port (see the streams in
``docs/architecture.md``).

A save diffs the record against its aggregate; the events it triggers are what is
stored, and replaying them is the only way a record is read back. So the events must
capture every change, exactly, and carry topics that survive code moves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.utils import get_topic, resolve_topic
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent_sessions import Event, EventType, Run, Session, open_store
from agent_sessions.domain.aggregates import (
    AgentEventRecorded,
    RecordAggregate,
    RunAggregate,
    SessionAggregate,
    SessionErased,
    log_id,
    run_stream_id,
    session_stream_id,
    tombstone_id,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def exact(record: Session | Run) -> str:
    """Type-exact form of a record: ``==`` would call ``True == 1 == 1.0`` equal."""
    return json.dumps(record.to_dict(), sort_keys=True)


def replay(events: Sequence[Any]) -> Any:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def revised_events(aggregate: RecordAggregate[Any], new: Session | Run) -> list[Any]:
    aggregate.collect_events()
    aggregate.revise(new)
    return list(aggregate.collect_events())


def kinds(events: Sequence[Any]) -> list[str]:
    return [type(event).__name__ for event in events]


@pytest.fixture
def session() -> Session:
    return Session(id="ses_1", agent_id="agent", created_at=T0, updated_at=T0)


@pytest.fixture
def run() -> Run:
    return Run(id="run_1", session_id="ses_1", started_at=T0)


@pytest.fixture
def memory_store() -> Iterator[Any]:
    with open_store("memory://") as store:
        yield store


# SessionAggregate ---------------------------------------------------------------------


def test_session_start_records_the_whole_record(session: Session) -> None:
    aggregate = SessionAggregate.start(session)
    assert aggregate.id == session_stream_id(session.id) == "session:ses_1"
    assert aggregate.version == 1
    assert aggregate.record == session
    (created,) = aggregate.collect_events()
    assert isinstance(created, SessionAggregate.Created)
    assert created.record == session.to_dict()
    assert created.originator_id == "session:ses_1"
    assert created.originator_version == 1


def test_session_unchanged_record_triggers_nothing(session: Session) -> None:
    aggregate = SessionAggregate.start(session)
    assert revised_events(aggregate, session) == []
    assert revised_events(aggregate, Session.from_dict(session.to_dict())) == []
    assert aggregate.version == 1


def test_session_status_change_is_one_status_changed_event(session: Session) -> None:
    aggregate = SessionAggregate.start(session)
    new = session.with_status("active")
    events = revised_events(aggregate, new)
    assert kinds(events) == ["StatusChanged"]
    # ``updated_at`` travels with the first event rather than producing its own.
    assert events[0].changes == {
        "status": "active",
        "updated_at": new.updated_at.isoformat(),
    }
    assert aggregate.record == new
    assert aggregate.version == 2


def test_session_soft_delete_and_restore_events(session: Session) -> None:
    aggregate = SessionAggregate.start(session)
    deleted = session.soft_delete(at=T0 + timedelta(hours=1))
    events = revised_events(aggregate, deleted)
    assert kinds(events) == ["SoftDeleted"]
    assert events[0].changes["deleted_at"] == deleted.deleted_at.isoformat()  # type: ignore[union-attr]
    restored = deleted.restore()
    events = revised_events(aggregate, restored)
    assert kinds(events) == ["Restored"]
    assert events[0].changes["deleted_at"] is None
    assert aggregate.record == restored


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.with_metadata({"k": "v"}),
        lambda s: s.with_tags(["a"]),
        lambda s: s.replace(context={"system_prompt": "x"}),
        lambda s: s.replace(parent_session_id="ses_parent"),
        lambda s: s.replace(agent_id="other"),
        lambda s: s.replace(),  # only updated_at moves
    ],
    ids=["metadata", "tags", "context", "parent", "agent_id", "updated_at"],
)
def test_session_other_fields_are_one_revised_event(session: Session, change: Any) -> None:
    aggregate = SessionAggregate.start(session)
    new = change(session)
    events = revised_events(aggregate, new)
    assert kinds(events) == ["Revised"]
    assert "status" not in events[0].changes
    assert aggregate.record == new


def test_session_combined_change_is_one_event_per_kind_in_order(session: Session) -> None:
    aggregate = SessionAggregate.start(session)
    new = session.with_status("completed").with_metadata({"a": 1}).soft_delete()
    events = revised_events(aggregate, new)
    assert kinds(events) == ["StatusChanged", "SoftDeleted", "Revised"]
    assert [e.originator_version for e in events] == [2, 3, 4]
    assert events[2].changes == {"metadata": {"a": 1}}
    assert aggregate.record == new


def test_session_revise_sees_type_changes_in_metadata(session: Session) -> None:
    """JSON ``true``, ``1`` and ``1.0`` are different values; a save changing one into
    another must be recorded, or the store would keep returning the old value."""
    aggregate = SessionAggregate.start(session.with_metadata({"flag": True, "n": 1}))
    aggregate.collect_events()
    new = session.with_metadata({"flag": 1, "n": 1.0})
    events = revised_events(aggregate, new)
    assert kinds(events)[-1] == "Revised"
    assert exact(aggregate.record) == exact(new)


# RunAggregate -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.with_status("running"), ["StatusChanged"]),
        (lambda r: r.with_status("cancelled"), ["StatusChanged"]),
        (lambda r: r.replace(ended_at=T0 + timedelta(1)), ["StatusChanged"]),
        (lambda r: r.set_output({"text": "ok"}), ["StatusChanged", "OutputSet"]),
        (lambda r: r.set_error({"code": "x"}), ["StatusChanged", "ErrorSet"]),
        (lambda r: r.increment_turn(), ["TurnCompleted"]),
        (lambda r: r.add_token_usage({"input_tokens": 3}), ["TokenUsageUpdated"]),
        (lambda r: r.with_provider("claude"), ["ProviderAttached"]),
        (lambda r: r.replace(provider_metadata={"model": "m"}), ["ProviderAttached"]),
        (lambda r: r.with_cost(0.5), ["CostRecorded"]),
        (lambda r: r.with_metadata({"k": 1}), ["Revised"]),
        (lambda r: r.replace(input={"prompt": "p"}), ["Revised"]),
        (lambda r: r.replace(started_at=T0 + timedelta(1)), ["Revised"]),
    ],
    ids=[
        "running",
        "cancelled",
        "ended_at",
        "output",
        "error",
        "turn",
        "tokens",
        "provider",
        "provider_metadata",
        "cost",
        "metadata",
        "input",
        "started_at",
    ],
)
def test_run_change_events(run: Run, change: Any, expected: list[str]) -> None:
    aggregate = RunAggregate.start(run)
    created = list(aggregate.collect_events())
    new = change(run)
    events = revised_events(aggregate, new)
    assert kinds(events) == expected
    assert aggregate.record == new
    assert exact(replay([*created, *events]).record) == exact(new)


def test_run_change_events_carry_only_their_fields(run: Run) -> None:
    aggregate = RunAggregate.start(run)
    new = (
        run.with_status("running")
        .increment_turn()
        .add_token_usage({"input_tokens": 3})
        .with_provider("amp", {"model": "m"})
        .with_cost(2)
        .with_metadata({"k": 1})
        .set_output({"text": "done"})
    )
    events = revised_events(aggregate, new)
    assert [(type(e).__name__, set(e.changes)) for e in events] == [
        ("StatusChanged", {"status", "ended_at"}),
        ("OutputSet", {"output"}),
        ("TurnCompleted", {"turn_count"}),
        ("TokenUsageUpdated", {"token_usage"}),
        ("ProviderAttached", {"provider", "provider_metadata"}),
        ("CostRecorded", {"cost_usd"}),
        ("Revised", {"metadata"}),
    ]
    assert exact(aggregate.record) == exact(new)


def test_run_unchanged_record_triggers_nothing(run: Run) -> None:
    aggregate = RunAggregate.start(run)
    assert revised_events(aggregate, run) == []
    assert revised_events(aggregate, Run.from_dict(run.to_dict())) == []


# replay -------------------------------------------------------------------------------


def test_replaying_collected_events_reproduces_the_session(session: Session) -> None:
    aggregate = SessionAggregate.start(session)
    latest = session
    for change in (
        lambda s: s.with_status("active"),
        lambda s: s.with_metadata({"provider": "claude"}),
        lambda s: s.with_tags(["x", "y"]),
        lambda s: s.soft_delete(),
        lambda s: s.restore().with_status("completed"),
    ):
        latest = change(latest)
        aggregate.revise(latest)
    events = aggregate.collect_events()
    rebuilt = replay(events)
    assert isinstance(rebuilt, SessionAggregate)
    assert rebuilt.version == len(events) == aggregate.version
    assert exact(rebuilt.record) == exact(latest)


def test_store_reads_back_exactly_what_was_saved(memory_store: Any, session: Session) -> None:
    memory_store.save_session(session)
    latest = session.with_status("active").with_metadata({"k": [1, 2]})
    memory_store.save_session(latest)
    run = Run.new(session_id=session.id).with_status("running")
    memory_store.save_run(run)
    final_run = run.increment_turn().add_token_usage({"t": 5}).with_cost(1).set_output({"o": 1})
    memory_store.save_run(final_run)
    repository = memory_store.application.repository
    assert exact(repository.get(session_stream_id(session.id)).record) == exact(latest)
    assert exact(repository.get(run_stream_id(run.id)).record) == exact(final_run)
    stored = memory_store.application.events.get(run_stream_id(run.id))
    assert kinds(stored) == [
        "Created",
        "StatusChanged",
        "OutputSet",
        "TurnCompleted",
        "TokenUsageUpdated",
        "CostRecorded",
    ]


def test_store_records_a_change_between_true_and_one(memory_store: Any) -> None:
    """The diff must be type-exact: a ``1`` saved over ``True`` has to be read back."""
    session = Session.new(agent_id="a", metadata={"flag": True})
    memory_store.save_session(session)
    changed = session.with_metadata({"flag": 1})
    memory_store.save_session(changed)
    assert exact(memory_store.get_session(session.id)) == exact(changed)


# topics -------------------------------------------------------------------------------

PERSISTED = [
    SessionAggregate,
    SessionAggregate.Created,
    SessionAggregate.StatusChanged,
    SessionAggregate.SoftDeleted,
    SessionAggregate.Restored,
    SessionAggregate.Revised,
    RunAggregate,
    RunAggregate.Created,
    RunAggregate.StatusChanged,
    RunAggregate.OutputSet,
    RunAggregate.ErrorSet,
    RunAggregate.TurnCompleted,
    RunAggregate.TokenUsageUpdated,
    RunAggregate.ProviderAttached,
    RunAggregate.CostRecorded,
    RunAggregate.Revised,
    AgentEventRecorded,
    SessionErased,
]


@pytest.mark.parametrize("cls", PERSISTED, ids=lambda c: c.__qualname__)
def test_persisted_classes_have_explicit_stable_topics(cls: type[Any]) -> None:
    topic = cls.__dict__.get("TOPIC")  # its own, not inherited from a base class
    assert isinstance(topic, str)
    assert topic.startswith("agent_sessions:")
    assert get_topic(cls) == topic
    assert resolve_topic(topic) is cls
    # Not the module path, which would change when code moves.
    assert topic != f"{cls.__module__}:{cls.__qualname__}"


def test_topics_are_unique() -> None:
    topics = [cls.__dict__["TOPIC"] for cls in PERSISTED]
    assert len(set(topics)) == len(topics)


def test_stored_events_use_the_explicit_topics(memory_store: Any, session: Session) -> None:
    memory_store.save_session(session)
    memory_store.save_session(session.with_status("active"))
    memory_store.save_run(Run.new(session_id=session.id))
    memory_store.append_event(Event.new(type="message_sent", session_id=session.id))
    memory_store.delete_session(session.id)
    notifications = memory_store.application.recorder.select_notifications(start=1, limit=100)
    topics = {n.topic for n in notifications}
    # Erasure removes the session's streams; only the tombstone is left.
    assert topics == {"agent_sessions:SessionErased"}
    tombstone = memory_store.application.events.get(tombstone_id(session.id))
    (erased,) = list(tombstone)
    assert erased.session_id == session.id
    assert len(erased.run_ids) == 1


def test_all_stream_topics_before_erasure(memory_store: Any, session: Session) -> None:
    memory_store.save_session(session)
    memory_store.save_session(session.with_status("active"))
    memory_store.save_run(Run.new(session_id=session.id))
    memory_store.append_event(Event.new(type="message_sent", session_id=session.id))
    notifications = memory_store.application.recorder.select_notifications(start=1, limit=100)
    assert [n.topic for n in notifications] == [
        "agent_sessions:Session.Created",
        "agent_sessions:Session.StatusChanged",
        "agent_sessions:Run.Created",
        "agent_sessions:AgentEventRecorded",
    ]


# AgentEventRecorded -------------------------------------------------------------------


def agent_event() -> Event:
    return Event.new(
        type=EventType.TOOL_CALL_COMPLETED,
        session_id="ses_1",
        run_id="run_1",
        data={"tool": "bash", "result": {"exit": 0, "lines": ["a", "b"]}},
        metadata={"m": 1.5},
        provider="codex",
        correlation_id="corr",
        timestamp=T0,
    )


@pytest.mark.parametrize("sequence", [1, 2, 1000])
def test_agent_event_recorded_round_trip(sequence: int) -> None:
    event = agent_event()
    recorded = AgentEventRecorded.from_event(event, sequence)
    assert recorded.originator_id == log_id("ses_1") == "log:ses_1"
    assert recorded.originator_version == sequence
    assert recorded.timestamp == event.timestamp
    assert recorded.to_event() == event.with_sequence(sequence)


def test_agent_event_recorded_ignores_a_caller_sequence() -> None:
    event = agent_event().with_sequence(99)
    assert AgentEventRecorded.from_event(event, 3).to_event().sequence_number == 3


def test_agent_event_recorded_survives_the_application_mapper(memory_store: Any) -> None:
    """What is stored is the transcoded form; it must decode to the same agent event."""
    mapper = memory_store.application.mapper
    event = agent_event()
    stored = mapper.to_stored_event(AgentEventRecorded.from_event(event, 5))
    assert stored.topic == "agent_sessions:AgentEventRecorded"
    assert mapper.to_domain_event(stored).to_event() == event.with_sequence(5)


def test_session_erased_survives_the_application_mapper(memory_store: Any) -> None:
    mapper = memory_store.application.mapper
    erased = SessionErased(
        originator_id=tombstone_id("ses_1"),
        originator_version=1,
        timestamp=T0,
        session_id="ses_1",
        run_ids=["run_1", "run_2"],
    )
    assert tombstone_id("ses_1") == "erased:ses_1"
    decoded = mapper.to_domain_event(mapper.to_stored_event(erased))
    assert decoded == erased


# property: replay reproduces the final record -----------------------------------------

# Values Python calls equal but JSON does not: a diff has to tell them apart.
look_alikes = st.sampled_from([0, 1, True, False, 0.0, 1.0])
json_scalars = st.one_of(
    look_alikes,
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=5),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=4), children, max_size=3),
    ),
    max_leaves=6,
)
small_maps = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.one_of(look_alikes, json_values), max_size=3
)
number_or_text = st.one_of(st.integers(0, 1000), st.floats(0, 1000, width=32), st.text(max_size=3))

session_changes = st.one_of(
    st.tuples(st.just("status"), st.sampled_from(["active", "paused", "completed", "failed"])),
    st.tuples(st.just("metadata"), small_maps),
    st.tuples(st.just("context"), small_maps),
    # Tags are index text: NUL is refused there (``field_text``), so none is drawn.
    st.tuples(
        st.just("tags"),
        st.lists(st.text(st.characters(exclude_characters="\x00"), max_size=3), max_size=3),
    ),
    st.tuples(st.just("soft_delete"), st.none()),
    st.tuples(st.just("restore"), st.none()),
)
run_changes = st.one_of(
    st.tuples(st.just("status"), st.sampled_from(["pending", "running", "timeout", "cancelled"])),
    st.tuples(st.just("output"), small_maps),
    st.tuples(st.just("error"), small_maps),
    st.tuples(st.just("turn"), st.none()),
    st.tuples(st.just("tokens"), st.dictionaries(st.sampled_from(["in", "out"]), number_or_text)),
    st.tuples(st.just("provider"), st.tuples(st.sampled_from(["amp", "codex"]), small_maps)),
    st.tuples(st.just("cost"), st.one_of(st.none(), st.integers(0, 9), st.floats(0, 9))),
    st.tuples(st.just("metadata"), small_maps),
)


def apply_session_change(session: Session, change: tuple[str, Any]) -> Session:
    kind, value = change
    if kind == "status":
        return session.with_status(value)
    if kind == "metadata":
        return session.with_metadata(value)
    if kind == "context":
        return session.replace(context=value)
    if kind == "tags":
        return session.with_tags(value)
    if kind == "soft_delete":
        return session.soft_delete()
    return session.restore()


def apply_run_change(run: Run, change: tuple[str, Any]) -> Run:
    kind, value = change
    if kind == "status":
        return run.with_status(value)
    if kind == "output":
        return run.set_output(value)
    if kind == "error":
        return run.set_error(value)
    if kind == "turn":
        return run.increment_turn()
    if kind == "tokens":
        return run.add_token_usage(value)
    if kind == "provider":
        return run.with_provider(*value)
    if kind == "cost":
        return run.with_cost(value)
    return run.with_metadata(value)


PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@example(initial_metadata={}, changes=[[("metadata", {"a": True})], [("metadata", {"a": 1})]])
@given(
    initial_metadata=small_maps,
    changes=st.lists(st.lists(session_changes, min_size=1, max_size=3), max_size=6),
)
def test_session_replay_from_created_yields_the_final_record(
    initial_metadata: dict[str, Any], changes: list[list[tuple[str, Any]]]
) -> None:
    """Each inner list is one save: several helper calls folded into one record."""
    session = Session.new(agent_id="agent", metadata=initial_metadata)
    aggregate = SessionAggregate.start(session)
    for save in changes:
        for change in save:
            session = apply_session_change(session, change)
        aggregate.revise(session)
        assert exact(aggregate.record) == exact(session)
    events = aggregate.collect_events()
    assert isinstance(events[0], SessionAggregate.Created)
    assert exact(replay(events).record) == exact(session)


@PROPERTY_SETTINGS
@example(initial_input=None, changes=[[("output", {"a": 0})], [("output", {"a": False})]])
@given(
    initial_input=st.one_of(st.none(), small_maps),
    changes=st.lists(st.lists(run_changes, min_size=1, max_size=3), max_size=6),
)
def test_run_replay_from_created_yields_the_final_record(
    initial_input: dict[str, Any] | None, changes: list[list[tuple[str, Any]]]
) -> None:
    run = Run.new(session_id="ses_1", input=initial_input)
    aggregate = RunAggregate.start(run)
    for save in changes:
        for change in save:
            run = apply_run_change(run, change)
        aggregate.revise(run)
        assert exact(aggregate.record) == exact(run)
    events = aggregate.collect_events()
    assert isinstance(events[0], RunAggregate.Created)
    assert exact(replay(events).record) == exact(run)
