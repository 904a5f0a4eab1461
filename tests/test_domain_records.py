"""The records Session, Run, Event and ExecutionResult.

These are the shapes every backend stores and every caller serialises, so their
validation messages, codes and exact ``to_dict`` keys are contract, not detail.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any

import pytest

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from agent_sessions.domain import event_types
from agent_sessions.domain.checks import MAX_COST_USD
from agent_sessions.domain.event import SCHEMA_VERSION
from agent_sessions.domain.serialization import new_id, to_json_value
from agent_sessions.domain.statuses import TERMINAL_RUN_STATUSES

SCHEMA_VERSION_MESSAGE = "schema_version must be an integer greater than or equal to 1"
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


@contextmanager
def raises_code(code: str, message: str | None = None) -> Iterator[Any]:
    """``pytest.raises`` for our error family, then the code (and message) checked."""
    with pytest.raises(AgentSessionsError) as info:
        yield info
    assert info.value.code == code, f"expected {code}, got {info.value!s}"
    if message is not None:
        assert info.value.message == message


def session_map(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "ses_1",
        "agent_id": "agent",
        "status": "active",
        "parent_session_id": None,
        "metadata": {"k": "v"},
        "context": {"system_prompt": "be brief"},
        "tags": ["a", "b"],
        "created_at": T0.isoformat(),
        "updated_at": (T0 + timedelta(seconds=1)).isoformat(),
        "deleted_at": None,
    }
    data.update(overrides)
    return data


def run_map(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "run_1",
        "session_id": "ses_1",
        "status": "running",
        "input": {"prompt": "hi"},
        "output": None,
        "error": None,
        "metadata": {},
        "turn_count": 2,
        "token_usage": {"input_tokens": 10},
        "started_at": T0.isoformat(),
        "ended_at": None,
        "provider": "claude",
        "cost_usd": 0.25,
        "provider_metadata": {"model": "m"},
    }
    data.update(overrides)
    return data


def event_map(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "evt_1",
        "type": "message_received",
        "timestamp": T0.isoformat(),
        "session_id": "ses_1",
        "run_id": "run_1",
        "data": {"content": "hello"},
        "metadata": {},
        "sequence_number": 3,
        "schema_version": 1,
        "provider": "claude",
        "correlation_id": "corr",
    }
    data.update(overrides)
    return data


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


# ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "prefix"),
    [
        (lambda: Session.new(agent_id="a").id, "ses"),
        (lambda: Run.new(session_id="s").id, "run"),
        (lambda: Event.new(type="message_sent", session_id="s").id, "evt"),
        (lambda: new_id("xyz"), "xyz"),
    ],
)
def test_generated_ids_are_prefix_and_32_lowercase_hex(make: Any, prefix: str) -> None:
    ids = {make() for _ in range(50)}
    assert len(ids) == 50
    for generated in ids:
        assert re.fullmatch(rf"{prefix}_[0-9a-f]{{32}}", generated), generated


def test_caller_supplied_ids_are_kept() -> None:
    assert Session.new(agent_id="a", id="mine").id == "mine"
    assert Run.new(session_id="s", id="r").id == "r"
    assert Event.new(type="message_sent", session_id="s", id="e").id == "e"


# Session ------------------------------------------------------------------------------


def test_session_new_defaults() -> None:
    before = datetime.now(UTC)
    session = Session.new(agent_id="agent")
    assert session.status is SessionStatus.PENDING
    assert session.parent_session_id is None
    assert session.metadata == {}
    assert session.context == {}
    assert session.tags == ()
    assert session.deleted_at is None
    assert session.created_at == session.updated_at
    assert before <= session.created_at <= datetime.now(UTC)
    assert session.created_at.tzinfo is not None


def test_session_new_cannot_set_status() -> None:
    """Creation attrs cannot override ``pending``: a session always starts there."""
    with pytest.raises(TypeError):
        Session.new(agent_id="a", status="active")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("agent_id", "message"),
    [(None, "agent_id is required"), ("", "agent_id cannot be empty")],
)
def test_session_new_agent_id_rules(agent_id: Any, message: str) -> None:
    with raises_code("validation_error", message):
        Session.new(agent_id=agent_id)


def test_session_new_agent_id_must_be_a_string() -> None:
    with raises_code("validation_error", "agent_id must be a string"):
        Session.new(agent_id=7)  # type: ignore[arg-type]


def test_session_to_dict_keys_exactly_and_in_order() -> None:
    session = Session.new(agent_id="a", tags=["x"], metadata={"k": 1})
    data = session.to_dict()
    assert list(data) == [
        "id",
        "agent_id",
        "status",
        "parent_session_id",
        "metadata",
        "context",
        "tags",
        "created_at",
        "updated_at",
        "deleted_at",
    ]
    assert data["deleted_at"] is None
    assert data["status"] == "pending"
    assert type(data["status"]) is str
    assert data["tags"] == ["x"]
    assert data["created_at"] == session.created_at.isoformat()
    json.dumps(data)


def test_session_to_dict_deleted_at_is_iso_when_set() -> None:
    session = Session.new(agent_id="a").soft_delete(at=T0)
    assert session.to_dict()["deleted_at"] == "2024-05-01T12:00:00.123456+00:00"


def test_session_round_trips_through_json() -> None:
    session = Session.new(
        agent_id="a",
        parent_session_id="ses_parent",
        metadata={"nested": {"list": [1, 2.5, None, True]}},
        context={"system_prompt": "x"},
        tags=["t1", "t2"],
    ).soft_delete()
    assert Session.from_dict(json.loads(json.dumps(session.to_dict()))) == session


def test_session_from_dict_reads_a_full_map() -> None:
    session = Session.from_dict(session_map(deleted_at=T0.isoformat()))
    assert session.status is SessionStatus.ACTIVE
    assert session.tags == ("a", "b")
    assert session.created_at == T0
    assert session.deleted_at == T0


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("id", "id is required"),
        ("agent_id", "agent_id is required"),
        ("status", "status is required"),
        ("created_at", "created_at is required"),
        ("updated_at", "updated_at is required"),
    ],
)
def test_session_from_dict_required_fields(field: str, message: str) -> None:
    with raises_code("validation_error", message):
        Session.from_dict(without(session_map(), field))
    with raises_code("validation_error", message):
        Session.from_dict(session_map(**{field: None}))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "", "id cannot be empty"),
        ("agent_id", "", "agent_id cannot be empty"),
        ("id", 1, "id must be a string"),
        ("agent_id", ["a"], "agent_id must be a string"),
        ("status", 3, "status must be a string"),
    ],
)
def test_session_from_dict_bad_values(field: str, value: Any, message: str) -> None:
    with raises_code("validation_error", message):
        Session.from_dict(session_map(**{field: value}))


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00+00:00", 12345])
def test_session_from_dict_bad_created_at_is_validation_error(value: Any) -> None:
    with raises_code("validation_error"):
        Session.from_dict(session_map(created_at=value))


def test_session_from_dict_unknown_status_is_invalid_status() -> None:
    with raises_code("invalid_status") as info:
        Session.from_dict(session_map(status="running"))
    assert info.value.message.startswith("Invalid status: running")


@pytest.mark.parametrize("value", [None, "x", [1], 3, ("a",)])
def test_session_from_dict_refuses_non_maps(value: Any) -> None:
    with raises_code("validation_error", "Invalid session map"):
        Session.from_dict(value)


@pytest.mark.parametrize("value", ["not a date", "", 17, {"at": "x"}, "2024-05-01T12:00:00"])
def test_session_from_dict_unparsable_deleted_at_reads_as_none(value: Any) -> None:
    """The optional timestamp is lenient, the naive one included (it is ambiguous)."""
    assert Session.from_dict(session_map(deleted_at=value)).deleted_at is None


def test_session_from_dict_defaults_for_missing_maps_and_tags() -> None:
    data = without(without(without(session_map(), "metadata"), "context"), "tags")
    session = Session.from_dict(without(without(data, "deleted_at"), "parent_session_id"))
    assert session.metadata == {}
    assert session.context == {}
    assert session.tags == ()
    assert session.deleted_at is None
    assert session.parent_session_id is None


def test_session_from_dict_keeps_unknown_nested_keys_as_strings() -> None:
    metadata = {"unknown_key": {"deeper": ["x"]}, "agent_id": "not the field"}
    assert Session.from_dict(session_map(metadata=metadata)).metadata == metadata


def test_session_from_dict_accepts_offset_timestamps_and_normalises_to_utc() -> None:
    local = T0.astimezone(timezone(timedelta(hours=5, minutes=30)))
    session = Session.from_dict(session_map(created_at=local.isoformat()))
    assert session.created_at == T0
    assert session.created_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("field", ["created_at", "updated_at", "deleted_at"])
def test_session_refuses_naive_datetimes(field: str) -> None:
    with raises_code("validation_error", f"{field} must be timezone-aware"):
        Session(id="s", agent_id="a", **{field: datetime(2024, 1, 1)})


def test_session_from_dict_refuses_naive_created_at() -> None:
    with raises_code("validation_error", "created_at must be timezone-aware"):
        Session.from_dict(session_map(created_at="2024-05-01T12:00:00"))


@pytest.mark.parametrize("tags", ["abc", [1, 2], ["ok", None], 5])
def test_session_tags_must_be_a_list_of_strings(tags: Any) -> None:
    with raises_code("validation_error", "tags must be a list of strings"):
        Session(id="s", agent_id="a", tags=tags)


@pytest.mark.parametrize("tags", ["abc", [1, 2], 5])
def test_session_new_refuses_tags_that_are_not_a_list_of_strings(tags: Any) -> None:
    """``Session.new`` must not turn a string into its characters nor leak ``TypeError``."""
    with raises_code("validation_error", "tags must be a list of strings"):
        Session.new(agent_id="a", tags=tags)


def test_session_with_status_moves_updated_at_and_refuses_unknown_status() -> None:
    session = Session(id="s", agent_id="a", created_at=T0, updated_at=T0)
    active = session.with_status("active")
    assert active.status is SessionStatus.ACTIVE
    assert active.updated_at > T0
    assert active.created_at == T0
    # Transitions are not enforced: anything valid goes.
    assert active.with_status(SessionStatus.PENDING).status is SessionStatus.PENDING
    with raises_code("invalid_status"):
        session.with_status("running")


def test_session_with_metadata_is_a_shallow_merge_later_wins() -> None:
    session = Session.new(agent_id="a", metadata={"a": 1, "b": {"x": 1}})
    merged = session.with_metadata({"b": {"y": 2}, "c": 3})
    assert merged.metadata == {"a": 1, "b": {"y": 2}, "c": 3}
    assert session.metadata == {"a": 1, "b": {"x": 1}}


def test_session_soft_delete_and_restore() -> None:
    session = Session.new(agent_id="a")
    deleted = session.soft_delete(at=T0 + timedelta(days=1))
    assert deleted.is_deleted
    assert deleted.deleted_at == T0 + timedelta(days=1)
    assert deleted.updated_at == deleted.deleted_at
    restored = deleted.restore()
    assert not restored.is_deleted
    assert restored.deleted_at is None


# Run ----------------------------------------------------------------------------------


def test_run_new_defaults() -> None:
    before = datetime.now(UTC)
    run = Run.new(session_id="ses_1", input={"prompt": "hi"}, metadata={"m": 1})
    assert run.status is RunStatus.PENDING
    assert run.input == {"prompt": "hi"}
    assert run.metadata == {"m": 1}
    assert run.output is None
    assert run.error is None
    assert run.turn_count == 0
    assert run.token_usage == {}
    assert before <= run.started_at <= datetime.now(UTC)
    assert run.ended_at is None
    assert run.provider is None
    assert run.provider_metadata == {}
    assert run.cost_usd is None


def test_run_new_input_defaults_to_none_not_empty_map() -> None:
    assert Run.new(session_id="s").input is None
    assert Run.new(session_id="s", input={}).input == {}


@pytest.mark.parametrize(
    ("session_id", "message"),
    [(None, "session_id is required"), ("", "session_id cannot be empty")],
)
def test_run_new_session_id_rules(session_id: Any, message: str) -> None:
    with raises_code("validation_error", message):
        Run.new(session_id=session_id)


def test_run_new_honours_only_the_creation_fields() -> None:
    with pytest.raises(TypeError):
        Run.new(session_id="s", status="running")  # type: ignore[call-arg]


def test_run_to_dict_keys_exactly_and_in_order() -> None:
    run = Run.new(session_id="s")
    data = run.to_dict()
    assert list(data) == [
        "id",
        "session_id",
        "status",
        "input",
        "output",
        "error",
        "metadata",
        "turn_count",
        "token_usage",
        "started_at",
        "ended_at",
        "provider",
        "cost_usd",
        "provider_metadata",
    ]
    assert data["ended_at"] is None
    assert data["status"] == "pending"
    assert type(data["status"]) is str
    assert data["started_at"] == run.started_at.isoformat()
    json.dumps(data)


def test_run_round_trips_through_json() -> None:
    run = (
        Run.new(session_id="s", input={"p": [1, 2]})
        .with_status("running")
        .increment_turn()
        .add_token_usage({"input_tokens": 5, "model": "m"})
        .with_provider("codex", {"provider_session_id": "p1"})
        .with_cost(1.5)
        .set_output({"text": "done"})
    )
    assert Run.from_dict(json.loads(json.dumps(run.to_dict()))) == run


@pytest.mark.parametrize("status", sorted(TERMINAL_RUN_STATUSES))
def test_run_with_terminal_status_stamps_ended_at(status: RunStatus) -> None:
    run = Run.new(session_id="s").with_status("running")
    assert run.ended_at is None
    ended = run.with_status(status)
    assert ended.status is status
    assert ended.ended_at is not None
    assert ended.ended_at >= run.started_at
    assert ended.is_terminal


def test_terminal_run_statuses_are_exactly_the_four_final_ones() -> None:
    assert {s.value for s in TERMINAL_RUN_STATUSES} == {
        "completed",
        "failed",
        "cancelled",
        "timeout",
    }
    assert [s.value for s in RunStatus if s.is_terminal] == [
        "completed",
        "failed",
        "cancelled",
        "timeout",
    ]


@pytest.mark.parametrize("status", ["pending", "running"])
def test_run_with_non_terminal_status_keeps_ended_at(status: str) -> None:
    fresh = Run.new(session_id="s")
    assert fresh.with_status(status).ended_at is None
    ended = fresh.replace(status="failed", ended_at=T0)
    back = ended.with_status(status)
    assert back.status == status
    assert back.ended_at == T0


def test_run_with_unknown_status_is_invalid_status() -> None:
    with raises_code("invalid_status"):
        Run.new(session_id="s").with_status("active")


def test_run_set_output_completes_the_run() -> None:
    run = Run.new(session_id="s").with_status("running").set_output({"text": "ok"})
    assert run.output == {"text": "ok"}
    assert run.status is RunStatus.COMPLETED
    assert run.ended_at is not None


def test_run_set_error_fails_the_run() -> None:
    run = Run.new(session_id="s").with_status("running").set_error({"code": "boom"})
    assert run.error == {"code": "boom"}
    assert run.status is RunStatus.FAILED
    assert run.ended_at is not None
    assert run.output is None


def test_run_increment_turn() -> None:
    run = Run.new(session_id="s")
    assert run.increment_turn().increment_turn().turn_count == 2
    assert run.turn_count == 0


def test_run_add_token_usage_sums_numbers_and_replaces_the_rest() -> None:
    run = Run.new(session_id="s").add_token_usage(
        {"input_tokens": 10, "output_tokens": 2.5, "model": "a", "flag": True, "n": "x"}
    )
    updated = run.add_token_usage(
        {"input_tokens": 5, "output_tokens": 1, "model": "b", "flag": 3, "n": 4, "new": 7}
    )
    assert updated.token_usage == {
        "input_tokens": 15,
        "output_tokens": 3.5,
        "model": "b",
        "flag": 3,  # a bool is not a number here: replaced, not summed
        "n": 4,
        "new": 7,
    }
    assert type(updated.token_usage["flag"]) is int


def test_run_add_token_usage_number_then_non_number_replaces() -> None:
    run = Run.new(session_id="s").add_token_usage({"total_tokens": 10})
    assert run.add_token_usage({"total_tokens": None}).token_usage == {"total_tokens": None}


def test_run_with_provider_merges_provider_metadata() -> None:
    run = Run.new(session_id="s").with_provider("amp", {"model": "m1", "a": 1})
    again = run.with_provider("codex", {"model": "m2"})
    assert again.provider == "codex"
    assert again.provider_metadata == {"model": "m2", "a": 1}


@pytest.mark.parametrize(("value", "expected"), [(2, 2.0), (0.5, 0.5), (None, None)])
def test_run_cost_usd_is_a_float(value: Any, expected: float | None) -> None:
    cost = Run.new(session_id="s").with_cost(value).cost_usd
    assert cost == expected
    if expected is not None:
        assert type(cost) is float


@pytest.mark.parametrize(("value", "expected"), [(3, 3.0), (0.125, 0.125), (0, 0.0)])
def test_run_from_dict_cost_numbers_become_floats(value: Any, expected: float) -> None:
    cost = Run.from_dict(run_map(cost_usd=value)).cost_usd
    assert cost == expected
    assert type(cost) is float


@pytest.mark.parametrize("value", ["1.5", True, [1], {"usd": 1}, None])
def test_run_from_dict_cost_non_numbers_become_none(value: Any) -> None:
    assert Run.from_dict(run_map(cost_usd=value)).cost_usd is None


def test_run_constructor_refuses_a_non_number_cost() -> None:
    with raises_code("validation_error", "cost_usd must be a number"):
        Run(id="r", session_id="s", cost_usd="1.5")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("id", "id is required"),
        ("session_id", "session_id is required"),
        ("status", "status is required"),
        ("started_at", "started_at is required"),
    ],
)
def test_run_from_dict_required_fields(field: str, message: str) -> None:
    with raises_code("validation_error", message):
        Run.from_dict(without(run_map(), field))


def test_run_from_dict_unknown_status_is_invalid_status() -> None:
    with raises_code("invalid_status"):
        Run.from_dict(run_map(status="active"))


def test_run_from_dict_refuses_non_maps() -> None:
    with raises_code("validation_error", "Invalid run map"):
        Run.from_dict(["not", "a", "map"])


@pytest.mark.parametrize("value", ["soon", 5, "2024-05-01T12:00:00"])
def test_run_from_dict_unparsable_ended_at_reads_as_none(value: Any) -> None:
    assert Run.from_dict(run_map(ended_at=value)).ended_at is None


def test_run_from_dict_defaults() -> None:
    data = run_map()
    for key in ("turn_count", "token_usage", "metadata", "provider_metadata", "input"):
        data.pop(key)
    run = Run.from_dict(data)
    assert run.turn_count == 0
    assert run.token_usage == {}
    assert run.metadata == {}
    assert run.provider_metadata == {}
    assert run.input is None


@pytest.mark.parametrize("value", [-1, 1.5, "2", True])
def test_run_turn_count_must_be_a_non_negative_integer(value: Any) -> None:
    with raises_code("validation_error", "turn_count must be a non-negative integer"):
        Run.from_dict(run_map(turn_count=value))


# Ranges (issue 11, class 6): what a run holds fits the views that keep it.

INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, -0.01, 10**400, MAX_COST_USD * 1.01, 1e308]
)
def test_run_cost_must_be_finite_non_negative_and_at_most_the_maximum(value: Any) -> None:
    bounds = f"cost_usd must be a finite number from 0 to {MAX_COST_USD}"
    with raises_code("validation_error", bounds) as info:
        Run.new(session_id="s").with_cost(value)
    assert info.value.details["field"] == "cost_usd"


@pytest.mark.parametrize("value", [0, 0.0, 1e-12, 12.5, MAX_COST_USD, int(MAX_COST_USD)])
def test_run_cost_accepts_every_finite_non_negative_float_up_to_the_maximum(value: Any) -> None:
    assert Run.new(session_id="s").with_cost(value).cost_usd == float(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 10**400, 1e308])
def test_run_from_dict_reads_a_stored_cost_that_is_not_one_as_none(value: Any) -> None:
    assert Run.from_dict(run_map(cost_usd=value)).cost_usd is None


@pytest.mark.parametrize("key", ["input_tokens", "output_tokens", "total_tokens",
                                 "cache_read_tokens", "cache_creation_tokens"])  # fmt: skip
@pytest.mark.parametrize("value", [INT64_MAX + 1, 10**19, 1e19, -1, -0.5, 10**400])
def test_run_token_counts_fit_a_signed_64_bit_integer(key: str, value: Any) -> None:
    field = f"token_usage.{key}"
    with raises_code("validation_error", f"{field} must be a finite number from 0 to {INT64_MAX}"):
        Run.new(session_id="s").add_token_usage({key: value})
    with raises_code("validation_error") as info:
        Run.from_dict(run_map(token_usage={key: value}))
    assert info.value.details["field"] == field


def test_run_token_counts_up_to_the_limit_and_other_keys_are_kept_as_given() -> None:
    usage = {"input_tokens": INT64_MAX, "output_tokens": 2.5, "total_tokens": None,
             "cache_read_tokens": "n/a", "server_tool_use": 10**30}  # fmt: skip
    assert Run.new(session_id="s").add_token_usage(usage).token_usage == usage


def test_run_token_usage_that_outgrows_the_range_is_refused() -> None:
    run = Run.new(session_id="s").add_token_usage({"input_tokens": INT64_MAX})
    with raises_code("validation_error") as info:
        run.add_token_usage({"input_tokens": 1})
    assert info.value.details["field"] == "token_usage.input_tokens"


def test_run_turn_count_fits_a_signed_64_bit_integer() -> None:
    assert Run.from_dict(run_map(turn_count=INT64_MAX)).turn_count == INT64_MAX
    with raises_code("validation_error", f"turn_count must be at most {INT64_MAX}"):
        Run.from_dict(run_map(turn_count=INT64_MAX + 1))


def test_run_refuses_naive_started_at() -> None:
    with raises_code("validation_error", "started_at must be timezone-aware"):
        Run(id="r", session_id="s", started_at=datetime(2024, 1, 1))


# Event --------------------------------------------------------------------------------


def test_event_new_defaults() -> None:
    event = Event.new(type="message_sent", session_id="s")
    assert event.type is EventType.MESSAGE_SENT
    assert event.run_id is None
    assert event.data == {}
    assert event.metadata == {}
    assert event.sequence_number is None
    assert event.schema_version == 1
    assert event.provider is None
    assert event.correlation_id is None
    assert event.timestamp.tzinfo is not None


def test_event_to_dict_keys_exactly_and_in_order() -> None:
    data = Event.from_dict(event_map()).to_dict()
    assert list(data) == [
        "id",
        "type",
        "timestamp",
        "session_id",
        "run_id",
        "data",
        "metadata",
        "sequence_number",
        "schema_version",
        "provider",
        "correlation_id",
    ]
    assert data == event_map()
    assert type(data["type"]) is str


def test_event_round_trips_through_json() -> None:
    event = Event.new(
        type=EventType.TOOL_CALL_STARTED,
        session_id="s",
        run_id="r",
        data={"tool": "bash", "args": ["-c", "ls"]},
        metadata={"m": 1},
        provider="claude",
        correlation_id="c",
    ).with_sequence(7)
    assert Event.from_dict(json.loads(json.dumps(event.to_dict()))) == event


def test_event_with_sequence_returns_a_copy() -> None:
    event = Event.new(type="message_sent", session_id="s")
    assert event.with_sequence(4).sequence_number == 4
    assert event.sequence_number is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: without(d, "schema_version"), "schema_version is required"),
        (lambda d: {**d, "schema_version": None}, "schema_version is required"),
        (lambda d: {**d, "schema_version": "1"}, SCHEMA_VERSION_MESSAGE),
        (lambda d: {**d, "schema_version": 0}, SCHEMA_VERSION_MESSAGE),
        (lambda d: {**d, "schema_version": -3}, SCHEMA_VERSION_MESSAGE),
        (lambda d: {**d, "schema_version": 1.0}, SCHEMA_VERSION_MESSAGE),
        (lambda d: {**d, "schema_version": True}, SCHEMA_VERSION_MESSAGE),
    ],
    ids=["missing", "none", "string", "zero", "negative", "float", "bool"],
)
def test_event_from_dict_schema_version_is_strict(make: Any, message: str) -> None:
    with raises_code("validation_error", message):
        Event.from_dict(make(event_map()))


def test_an_event_of_a_newer_schema_is_migration_required_never_misread() -> None:
    with pytest.raises(AgentSessionsError) as caught:
        Event.from_dict(event_map(schema_version=SCHEMA_VERSION + 1))
    assert caught.value.code == "migration_required"
    assert caught.value.details["schema_version"] == SCHEMA_VERSION + 1


def test_event_from_dict_unknown_type_is_invalid_event_type() -> None:
    with raises_code("invalid_event_type", "Invalid event type: message_teleported"):
        Event.from_dict(event_map(type="message_teleported"))


@pytest.mark.parametrize(("value", "message"), [(None, "type is required"), (5, None)])
def test_event_from_dict_missing_or_non_string_type(value: Any, message: str | None) -> None:
    with raises_code("validation_error", message):
        Event.from_dict(event_map(type=value))


def test_event_from_dict_timestamp_is_required() -> None:
    with raises_code("validation_error", "timestamp is required"):
        Event.from_dict(without(event_map(), "timestamp"))
    with raises_code("validation_error"):
        Event.from_dict(event_map(timestamp="not a time"))


@pytest.mark.parametrize(
    ("field", "message"),
    [("id", "id is required"), ("session_id", "session_id is required")],
)
def test_event_from_dict_required_ids(field: str, message: str) -> None:
    with raises_code("validation_error", message):
        Event.from_dict(without(event_map(), field))


def test_event_from_dict_optional_fields_default() -> None:
    data = event_map()
    for key in ("run_id", "sequence_number", "provider", "correlation_id", "data", "metadata"):
        data.pop(key)
    event = Event.from_dict(data)
    assert event.run_id is None
    assert event.sequence_number is None
    assert event.provider is None
    assert event.correlation_id is None
    assert event.data == {}
    assert event.metadata == {}


def test_event_from_dict_refuses_non_maps() -> None:
    with raises_code("validation_error", "Invalid event map"):
        Event.from_dict("evt")


def test_event_new_type_rules() -> None:
    with raises_code("validation_error", "type is required"):
        Event.new(type=None, session_id="s")  # type: ignore[arg-type]
    with raises_code("invalid_event_type"):
        Event.new(type="nope", session_id="s")


@pytest.mark.parametrize(
    ("session_id", "message"),
    [(None, "session_id is required"), ("", "session_id cannot be empty")],
)
def test_event_new_session_id_rules(session_id: Any, message: str) -> None:
    with raises_code("validation_error", message):
        Event.new(type="message_sent", session_id=session_id)


def test_event_timestamp_is_required_on_construction() -> None:
    with raises_code("validation_error", "timestamp is required"):
        Event(id="e", type=EventType.MESSAGE_SENT, session_id="s", timestamp=None)  # type: ignore[arg-type]


def test_event_refuses_naive_timestamp() -> None:
    with raises_code("validation_error", "timestamp must be timezone-aware"):
        Event.new(type="message_sent", session_id="s", timestamp=datetime(2024, 1, 1))


@pytest.mark.parametrize("value", [0, -1, "3", True])
def test_event_sequence_number_must_be_positive_int(value: Any) -> None:
    with raises_code("validation_error"):
        Event.from_dict(event_map(sequence_number=value))


def test_all_28_event_types_in_canonical_order() -> None:
    expected = [
        "session_created",
        "session_started",
        "session_paused",
        "session_resumed",
        "session_completed",
        "session_failed",
        "session_cancelled",
        "run_started",
        "run_completed",
        "run_failed",
        "run_cancelled",
        "run_timeout",
        "message_sent",
        "message_received",
        "message_streamed",
        "tool_call_started",
        "tool_call_completed",
        "tool_call_failed",
        "error_occurred",
        "error_recovered",
        "token_usage_updated",
        "turn_completed",
        "workspace_snapshot_taken",
        "workspace_diff_computed",
        "policy_violation",
        "tool_approval_requested",
        "tool_approval_granted",
        "tool_approval_denied",
    ]
    assert [t.value for t in EventType] == expected
    assert [t.value for t in event_types.all_types()] == expected


def test_event_type_groups() -> None:
    def values(group: tuple[EventType, ...]) -> list[str]:
        return [t.value for t in group]

    assert values(event_types.SESSION_EVENTS) == [
        "session_created",
        "session_started",
        "session_paused",
        "session_resumed",
        "session_completed",
        "session_failed",
        "session_cancelled",
    ]
    assert values(event_types.RUN_EVENTS) == [
        "run_started",
        "run_completed",
        "run_failed",
        "run_cancelled",
        "run_timeout",
    ]
    assert values(event_types.MESSAGE_EVENTS) == [
        "message_sent",
        "message_received",
        "message_streamed",
    ]
    assert values(event_types.TOOL_EVENTS) == [
        "tool_call_started",
        "tool_call_completed",
        "tool_call_failed",
    ]
    assert values(event_types.ERROR_EVENTS) == ["error_occurred", "error_recovered"]
    assert values(event_types.WORKSPACE_EVENTS) == [
        "workspace_snapshot_taken",
        "workspace_diff_computed",
    ]
    assert values(event_types.POLICY_EVENTS) == ["policy_violation"]
    assert values(event_types.APPROVAL_EVENTS) == [
        "tool_approval_requested",
        "tool_approval_granted",
        "tool_approval_denied",
    ]


@pytest.mark.parametrize(
    ("value", "valid"),
    [("message_sent", True), (EventType.RUN_TIMEOUT, True), ("MESSAGE_SENT", False), (1, False)],
)
def test_is_valid_type(value: Any, valid: bool) -> None:
    assert event_types.is_valid_type(value) is valid


# statuses -----------------------------------------------------------------------------


def test_status_values_are_exactly_the_public_ones() -> None:
    assert [s.value for s in SessionStatus] == [
        "pending",
        "active",
        "paused",
        "completed",
        "failed",
        "cancelled",
    ]
    assert [s.value for s in RunStatus] == [
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
        "timeout",
    ]


@pytest.mark.parametrize(
    "member", [*SessionStatus, *RunStatus, EventType.MESSAGE_SENT, EventType.POLICY_VIOLATION]
)
def test_str_enum_members_equal_plain_strings(member: Any) -> None:
    """A status or type read back from JSON is a plain string and must still match."""
    plain = str(member.value)
    assert member == plain
    assert plain == member
    assert hash(member) == hash(plain)
    assert {plain: True}[member]
    assert f"{member}" == plain


# free-form maps -----------------------------------------------------------------------


class Colour(Enum):
    RED = "red"


class Level(Enum):
    HIGH = 3


def test_enum_values_inside_maps_become_plain_strings() -> None:
    session = Session.new(
        agent_id="a",
        metadata={
            "status": SessionStatus.ACTIVE,
            "nested": {"types": [EventType.RUN_FAILED, RunStatus.TIMEOUT]},
            "colour": Colour.RED,
            "level": Level.HIGH,
            SessionStatus.PAUSED: "enum key",
        },
    )
    assert session.metadata == {
        "status": "active",
        "nested": {"types": ["run_failed", "timeout"]},
        "colour": "red",
        "level": "HIGH",
        "paused": "enum key",
    }
    assert type(session.metadata["status"]) is str
    assert all(type(v) is str for v in session.metadata["nested"]["types"])
    assert all(type(k) is str for k in session.metadata)
    read_back = Session.from_dict(json.loads(json.dumps(session.to_dict())))
    assert read_back.metadata == session.metadata


def test_non_string_scalar_keys_become_strings_recursively() -> None:
    event = Event.new(type="message_sent", session_id="s", data={"outer": {1: "a", 2.5: "b"}})
    assert event.data == {"outer": {"1": "a", "2.5": "b"}}


def test_scalar_keys_are_spelled_as_json_spells_them() -> None:
    data = {True: 1, False: 2, None: 3, 7: 4, 0.5: 5}
    event = Event.new(type="message_sent", session_id="s", data=data)
    assert event.data == json.loads(json.dumps(data))


@pytest.mark.parametrize(
    "colliding",
    [{1: "a", "1": "b"}, {True: "a", "true": "b"}, {"x": {None: 1, "null": 2}}],
    ids=["int-and-text", "bool-and-text", "nested-null"],
)
def test_keys_that_are_one_json_key_are_refused_not_merged(colliding: dict[Any, Any]) -> None:
    with raises_code("validation_error") as refused:
        Session.new(agent_id="a", metadata=colliding)
    assert refused.value.details["field"] == "metadata"
    with raises_code("validation_error"):
        Event.new(type="message_sent", session_id="s", data=colliding)


def test_tuples_become_lists_and_datetimes_iso_strings() -> None:
    event = Event.new(type="message_sent", session_id="s", data={"t": (1, 2), "at": T0})
    assert event.data == {"t": [1, 2], "at": T0.isoformat()}


@pytest.mark.parametrize(
    "bad",
    [
        {"obj": object()},
        {"set": {1, 2}},
        {"bytes": b"x"},
        {"nan": float("nan")},
        {"inf": [float("inf")]},
        {("tuple", "key"): 1},
        {"deep": {"deeper": [{"x": complex(1, 2)}]}},
    ],
    ids=["object", "set", "bytes", "nan", "inf", "tuple-key", "nested-complex"],
)
def test_non_json_values_are_refused_with_validation_error(bad: dict[Any, Any]) -> None:
    with raises_code("validation_error"):
        Event.new(type="message_sent", session_id="s", data=bad)
    with raises_code("validation_error"):
        Session.new(agent_id="a", metadata=bad)
    with raises_code("validation_error"):
        Run.new(session_id="s", input=bad)


def test_too_deep_nesting_is_refused() -> None:
    value: Any = "leaf"
    for _ in range(100):
        value = {"k": value}
    with raises_code("validation_error"):
        to_json_value(value)


@pytest.mark.parametrize("value", ["a string", ["list"], [("k", "v")], 3])
def test_map_fields_must_be_maps(value: Any) -> None:
    with raises_code("validation_error", "data must be a map"):
        Event(id="e", type=EventType.MESSAGE_SENT, session_id="s", data=value)
    with raises_code("validation_error", "metadata must be a map"):
        Session(id="s", agent_id="a", metadata=value)
    with raises_code("validation_error", "input must be a map"):
        Run(id="r", session_id="s", input=value)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda v: Event.new(type="message_sent", session_id="s", data=v), "data"),
        (lambda v: Event.new(type="message_sent", session_id="s", metadata=v), "metadata"),
        (lambda v: Session.new(agent_id="a", metadata=v), "metadata"),
        (lambda v: Session.new(agent_id="a", context=v), "context"),
        (lambda v: Run.new(session_id="s", input=v), "input"),
        (lambda v: Run.new(session_id="s", metadata=v), "metadata"),
    ],
    ids=[
        "event-data",
        "event-metadata",
        "session-metadata",
        "session-context",
        "run-input",
        "run-metadata",
    ],
)
def test_new_factories_refuse_non_map_fields(make: Any, field: str) -> None:
    """The factories must refuse like the constructors do: a structured
    ``validation_error``, never a leaked ``TypeError`` nor a silently converted value."""
    for value in ("a string", [("k", "v")], 3):
        with raises_code("validation_error", f"{field} must be a map"):
            make(value)


def test_records_copy_their_maps() -> None:
    """A caller mutating its dict after construction must not change a record."""
    metadata = {"k": [1]}
    session = Session.new(agent_id="a", metadata=metadata)
    metadata["k"].append(2)
    metadata["other"] = 1
    assert session.metadata == {"k": [1]}


def test_records_are_immutable() -> None:
    session = Session.new(agent_id="a")
    with pytest.raises(AttributeError):
        session.status = SessionStatus.ACTIVE  # type: ignore[misc]


# ExecutionResult ----------------------------------------------------------------------


def test_execution_result_coerce_accepts_record_or_mapping() -> None:
    session = Session.new(agent_id="a")
    run = Run.new(session_id=session.id)
    events = [Event.new(type="run_started", session_id=session.id, run_id=run.id)]
    result = ExecutionResult(session=session, run=run, events=events)
    assert ExecutionResult.coerce(result) is result
    coerced = ExecutionResult.coerce(
        {"session": session, "run": run, "events": events, "provider_metadata": {"p": 1}}
    )
    assert (coerced.session, coerced.run, coerced.events) == (session, run, events)
    assert coerced.provider_metadata == {"p": 1}
    assert ExecutionResult.coerce({"session": session, "run": run}).events == []


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "result",
        {"run": "r"},
        {"session": "s", "run": "r", "events": []},
        {"session": Session.new(agent_id="a"), "run": None, "events": []},
        {
            "session": Session.new(agent_id="a"),
            "run": Run.new(session_id="s"),
            "events": "not a list",
        },
    ],
    ids=["none", "string", "no-session", "wrong-types", "no-run", "events-not-list"],
)
def test_execution_result_coerce_refuses_bad_payloads(payload: Any) -> None:
    with raises_code("validation_error", "invalid execution_result payload"):
        ExecutionResult.coerce(payload)
