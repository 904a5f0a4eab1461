"""The one retry policy of every storage call: which failures are retried, how often,
and how long to back off.

Writes re-read what they depend on in each attempt and are idempotent (by event id, or
by diffing records), so repeating one after a lost race or a lost connection is safe.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..domain.errors import AgentSessionsError, StorageError
from .failures import Classifier, Failure, storage_error

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: Attempts before work that keeps losing races gives up with ``storage_error``.
    max_conflicts: int = 64
    #: Retries after a lost connection (backing off 0.1 s, 0.2 s, 0.4 s, 0.8 s) before
    #: ``storage_connection_failed``.
    connection_retries: int = 4
    #: Upper bound of one jittered back-off after a conflict, in seconds.
    max_conflict_backoff: float = 0.05

    def run(
        self,
        operation: str,
        work: Callable[[], _T],
        classify: Classifier,
        *,
        recover: Callable[[], None] | None = None,
    ) -> _T:
        """Run ``work`` until it neither conflicts nor loses its connection, within the
        bounds above; storage failures leave as coded ``AgentSessionsError``s. After a
        lost connection, ``recover`` (when given) runs before the next attempt: a pool
        whose connections all died with the server would otherwise spend every retry on
        another dead one."""
        state = _Attempts()
        while True:
            try:
                return work()
            except AgentSessionsError:
                raise
            except Exception as exc:
                kind = classify(exc)
                if kind is None:
                    raise
                time.sleep(self._backoff(operation, exc, kind, state))
                if kind is Failure.CONNECTION and recover is not None:
                    recover()

    async def run_async(
        self,
        operation: str,
        work: Callable[[], Awaitable[_T]],
        classify: Classifier,
        *,
        recover: Callable[[], Awaitable[None]] | None = None,
    ) -> _T:
        """:meth:`run` for coroutines (the async facade's own PostgreSQL reads): the
        same bounds and back-offs, slept with ``asyncio.sleep``."""
        state = _Attempts()
        while True:
            try:
                return await work()
            except AgentSessionsError:
                raise
            except Exception as exc:
                kind = classify(exc)
                if kind is None:
                    raise
                await asyncio.sleep(self._backoff(operation, exc, kind, state))
                if kind is Failure.CONNECTION and recover is not None:
                    await recover()

    def _backoff(self, operation: str, exc: Exception, kind: Failure, state: _Attempts) -> float:
        """How long to wait before the next attempt after ``exc``; raises the coded
        error when it is not retried (or no longer)."""
        if kind in (Failure.CONFLICT, Failure.TRANSIENT):
            state.conflicts += 1
            if state.conflicts >= self.max_conflicts:
                raise StorageError(
                    f"{operation} failed: still conflicting after {state.conflicts} attempts",
                    details={"operation": operation, "cause": repr(exc)},
                ) from exc
            backoff = min(self.max_conflict_backoff, 0.0005 * 2.0**state.conflicts)
            return random.uniform(0, backoff)
        if kind is Failure.CONNECTION and state.connection_failures < self.connection_retries:
            state.connection_failures += 1
            return 0.05 * 2.0**state.connection_failures
        raise storage_error(exc, operation, kind) from exc


@dataclass(slots=True)
class _Attempts:
    """The failures one call has had so far."""

    conflicts: int = 0
    connection_failures: int = 0


#: The policy every store, view and service uses unless told otherwise.
DEFAULT_RETRY = RetryPolicy()
