"""Reload and retry a read-modify-write that met ``concurrency_conflict``.

A save from a stale read is merged when the fields differ and refused when another
writer changed the same field (``domain/record_merge.py``). Services whose change is an
intent that still holds on the newer record (mark a session active, soft-delete an
expired one) re-read and re-apply it; the others let the conflict reach the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..domain.errors import AgentSessionsError, ErrorCode

_T = TypeVar("_T")

#: Attempts before the conflict is handed to the caller: each one lost a race to a
#: save that committed, so running out means a writer saving this record non-stop.
MAX_ATTEMPTS = 20


def reread_and_retry(
    change: Callable[[], _T],
    *,
    only: Callable[[AgentSessionsError], bool] = lambda exc: True,
    attempts: int = MAX_ATTEMPTS,
) -> _T:
    """Run ``change`` (which reads, changes and saves) again after each
    ``concurrency_conflict`` that ``only`` accepts, up to ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        try:
            return change()
        except AgentSessionsError as exc:
            conflict = exc.code == ErrorCode.CONCURRENCY_CONFLICT and only(exc)
            if not conflict or attempt == attempts:
                raise
    raise AssertionError("unreachable")  # the loop returns or raises
