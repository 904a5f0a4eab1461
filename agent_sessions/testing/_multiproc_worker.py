"""Subprocess target of the contract's multi-process test.

It lives in its own importable module because the test starts workers with the
``spawn`` method, which pickles the target by qualified name: a function defined inside
a test, or in a module that is not importable in the child, cannot be started that way.
The store is named by an ``"module:callable"`` opener and a URL rather than passed in,
because a live store (connections, locks) cannot cross a process boundary.
"""

from __future__ import annotations

import importlib
import random
import traceback
from typing import Any

from ..domain.event import Event
from ..domain.event_types import EventType

#: How long a worker waits for its peers before giving up (seconds).
BARRIER_TIMEOUT = 120.0


def resolve_opener(opener: str) -> Any:
    """``"package.module:callable"`` -> the callable."""
    module_name, _, attribute = opener.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"opener must look like 'module:callable', got {opener!r}")
    return getattr(importlib.import_module(module_name), attribute)


def append_in_batches(
    opener: str,
    url: str,
    session_id: str,
    count: int,
    seed: int,
    barrier: Any,
    results: Any,
) -> None:
    """Append ``count`` events to ``session_id`` in random batches of 1-5 and report the
    sequence numbers each batch got, as ``(seed, batches, error)`` on ``results``.

    Errors are reported rather than raised: a child's traceback is otherwise lost and
    the parent would only see an exit code.
    """
    batches: list[list[int]] = []
    try:
        rng = random.Random(seed)
        store = resolve_opener(opener)(url)
        try:
            # Start together so that the appends really interleave.
            barrier.wait(BARRIER_TIMEOUT)
            remaining = count
            while remaining:
                size = min(remaining, rng.randint(1, 5))
                events = [
                    Event.new(
                        type=EventType.MESSAGE_STREAMED,
                        session_id=session_id,
                        data={"worker": seed, "index": count - remaining + offset},
                    )
                    for offset in range(size)
                ]
                stored = store.append_events(events)
                batches.append([event.sequence_number for event in stored])
                remaining -= size
        finally:
            store.close()
    except BaseException:
        results.put((seed, batches, traceback.format_exc()))
        return
    results.put((seed, batches, None))
