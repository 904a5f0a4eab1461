"""Process targets for the multi-process PostgreSQL tests (spawned, so module-level)."""

from __future__ import annotations

import random
import time

from agent_sessions import Event, EventType, open_store


def append_batches(url: str, session_id: str, ids: list[str], seed: int) -> list[tuple[str, int]]:
    """Append ``ids`` in random batches of 1 to 50, each batch repeating a few ids
    (from this worker's earlier batches and from the shared pool), and return
    (event id, sequence) for every result."""
    rng = random.Random(seed)
    results: list[tuple[str, int]] = []
    with open_store(url) as store:
        position = 0
        while position < len(ids):
            size = rng.randint(1, 50)
            batch_ids = ids[position : position + size]
            position += size
            if results and rng.random() < 0.5:
                batch_ids = [*batch_ids, rng.choice(results)[0]]
            batch = [
                Event.new(id=event_id, type=EventType.MESSAGE_STREAMED, session_id=session_id)
                for event_id in batch_ids
            ]
            stored = store.append_events(batch)
            results.extend((e.id, e.sequence_number or 0) for e in stored)
    return results


def append_after_delay(url: str, session_id: str, delay: float) -> float:
    """Append one event after ``delay`` seconds; return the wall-clock time of the append."""
    with open_store(url) as store:
        time.sleep(delay)
        store.append_event(Event.new(type=EventType.RUN_STARTED, session_id=session_id))
        return time.time()


def open_only(url: str) -> bool:
    with open_store(url) as store:
        return store.get_latest_sequence("ses_none") == 0
