"""No lost updates (issue 11, class 4): every state-based save, raced.

Two writers read the same session and run, and each changes the record it read through
``save_session``, ``save_run`` or ``flush``. A record carries the version it was read
at, so a save from a stale read never silently reverts another writer's change:

* the fields the two writers changed are disjoint: both saves are stored and the
  record holds both changes (``updated_at`` the later one);
* both changed one field: exactly one save is stored, the other is
  ``concurrency_conflict`` and stores nothing (not its other fields, not a flush's
  events), and the record holds the winner's values. Also when both wrote the same
  value (``domain/record_merge.py``: two increments from one read agree, and taking
  the second would lose the first).

The races run in two processes on a real SQLite file and on PostgreSQL, meeting at a
barrier after reading so that both have read before either writes; which one wins is
up to the database. The same rounds also run one writer after the other in this
process, on every backend (two reads from one handle on ``memory://``, which has no
second handle; two handles elsewhere): then the first writer always wins.

``make test`` runs a fixed set of rounds (each pair of fields the issue names, through
each save); the full form (hundreds of rounds with random fields, writers and saves)
is marked ``slow``.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import queue
import random
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pg_server import fresh_schema, with_options
from race_workers import STORED, Change, Round, Written, race_rounds, write

from agent_sessions import Run, Session, SessionStore, open_store

CONFLICT = "concurrency_conflict"

#: Fields of the bases the changes start from, in ``to_dict`` form.
SESSION_BASE: dict[str, Any] = {"metadata": {"base": 0}, "tags": ["base"], "context": {"base": 0}}
RUN_BASE: dict[str, Any] = {"metadata": {"base": 0}}


def _change(target: str, via: str, **fields: Any) -> Change:
    return Change(target, via, fields, event_id=f"evt_race_{uuid.uuid4().hex}")


def _session(via: str, **fields: Any) -> Change:
    return _change("session", via, **fields)


def _run(via: str, **fields: Any) -> Change:
    return _change("run", via, **fields)


#: (name, first writer's change, second writer's change): the pairs the issue names,
#: through each kind of save; ``same ...`` pairs change one field (a conflict).
SCENARIOS: list[tuple[str, Change, Change]] = [
    (
        "session status vs metadata",
        _session("save_session", status="active"),
        _session("save_session", metadata={"m": 1}),
    ),
    (
        "session status vs tags (flush)",
        _session("save_session", status="active"),
        _session("flush", tags=["x"]),
    ),
    (
        "session metadata (flush) vs context (flush)",
        _session("flush", metadata={"m": 1}),
        _session("flush", context={"c": 1}),
    ),
    (
        "same session status, same value (flush)",
        _session("save_session", status="active"),
        _session("flush", status="active"),
    ),
    (
        "same session status, two values",
        _session("save_session", status="active"),
        _session("save_session", status="failed"),
    ),
    (
        "same session metadata, two values (flush)",
        _session("flush", metadata={"m": 1}),
        _session("save_session", metadata={"m": 2}),
    ),
    (
        "run status vs output",
        _run("save_run", status="running"),
        _run("save_run", output={"o": 1}),
    ),
    (
        "run status (flush) vs metadata",
        _run("flush", status="running"),
        _run("save_run", metadata={"m": 1}),
    ),
    (
        "run output (flush) vs metadata (flush)",
        _run("flush", output={"o": 1}),
        _run("flush", metadata={"m": 1}),
    ),
    (
        "same run output, two values (flush)",
        _run("save_run", output={"o": 1}),
        _run("flush", output={"o": 2}),
    ),
    (
        "same run status, two values (flush)",
        _run("flush", status="running"),
        _run("flush", status="cancelled"),
    ),
]

#: Two writers incrementing one counter from one read write identical records: the
#: second must still be refused, or one increment is lost. Several rounds, each save
#: pair, because the loser must be caught whichever way its save and the winner's
#: commit interleave.
SCENARIOS += [
    (
        f"same run turn_count, same value ({first} vs {second}, round {round_})",
        _run(first, turn_count=1),
        _run(second, turn_count=1),
    )
    for round_ in range(3)
    for first, second in (("save_run", "save_run"), ("save_run", "flush"), ("flush", "flush"))
]

#: Values the random rounds choose from: two per field, so that writers changing one
#: field sometimes agree on its value (still a conflict) and sometimes do not.
SESSION_VALUES: dict[str, list[Any]] = {
    "status": ["active", "failed"],
    "metadata": [{"m": 1}, {"m": 2}],
    "tags": [["x"], ["y", "z"]],
    "context": [{"c": 1}, {"c": [2]}],
    "parent_session_id": ["ses_parent_1", "ses_parent_2"],
}
RUN_VALUES: dict[str, list[Any]] = {
    "status": ["running", "cancelled"],
    "output": [{"o": 1}, {"o": 2}],
    "metadata": [{"m": 1}, {"m": 2}],
    "error": [{"e": 1}, {"e": 2}],
    "turn_count": [1, 2],
    "provider": ["p1", "p2"],
}


def random_pair(rng: random.Random) -> tuple[str, Change, Change]:
    target = rng.choice(["session", "run"])
    values = SESSION_VALUES if target == "session" else RUN_VALUES
    saves = ["save_session" if target == "session" else "save_run", "flush"]

    def one() -> Change:
        fields = rng.sample(sorted(values), rng.randint(1, 2))
        return _change(target, rng.choice(saves), **{f: rng.choice(values[f]) for f in fields})

    first, second = one(), one()
    return f"random {target}: {first.fields} vs {second.fields}", first, second


# the expected outcome ---------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def overlaps(first: Change, second: Change) -> bool:
    """Whether the two changes change one field (whatever the values)."""
    return bool(set(first.fields) & set(second.fields))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def problems_of_round(
    store: SessionStore,
    base: tuple[Session, Run],
    changes: tuple[Change, Change],
    written: tuple[Written, Written],
) -> list[str]:
    """What is wrong with the store after one round (``[]`` when nothing)."""
    base_session, base_run = base
    outcomes = [w.outcome for w in written]
    problems: list[str] = []
    versions = [w.read_versions for w in written]
    if not all(isinstance(v, int) for pair in versions for v in pair):
        problems.append(f"records read without an int version: {versions}")
    elif versions[0] != versions[1]:
        problems.append(f"both writers read before either wrote, yet at {versions}")
    if overlaps(*changes):
        if sorted(outcomes) != [CONFLICT, STORED]:
            problems.append(f"overlapping changes: expected one {CONFLICT}, got {outcomes}")
            return problems
    elif outcomes != [STORED, STORED]:
        problems.append(f"disjoint changes: expected both stored, got {outcomes}")
        return problems
    winners = [(c, w) for c, w in zip(changes, written, strict=True) if w.outcome == STORED]
    target = changes[0].target
    base_record = base_session if target == "session" else base_run
    expected = base_record.to_dict()
    for change, _ in winners:
        expected.update(change.fields)
    stored = (
        store.get_session(base_session.id) if target == "session" else store.get_run(base_run.id)
    ).to_dict()
    for name, value in expected.items():
        if name in ("updated_at", "version"):
            continue
        if not _same(stored[name], value):
            problems.append(f"{target}.{name} is {stored[name]!r}, expected {value!r}")
    if target == "session":
        latest = max(_instant(w.session["updated_at"]) for _, w in winners)
        if _instant(stored["updated_at"]) != latest:
            problems.append(f"session.updated_at {stored['updated_at']} is not the later one")
        if store.get_run(base_run.id).to_dict() != base_run.to_dict():
            problems.append("the run changed although only the session was")
    elif store.get_session(base_session.id).to_dict() != base_session.to_dict():
        problems.append("the session changed although only the run was")
    event_ids = {e.id for e in store.get_events(base_session.id)}
    for change, w in zip(changes, written, strict=True):
        present = change.event_id in event_ids
        if change.via == "flush" and present != (w.outcome == STORED):
            state = "present" if present else "absent"
            problems.append(f"flush answered {w.outcome}, yet its event is {state}")
    return problems


def bases(store: SessionStore, count: int) -> list[tuple[Session, Run]]:
    """A fresh session and run per round, read back (as stored, with their versions)."""
    made = []
    for _ in range(count):
        session = Session.new(agent_id="race", **SESSION_BASE)
        run = Run.new(session_id=session.id, **RUN_BASE)
        store.save_session(session)
        store.save_run(run)
        made.append((store.get_session(session.id), store.get_run(run.id)))
    return made


def report(failures: list[str]) -> None:
    assert not failures, f"{len(failures)} round(s) went wrong:\n" + "\n".join(failures)


# in one process, one writer after the other ----------------------------------------------


@pytest.fixture
def second_handle(store_url: str) -> Iterator[SessionStore | None]:
    """Another handle on the same storage; ``None`` on ``memory://``, whose store is
    private to its object (the stale read then comes from the same handle)."""
    if store_url == "memory://":
        yield None
        return
    with open_store(store_url) as handle:
        yield handle


def test_records_carry_the_version_they_were_read_at(store: SessionStore) -> None:
    session = Session.new(agent_id="versions")
    assert session.version is None
    store.save_session(session)
    first = store.get_session(session.id)
    assert isinstance(first.version, int)
    store.save_session(first.with_status("active"))
    second = store.get_session(session.id)
    assert isinstance(second.version, int)
    assert second.version > first.version
    # Not state: records read at other versions compare by their fields.
    assert dataclasses.replace(second, version=None) == second
    run = Run.new(session_id=session.id)
    store.save_run(run)
    assert isinstance(store.get_run(run.id).version, int)


def test_stale_saves_one_after_the_other(
    store: SessionStore, second_handle: SessionStore | None
) -> None:
    """The first writer saves, then the second saves from its stale read: merged when
    disjoint, ``concurrency_conflict`` (and nothing stored) when not."""
    other = second_handle or store
    failures: list[str] = []
    for (name, first, second), base in zip(SCENARIOS, bases(store, len(SCENARIOS)), strict=True):
        session_id, run_id = base[0].id, base[1].id
        reads = [
            (handle.get_session(session_id), handle.get_run(run_id)) for handle in (store, other)
        ]
        written = (
            write(store, *reads[0], first),
            write(other, *reads[1], second),
        )
        if overlaps(first, second) and written[0].outcome != STORED:
            failures.append(f"{name}: the first writer was refused ({written[0].outcome})")
        problems = problems_of_round(store, base, (first, second), written)
        failures += [f"{name}: {problem}" for problem in problems]
    report(failures)


# in two processes, at once ---------------------------------------------------------------


def race(url: str, scenarios: list[tuple[str, Change, Change]]) -> list[str]:
    """Run every scenario as one round of two writer processes; the failures."""
    with open_store(url) as store:
        made = bases(store, len(scenarios))
    plans: list[list[Round]] = [[], []]
    for (_, *changes), (session, run) in zip(scenarios, made, strict=True):
        for writer, change in enumerate(changes):
            plans[writer].append(Round(session.id, run.id, change))
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    results = spawn.Queue()
    writers = [
        spawn.Process(target=race_rounds, args=(url, writer, plans[writer], barrier, results))
        for writer in range(2)
    ]
    for process in writers:
        process.start()
    reported: dict[int, list[Written]] = {}
    errors: list[str] = []
    try:
        for _ in writers:
            writer, outcomes, error = results.get(timeout=120 + 2 * len(scenarios))
            reported[writer] = outcomes
            if error:
                errors.append(f"writer {writer}:\n{error}")
    except queue.Empty:
        errors.append(f"writers {sorted(set(range(2)) - set(reported))} did not report")
    for process in writers:
        process.join(timeout=30)
    assert not errors, "\n".join(errors)
    failures: list[str] = []
    with open_store(url) as store:
        for index, ((name, *changes), base) in enumerate(zip(scenarios, made, strict=True)):
            written = (reported[0][index], reported[1][index])
            problems = problems_of_round(store, base, (changes[0], changes[1]), written)
            failures += [f"{name}: {problem}" for problem in problems]
    return failures


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    with fresh_schema(pg_server_url) as schema:
        yield with_options(pg_server_url, schema=schema, pool_size=2, max_overflow=1)


def _random_scenarios(seed: int, count: int) -> list[tuple[str, Change, Change]]:
    rng = random.Random(seed)
    return [random_pair(rng) for _ in range(count)]


def test_two_processes_race_every_save_sqlite(tmp_path: Path) -> None:
    report(race("sqlite:///" + str(tmp_path / "race.db"), SCENARIOS))


def test_two_processes_race_every_save_postgres(pg_url: str) -> None:
    report(race(pg_url, SCENARIOS))


@pytest.mark.slow
def test_two_processes_race_random_changes_sqlite(tmp_path: Path) -> None:
    report(race("sqlite:///" + str(tmp_path / "race.db"), _random_scenarios(11, 300)))


@pytest.mark.slow
def test_two_processes_race_random_changes_postgres(pg_url: str) -> None:
    report(race(pg_url, _random_scenarios(12, 300)))
