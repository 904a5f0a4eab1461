"""Process targets for ``test_large_payloads.py`` (spawned, so module-level), and the
bounded way to run them: a write that hangs is killed and reported, never waited on.

Each target writes large payloads and reads them back *in the child*, returning only
small facts (ids, sizes, digests) to compare with what the parent reads itself.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import queue
from collections.abc import Callable
from multiprocessing.synchronize import Event as EventFlag
from typing import Any

from agent_sessions import Event, EventType, ExecutionResult, Run, Session, open_store
from agent_sessions.domain.statuses import RunStatus

SPAWN = multiprocessing.get_context("spawn")
MB = 1024 * 1024


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def big_text(size: int, seed: str) -> str:
    """``size`` characters that are not one repeated byte (so nothing compresses them to
    nothing on the way), different for each ``seed``."""
    block = hashlib.sha256(seed.encode()).hexdigest()
    return (block * (size // len(block) + 1))[:size]


def write_large_payloads(url: str) -> dict[str, Any]:
    """A 10 MB event alone, twelve 1 MB events in one batch, and a flush whose run
    output is 10 MB: each read back here, whole. Returns the session id, the sizes and
    digests read, for the parent to compare with its own read."""
    with open_store(url) as store:
        session = Session.new(agent_id="large-payloads")
        store.save_session(session)
        one = big_text(10 * MB, "one")
        store.append_events(
            [
                Event.new(
                    type=EventType.TOOL_CALL_COMPLETED, session_id=session.id, data={"output": one}
                )
            ]
        )
        batch = [
            Event.new(
                type=EventType.MESSAGE_SENT,
                session_id=session.id,
                data={"text": big_text(MB, f"batch-{n}")},
            )
            for n in range(12)
        ]
        store.append_events(batch)
        run = Run.new(session_id=session.id)
        store.save_run(run)
        output = big_text(10 * MB, "run-output")
        finished = run.with_status(RunStatus.RUNNING).with_status(RunStatus.COMPLETED)
        store.flush(
            ExecutionResult(
                session=session,
                run=finished.set_output({"content": output}),
                events=[Event.new(type=EventType.RUN_COMPLETED, session_id=session.id)],
            )
        )
        events = store.get_events(session.id)
        texts = [e.data.get("output") or e.data.get("text") for e in events[:13]]
        stored_output = store.get_run(run.id).output or {}
        return {
            "session_id": session.id,
            "run_id": run.id,
            "sequences": [e.sequence_number for e in events],
            "event_digests": [digest(t) for t in texts if isinstance(t, str)],
            "sent_digests": [digest(one)] + [digest(e.data["text"]) for e in batch],
            "output_digest": digest(str(stored_output.get("content"))),
            "sent_output_digest": digest(output),
        }


def write_big_batches(url: str, rounds: int, writing: EventFlag) -> int:
    """``rounds`` batches of twelve 1 MB events (the shape that hung inside psycopg's
    pipeline), after setting ``writing``; returns the last sequence stored."""
    with open_store(url) as store:
        session = Session.new(agent_id="big-writer")
        store.save_session(session)
        writing.set()
        for r in range(rounds):
            store.append_events(
                [
                    Event.new(
                        type=EventType.MESSAGE_SENT,
                        session_id=session.id,
                        data={"text": big_text(MB, f"{r}-{n}")},
                    )
                    for n in range(12)
                ]
            )
        return store.get_latest_sequence(session.id)


def _call(results: Any, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        results.put(("ok", target(*args)))
    except BaseException as exc:  # reported by the parent
        results.put(("error", f"{type(exc).__name__}: {exc}"))


class Bounded:
    """``target(*args)`` in a spawned process that is killed if it has not answered
    within ``timeout`` seconds: a hang becomes a failure, never a stuck test run."""

    def __init__(self, target: Callable[..., Any], *args: Any) -> None:
        self._results: Any = SPAWN.Queue()
        self._process = SPAWN.Process(target=_call, args=(self._results, target, args), daemon=True)
        self._process.start()

    def __enter__(self) -> Bounded:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Kill the process if it still runs (the test failed before its result)."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()

    def done(self) -> bool:
        return not self._process.is_alive() or not self._results.empty()

    def result(self, timeout: float) -> Any:
        try:
            status, value = self._results.get(timeout=timeout)
        except queue.Empty:
            self._process.kill()
            self._process.join()
            raise AssertionError(f"the writer did not finish within {timeout} s (hung)") from None
        self._process.join(timeout=30)
        if status != "ok":
            raise AssertionError(f"the writer failed: {value}")
        return value


def bounded(target: Callable[..., Any], *args: Any, timeout: float) -> Any:
    with Bounded(target, *args) as process:
        return process.result(timeout)
