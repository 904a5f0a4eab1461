"""RetentionPolicy: defaults, validation in a fixed order (ages, counts, batch size,
archive), and the pure decisions of which sessions are due."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent_sessions import EventType, Session, SessionStatus, ValidationError
from agent_sessions.domain.retention_policy import (
    PROTECTED_EVENT_TYPES,
    RetentionPolicy,
    archive_key,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
#: The fields that take a positive integer or infinity, in the order they are checked.
UNBOUNDED = [
    "max_session_age_days",
    "max_completed_session_age_days",
    "hard_delete_after_days",
    "max_events_per_session",
    "max_total_events",
]


class Archive:
    def put(self, key: str, data: bytes, **options: Any) -> None:
        pass


def session(*, updated_days: int = 0, created_days: int | None = None, **fields: Any) -> Session:
    created = NOW - timedelta(days=updated_days if created_days is None else created_days)
    return Session.new(agent_id="agent").replace(
        created_at=created, updated_at=NOW - timedelta(days=updated_days), **fields
    )


def test_defaults_are_the_spec_table() -> None:
    policy = RetentionPolicy()
    assert policy.max_session_age_days is None
    assert policy.max_completed_session_age_days == 90
    assert policy.max_events_per_session is None
    assert policy.max_total_events is None
    assert policy.hard_delete_after_days == 30
    assert policy.archive_before_prune is False
    assert policy.archive_store is None
    assert policy.exempt_statuses == (SessionStatus.ACTIVE, SessionStatus.PAUSED)
    assert policy.exempt_tags == ("pinned",)
    assert policy.prune_event_types_first == (
        EventType.MESSAGE_STREAMED,
        EventType.TOKEN_USAGE_UPDATED,
    )
    assert policy.batch_size == 100
    assert RetentionPolicy.new() == policy


def test_new_overlays_options_and_normalises_lists() -> None:
    archive = Archive()
    policy = RetentionPolicy.new(
        max_events_per_session=500,
        exempt_statuses=["active"],
        exempt_tags=["keep", "legal-hold"],
        prune_event_types_first=["message_streamed"],
        archive_before_prune=True,
        archive_store=archive,
        batch_size=7,
    )
    assert policy.max_events_per_session == 500
    assert policy.max_completed_session_age_days == 90
    assert policy.exempt_statuses == (SessionStatus.ACTIVE,)
    assert policy.exempt_tags == ("keep", "legal-hold")
    assert policy.prune_event_types_first == (EventType.MESSAGE_STREAMED,)
    assert policy.archive_store is archive
    assert policy.batch_size == 7
    hash(policy)  # frozen and made of tuples


def test_new_refuses_unknown_options() -> None:
    with pytest.raises(ValidationError) as raised:
        RetentionPolicy.new(max_event_per_session=10)
    assert raised.value.code == "validation_error"
    assert raised.value.details["unknown"] == ["max_event_per_session"]
    # Named as every refused argument is (issue 11, class 9): the first unknown one.
    assert raised.value.details["field"] == "max_event_per_session"


@pytest.mark.parametrize("name", UNBOUNDED)
def test_infinity_is_none_and_math_inf_is_accepted(name: str) -> None:
    assert getattr(RetentionPolicy.new(**{name: None}), name) is None
    assert getattr(RetentionPolicy.new(**{name: math.inf}), name) is None
    assert getattr(RetentionPolicy.new(**{name: 3}), name) == 3


@pytest.mark.parametrize("name", UNBOUNDED)
@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10", -math.inf])
def test_unbounded_fields_need_a_positive_integer(name: str, bad: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        RetentionPolicy.new(**{name: bad})
    assert raised.value.code == "validation_error"
    assert raised.value.message == f"{name} must be a positive integer or :infinity"
    assert raised.value.details == {"field": name}


@pytest.mark.parametrize("bad", [0, -3, None, 2.0, False])
def test_batch_size_needs_a_positive_integer(bad: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        RetentionPolicy(batch_size=bad)
    assert raised.value.message == "batch_size must be a positive integer"


def test_archive_before_prune_requires_a_store() -> None:
    with pytest.raises(ValidationError) as raised:
        RetentionPolicy(archive_before_prune=True)
    assert raised.value.message == "archive_store is required when archive_before_prune is true"
    assert RetentionPolicy(archive_before_prune=False, archive_store=Archive()).validate() is None


def test_checks_run_in_the_spec_order() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"max_total_events": 0, "max_session_age_days": 0}, "max_session_age_days"),
        ({"max_total_events": 0, "hard_delete_after_days": 0}, "hard_delete_after_days"),
        ({"batch_size": 0, "max_total_events": -1}, "max_total_events"),
        ({"archive_before_prune": True, "batch_size": 0}, "batch_size"),
        ({"archive_before_prune": True, "exempt_tags": "pinned"}, "archive_store"),
    ]
    for options, first in cases:
        with pytest.raises(ValidationError) as raised:
            RetentionPolicy.new(**options)
        assert raised.value.details["field"] == first, options


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"archive_before_prune": "yes"}, "archive_before_prune must be a boolean"),
        ({"archive_store": object()}, "archive_store must have a put(key, data) method"),
        ({"exempt_statuses": ["archived"]}, "exempt_statuses must be a list of session statuses"),
        ({"exempt_statuses": "active"}, "exempt_statuses must be a list of session statuses"),
        ({"exempt_tags": "pinned"}, "exempt_tags must be a list of strings"),
        ({"exempt_tags": [1]}, "exempt_tags must be a list of strings"),
        # Not a list at all: a TypeError before (issue 11, class 9).
        ({"exempt_tags": None}, "exempt_tags must be a list of strings"),
        ({"exempt_tags": 5}, "exempt_tags must be a list of strings"),
        ({"prune_event_types_first": ["nope"]}, "prune_event_types_first must be a list"),
        ({"prune_event_types_first": ["run_started"]}, "cannot include protected types"),
    ],
)
def test_fields_beyond_the_spec_are_checked_too(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        RetentionPolicy.new(**options)
    assert raised.value.code == "validation_error"
    assert message in raised.value.message


def test_validate_reports_a_policy_changed_behind_its_back() -> None:
    policy = RetentionPolicy()
    assert policy.validate() is None
    object.__setattr__(policy, "hard_delete_after_days", 0)
    assert policy.validate() == "hard_delete_after_days must be a positive integer or :infinity"
    with pytest.raises(ValidationError):
        dataclasses.replace(policy)


def test_protected_types_are_the_spec_list() -> None:
    assert {str(t) for t in PROTECTED_EVENT_TYPES} == {
        "session_created",
        "run_started",
        "run_completed",
        "error_occurred",
        "run_failed",
    }


@pytest.mark.parametrize("status", ["pending", "completed", "failed", "cancelled"])
def test_any_status_not_exempt_ages_out(status: str) -> None:
    # Kept on purpose (docs/decisions.md): the "completed" age applies to every
    # non-exempt status, ``updated_at`` standing in for the completion time.
    assert RetentionPolicy().soft_delete_due(session(updated_days=91, status=status), NOW)


def test_soft_delete_decisions() -> None:
    policy = RetentionPolicy()
    assert not policy.soft_delete_due(session(updated_days=89), NOW)
    assert not policy.soft_delete_due(session(updated_days=91, status="active"), NOW)
    assert not policy.soft_delete_due(session(updated_days=91, status="paused"), NOW)
    assert not policy.soft_delete_due(session(updated_days=91, tags=("x", "pinned")), NOW)
    assert not policy.soft_delete_due(session(updated_days=91, deleted_at=NOW), NOW)
    # updated_at is the completion proxy: an old session saved again is kept.
    assert not policy.soft_delete_due(session(updated_days=1, created_days=400), NOW)
    never = RetentionPolicy(max_completed_session_age_days=None)
    assert not never.soft_delete_due(session(updated_days=10_000), NOW)


def test_max_session_age_uses_created_at() -> None:
    policy = RetentionPolicy(max_completed_session_age_days=None, max_session_age_days=30)
    assert policy.soft_delete_due(session(updated_days=1, created_days=31), NOW)
    assert not policy.soft_delete_due(session(updated_days=1, created_days=29), NOW)
    assert not policy.soft_delete_due(
        session(updated_days=1, created_days=31, status="active"), NOW
    )


def test_hard_delete_decisions() -> None:
    policy = RetentionPolicy()
    assert policy.hard_delete_due(session(deleted_at=NOW - timedelta(days=31)), NOW)
    assert not policy.hard_delete_due(session(deleted_at=NOW - timedelta(days=29)), NOW)
    assert not policy.hard_delete_due(session(updated_days=1000), NOW)
    never = RetentionPolicy(hard_delete_after_days=None)
    assert not never.hard_delete_due(session(deleted_at=NOW - timedelta(days=999)), NOW)


def test_archive_key() -> None:
    assert archive_key("ses_1", 3, 9) == "archives/ses_1/3-9.jsonl"
