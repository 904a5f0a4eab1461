"""Crashes: writer processes killed with SIGKILL in the middle of their writes.

Each writer (``crash_worker.py``) loops over ``save_session`` (new sessions and changed
ones), ``append_events``, ``flush``, ``prune_events`` and ``delete_session`` (erasure),
journalling every write before it starts and acknowledging it once the store returned;
the parent kills it, from outside at a random moment or from inside at a random call of
one kind of write (``crash_campaign.py``). After every kill (``crash_model.py``):

* every acknowledged write is there: events with the sequence numbers the store
  returned and their own data, session records as last saved, runs, pruned and erased
  sessions gone;
* the write in flight is all or nothing: no half append, no half flush (session, run and
  events together), no half erasure or pruning;
* sequence numbers are gap-free, apart from pruned ones;
* ``health_check()`` is clean and every read model equals a clean rebuild.

``make test`` runs a quick form: a few kills per backend, at least one aimed at each kind
of write. The full form (``make test-reliability``) kills hundreds of times on SQLite and
PostgreSQL, two writers at once, and prints its numbers.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_campaign import CampaignReport, run_campaign
from crash_worker import KILLABLE, open_read_models_at_once
from pg_server import fresh_schema, with_options


@pytest.fixture(params=["sqlite", "postgres"])
def crash_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "crash.db")
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


def _backend(url: str) -> str:
    return url.split(":", 1)[0]


def _show(report: CampaignReport, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + report.summary())


def test_quick_kills_leave_every_acknowledged_write(
    crash_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One round aimed at each kind of write, and two killed from outside.
    schedule: list[str | None] = [None, *KILLABLE, None]
    report = run_campaign(crash_url, tmp_path, backend=_backend(crash_url), schedule=schedule)
    _show(report, capsys)
    assert report.kills == len(schedule)
    aimed = {op for (op, _), count in report.outcomes.items() if count}
    assert aimed >= set(KILLABLE), f"no kill landed inside {set(KILLABLE) - aimed}"


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_hundreds_of_kills_leave_every_acknowledged_write(
    crash_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rounds alternate: killed from outside, then aimed at the next kind of write.
    rounds = 150
    kinds = itertools.cycle(KILLABLE)
    schedule = [None if r % 2 == 0 else next(kinds) for r in range(rounds)]
    report = run_campaign(
        crash_url,
        tmp_path,
        backend=_backend(crash_url),
        schedule=schedule,
        workers=2,
        seed=2026,
        deep_every=10,
    )
    _show(report, capsys)
    assert report.kills == 2 * rounds
    # Kills landed on both sides of commits: before (rolled back) and after (committed
    # but not acknowledged), for every kind of write.
    for op in KILLABLE:
        landed = report.outcomes
        assert landed[(op, True)], f"{op}: no kill landed after a commit: {landed}"
        assert landed[(op, False)], f"{op}: no kill landed before a commit: {landed}"


def test_writers_starting_at_once_build_the_read_models(crash_url: str) -> None:
    """Found by the full campaign: writer processes that start together on a store whose
    read models do not exist yet all create their tables on their first query; every
    one of them must get its answer, none a storage error."""
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(4)
    results = spawn.Queue()
    processes = [
        spawn.Process(target=open_read_models_at_once, args=(crash_url, barrier, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    answers = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert answers == ["ok"] * 4
