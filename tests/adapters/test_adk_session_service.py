"""The ADK session service against the behaviours ADK's own session-service tests hold
every ``BaseSessionService`` to (tests/unittests/sessions/test_session_service.py in
google/adk-python), on memory, SQLite and PostgreSQL.

Where ADK's database service differs on purpose (it rejects an append from a stale
session object), our behaviour is the one our log promises: the event is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.session import Session
from google.genai import types
from pg_server import fresh_schema, with_options

from agent_sessions import open_async_store
from agent_sessions.adapters.adk import AgentSessionsSessionService

_T = TypeVar("_T")
Scenario = Callable[[AgentSessionsSessionService], Awaitable[_T]]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store on SQLite and on PostgreSQL (the memory backend shares their code
    above the recorder and is covered by the runner tests)."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "store.db")
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


def run(url: str, scenario: Scenario[_T]) -> _T:
    async def main() -> _T:
        async with AgentSessionsSessionService(url) as service:
            return await scenario(service)

    return asyncio.run(main())


def user_event(**fields: Any) -> Event:
    return Event(invocation_id=fields.pop("invocation_id", "inv"), author="user", **fields)


def delta(**state: Any) -> EventActions:
    return EventActions(state_delta=state)


def test_get_of_an_unknown_session_is_none(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> Session | None:
        return await service.get_session(app_name="my_app", user_id="u", session_id="123")

    assert run(store_url, scenario) is None


def test_create_get_delete(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        session = await service.create_session(
            app_name="my_app", user_id="test_user", state={"key": "value"}
        )
        assert (session.app_name, session.user_id, session.state) == (
            "my_app",
            "test_user",
            {"key": "value"},
        )
        assert session.id
        assert session.last_update_time <= datetime.now(UTC).timestamp()
        got = await service.get_session(
            app_name="my_app", user_id="test_user", session_id=session.id
        )
        assert got == session
        await service.delete_session(app_name="my_app", user_id="test_user", session_id=session.id)
        assert (
            await service.get_session(app_name="my_app", user_id="test_user", session_id=session.id)
            is None
        )
        # deleting again, or a session never created, is fine
        await service.delete_session(app_name="my_app", user_id="test_user", session_id=session.id)
        await service.delete_session(app_name="my_app", user_id="test_user", session_id="nope")

    run(store_url, scenario)


def test_list_sessions_per_user_and_for_all_users(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        for user, sid in (("u1", "s1a"), ("u1", "s1b"), ("u2", "s2a")):
            await service.create_session(
                app_name="my_app", user_id=user, session_id=sid, state={"key": "v" + sid}
            )
        await service.create_session(app_name="other_app", user_id="u1", session_id="x")
        one = (await service.list_sessions(app_name="my_app", user_id="u1")).sessions
        assert {s.id: s.state for s in one} == {"s1a": {"key": "vs1a"}, "s1b": {"key": "vs1b"}}
        assert all(not s.events for s in one)
        everyone = (await service.list_sessions(app_name="my_app")).sessions
        assert {(s.user_id, s.id) for s in everyone} == {
            ("u1", "s1a"),
            ("u1", "s1b"),
            ("u2", "s2a"),
        }
        assert (await service.list_sessions(app_name="nobody")).sessions == []

    run(store_url, scenario)


def test_list_sessions_is_ordered_by_last_update_oldest_first(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> list[str]:
        sessions = [
            await service.create_session(app_name="a", user_id="u", session_id=f"s{i}")
            for i in range(3)
        ]
        # s0 becomes the most recently updated
        await service.append_event(
            sessions[0], user_event(timestamp=sessions[2].last_update_time + 5)
        )
        return [s.id for s in (await service.list_sessions(app_name="a", user_id="u")).sessions]

    assert run(store_url, scenario) == ["s1", "s2", "s0"]


def test_app_user_and_session_state_scopes(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        s1 = await service.create_session(
            app_name="my_app",
            user_id="u1",
            session_id="s1",
            state={"app:k1": "v1", "user:k1": "u1v1", "sk1": "s1v1", "temp:t": "gone"},
        )
        assert s1.state == {"app:k1": "v1", "user:k1": "u1v1", "sk1": "s1v1"}
        await service.append_event(
            s1, user_event(actions=delta(**{"app:k2": "v2", "user:k2": "u1v2", "sk2": "s1v2"}))
        )
        # app state: every user of the app; user state: that user's sessions only
        s1b = await service.create_session(app_name="my_app", user_id="u1", session_id="s1b")
        assert s1b.state == {"app:k1": "v1", "app:k2": "v2", "user:k1": "u1v1", "user:k2": "u1v2"}
        s2 = await service.create_session(app_name="my_app", user_id="u2", session_id="s2")
        assert s2.state == {"app:k1": "v1", "app:k2": "v2"}
        other = await service.create_session(app_name="other", user_id="u1", session_id="s")
        assert other.state == {}
        got = await service.get_session(app_name="my_app", user_id="u1", session_id="s1")
        assert got is not None
        assert got.state == {
            "app:k1": "v1",
            "app:k2": "v2",
            "user:k1": "u1v1",
            "user:k2": "u1v2",
            "sk1": "s1v1",
            "sk2": "s1v2",
        }
        listed = (await service.list_sessions(app_name="my_app", user_id="u2")).sessions
        assert listed[0].state == {"app:k1": "v1", "app:k2": "v2"}

    run(store_url, scenario)


def test_temp_state_is_applied_in_memory_and_never_stored(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        session = await service.create_session(app_name="a", user_id="u", session_id="s1")
        event = user_event(actions=delta(**{"temp:k1": "v1", "sk": "v2"}))
        await service.append_event(session, event)
        assert session.state["temp:k1"] == "v1"  # readable later in the same invocation
        assert session.state["sk"] == "v2"
        assert "temp:k1" not in event.actions.state_delta
        got = await service.get_session(app_name="a", user_id="u", session_id="s1")
        assert got is not None
        assert got.state == {"sk": "v2"}
        assert "temp:k1" not in got.events[0].actions.state_delta

    run(store_url, scenario)


def test_sessions_are_scoped_by_app_and_user(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        s1 = await service.create_session(app_name="a", user_id="u1", session_id="s1")
        await service.append_event(s1, user_event())
        await service.create_session(app_name="a", user_id="u2", session_id="s1")
        got = await service.get_session(app_name="a", user_id="u2", session_id="s1")
        assert got is not None
        assert (got.user_id, got.events) == ("u2", [])

    run(store_url, scenario)


def test_taken_and_padded_session_ids(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        await service.create_session(app_name="a", user_id="u", session_id="existing")
        with pytest.raises(AlreadyExistsError):
            await service.create_session(app_name="a", user_id="u", session_id="existing")
        with pytest.raises(AlreadyExistsError):
            await service.create_session(app_name="a", user_id="u", session_id="  existing ")
        padded = await service.get_session(app_name="a", user_id="u", session_id=" existing ")
        assert padded is not None
        assert padded.id == "existing"
        await service.delete_session(app_name="a", user_id="u", session_id=" existing")
        assert await service.get_session(app_name="a", user_id="u", session_id="existing") is None
        # an erased id can be created again
        await service.create_session(app_name="a", user_id="u", session_id="existing")

    run(store_url, scenario)


def test_appended_events_read_back_identical(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        session = await service.create_session(app_name="a", user_id="u")
        content = types.Content(
            role="user",
            parts=[types.Part.from_bytes(data=b"test_image_data", mime_type="image/png")],
        )
        grounding = types.GroundingMetadata(
            search_entry_point=types.SearchEntryPoint(sdk_blob=b"test_sdk_blob")
        )
        await service.append_event(
            session, user_event(content=content, grounding_metadata=grounding)
        )
        complete = Event(
            invocation_id="invocation",
            author="user",
            content=types.Content(role="user", parts=[types.Part(text="test_text")]),
            turn_complete=True,
            partial=False,
            actions=EventActions(
                artifact_delta={"file": 0}, transfer_to_agent="agent", escalate=True
            ),
            long_running_tool_ids={"tool1"},
            error_code="error_code",
            error_message="error_message",
            interrupted=True,
            grounding_metadata=types.GroundingMetadata(web_search_queries=["query1"]),
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=1, candidates_token_count=1, total_token_count=2
            ),
            citation_metadata=types.CitationMetadata(),
            custom_metadata={"custom_key": "custom_value"},
            timestamp=1700000000.123,
            input_transcription=types.Transcription(text="input transcription", finished=True),
            output_transcription=types.Transcription(text="output transcription", finished=True),
        )
        await service.append_event(session, complete)
        got = await service.get_session(app_name="a", user_id="u", session_id=session.id)
        assert got == session
        assert got is not None
        assert got.events[0].content == content
        assert got.events[0].grounding_metadata == grounding

    run(store_url, scenario)


def test_last_update_time_follows_the_appended_event(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        session = await service.create_session(app_name="a", user_id="u")
        created = session.last_update_time
        await service.append_event(session, user_event(timestamp=created + 10))
        assert session.last_update_time == pytest.approx(created + 10, abs=1e-6)
        got = await service.get_session(app_name="a", user_id="u", session_id=session.id)
        assert got is not None
        assert got.last_update_time == pytest.approx(created + 10, abs=1e-6)
        listed = (await service.list_sessions(app_name="a", user_id="u")).sessions
        assert listed[0].last_update_time == pytest.approx(created + 10, abs=1e-6)

    run(store_url, scenario)


def test_get_session_config_windows(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        session = await service.create_session(app_name="a", user_id="u")
        for i in range(1, 6):
            await service.append_event(session, Event(author="user", timestamp=i))

        async def times(**config: Any) -> list[float]:
            got = await service.get_session(
                app_name="a",
                user_id="u",
                session_id=session.id,
                config=GetSessionConfig(**config) if config else None,
            )
            assert got is not None
            return [event.timestamp for event in got.events]

        assert await times() == [1, 2, 3, 4, 5]
        assert await times(num_recent_events=0) == []
        assert await times(num_recent_events=3) == [3, 4, 5]
        assert await times(num_recent_events=30) == [1, 2, 3, 4, 5]
        assert await times(after_timestamp=4.0) == [4, 5]
        assert await times(after_timestamp=50.0) == []
        assert await times(after_timestamp=4.0, num_recent_events=3) == [4, 5]
        assert await times(after_timestamp=2.0, num_recent_events=2) == [4, 5]

    run(store_url, scenario)


def test_partial_events_are_not_persisted(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        session = await service.create_session(app_name="a", user_id="u")
        await service.append_event(session, Event(author="user", partial=True))
        assert session.events == []
        got = await service.get_session(app_name="a", user_id="u", session_id=session.id)
        assert got is not None
        assert got.events == []

    run(store_url, scenario)


def test_get_user_state(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        assert await service.get_user_state(app_name="my_app", user_id="u1") == {}
        session = await service.create_session(app_name="my_app", user_id="u1")
        await service.append_event(
            session,
            Event(
                author="system",
                actions=delta(**{"user:profile": {"name": "Alice"}, "session_key": 1}),
            ),
        )
        assert await service.get_user_state(app_name="my_app", user_id="u1") == {
            "profile": {"name": "Alice"}
        }
        await service.append_event(
            session, Event(author="system", actions=delta(**{"user:profile": 2}))
        )
        assert await service.get_user_state(app_name="my_app", user_id="u1") == {"profile": 2}
        assert await service.get_user_state(app_name="my_app", user_id="u2") == {}
        assert await service.get_user_state(app_name="other_app", user_id="u1") == {}

    run(store_url, scenario)


def test_append_to_an_unknown_session_is_session_not_found(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        ghost = Session(app_name="a", user_id="u", id="ghost")
        with pytest.raises(SessionNotFoundError):
            await service.append_event(ghost, user_event(actions=delta(**{"app:k": 1})))
        assert await service.get_user_state(app_name="a", user_id="u") == {}

    run(store_url, scenario)


def test_appending_the_same_event_again_stores_and_applies_nothing(store_url: str) -> None:
    async def scenario(service: AgentSessionsSessionService) -> None:
        session = await service.create_session(app_name="a", user_id="u")
        event = user_event(actions=delta(counter=1))
        await service.append_event(session, event)
        await service.append_event(session, user_event(actions=delta(counter=2)))
        retry = event.model_copy(deep=True)
        await service.append_event(session, retry)
        got = await service.get_session(app_name="a", user_id="u", session_id=session.id)
        assert got is not None
        assert len(got.events) == 2
        assert got.state == {"counter": 2}

    run(store_url, scenario)


def test_stale_session_objects_keep_every_event(store_url: str) -> None:
    """ADK's database service raises "modified in storage" here; on our log both
    writers' events land, in log order, and the state has both deltas."""

    async def scenario(service: AgentSessionsSessionService) -> None:
        original = await service.create_session(app_name="a", user_id="u")
        now = original.last_update_time
        await service.append_event(original, user_event(timestamp=now + 1, actions=delta(sk1="v1")))
        updated = await service.get_session(app_name="a", user_id="u", session_id=original.id)
        assert updated is not None
        await service.append_event(updated, user_event(timestamp=now + 2, actions=delta(sk2="v2")))
        await service.append_event(original, user_event(timestamp=now + 3, actions=delta(sk3="v3")))
        final = await service.get_session(app_name="a", user_id="u", session_id=original.id)
        assert final is not None
        assert [e.timestamp for e in final.events] == [now + 1, now + 2, now + 3]
        assert final.state == {"sk1": "v1", "sk2": "v2", "sk3": "v3"}

        # the same race in one process: asyncio.gather of two stale copies, eight times
        for i in range(8):
            latest = await service.get_session(app_name="a", user_id="u", session_id=original.id)
            assert latest is not None
            first, second = latest.model_copy(deep=True), latest.model_copy(deep=True)
            await asyncio.gather(
                service.append_event(first, user_event(actions=delta(**{f"a{i}": i}))),
                service.append_event(second, user_event(actions=delta(**{f"b{i}": i}))),
            )
        final = await service.get_session(app_name="a", user_id="u", session_id=original.id)
        assert final is not None
        assert len(final.events) == 3 + 16
        assert all(final.state[f"a{i}"] == final.state[f"b{i}"] == i for i in range(8))

    run(store_url, scenario)


def test_a_service_over_an_open_async_store(sqlite_url: str) -> None:
    """Built from an ``AsyncStore``: the caller's store, left open by ``close``."""

    async def main() -> None:
        async with open_async_store(sqlite_url) as store:
            service = AgentSessionsSessionService(store)
            session = await service.create_session(app_name="a", user_id="u", session_id="s")
            await service.close()
            assert not store.closed
            assert await service.get_session(app_name="a", user_id="u", session_id="s") == session

    asyncio.run(main())
