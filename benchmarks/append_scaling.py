"""Does appending slow down as a session's log grows?

Appends 100 batches of 100 events to one session and prints the time of the 1st and
the 100th batch (median of the batches around each, to damp noise) per backend. The
baseline in the same run is the bare ``eventsourcing`` application saving the same
number of plain domain events per transaction on the same kind of recorder: what the
library costs before our index, de-duplication and sequence claims.

    .venv/bin/python benchmarks/append_scaling.py [--batches 100] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from eventsourcing.application import Application
from eventsourcing.domain import DomainEvent

from agent_sessions import Event, EventType, Session, open_store


@dataclass(frozen=True)
class BareEvent(DomainEvent):
    data: dict[str, object]


def _batch(session_id: str, size: int) -> list[Event]:
    return [
        Event.new(
            type=EventType.MESSAGE_STREAMED,
            session_id=session_id,
            data={"delta": "token " * 8, "index": i},
        )
        for i in range(size)
    ]


def time_store(url: str, batches: int, size: int) -> list[float]:
    timings = []
    with open_store(url) as store:
        session = Session.new(agent_id="bench")
        store.save_session(session)
        for _ in range(batches):
            events = _batch(session.id, size)
            start = time.perf_counter()
            store.append_events(events)
            timings.append(time.perf_counter() - start)
    return timings


def time_bare(env: dict[str, str], batches: int, size: int) -> list[float]:
    app: Application[uuid.UUID] = Application(env)
    originator = uuid.uuid4()
    version = 0
    timings = []
    for _ in range(batches):
        events = []
        for i in range(size):
            version += 1
            events.append(
                BareEvent(
                    originator_id=originator,
                    originator_version=version,
                    timestamp=BareEvent.create_timestamp(),
                    data={"delta": "token " * 8, "index": i},
                )
            )
        start = time.perf_counter()
        app.save(*events)
        timings.append(time.perf_counter() - start)
    app.close()
    return timings


def _postgres_rows(url: str, n: int, size: int) -> list[tuple[str, list[float], list[float]]]:
    """Both measurements in a throwaway schema, dropped afterwards."""
    try:
        import psycopg
    except ImportError:
        return []
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=2)
    except psycopg.Error:
        print(f"(PostgreSQL at {url} does not answer: skipped)")
        return []
    parts = psycopg.conninfo.conninfo_to_dict(url)
    try:
        ours = time_store(f"{url}?schema={schema}", n, size)
        bare = time_bare(
            {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": str(parts.get("dbname", "postgres")),
                "POSTGRES_HOST": str(parts.get("host", "127.0.0.1")),
                "POSTGRES_PORT": str(parts.get("port", "5432")),
                "POSTGRES_USER": str(parts.get("user", "postgres")),
                "POSTGRES_PASSWORD": str(parts.get("password", "")),
                "POSTGRES_SCHEMA": schema,
            },
            n,
            size,
        )
        return [("postgresql", ours, bare)]
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def window(timings: list[float], at: int, width: int = 5) -> float:
    """Median of up to ``width`` batches around index ``at``, in milliseconds."""
    lo = max(0, min(at - width // 2, len(timings) - width))
    return statistics.median(timings[lo : lo + width]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL server to include (skipped when it does not answer; '' to skip)",
    )
    args = parser.parse_args()
    n, size = args.batches, args.batch_size

    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            (
                "memory",
                time_store("memory://", n, size),
                time_bare({"PERSISTENCE_MODULE": "eventsourcing.popo"}, n, size),
            ),
            (
                "sqlite (file)",
                time_store("sqlite:///" + str(Path(tmp, "store.db")), n, size),
                time_bare(
                    {
                        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                        "SQLITE_DBNAME": str(Path(tmp, "bare.db")),
                    },
                    n,
                    size,
                ),
            ),
        ]

    if args.pg_url:
        rows.extend(_postgres_rows(args.pg_url, n, size))

    print(f"append_events: {n} batches of {size} events into one session (ms per batch)")
    header = (
        f"{'backend':<15} {'batch 1':>9} {f'batch {n}':>10} {'100th/1st':>10} "
        f"{'bare es batch 1':>16} {f'bare es batch {n}':>17} {'events/s':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, ours, bare in rows:
        first, last = window(ours, 0), window(ours, n - 1)
        rate = n * size / sum(ours)
        print(
            f"{name:<15} {first:>9.2f} {last:>10.2f} {last / first:>10.2f} "
            f"{window(bare, 0):>16.2f} {window(bare, n - 1):>17.2f} {rate:>10.0f}"
        )


if __name__ == "__main__":
    main()
