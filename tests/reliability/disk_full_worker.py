"""A write loop on a SQLite store whose disk fills up, then frees up again.

Run as a script by ``test_faults_disk.py`` (``python disk_full_worker.py '<plan>'``),
in a process of its own because the fault belongs to the process or to its mount:

* ``enospc``: the store lives on a small tmpfs that only this process sees (the parent
  starts it under ``unshare --user --map-root-user --mount``); a ballast file fills the
  tmpfs to a few hundred KiB of free space, and removing it ends the fault;
* ``efbig``: ``RLIMIT_FSIZE`` is lowered to a little above the largest file of the
  store (with ``SIGXFSZ`` ignored, writes past it fail with ``EFBIG``); raising it back
  ends the fault.

Each cycle writes until several writes failed, then ends the fault and writes on with
the same open store; every write that failed is made again, as a caller would. Then
a fresh store must hold every write exactly once: events in order and gap-free, session
records and runs as last saved, ``health_check`` clean and views equal to a rebuild.
Every failure must be a coded ``AgentSessionsError`` of the storage category; anything
else is reported as a raw error. The summary goes to stdout as one JSON line.
"""

from __future__ import annotations

import errno
import json
import os
import random
import resource
import signal
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from store_checks import assert_gap_free, assert_store_sound

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

BALLAST_CHUNK = 64 * 1024
#: Free space (tmpfs) or headroom above the largest file (file size limit) at the fault.
HEADROOM = 256 * 1024


def _fill(path: Path) -> int:
    """Write zeros to ``path`` until a write fails; that failure's errno."""
    with path.open("wb", buffering=0) as ballast:
        while True:
            try:
                ballast.write(b"\0" * BALLAST_CHUNK)
            except OSError as exc:
                return exc.errno or 0


class Fault:
    def __init__(self, mode: str, directory: Path) -> None:
        self.mode = mode
        self.directory = directory
        self.ballast = directory / "ballast"

    def begin(self) -> None:
        if self.mode == "enospc":
            gap = self.directory / "gap"
            gap.write_bytes(b"\0" * HEADROOM)
            assert _fill(self.ballast) == errno.ENOSPC
            gap.unlink()
        else:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            largest = max(p.stat().st_size for p in self.directory.iterdir())
            hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
            resource.setrlimit(resource.RLIMIT_FSIZE, (largest + HEADROOM, hard))

    def end(self) -> None:
        if self.mode == "enospc":
            self.ballast.unlink()
        else:
            hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


class Loop:
    def __init__(self, store: Store, rng: random.Random) -> None:
        self.store = store
        self.rng = rng
        self.sessions: list[Session] = []
        self.events: dict[str, list[str]] = {}
        self.runs: dict[str, int] = {}
        #: failed appends, made again after the fault
        self.pending: list[tuple[str, list[Event]]] = []
        #: runs and events of failed flushes, given up: none of them may be stored
        self.abandoned_runs: list[str] = []
        self.abandoned_events: list[str] = []
        self.step = 0
        self.writes = self.failed = 0
        self.codes: set[str] = set()
        self.raw: list[str] = []

    def attempt(self, write: Callable[[], Any]) -> bool:
        self.writes += 1
        try:
            write()
        except AgentSessionsError as error:
            self.failed += 1
            self.codes.add(str(error.code))
            if error.category != "storage":
                self.raw.append(f"{error!r}")
            return False
        except Exception as exc:  # a raw error is what the test looks for
            self.failed += 1
            self.raw.append(f"{type(exc).__name__}: {exc}")
            return False
        return True

    def one(self) -> bool:
        """One random write. A failed append is made again after the fault (by id, so
        it lands once); a failed save or flush is given up, and the store must hold
        nothing of it: the next save starts from the record as it was stored."""
        self.step += 1
        name = f"{self.step}"
        index = self.rng.randrange(len(self.sessions))
        session = self.sessions[index]
        kind = self.rng.choice(["append", "append", "flush", "save", "query"])
        if kind == "query":
            return self.attempt(lambda: self.store.query().search_sessions(limit=5))
        changed = session.with_metadata({"n": int(session.metadata["n"]) + 1})
        if kind == "save":
            saved = self.attempt(lambda: self.store.save_session(changed))
            if saved:
                self.sessions[index] = changed
            return saved
        run = None
        if kind == "flush":
            run = Run.new(id=f"r-{name}", session_id=session.id).set_output({"step": name})
        events = [
            Event.new(
                id=f"e-{name}-{i}",
                type=EventType.MESSAGE_STREAMED,
                session_id=session.id,
                run_id=run.id if run else None,
                data={"id": f"e-{name}-{i}", "text": "y" * self.rng.randint(500, 3000)},
            )
            for i in range(self.rng.randint(1, 6))
        ]
        ids = [e.id for e in events]
        if run is None:
            if self.attempt(lambda: self.store.append_events(events)):
                self.events[session.id] += ids
                return True
            self.pending.append((session.id, events))
            return False
        result = ExecutionResult(session=changed, run=run, events=events)
        if self.attempt(lambda: self.store.flush(result)):
            self.sessions[index] = changed
            self.runs[run.id] = int(changed.metadata["n"])
            self.events[session.id] += ids
            return True
        self.abandoned_runs.append(run.id)
        self.abandoned_events += ids
        return False

    def retry_pending(self) -> None:
        pending, self.pending = self.pending, []
        for session_id, events in pending:
            made = self.attempt(partial(self.store.append_events, events))
            assert made, f"an append failed again after the fault: {self.raw}"
            self.events[session_id] += [e.id for e in events]

    def check(self, store: Store) -> None:
        for session in self.sessions:
            stored = store.get_events(session.id)
            assert [e.id for e in stored] == self.events[session.id], "lost or duplicated"
            assert all(e.data["id"] == e.id for e in stored)
            assert_gap_free(store, session.id)
            assert store.get_session(session.id).metadata["n"] == session.metadata["n"]
        for run_id in self.runs:
            assert store.get_run(run_id).status == "completed"
        assert store.get_events_by_ids(self.abandoned_events) == [], "half a failed flush"
        for run_id in self.abandoned_runs:
            with pytest.raises(AgentSessionsError) as caught:
                store.get_run(run_id)
            assert caught.value.code == "run_not_found", "half a failed flush"
        assert_store_sound(store)


def main() -> None:
    plan = json.loads(sys.argv[1])
    directory = Path(plan["dir"])
    url = "sqlite:///" + str(directory / "store.db")
    fault = Fault(plan["mode"], directory)
    rng = random.Random(plan["seed"])
    cycles = []
    with open_store(url) as store:
        loop = Loop(store, rng)
        for k in range(3):
            session = Session.new(id=f"s-{k}", agent_id="disk", metadata={"n": 0})
            store.save_session(session)
            loop.sessions.append(session)
            loop.events[session.id] = []
        for _ in range(20):
            assert loop.one(), f"a write failed before the fault: {loop.raw}"
        for _ in range(plan["cycles"]):
            fault.begin()
            failed_before, writes = loop.failed, 0
            # Until the disk is full and stays full for a while: ten failed writes.
            while loop.failed - failed_before < 10:
                loop.one()
                writes += 1
                assert writes < plan["max_writes"], "the disk never filled up"
            fault.end()
            # The fault is over: the same open store writes again, at once.
            for _ in range(plan["writes_after"]):
                assert loop.one(), f"a write failed after the fault: {loop.codes} {loop.raw}"
            cycles.append({"writes_to_fill": writes, "failed": loop.failed - failed_before})
            loop.retry_pending()
        summary = {
            "mode": plan["mode"],
            "writes": loop.writes,
            "failed": loop.failed,
            "codes": sorted(loop.codes),
            "raw": loop.raw,
            "cycles": cycles,
        }
    with open_store(url) as fresh:
        loop.check(fresh)
    print(json.dumps(summary))
    os._exit(0)  # no interpreter teardown on the tmpfs that goes away with us


if __name__ == "__main__":
    main()
