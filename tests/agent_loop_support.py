"""Stores for the write-path tests (pipeline, session manager, streaming): real backends,
and a wrapper that records every call and can make chosen calls fail.

The wrapper delegates to a real store, so what is counted or failed is the real thing's
behaviour, never a mock's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agent_sessions import AgentSessionsError, Session, SessionStore, open_store

#: Calls that write (what "store writes" counts).
EVENT_WRITES = ("append_event", "append_event_with_sequence", "append_events", "flush")


@contextmanager
def raises_code(code: str) -> Iterator[Any]:
    """``pytest.raises`` for our error family, then the code checked."""
    with pytest.raises(AgentSessionsError) as info:
        yield info
    assert info.value.code == code, info.value


@contextmanager
def open_backend(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[SessionStore]:
    if name == "memory":
        url = "memory://"
    elif name == "sqlite":
        url = "sqlite:///" + str(tmp_path / "s.db")
    else:
        from pg_server import fresh_schema, with_options

        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema, open_store(with_options(server, schema=schema)) as s:
            yield s
        return
    with open_store(url) as store:
        yield store


def backend_fixture(*backends: str) -> Any:
    """A ``store`` fixture parametrised over these backends (``memory``, ``sqlite``,
    ``postgres``), each test with a fresh, empty store."""

    @pytest.fixture(params=list(backends))
    def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
        with open_backend(request.param, tmp_path, request) as opened:
            yield opened

    return store


def saved_session_fixture() -> Any:
    """A ``session`` fixture: a pending session saved in the test's ``store``."""

    @pytest.fixture
    def session(store: SessionStore) -> Session:
        saved = Session.new(agent_id="agent-1")
        store.save_session(saved)
        return saved

    return session


class SpyStore:
    """Delegates everything to ``inner``, recording ``(name, args, kwargs)`` per call.

    ``fail[name]`` makes that call raise instead: an exception instance (every call) or
    a callable given the call number (1-based) returning an exception or ``None``.
    """

    def __init__(
        self,
        inner: SessionStore,
        fail: dict[str, BaseException | Callable[[int], BaseException | None]] | None = None,
    ) -> None:
        self.inner = inner
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.fail = dict(fail or {})

    def count(self, *names: str) -> int:
        return sum(1 for name, _, _ in self.calls if name in names)

    def named(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(args, kwargs) for called, args, kwargs in self.calls if called == name]

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            failure = self.fail.get(name)
            if isinstance(failure, BaseException):
                raise failure
            if failure is not None:
                error = failure(self.count(name))
                if error is not None:
                    raise error
            return attribute(*args, **kwargs)

        return call
