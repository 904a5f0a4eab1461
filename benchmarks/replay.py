"""How fast is replay: a session as it was at event N, and every step of it?

Records one session of ``--events`` events (default 10,000) the way an agent loop
does: runs started with ``save_run``, events appended in batches of 50 (user message,
streamed assistant chunks, tool calls with their results, usage reports), each run
finished by a ``flush`` that completes it with its last events. Then times:

* ``history.at(N)`` in the middle of the log, beside the naive fold from the same run:
  read the whole log with ``get_events`` and every record version, and fold from
  scratch up to N (the same ``HistoryFold``; the two snapshots are checked equal);
* ``list(history.steps())``, a snapshot at every event, beside a naive rebuild per step
  (the naive fold above for each N). That baseline would take hours, so it is timed on
  ``--sample`` steps spread over the log and extrapolated to all of them (marked ``*``);
  so is ``at(N)`` called once per step, the shortcut a user of ``at`` alone would take.
  The step at N is checked equal to ``at(N)``, its window of events included.

SQLite by default; ``--postgres URL`` adds a PostgreSQL server (a throwaway schema;
skipped when the server does not answer).

    .venv/bin/python benchmarks/replay.py [--events 10000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_sessions import Event, EventType, ExecutionResult, Run, Session, open_store
from agent_sessions.composition import Store
from agent_sessions.domain.replay import HistoryFold, SessionSnapshot
from agent_sessions.services.history import DEFAULT_WINDOW

MODEL = "claude-sonnet-4-20250514"
EVENTS_PER_RUN = 500
BATCH = 50


def _turn(session: Session, run: Run, turn: int) -> list[dict[str, Any]]:
    """Ten events of one turn: a user message, a tool call and its result, streamed
    chunks, the answer, a usage report."""
    call = f"call_{turn}"
    return [
        {"type": EventType.MESSAGE_SENT, "data": {"role": "user", "content": f"step {turn}"}},
        {
            "type": EventType.TOOL_CALL_STARTED,
            "data": {"tool_name": "bash", "tool_call_id": call, "tool_input": {"cmd": "pytest"}},
        },
        {
            "type": EventType.TOOL_CALL_COMPLETED,
            "data": {"tool_name": "bash", "tool_call_id": call, "tool_output": "ok " * 40},
        },
        *(
            {"type": EventType.MESSAGE_STREAMED, "data": {"delta": "token " * 10, "index": i}}
            for i in range(5)
        ),
        {"type": EventType.MESSAGE_RECEIVED, "data": {"role": "assistant", "content": "done"}},
        {
            "type": EventType.TOKEN_USAGE_UPDATED,
            "data": {
                "model": MODEL,
                "input_tokens": 1200,
                "output_tokens": 300,
                "cache_read_tokens": 8000,
                "cache_creation_tokens": 400,
            },
        },
    ]


def record(store: Store, events: int) -> str:
    """One session of ``events`` events, in runs of ``EVENTS_PER_RUN``."""
    session = Session.new(agent_id="bench").with_status("active")
    store.save_session(session)
    written = 0
    while written < events:
        run = Run.new(session_id=session.id, input={"prompt": "go"}).with_status("running")
        store.save_run(run)
        size = min(EVENTS_PER_RUN, events - written)
        raw: list[dict[str, Any]] = []
        turn = 0
        while len(raw) < size:
            raw.extend(_turn(session, run, turn))
            turn += 1
        batch = [
            Event.new(session_id=session.id, run_id=run.id, provider="claude", **item)
            for item in raw[:size]
        ]
        for start in range(0, len(batch) - BATCH, BATCH):
            store.append_events(batch[start : start + BATCH])
        last = batch[(len(batch) - 1) // BATCH * BATCH :]
        finished = run.with_status("completed").replace(
            token_usage={"input_tokens": 1200 * turn, "output_tokens": 300 * turn},
            cost_usd=0.01 * turn,
            provider="claude",
        )
        store.flush(
            ExecutionResult(session=store.get_session(session.id), run=finished, events=last)
        )
        written += size
    return session.id


def naive_at(store: Store, session_id: str, n: int, window: int) -> SessionSnapshot:
    """Everything read, then folded from scratch up to ``n`` (no pruning in this log)."""
    log = store.get_events(session_id)
    changes, _ = store.record_changes(session_id)
    fold = HistoryFold()
    pending = iter(changes)
    change = next(pending, None)
    for event in log:
        number = event.sequence_number or 0
        if number > n:
            break
        while change is not None and change.position < number:
            fold.apply_record(change.record, approximate=change.approximate)
            change = next(pending, None)
        fold.apply_event(event)
    while change is not None and change.position <= n:
        fold.apply_record(change.record, approximate=change.approximate)
        change = next(pending, None)
    around = [e for e in log if n - window <= (e.sequence_number or 0) <= n + window]
    return fold.snapshot(window=around)


def _seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _medians(first: Callable[[], object], second: Callable[[], object]) -> tuple[float, float]:
    """Median of five timings of each, taken in turns so that a noisy neighbour slows
    both alike."""
    pairs = [(_seconds(first), _seconds(second)) for _ in range(5)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def measure(name: str, url: str, events: int, sample: int) -> None:
    with open_store(url) as store:
        start = time.perf_counter()
        session_id = record(store, events)
        writing = time.perf_counter() - start
        middle = events // 2
        opened = _seconds(lambda: store.history(session_id))
        history = store.history(session_id)
        same = history.at(middle) == naive_at(store, session_id, middle, DEFAULT_WINDOW)
        at_ours, at_naive = _medians(
            lambda: history.at(middle),
            lambda: naive_at(store, session_id, middle, DEFAULT_WINDOW),
        )

        start = time.perf_counter()
        steps = 0
        stepped: SessionSnapshot | None = None
        for snapshot in history.steps():
            steps += 1
            if snapshot.sequence == middle:
                stepped = snapshot
        steps_ours = time.perf_counter() - start
        step_same = stepped == history.at(middle)
        points = [1 + i * (events - 1) // max(sample - 1, 1) for i in range(sample)]
        per_naive = statistics.mean(
            _seconds(lambda n=n: naive_at(store, session_id, n, DEFAULT_WINDOW)) for n in points
        )
        per_at = statistics.mean(_seconds(lambda n=n: history.at(n)) for n in points)

    print(
        f"\n{name}: one session of {events:,} events in {events // EVENTS_PER_RUN} runs, "
        f"written in {writing:.1f} s; same snapshot at #{middle} both ways: {same}; "
        f"steps() at #{middle} equals at({middle}): {step_same}"
    )
    header = f"{'operation':<34} {'ours (s)':>10} {'naive fold (s)':>15} {'speedup':>9}"
    print(header)
    print("-" * len(header))
    print(f"{'store.history(session)':<34} {opened:>10.3f} {'':>15} {'':>9}")
    print(f"{f'at({middle})':<34} {at_ours:>10.3f} {at_naive:>15.3f} {at_naive / at_ours:>8.1f}x")
    naive_steps = per_naive * steps
    print(
        f"{f'steps(): {steps:,} snapshots':<34} {steps_ours:>10.2f} {naive_steps:>14.0f}* "
        f"{naive_steps / steps_ours:>8.0f}x"
    )
    print(
        f"{'  vs at(n) at every step':<34} {'':>10} {per_at * steps:>14.0f}* "
        f"{per_at * steps / steps_ours:>8.0f}x"
    )
    print(
        f"* extrapolated: mean of {sample} steps spread over the log "
        f"({per_naive * 1000:.0f} ms naive, {per_at * 1000:.0f} ms with at(n), per step) "
        f"times {steps:,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=10, help="steps timed for the baselines")
    parser.add_argument("--postgres", metavar="URL", help="also on this PostgreSQL server")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        measure("SQLite file", "sqlite:///" + str(Path(tmp, "replay.db")), args.events, args.sample)
    if args.postgres:
        import psycopg

        try:
            admin = psycopg.connect(args.postgres, autocommit=True, connect_timeout=2)
        except psycopg.Error:
            print(f"\n(PostgreSQL at {args.postgres} does not answer: skipped)")
            return
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        try:
            measure("PostgreSQL", f"{args.postgres}?schema={schema}", args.events, args.sample)
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.close()


if __name__ == "__main__":
    main()
