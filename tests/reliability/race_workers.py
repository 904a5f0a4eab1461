"""Writers of the lost-update races (``test_lost_updates.py``) and of the concurrent
upkeep tests (``test_concurrent_upkeep.py``), as importable process targets.

A lost-update round: both writers read the same session and run, meet at a barrier (so
each has read before either writes), then each applies its own change from that read,
through ``save_session``, ``save_run`` or ``flush``. What each writer was told (stored,
or which error code) goes back to the test, which knows what the store must then hold.
Rounds use a session and run of their own, so one round never disturbs the next.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    ExecutionResult,
    Run,
    Session,
    SessionStore,
    open_store,
)

#: How long a writer waits for the other at a barrier (seconds).
BARRIER_TIMEOUT = 120.0

#: The outcome of a write that was stored.
STORED = "stored"


@dataclass(frozen=True)
class Change:
    """One writer's change: ``fields`` (in the records' ``to_dict`` form) applied to
    the ``target`` record (``"session"`` or ``"run"``) through ``via``
    (``"save_session"``, ``"save_run"`` or ``"flush"``). A flush carries one event with
    ``event_id``: present afterwards exactly when the flush was stored."""

    target: str
    via: str
    fields: dict[str, Any]
    event_id: str


@dataclass(frozen=True)
class Round:
    session_id: str
    run_id: str
    change: Change


@dataclass(frozen=True)
class Written:
    """What a writer was told, and the records it handed to the store."""

    outcome: str
    session: dict[str, Any]
    run: dict[str, Any]
    #: The versions the writer read the records at.
    read_versions: tuple[Any, Any]


def write(store: SessionStore, session: Session, run: Run, change: Change) -> Written:
    """Apply ``change`` to the records as read; ``STORED`` or the error's code."""
    if change.target == "session":
        session = session.replace(**change.fields)
    else:
        run = run.replace(**change.fields)
    written = {"session": session.to_dict(), "run": run.to_dict()}
    versions = (getattr(session, "version", None), getattr(run, "version", None))
    try:
        if change.via == "save_session":
            store.save_session(session)
        elif change.via == "save_run":
            store.save_run(run)
        else:
            event = Event.new(
                id=change.event_id,
                type=EventType.MESSAGE_STREAMED,
                session_id=session.id,
                run_id=run.id,
            )
            store.flush(ExecutionResult(session=session, run=run, events=[event]))
    except AgentSessionsError as error:
        return Written(str(error.code), written["session"], written["run"], versions)
    return Written(STORED, written["session"], written["run"], versions)


def race_rounds(url: str, writer: int, rounds: list[Round], barrier: Any, results: Any) -> None:
    """Process target: for each round read, wait for the other writer, write. Puts
    ``(writer, outcomes, error)`` on ``results``; an unexpected exception ends the worker
    with its traceback as ``error`` (and breaks the barrier, so the other one stops too)."""
    outcomes: list[Written] = []
    try:
        with open_store(url) as store:
            for round_ in rounds:
                session = store.get_session(round_.session_id)
                run = store.get_run(round_.run_id)
                barrier.wait(BARRIER_TIMEOUT)
                outcomes.append(write(store, session, run, round_.change))
    except BaseException:
        barrier.abort()
        results.put((writer, outcomes, traceback.format_exc()))
        return
    results.put((writer, outcomes, None))


# concurrent upkeep ------------------------------------------------------------------------


def first_query(url: str, barrier: Any, results: Any) -> None:
    """Open a handle, wait for the others, then use the read models for the first time."""
    try:
        with open_store(url) as store:
            barrier.wait(BARRIER_TIMEOUT)
            count = store.query().count_events()
        results.put((count, None))
    except BaseException:
        barrier.abort()
        results.put((None, traceback.format_exc()))


def append_steadily(url: str, session_id: str, count: int, barrier: Any, results: Any) -> None:
    """Append ``count`` events one by one, after meeting the checker at the barrier."""
    try:
        with open_store(url) as store:
            barrier.wait(BARRIER_TIMEOUT)
            for index in range(count):
                store.append_event(
                    Event.new(
                        type=EventType.MESSAGE_STREAMED,
                        session_id=session_id,
                        data={"index": index},
                    )
                )
        results.put((count, None))
    except BaseException:
        barrier.abort()
        results.put((None, traceback.format_exc()))


def prune_rounds(
    url: str, session_id: str, rounds: list[list[int]], barrier: Any, results: Any
) -> None:
    """For each round, meet the other pruner at the barrier and prune the round's
    sequence numbers; puts ``(counts, error)`` on ``results``: how many events each
    call said it pruned."""
    counts: list[int] = []
    try:
        with open_store(url) as store:
            for numbers in rounds:
                barrier.wait(BARRIER_TIMEOUT)
                counts.append(store.prune_events(session_id, numbers))
        results.put((counts, None))
    except BaseException:
        barrier.abort()
        results.put((counts, traceback.format_exc()))
