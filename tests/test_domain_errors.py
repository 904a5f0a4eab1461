"""The error taxonomy and the exception family.

Callers branch on ``code``, ``category`` and ``retryable`` (for example to decide
whether to retry a write), so these mappings are part of the public contract.
"""

from __future__ import annotations

import pickle

import pytest

from agent_sessions import (
    AgentSessionsError,
    DependencyNotAvailable,
    ErrorCode,
    NotFoundError,
    StorageError,
    ValidationError,
)
from agent_sessions.domain.errors import (
    RETRYABLE_CODES,
    category,
    is_retryable,
    run_not_found,
    session_not_found,
)

# The public taxonomy (callers branch on it), restated here independently of the code's
# own table.
PUBLIC_CATEGORIES: dict[str, list[str]] = {
    "validation": ["validation_error", "invalid_input", "missing_required_field", "invalid_format"],
    "state": [
        "invalid_status",
        "invalid_transition",
        "invalid_event_type",
        "invalid_capability_type",
        "missing_required_capability",
        "stream_closed",
        "context_mismatch",
        "invalid_cursor",
        "session_mismatch",
        "run_mismatch",
    ],
    "resource": [
        "not_found",
        "session_not_found",
        "run_not_found",
        "capability_not_found",
        "already_exists",
        "duplicate_capability",
    ],
    "provider": [
        "provider_error",
        "provider_unavailable",
        "provider_rate_limited",
        "provider_timeout",
        "provider_authentication_failed",
        "provider_quota_exceeded",
    ],
    "storage": [
        "storage_error",
        "storage_connection_failed",
        "dependency_not_available",
        "migration_required",
        "storage_write_failed",
        "storage_read_failed",
    ],
    "runtime": ["timeout", "cancelled", "policy_violation", "internal_error", "unknown_error"],
    "concurrency": [
        "max_sessions_exceeded",
        "max_runs_exceeded",
        "capability_not_supported",
        "invalid_operation",
    ],
    "tool": ["tool_error", "tool_not_found", "tool_execution_failed", "tool_permission_denied"],
}

# Codes that queries, maintenance and persistence raise: each is a real code with its
# own category, so that every error the library raises has one (see errors.py).
EXTRA_CATEGORIES = {
    "query_error": "query",
    "maintenance_error": "maintenance",
    "persistence_error": "storage",
    "projection_failed": "query",
    "concurrency_conflict": "concurrency",
}

TRANSIENT_CODES = {
    "provider_timeout",
    "provider_rate_limited",
    "provider_unavailable",
    "storage_connection_failed",
    "timeout",
}

PUBLIC_CODE_CATEGORY = [(code, name) for name, codes in PUBLIC_CATEGORIES.items() for code in codes]


@pytest.mark.parametrize(("code", "expected"), PUBLIC_CODE_CATEGORY)
def test_category_of_every_public_code(code: str, expected: str) -> None:
    assert category(code) == expected
    assert category(ErrorCode(code)) == expected


@pytest.mark.parametrize(("code", "expected"), sorted(EXTRA_CATEGORIES.items()))
def test_extra_codes_have_a_category(code: str, expected: str) -> None:
    assert category(code) == expected


def test_error_code_enum_is_exactly_the_public_taxonomy_plus_the_extra_codes() -> None:
    public_codes = {code for codes in PUBLIC_CATEGORIES.values() for code in codes}
    assert {member.value for member in ErrorCode} == public_codes | set(EXTRA_CATEGORIES)


@pytest.mark.parametrize("code", ["bogus", "", "SESSION_NOT_FOUND", "query"])
def test_unknown_codes_are_in_the_unknown_category(code: str) -> None:
    assert category(code) == "unknown"


@pytest.mark.parametrize("code", [member.value for member in ErrorCode])
def test_is_retryable_only_for_the_five_transient_codes(code: str) -> None:
    assert is_retryable(code) is (code in TRANSIENT_CODES)
    assert is_retryable(ErrorCode(code)) is (code in TRANSIENT_CODES)


def test_retryable_set_is_exactly_the_transient_codes() -> None:
    assert {str(code) for code in RETRYABLE_CODES} == TRANSIENT_CODES
    assert not is_retryable("bogus")


def test_error_codes_compare_equal_to_plain_strings() -> None:
    """Codes travel through JSON logs as plain strings and must still match."""
    assert ErrorCode.SESSION_NOT_FOUND == "session_not_found"
    assert {"session_not_found": 1}[ErrorCode.SESSION_NOT_FOUND] == 1
    assert str(ErrorCode.STORAGE_ERROR) == "storage_error"


def test_str_form_is_code_in_brackets_then_message() -> None:
    error = ValidationError("agent_id is required")
    assert str(error) == "[validation_error] agent_id is required"
    assert error.message == "agent_id is required"


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (AgentSessionsError, "internal_error"),
        (ValidationError, "validation_error"),
        (NotFoundError, "not_found"),
        (StorageError, "storage_error"),
        (DependencyNotAvailable, "dependency_not_available"),
    ],
)
def test_each_subclass_has_its_default_code(cls: type[AgentSessionsError], code: str) -> None:
    error = cls("boom")
    assert error.code == code
    assert isinstance(error, AgentSessionsError)
    assert isinstance(error, Exception)
    assert error.details == {}


def test_explicit_code_overrides_the_default_and_drives_category() -> None:
    error = ValidationError("bad status", code=ErrorCode.INVALID_STATUS)
    assert error.code == "invalid_status"
    assert error.category == "state"
    assert error.retryable is False
    assert StorageError("gone", code="storage_connection_failed").retryable is True


def test_unknown_code_string_is_kept_as_is() -> None:
    error = AgentSessionsError("odd", code="made_up_code")
    assert error.code == "made_up_code"
    assert error.category == "unknown"
    assert str(error) == "[made_up_code] odd"


def test_details_are_copied_into_a_plain_dict() -> None:
    """A caller mutating its own mapping afterwards must not change the error."""
    details = {"field": "agent_id"}
    error = ValidationError("x", details=details)
    details["field"] = "other"
    assert error.details == {"field": "agent_id"}
    assert type(error.details) is dict


def test_to_dict_is_json_shaped() -> None:
    error = StorageError("disk full", code="storage_write_failed", details={"path": "/x"})
    assert error.to_dict() == {
        "code": "storage_write_failed",
        "message": "disk full",
        "details": {"path": "/x"},
    }
    assert type(error.to_dict()["code"]) is str


@pytest.mark.parametrize(
    "error",
    [
        ValidationError("bad", details={"field": "status", "value": "x"}),
        NotFoundError("Session not found: s", code="session_not_found", details={"id": "s"}),
        StorageError("flush failed: x", details={"cause": "IntegrityError('x')"}),
        DependencyNotAvailable("psycopg missing"),
        AgentSessionsError("odd", code="made_up_code", details={"n": [1, 2]}),
    ],
    ids=lambda e: str(e.code),
)
def test_pickle_round_trip_keeps_class_code_message_details(error: AgentSessionsError) -> None:
    """Errors cross process boundaries (multiprocessing workers) intact."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.code == error.code
    assert copy.message == error.message
    assert copy.details == error.details
    assert str(copy) == str(error)


def test_repr_names_class_code_and_message() -> None:
    error = NotFoundError("Run not found: r", code="run_not_found")
    assert repr(error) == "NotFoundError(code='run_not_found', message='Run not found: r')"


def test_session_not_found_helper_message() -> None:
    error = session_not_found("ses_x")
    assert isinstance(error, NotFoundError)
    assert error.code == "session_not_found"
    assert error.message == "Session not found: ses_x"
    assert error.category == "resource"


def test_run_not_found_helper_message() -> None:
    error = run_not_found("run_x")
    assert isinstance(error, NotFoundError)
    assert error.code == "run_not_found"
    assert error.message == "Run not found: run_x"
