"""How long a PostgreSQL connection of the store may wait for a lock, and how long a
write may hold the events table's lock: the bounds of every write transaction.

A writer takes the events table's ``EXCLUSIVE`` lock first (``postgres.py``), so every
other writer, and any DDL on that table (``open_store`` creating its indexes), queues
behind it. Each way a holder could keep it is bounded by a server-side timer:

* waiting for a lock (``lock_timeout``): on every pooled connection, so reads, view
  writes and table creation at open are bounded too, not only appends;
* a statement of a write running or waiting (``write_timeout``, or ``statement_timeout``
  when that is smaller): ``set_config(..., true)`` at the start of each write
  transaction, so it ends with the transaction;
* the client going quiet between statements (``idle_in_transaction_timeout``): the
  server ends the session, which releases the lock.

What no server timer can end is a client that stops in the middle of sending a
statement: PostgreSQL ignores cancels while it reads a message. That is how a 6-10 MB
event hung forever; the write path no longer uses psycopg's pipeline mode, whose
``sync`` could leave part of a large statement unsent (``docs/decisions.md``).

Values are seconds in options and milliseconds here (PostgreSQL's unit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg.sql import SQL, Composed, Literal

#: Application environment keys (``PostgresBackend.environment``) carrying the exact
#: values; ``eventsourcing`` parses its own ``POSTGRES_*`` keys as whole seconds.
LOCK_TIMEOUT_ENV = "AGENT_SESSIONS_PG_LOCK_TIMEOUT"
WRITE_TIMEOUT_ENV = "AGENT_SESSIONS_PG_WRITE_TIMEOUT"
STATEMENT_TIMEOUT_ENV = "POSTGRES_STATEMENT_TIMEOUT"


def milliseconds(seconds: str) -> int:
    """Seconds as PostgreSQL's integer milliseconds; ``0`` for none (``""`` or ``0``).

    A positive value never rounds down to ``0``, which PostgreSQL reads as "no limit"."""
    if not seconds:
        return 0
    value = float(seconds)
    return 0 if value <= 0 else max(1, round(value * 1000))


def whole_seconds(seconds: str) -> str:
    """Seconds rounded up to a whole number, for ``eventsourcing``'s integer settings."""
    return str(math.ceil(float(seconds))) if seconds else seconds


@dataclass(frozen=True, slots=True)
class WriteBounds:
    lock_timeout_ms: int = 10_000
    write_timeout_ms: int = 60_000
    statement_timeout_ms: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, Any] | Any) -> WriteBounds:
        return cls(
            lock_timeout_ms=milliseconds(env.get(LOCK_TIMEOUT_ENV) or "10"),
            write_timeout_ms=milliseconds(env.get(WRITE_TIMEOUT_ENV) or "60"),
            statement_timeout_ms=milliseconds(env.get(STATEMENT_TIMEOUT_ENV) or ""),
        )

    @property
    def write_statement_ms(self) -> int:
        """A write's statement bound: ``write_timeout``, or ``statement_timeout`` if that
        is set and smaller (a write is never allowed longer than any statement)."""
        if self.statement_timeout_ms and self.statement_timeout_ms < self.write_timeout_ms:
            return self.statement_timeout_ms
        return self.write_timeout_ms

    def connection_options(self) -> list[str]:
        """libpq ``options`` for every pooled connection."""
        options = [f"-c lock_timeout={self.lock_timeout_ms}"]
        if self.statement_timeout_ms:
            options.append(f"-c statement_timeout={self.statement_timeout_ms}")
        return options

    def bound_write(self) -> Composed:
        """Run first in every write transaction: its own lock and statement bounds. The
        values are literals, so the statement can share a round trip with others."""
        return SQL(
            "SELECT set_config('lock_timeout', {0}, true), "
            "set_config('statement_timeout', {1}, true)"
        ).format(Literal(str(self.lock_timeout_ms)), Literal(str(self.write_statement_ms)))
