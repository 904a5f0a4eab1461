"""A writer process for the crash tests: a random loop of the store's writes, each one
written to a journal before it starts and acknowledged there once the store returned.

Run as a script (``python crash_worker.py '<plan as JSON>'``) by ``crash_campaign.py``,
which kills it with SIGKILL: either from outside after a random delay, or, with
``die_in`` set, from inside at a random point of one kind of write. The second way
counts the Python and C calls the write makes (``sys.setprofile``) and kills the process
at call number *n* (``Killer``): every point of the write's code path (planning, the
transaction, the commit, the cache update after it) is equally likely, whatever its
duration, and a share of the kills comes just after the write returned.

The journal is written with ``os.write`` on an ``O_APPEND`` descriptor: a line is in the
kernel once the call returns, and SIGKILL does not take it back (no ``fsync``: the
process is killed, the machine is not). So an acknowledged line is a promise the store
made before the kill. Lines are JSON: ``{"ready": ...}`` once the store is open, then
per write an intent ``{"i": n, "op": ..., ...}`` and its ``{"ack": n, ...}``.

Each worker writes only the sessions of its own agent id (``tag``), so several can run
at once on one store and the parent can check each one's journal on its own.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    ExecutionResult,
    Run,
    Session,
    open_store,
)
from agent_sessions.composition import Store

#: The writes a worker makes, and how often it picks each (when it can).
WEIGHTS = {"create": 2, "append": 6, "flush": 4, "save": 3, "prune": 2, "erase": 1, "query": 1}
#: The writes a kill can be aimed at (``die_in``).
KILLABLE = ("create", "append", "flush", "save", "prune", "erase")
MAX_SESSIONS = 4


class Journal:
    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        written = os.write(self._fd, line)
        assert written == len(line), "a short write to the journal"


@dataclass
class Known:
    """What this worker knows of one of its sessions: the record it saved last and
    the sequence numbers of the events still there."""

    record: Session
    sequences: list[int] = field(default_factory=list)


class Killer:
    """SIGKILLs this process at a random call inside a write of kind ``kind``.

    The first such write only counts its calls. Each later one draws a call number from
    1 to half again the most calls counted: a number the write reaches is where it dies;
    one it does not reach means it dies as the write returns, before the acknowledgement
    (a third of the kills: committed, never acknowledged, the case a caller cannot tell
    from a lost write)."""

    def __init__(self, kind: str | None, rng: random.Random) -> None:
        self.kind = kind
        self._rng = rng
        self._longest = 0  # calls made by the longest such write measured so far

    def run(self, kind: str, call: Callable[[], Any]) -> Any:
        if kind != self.kind:
            return call()
        calls = 0
        target = self._rng.randint(1, self._longest * 3 // 2 + 1) if self._longest else 0

        def count(frame: Any, event: str, arg: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == target:
                os.kill(os.getpid(), signal.SIGKILL)

        sys.setprofile(count)
        try:
            result = call()
        finally:
            sys.setprofile(None)
        if target:
            os.kill(os.getpid(), signal.SIGKILL)
        self._longest = max(self._longest, calls)
        return result


class Worker:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.tag: str = plan["tag"]
        self.prefix = f"{self.tag}-r{plan['round']}"
        self.rng = random.Random(plan["seed"])
        self.journal = Journal(plan["journal"])
        self.killer = Killer(plan.get("die_in"), self.rng)
        self.store: Store = open_store(plan["url"])
        self.known: dict[str, Known] = {}
        self.number = 0
        for session in self.store.list_sessions(agent_id=self.tag):
            sequences = [e.sequence_number or 0 for e in self.store.get_events(session.id)]
            self.known[session.id] = Known(session, sequences)

    def loop(self, max_ops: int) -> None:
        self.journal.write({"ready": self.tag})
        for _ in range(max_ops):
            self.number += 1
            op = self.choose()
            getattr(self, op)(f"{self.prefix}-{self.number}")

    def choose(self) -> str:
        possible = dict(WEIGHTS)
        if len(self.known) >= MAX_SESSIONS:
            del possible["create"]
        if not self.known:
            return "create"
        if not any(known.sequences for known in self.known.values()):
            del possible["prune"]
        if len(self.known) < 2:
            del possible["erase"]
        if self.killer.kind in possible:
            # Aimed kills come sooner when the aimed write is picked more often.
            possible[self.killer.kind] *= 3
        ops = list(possible)
        return self.rng.choices(ops, weights=[possible[op] for op in ops])[0]

    def write(
        self, intent: dict[str, Any], call: Callable[[], Any], ack: Callable[[Any], dict[str, Any]]
    ) -> None:
        intent["i"] = self.number
        self.journal.write(intent)
        result = self.killer.run(intent["op"], call)
        self.journal.write({"ack": self.number, **ack(result)})

    def events(self, name: str, session_id: str, run_id: str | None, count: int) -> list[Event]:
        kinds = [EventType.MESSAGE_STREAMED, EventType.TOOL_CALL_STARTED, EventType.MESSAGE_SENT]
        return [
            Event.new(
                id=f"e-{name}-{j}",
                type=self.rng.choice(kinds),
                session_id=session_id,
                run_id=run_id,
                data={"id": f"e-{name}-{j}", "pad": "x" * self.rng.randint(0, 300)},
            )
            for j in range(count)
        ]

    def pick(self) -> Known:
        return self.known[self.rng.choice(sorted(self.known))]

    # the writes -------------------------------------------------------------------------

    def create(self, name: str) -> None:
        session = Session.new(id=f"s-{name}", agent_id=self.tag, metadata={"n": 0})
        self.write(
            {"op": "create", "sid": session.id},
            lambda: self.store.save_session(session),
            lambda _: {},
        )
        self.known[session.id] = Known(session)

    def append(self, name: str) -> None:
        known = self.pick()
        batch = self.events(name, known.record.id, None, self.rng.randint(1, 25))
        ids = [event.id for event in batch]
        stored: list[Event] = []

        def call() -> None:
            stored.extend(self.store.append_events(batch))

        sid = known.record.id
        self.write(
            {"op": "append", "sid": sid, "ids": ids},
            call,
            lambda _: {"seqs": [e.sequence_number for e in stored]},
        )
        known.sequences.extend(e.sequence_number or 0 for e in stored)

    def flush(self, name: str) -> None:
        known = self.pick()
        n = int(known.record.metadata.get("n", 0)) + 1
        session = known.record.with_metadata({"n": n}).with_status("active")
        run = Run.new(id=f"r-{name}", session_id=session.id, input={"n": n}).set_output({"n": n})
        batch = self.events(name, session.id, run.id, self.rng.randint(0, 12))
        result = ExecutionResult(session=session, run=run, events=batch)
        ids = [e.id for e in batch]
        sequences: list[int] = []

        def stored(_: object) -> dict[str, Any]:
            # ``flush`` returns nothing: the sequences are read back before the
            # acknowledgement (the parent checks them like an append's).
            found = {e.id: e.sequence_number or 0 for e in self.store.get_events_by_ids(ids)}
            sequences.extend(found[event_id] for event_id in ids)
            return {"seqs": sequences}

        self.write(
            {"op": "flush", "sid": session.id, "n": n, "run": run.id, "ids": ids},
            lambda: self.store.flush(result),
            stored,
        )
        known.record = session
        known.sequences.extend(sequences)

    def save(self, name: str) -> None:
        known = self.pick()
        n = int(known.record.metadata.get("n", 0)) + 1
        session = known.record.with_metadata({"n": n, "by": name})
        self.write(
            {"op": "save", "sid": session.id, "n": n},
            lambda: self.store.save_session(session),
            lambda _: {},
        )
        known.record = session

    def prune(self, name: str) -> None:
        candidates = [known for known in self.known.values() if known.sequences]
        known = self.rng.choice(sorted(candidates, key=lambda k: k.record.id))
        count = self.rng.randint(1, min(5, len(known.sequences)))
        sequences = sorted(self.rng.sample(known.sequences, count))
        self.write(
            {"op": "prune", "sid": known.record.id, "seqs": sequences},
            lambda: self.store.prune_events(known.record.id, sequences),
            lambda pruned: {"pruned": pruned},
        )
        known.sequences = [s for s in known.sequences if s not in sequences]

    def erase(self, name: str) -> None:
        known = self.pick()
        self.write(
            {"op": "erase", "sid": known.record.id},
            lambda: self.store.delete_session(known.record.id),
            lambda _: {},
        )
        del self.known[known.record.id]

    def query(self, name: str) -> None:
        # Not a write: it catches the read models up, so kills land inside projection
        # batches too (a view must still equal a clean rebuild afterwards).
        self.store.query().search_sessions(agent_id=self.tag, limit=5)


def open_read_models_at_once(url: str, barrier: Any, results: Any) -> None:
    """Open the store, wait for the other processes, then query (which builds the read
    models' tables on first use); put ``"ok"`` or the coded error on ``results``."""
    with open_store(url) as store:
        barrier.wait(timeout=60)
        try:
            store.query().search_sessions(limit=1)
        except AgentSessionsError as exc:
            results.put(f"{exc.code}: {exc.message}")
        else:
            results.put("ok")


def main() -> None:
    plan = json.loads(sys.argv[1])
    try:
        Worker(plan).loop(plan.get("max_ops", 100_000))
    except AgentSessionsError as exc:
        Journal(plan["journal"]).write({"error": str(exc), "code": str(exc.code)})
        raise
    except BaseException:
        Journal(plan["journal"]).write({"error": traceback.format_exc()})
        raise


if __name__ == "__main__":
    main()
