"""``open_store`` is the one composition root: the same checks and the same kind of store
object on every backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent_sessions import AgentSessionsError, Session, SessionStatus, open_store


def error_of(work: Callable[[], Any]) -> AgentSessionsError:
    with pytest.raises(AgentSessionsError) as caught:
        work()
    return caught.value


def test_unknown_options_are_validation_errors_on_every_backend(store_url: str) -> None:
    error = error_of(lambda: open_store(store_url, no_such_option=1))
    assert error.code == "validation_error"
    assert error.details["options"] == ["no_such_option"]
    assert error.details["field"] == "no_such_option"


def test_unknown_options_in_the_url_are_validation_errors_too(store_url: str) -> None:
    separator = "&" if "?" in store_url else "?"
    error = error_of(lambda: open_store(f"{store_url}{separator}colour=blue"))
    assert error.code == "validation_error"
    assert error.details["options"] == ["colour"]


def test_a_numeric_option_must_be_a_number(sqlite_url: str) -> None:
    error = error_of(lambda: open_store(sqlite_url, lock_timeout="soon"))
    assert (error.code, error.details["field"]) == ("validation_error", "lock_timeout")


def test_memory_stores_share_nothing() -> None:
    with open_store("memory://") as one, open_store("memory://") as two:
        one.save_session(Session.new(agent_id="a").with_status(SessionStatus.ACTIVE))
        assert len(one.list_sessions()) == 1
        assert two.list_sessions() == []


def test_every_backend_returns_the_same_kind_of_store(store_url: str) -> None:
    with open_store(store_url) as store:
        assert type(store).__name__ == "Store"
        session = Session.new(agent_id="a").with_status(SessionStatus.ACTIVE)
        store.save_session(session)
        page = store.query().search_sessions(agent_id="a")
        assert [s.id for s in page.sessions] == [session.id]


def test_artifact_calls_without_an_artifact_store_are_validation_errors() -> None:
    with open_store("memory://") as store:
        for call in (
            lambda: store.put_artifact(None, None, "k", b"x"),
            lambda: store.get_artifact("k"),
            lambda: store.open_artifact("k"),
            lambda: store.delete_artifact("k"),
        ):
            assert error_of(call).code == "validation_error"


def test_an_unsupported_scheme_is_a_validation_error() -> None:
    error = error_of(lambda: open_store("mysql://localhost/x"))
    assert (error.code, error.details["field"]) == ("validation_error", "url")


def refused(error: AgentSessionsError) -> tuple[str, object, bool]:
    return (error.code, error.details.get("field"), error.retryable)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"url": 5}, "url"),
        ({"url": b"memory://"}, "url"),
        ({"artifacts": "s3://"}, "artifacts"),
        ({"artifacts": "ftp://x"}, "artifacts"),
        ({"artifacts": 5}, "artifacts"),
        ({"artifacts": b"file:///tmp"}, "artifacts"),
        ({"artifacts": "file:///{tmp}", "artifact_options": {"x": 1}}, "x"),
        ({"artifacts": "file:///{tmp}", "artifact_options": 5}, "artifact_options"),
        ({"artifacts": "s3://b", "artifact_options": {"bucket": "c"}}, "bucket"),
        ({"lock_timeout": b"4"}, "lock_timeout"),
        ({"max_event_bytes": [1]}, "max_event_bytes"),
    ],
)
def test_bad_arguments_are_validation_errors_naming_the_argument(
    sqlite_url: str, tmp_path: Path, arguments: dict[str, Any], field: str
) -> None:
    """Each is the caller's mistake, refused before anything is opened or created."""
    keywords = {
        name: value.format(tmp=tmp_path / "blobs") if isinstance(value, str) else value
        for name, value in arguments.items()
    }
    url = keywords.pop("url", sqlite_url)
    error = error_of(lambda: open_store(url, **keywords))
    assert refused(error) == ("validation_error", field, False)
    assert not (tmp_path / "agent_sessions.db").exists()
    assert not (tmp_path / "blobs").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("connect_timeout", "0"), ("application_name", "\ud800"), ("application_name", "a\x00b")],
)
def test_bad_postgres_options_are_validation_errors_not_connection_failures(
    pg_server_url: str, option: str, value: str
) -> None:
    error = error_of(lambda: open_store(pg_server_url, **{option: value}))
    assert refused(error) == ("validation_error", option, False)
