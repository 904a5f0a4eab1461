"""What the store must hold after writers were killed, built from their journals.

The parent reads each killed worker's journal (``crash_worker.py``). Every acknowledged
write is applied to a :class:`Model` as the worker saw it (for appends: the sequence
numbers the store returned). The one write in flight at the kill may or may not have
committed; :func:`resolve` reads the store to find out, and fails the test unless it
committed whole or not at all: an append all of its events or none, a flush its session,
its run and its events together, an erasure everything of the session, a pruning all of
its sequence numbers. :func:`check_sessions` then compares every session the workers
ever wrote with the model: acknowledged events present with their sequence numbers and
data, nothing more, numbers gap-free apart from pruned ones, runs and session records
as last saved, erased sessions gone without a trace.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from store_checks import assert_gap_free

from agent_sessions import AgentSessionsError, NotFoundError
from agent_sessions.composition import Store


@dataclass
class SessionModel:
    tag: str
    alive: bool = True
    n: int = 0
    #: event id -> sequence number, for events that must be stored now
    events: dict[str, int] = field(default_factory=dict)
    #: run id of each event that has one
    event_runs: dict[str, str] = field(default_factory=dict)
    pruned: set[int] = field(default_factory=set)
    #: the highest sequence number the store ever handed out for the session
    top: int = 0
    #: run id -> the ``n`` its flush wrote
    runs: dict[str, int] = field(default_factory=dict)
    #: ids of events and runs the session had before it was erased
    erased_events: list[str] = field(default_factory=list)
    erased_runs: list[str] = field(default_factory=list)

    def add_events(self, ids: list[str], sequences: list[int], run_id: str | None) -> None:
        expected = list(range(self.top + 1, self.top + 1 + len(ids)))
        assert sequences == expected, (
            f"sequence numbers {sequences} for {ids}, expected the next block {expected}"
        )
        for event_id, sequence in zip(ids, sequences, strict=True):
            self.events[event_id] = sequence
            if run_id is not None:
                self.event_runs[event_id] = run_id
        self.top = max(self.top, *sequences) if sequences else self.top


@dataclass
class Outcome:
    """The write in flight at a kill and whether the store had committed it."""

    op: str
    committed: bool


@dataclass
class Model:
    sessions: dict[str, SessionModel] = field(default_factory=dict)
    outcomes: Counter[tuple[str, bool]] = field(default_factory=Counter)

    # acknowledged writes --------------------------------------------------------------

    def apply(self, tag: str, intent: dict[str, Any], ack: dict[str, Any]) -> None:
        op, sid = intent["op"], intent["sid"]
        if op == "create":
            assert sid not in self.sessions, f"session {sid} created twice"
            self.sessions[sid] = SessionModel(tag)
            return
        session = self.sessions[sid]
        assert session.alive, f"{op} acknowledged on erased session {sid}"
        if op == "append":
            session.add_events(intent["ids"], ack["seqs"], None)
        elif op == "flush":
            session.n = intent["n"]
            session.runs[intent["run"]] = intent["n"]
            session.add_events(intent["ids"], ack["seqs"], intent["run"])
        elif op == "save":
            session.n = intent["n"]
        elif op == "prune":
            wanted = set(intent["seqs"])
            gone = [eid for eid, seq in session.events.items() if seq in wanted]
            assert len(gone) == len(wanted), f"prune of {sorted(wanted)}: not all were stored"
            for event_id in gone:
                del session.events[event_id]
            session.pruned |= wanted
            if "pruned" in ack:
                assert ack["pruned"] == len(wanted), f"prune_events returned {ack['pruned']}"
        elif op == "erase":
            session.alive = False
            session.erased_events += list(session.events)
            session.erased_runs += list(session.runs)
            session.events.clear()
            session.event_runs.clear()
            session.runs.clear()
            session.pruned.clear()
            session.top = 0
        else:
            raise AssertionError(f"unknown op {op}")

    def replay(self, tag: str, journal: Path, store: Store) -> Outcome | None:
        """Apply a killed worker's journal; resolve its write in flight, if any."""
        intents, acks, ready = read_journal(journal)
        assert ready, f"{journal.name}: the worker never got ready"
        numbers = sorted(intents)
        for number in numbers:
            if number in acks:
                self.apply(tag, intents[number], acks[number])
            else:
                assert number == numbers[-1], f"{journal.name}: write {number} never finished"
        if numbers and numbers[-1] not in acks:
            outcome = resolve(self, tag, intents[numbers[-1]], store)
            self.outcomes[(outcome.op, outcome.committed)] += 1
            return outcome
        return None


def read_journal(
    path: Path,
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]], bool]:
    intents: dict[int, dict[str, Any]] = {}
    acks: dict[int, dict[str, Any]] = {}
    ready = False
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if "error" in entry:
            pytest.fail(f"{path.name}: the worker failed: {entry}")
        if "ready" in entry:
            ready = True
        elif "ack" in entry:
            acks[entry["ack"]] = entry
        else:
            intents[entry["i"]] = entry
    return intents, acks, ready


def _session_n(store: Store, sid: str) -> int | None:
    try:
        return int(store.get_session(sid).metadata.get("n", 0))
    except NotFoundError:
        return None


def _run_exists(store: Store, run_id: str) -> bool:
    try:
        store.get_run(run_id)
    except NotFoundError:
        return False
    return True


def resolve(model: Model, tag: str, intent: dict[str, Any], store: Store) -> Outcome:
    """Find out whether the write in flight committed; fail unless it did so whole or
    not at all; apply it to the model when it did."""
    op, sid = intent["op"], intent["sid"]
    what = f"{op} in flight at the kill ({intent})"
    committed: bool
    if op == "create":
        committed = _session_n(store, sid) is not None
        if committed:
            model.apply(tag, intent, {})
        return Outcome(op, committed)
    ids: list[str] = intent.get("ids", [])
    found = {e.id: e for e in store.get_events_by_ids(ids)} if ids else {}
    assert len(found) in (0, len(ids)), f"half written: {len(found)} of {len(ids)} events: {what}"
    sequences = [found[i].sequence_number for i in ids] if found else []
    session = model.sessions[sid]
    if op == "append":
        committed = bool(found)
        if committed:
            model.apply(tag, intent, {"seqs": sequences})
    elif op == "flush":
        stored_n = _session_n(store, sid)
        assert stored_n in (session.n, intent["n"]), f"session n is {stored_n}: {what}"
        committed = stored_n == intent["n"]
        assert _run_exists(store, intent["run"]) == committed, f"half flush (run): {what}"
        assert bool(found) == committed or not ids, f"half flush (events): {what}"
        if committed:
            model.apply(tag, intent, {"seqs": sequences})
    elif op == "save":
        stored_n = _session_n(store, sid)
        assert stored_n in (session.n, intent["n"]), f"session n is {stored_n}: {what}"
        committed = stored_n == intent["n"]
        if committed:
            model.apply(tag, intent, {})
    elif op == "prune":
        stored = {e.sequence_number or 0 for e in store.get_events(sid)}
        present = stored & set(intent["seqs"])
        assert present in (set(), set(intent["seqs"])), f"half pruned: {sorted(present)}: {what}"
        committed = not present
        if committed:
            model.apply(tag, intent, {})
    elif op == "erase":
        committed = _session_n(store, sid) is None
        if committed:
            model.apply(tag, intent, {})
    else:
        raise AssertionError(f"unknown op in flight: {what}")
    return Outcome(op, committed)


def check_sessions(model: Model, store: Store) -> int:
    """Compare every session in the model with the store; returns the events checked."""
    checked = 0
    for sid, session in sorted(model.sessions.items()):
        if not session.alive:
            _check_erased(store, sid, session)
            continue
        record = store.get_session(sid)
        assert record.agent_id == session.tag
        assert record.metadata.get("n", 0) == session.n, f"{sid}: lost or reverted save"
        events = store.get_events(sid)
        stored = {e.id: e.sequence_number for e in events}
        missing = {i: s for i, s in session.events.items() if stored.get(i) != s}
        extra = sorted(set(stored) - set(session.events))
        assert not missing, f"{sid}: acknowledged events missing or moved: {missing}"
        assert not extra, f"{sid}: events nobody acknowledged or had in flight: {extra}"
        for event in events:
            assert event.data["id"] == event.id, f"{event.id}: data of another event"
            assert event.run_id == session.event_runs.get(event.id)
        assert_gap_free(store, sid, session.pruned)
        assert store.get_latest_sequence(sid) == session.top
        runs = {run.id: run for run in store.list_runs(sid)}
        assert set(runs) == set(session.runs), f"{sid}: runs {sorted(runs)} != {session.runs}"
        for run_id, n in session.runs.items():
            assert runs[run_id].output == {"n": n}
            assert runs[run_id].status == "completed"
        checked += len(events)
    tags = {session.tag for session in model.sessions.values()}
    for tag in sorted(tags):
        listed = {s.id for s in store.list_sessions(agent_id=tag)}
        alive = {sid for sid, s in model.sessions.items() if s.tag == tag and s.alive}
        assert listed == alive, f"{tag}: sessions listed {sorted(listed)} != {sorted(alive)}"
        page = store.query().search_sessions(agent_id=tag, limit=100)
        searched = {s.id: s.metadata.get("n", 0) for s in page.sessions}
        assert searched == {sid: model.sessions[sid].n for sid in alive}, (
            f"{tag}: the sessions view disagrees with the store"
        )
    return checked


def _check_erased(store: Store, sid: str, session: SessionModel) -> None:
    with pytest.raises(AgentSessionsError) as caught:
        store.get_session(sid)
    assert caught.value.code == "session_not_found"
    assert store.get_events(sid) == [], f"{sid}: events survived its erasure"
    assert store.get_latest_sequence(sid) == 0, f"{sid}: the counter survived its erasure"
    assert store.list_runs(sid) == [], f"{sid}: runs survived its erasure"
    if session.erased_events:
        assert store.get_events_by_ids(session.erased_events) == []
    for run_id in session.erased_runs:
        assert not _run_exists(store, run_id), f"{run_id}: a run survived its erasure"
