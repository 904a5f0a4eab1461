"""Does reading "the last N events" cost N, or the whole log?

Writes one session of 100,000 events (in batches of 1,000), then times reading its
newest 10, 100 and 1,000 events three ways: ``get_events(..., order="desc",
limit=N)`` (an indexed read backwards), ``store.last_events(session_id, N)`` (the same,
extended back to the start of any tool call whose result is in the window), and the
baseline from the same run, reading the whole log with ``get_events`` and keeping its
tail (what a caller had to do before).

    .venv/bin/python benchmarks/last_events.py [--events 100000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from agent_sessions import Event, EventType, Session, open_store
from agent_sessions.composition import Store

WINDOWS = (10, 100, 1_000)


def _fill(store: Store, session_id: str, total: int) -> float:
    started = time.perf_counter()
    for start in range(0, total, 1_000):
        batch = []
        for i in range(start, min(total, start + 1_000)):
            if i % 10 == 0:
                kind, data = (
                    EventType.TOOL_CALL_STARTED,
                    {"tool_name": "ls", "tool_call_id": f"c{i}"},
                )
            elif i % 10 == 1:
                kind, data = (
                    EventType.TOOL_CALL_COMPLETED,
                    {"tool_name": "ls", "tool_call_id": f"c{i - 1}"},
                )
            else:
                kind, data = EventType.MESSAGE_STREAMED, {"delta": "token " * 8, "index": i}
            batch.append(Event.new(type=kind, session_id=session_id, data=data))
        store.append_events(batch)
    return time.perf_counter() - started


def _median(work: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(name: str, url: str, total: int) -> None:
    with open_store(url) as store:
        session = Session.new(agent_id="bench", id=f"ses_{uuid.uuid4().hex}")
        store.save_session(session)
        written = _fill(store, session.id, total)
        print(f"\n{name}: one session of {total:,} events, written in {written:.1f} s")
        full = _median(lambda: store.get_events(session.id)[-1:], repeat=1)
        header = ("newest N", "desc read (s)", "last_events (s)", "full read (s)")
        print("{:>9}  {:>14}  {:>16}  {:>14}".format(*header))
        for n in WINDOWS:
            desc = _median(lambda n=n: store.get_events(session.id, order="desc", limit=n))
            window = _median(lambda n=n: store.last_events(session.id, n))
            newest = store.get_events(session.id, order="desc", limit=n)
            assert newest[0].sequence_number == total
            print(f"{n:>9,}  {desc:>14.4f}  {window:>16.4f}  {full:>14.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL to measure too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run("SQLite file", "sqlite:///" + str(Path(folder) / "bench.db"), args.events)
    if args.postgres:
        schema = "bench_" + uuid.uuid4().hex[:12]
        separator = "&" if "?" in args.postgres else "?"
        run("PostgreSQL", f"{args.postgres}{separator}schema={schema}", args.events)


if __name__ == "__main__":
    main()
