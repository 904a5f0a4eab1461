"""Whole-store checks every crash and fault test ends with.

* ``health_check()`` finds nothing: the index agrees with the log and with itself, no
  counter is off, every read model caught up (``Maintenance.health_check``);
* every read model holds exactly what a clean rebuild from the log makes of it: a crash
  or a fault in the middle of a projection batch left neither a half-applied batch nor
  a position that skips or repeats events;
* each session's sequence numbers are gap-free: the stored ones and the pruned ones are
  ``1..latest`` exactly, each once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent_sessions.composition import Store

Rows = dict[str, list[tuple[Any, ...]]]


def view_rows(store: Store) -> Rows:
    """Every row of every registered projection's tables, caught up, in a fixed order."""
    engine = store.projections
    engine.catch_up()
    rows: Rows = {}
    with engine.views.transaction(commit=False) as view:
        for name in engine.names:
            for table in engine.get(name).table_names():
                fetched = view.execute(f"SELECT * FROM {table}").fetchall()
                rows[table] = sorted(
                    (tuple(row.values()) if isinstance(row, dict) else tuple(row)
                     for row in fetched),
                    key=repr,
                )  # fmt: skip
    return rows


def assert_views_equal_rebuild(store: Store) -> None:
    """The views as the store kept them equal the views rebuilt from the log."""
    kept = view_rows(store)
    for name in store.projections.names:
        store.projections.rebuild(name)
    rebuilt = view_rows(store)
    for table in sorted(set(kept) | set(rebuilt)):
        assert kept.get(table) == rebuilt.get(table), (
            f"view table {table} differs from a clean rebuild:\n"
            f"kept only:    {sorted(set(kept.get(table, [])) - set(rebuilt.get(table, [])))[:5]}\n"
            f"rebuilt only: {sorted(set(rebuilt.get(table, [])) - set(kept.get(table, [])))[:5]}"
        )


def assert_healthy(store: Store) -> None:
    issues = store.maintenance().health_check()
    assert issues == [], f"health_check found: {issues}"


def assert_gap_free(store: Store, session_id: str, pruned: Iterable[int] = ()) -> list[int]:
    """The session's stored sequence numbers plus ``pruned`` are ``1..latest``, with no
    number twice; returns the stored ones."""
    stored = [e.sequence_number or 0 for e in store.get_events(session_id)]
    latest = store.get_latest_sequence(session_id)
    gone = sorted(set(pruned))
    assert len(stored) == len(set(stored)), f"{session_id}: a sequence number twice: {stored}"
    assert not set(stored) & set(gone), f"{session_id}: pruned numbers still stored"
    assert sorted([*stored, *gone]) == list(range(1, latest + 1)), (
        f"{session_id}: stored {stored} and pruned {gone} are not 1..{latest}"
    )
    return stored


def assert_store_sound(store: Store) -> None:
    """``health_check`` clean and views equal to a rebuild."""
    assert_healthy(store)
    assert_views_equal_rebuild(store)
