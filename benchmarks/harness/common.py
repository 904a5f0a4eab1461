"""What every workload shares: the sizes (reference and ``--quick``), the events (agent
events of about 0.5 KB, the same content for every contender), timing helpers, and the
backends (a fresh SQLite file or a fresh PostgreSQL schema for each contender)."""

from __future__ import annotations

import contextlib
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

#: ~0.5 KB of text: the content of every benchmark event.
_TEXT = (
    "The tests in tests/test_parser.py fail because parse() splits on every comma, "
    "quoted fields included. Switching to csv.reader keeps the signature and handles "
    "quoting; the fixture with an embedded comma now passes, and the two callers in "
    "cli.py and report.py need no change. Next: run the whole suite, then update the "
    "changelog and the docstring of parse() to say that quoted fields are honoured. "
)
CONTENT = (_TEXT * 2)[:430]

#: The cycle of event types of a benchmark session: a user message, a tool call and
#: its result, streamed chunks, an answer, a usage report (ten events a turn).
TURN = (
    "message_sent",
    "tool_call_started",
    "tool_call_completed",
    "message_streamed",
    "message_streamed",
    "message_streamed",
    "message_streamed",
    "message_streamed",
    "message_received",
    "token_usage_updated",
)
#: The type the ``type=`` filtered read selects (one event in ten).
FILTER_TYPE = "tool_call_started"


def payload(i: int) -> dict[str, Any]:
    """The ``data`` of the ``i``-th event: about 0.5 KB once encoded."""
    return {"role": "assistant", "content": CONTENT, "index": i, "model": "claude-sonnet-4"}


def event_type(i: int) -> str:
    return TURN[i % len(TURN)]


@dataclass(frozen=True)
class Sizes:
    """How much each workload does. ``reference()`` is the issue's reference workload;
    ``quick()`` is small enough for CI (under two minutes on a loaded 2-core machine)."""

    sessions: int = 20
    events_per_session: int = 1000
    batch: int = 100
    singles: int = 1000
    flushes: int = 500
    read_events: int = 10_000
    last_n: int = 100
    read_repeats: int = 5
    query_sessions: int = 1000
    query_events: int = 200_000
    query_repeats: int = 20
    process_count: int = 4
    process_events: int = 2000
    memory_events: int = 1_000_000
    adapter_items: int = 500
    rounds: int = 3
    quick: bool = False

    @classmethod
    def reference(cls) -> Sizes:
        return cls()

    @classmethod
    def small(cls) -> Sizes:
        return cls(
            sessions=2,
            events_per_session=500,
            singles=40,
            flushes=20,
            read_events=1000,
            read_repeats=3,
            query_sessions=20,
            query_events=4000,
            query_repeats=5,
            process_events=100,
            memory_events=10_000,
            adapter_items=10,
            rounds=1,
            quick=True,
        )

    def with_rounds(self, rounds: int | None) -> Sizes:
        return self if rounds is None else replace(self, rounds=max(1, rounds))

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


# timing ---------------------------------------------------------------------------------


def seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def repeated_ms(work: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of ``repeats`` timed calls, after one untimed warm-up call."""
    work()
    return median([seconds(work) for _ in range(repeats)]) * 1000


# backends -------------------------------------------------------------------------------


class Skip(Exception):
    """A contender that cannot be measured here: the message says why."""


@dataclass
class Backend:
    """A place to put fresh databases: ``sqlite`` (files in a temporary folder) or
    ``postgresql`` (schemas on one server, dropped when the run ends)."""

    name: str
    folder: Path
    server: str | None = None
    schemas: list[str] = field(default_factory=list)

    @property
    def is_postgres(self) -> bool:
        return self.server is not None

    def fresh_name(self, kind: str) -> str:
        return f"bench_{kind}_{uuid.uuid4().hex[:10]}"

    def fresh_sqlite_path(self, kind: str) -> str:
        return str(self.folder / f"{self.fresh_name(kind)}.db")

    def fresh_schema(self, kind: str) -> str:
        assert self.server is not None
        schema = self.fresh_name(kind)
        self.schemas.append(schema)
        return schema

    def store_url(self) -> str:
        """A URL of a fresh, empty store on this backend."""
        if self.server is None:
            return "sqlite:///" + self.fresh_sqlite_path("ours")
        separator = "&" if "?" in self.server else "?"
        return f"{self.server}{separator}schema={self.fresh_schema('ours')}"

    def drop_schemas(self) -> None:
        if self.server is None or not self.schemas:
            return
        import psycopg

        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.server, autocommit=True, connect_timeout=5) as conn,
        ):
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.schemas.clear()


def postgres_answers(url: str) -> str | None:
    """``None`` when the server at ``url`` answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (the postgres extra)"
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {url} does not answer ({type(exc).__name__})"
    return None


@contextlib.contextmanager
def backends(postgres: str | None) -> Iterator[list[Backend]]:
    """The backends of a run; every schema created is dropped at the end."""
    with tempfile.TemporaryDirectory(prefix="agent-sessions-bench-") as tmp:
        found = [Backend("sqlite", Path(tmp))]
        if postgres:
            found.append(Backend("postgresql", Path(tmp), server=postgres))
        try:
            yield found
        finally:
            for backend in found:
                backend.drop_schemas()
