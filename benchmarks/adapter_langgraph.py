"""The LangGraph checkpoint saver beside LangGraph's own savers, on the same work.

One thread, ``--steps`` graph steps: each step puts a checkpoint (two channels, about
1 KB of state) and the pending writes of one task (two writes), as a graph's super-step
does. Then the thread's whole history is listed (``list``, what ``get_state_history``
does) and its latest checkpoint read (``get_tuple``, what every ``invoke`` starts with)
``--reads`` times. ``AgentSessionsSaver`` on a SQLite file is compared with
``SqliteSaver`` on a SQLite file and, with ``--postgres URL``, on PostgreSQL with
``PostgresSaver`` (each in a schema of its own, dropped afterwards). Ratios are ours
divided by the baseline from the same run (above 1: ours is faster).

    .venv/bin/python benchmarks/adapter_langgraph.py [--steps 500] [--reads 200]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from agent_sessions import open_store
from agent_sessions.adapters.langgraph import AgentSessionsSaver

NOTES = [f"note {i}: " + "x" * 40 for i in range(20)]


def _work(saver: BaseCheckpointSaver[Any], steps: int, reads: int) -> tuple[float, float, float]:
    """Checkpoints put per second, listed per second, latest reads per second."""
    thread: Any = {
        "configurable": {"thread_id": f"bench-{uuid.uuid4().hex[:8]}", "checkpoint_ns": ""}
    }
    config = thread
    version: Any = None
    start = time.perf_counter()
    for step in range(steps):
        version = saver.get_next_version(version, None)
        checkpoint: Checkpoint = {
            "v": 4,
            "id": str(uuid6(clock_seq=step)),
            "ts": datetime.now(UTC).isoformat(),
            "channel_values": {"notes": NOTES, "step": step},
            "channel_versions": {"notes": version, "step": version},
            "versions_seen": {"node": {"notes": version}},
            "updated_channels": ["notes", "step"],
        }
        metadata: Any = {"source": "loop", "step": step, "parents": {}}
        config = saver.put(config, checkpoint, metadata, {"notes": version, "step": version})
        saver.put_writes(config, [("notes", NOTES[:2]), ("step", step + 1)], f"task-{step}")
    puts = steps / (time.perf_counter() - start)
    start = time.perf_counter()
    listed = sum(1 for _ in saver.list(thread))
    assert listed == steps, (listed, steps)
    lists = listed / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(reads):
        latest = saver.get_tuple(thread)
        assert latest is not None
        assert latest.pending_writes
    gets = reads / (time.perf_counter() - start)
    return puts, lists, gets


@contextmanager
def _pg_schema(url: str) -> Iterator[str | None]:
    """A fresh schema on the server at ``url`` (dropped afterwards), or ``None`` when
    nothing answers there."""
    import psycopg

    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=2)
    except psycopg.Error:
        print(f"(PostgreSQL at {url} does not answer: skipped)")
        yield None
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


Figures = tuple[float, float, float]


def _sqlite(tmp: Path, steps: int, reads: int) -> tuple[Figures, Figures]:
    with open_store("sqlite:///" + str(tmp / "ours.db")) as store:
        ours = _work(AgentSessionsSaver(store), steps, reads)
    with SqliteSaver.from_conn_string(str(tmp / "langgraph.sqlite")) as saver:
        baseline = _work(saver, steps, reads)
    return ours, baseline


def _postgres(url: str, steps: int, reads: int) -> tuple[Figures, Figures] | None:
    with _pg_schema(url) as schema:
        if schema is None:
            return None
        with open_store(f"{url}?schema={schema}") as store:
            ours = _work(AgentSessionsSaver(store), steps, reads)
        with PostgresSaver.from_conn_string(f"{url}?options=-csearch_path%3D{schema}") as saver:
            saver.setup()
            baseline = _work(saver, steps, reads)
    return ours, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--postgres", default=None, metavar="URL")
    args = parser.parse_args()
    rows: list[tuple[str, str, Figures, Figures]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ours, baseline = _sqlite(Path(tmp), args.steps, args.reads)
        rows.append(("sqlite", "SqliteSaver", ours, baseline))
    if args.postgres:
        measured = _postgres(args.postgres, args.steps, args.reads)
        if measured is not None:
            rows.append(("postgresql", "PostgresSaver", *measured))

    print(
        f"{args.steps} steps (checkpoint + 2 pending writes each), one thread; "
        f"list of the whole thread; {args.reads} latest reads"
    )
    head = (
        f"{'backend':<11} {'baseline':<14} {'figure':<22} {'ours':>10} {'baseline':>10} "
        f"{'ratio':>7}"
    )
    print(head)
    print("-" * len(head))
    names = ("checkpoints put/s", "checkpoints listed/s", "latest reads/s")
    show: Callable[[float], str] = lambda value: f"{value:>10.0f}"  # noqa: E731
    for backend, baseline_name, ours, baseline in rows:
        for name, mine, theirs in zip(names, ours, baseline, strict=True):
            print(
                f"{backend:<11} {baseline_name:<14} {name:<22} {show(mine)} {show(theirs)} "
                f"{mine / theirs:>7.2f}"
            )


if __name__ == "__main__":
    main()
