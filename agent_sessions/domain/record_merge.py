"""Three-way merge of a record saved from a stale read (issue 11, class 4).

The port is state-based: a caller reads a session or a run, changes it and saves the
whole record. When another writer saved in between, diffing the caller's record against
the *current* one would also "change back" every field the other writer set. So a save
knows the version its record was read at (``Session.version``, ``Run.version``) and the
store merges three records: the one at that version (the base), the caller's, and the
current one.

* Fields only the caller changed are applied on top of the current record.
* Fields only others changed keep their current values.
* A field both changed makes the save ``concurrency_conflict``, and nothing is stored,
  even when both wrote the same value: two increments of a counter from one read give
  the same value, and accepting the second would lose the first. ``updated_at`` is the
  exception: it is bookkeeping that every save moves, so it takes the later of the two.

Fields are compared as JSON (``to_dict``), as the aggregates compare them, so ``1`` and
``1.0`` or ``True`` count as different values.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

from .errors import AgentSessionsError, ErrorCode
from .run import Run
from .session import Session

_R = TypeVar("_R", Session, Run)

#: Fields every save moves: a clash on them is resolved to the later value.
LATEST_WINS = frozenset({"updated_at"})


def _as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {key for key, value in after.items() if _as_json(before.get(key)) != _as_json(value)}


def merge(base: _R, mine: _R, current: _R) -> _R:
    """``mine`` (read at ``base``) applied to ``current``, or ``concurrency_conflict``."""
    base_map, mine_map, current_map = base.to_dict(), mine.to_dict(), current.to_dict()
    ours = changed_fields(base_map, mine_map)
    theirs = changed_fields(base_map, current_map)
    clashes = sorted((ours & theirs) - LATEST_WINS)
    if clashes:
        raise concurrency_conflict(mine, clashes, current_version=current.version)
    merged = dict(current_map)
    for key in ours:
        merged[key] = mine_map[key]
    for key in ours & theirs & LATEST_WINS:
        merged[key] = max(mine_map[key], current_map[key], key=datetime.fromisoformat)
    return type(current).from_dict(merged)


def same_content(a: Session | Run, b: Session | Run) -> bool:
    """Whether two records hold the same values (compared as JSON, like every merge)."""
    a_map, b_map = a.to_dict(), b.to_dict()
    return not changed_fields(a_map, b_map) and not changed_fields(b_map, a_map)


def carry_version(saved: Session | Run, original: Session | Run) -> None:
    """When a store saved a copy of the caller's record (redacted), the caller's record
    gets the version the copy was saved at, as if it had been saved itself."""
    if saved is not original:
        object.__setattr__(original, "version", saved.version)


def concurrency_conflict(
    record: Session | Run, fields: list[str], *, current_version: int | None
) -> AgentSessionsError:
    kind = "session" if isinstance(record, Session) else "run"
    named = ", ".join(fields) if fields else "the record"
    return AgentSessionsError(
        f"{kind} {record.id} was changed by another writer since it was read (version "
        f"{record.version}, now {current_version}); both changed {named}: read it again, "
        "re-apply the change and save",
        code=ErrorCode.CONCURRENCY_CONFLICT,
        details={
            "record": kind,
            "id": record.id,
            "fields": fields,
            "read_version": record.version,
            "current_version": current_version,
        },
    )
