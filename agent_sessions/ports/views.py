"""The port of the read side: a database for read models plus its tracking positions.

Read models live beside the events they are built from, in the same SQLite file or
PostgreSQL schema, so that a view's rows and its tracking position commit in one
transaction. Each backend module provides one ``ViewStore``; read models see only this.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from eventsourcing.persistence import TrackingRecorder

from .failures import Failure


class ViewCursor(Protocol):
    """The cursor read models write and read with: ``?`` placeholders on every backend,
    rows readable by column name."""

    def execute(self, statement: str, params: Sequence[Any] = ()) -> ViewCursor: ...

    def executemany(self, statement: str, params: Sequence[Sequence[Any]]) -> None: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class ViewStore(Protocol):
    """A database for views plus a tracking recorder, as the projection engine needs it."""

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        ...

    @property
    def tracking(self) -> TrackingRecorder:
        """The tracking recorder that holds this store's positions."""
        ...

    def transaction(self, *, commit: bool) -> AbstractContextManager[ViewCursor]: ...

    def position(self, name: str) -> int: ...

    def claim_position(self, cursor: ViewCursor, name: str, position: int) -> None:
        """Hold ``name``'s position for ``cursor``'s transaction, after checking that it
        is still ``position``; a conflict when another runner has moved it. The first
        statement of a batch's transaction: runners of one projection then take turns
        instead of applying the same events twice."""
        ...

    def record_position(self, cursor: ViewCursor, name: str, notification_id: int) -> None: ...

    def forget_position(self, cursor: ViewCursor, name: str) -> None: ...

    def classify(self, exc: BaseException) -> Failure | None: ...

    def close(self) -> None: ...
