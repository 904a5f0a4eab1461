"""What the SQL backends' view stores share: a cursor speaking ``?`` placeholders on
every dialect, and the position bookkeeping on top of ``eventsourcing``'s tracking
recorders.

Each backend's view store subclasses its own dialect's tracking recorder. A batch's
transaction first claims the projection's position (checks that it is still where the
batch started, and holds it), then writes the view's rows and the new position, on the
same cursor. The recorder's own upsert refuses only a position that does not move
forward: without the claim, two runners that started from the same position with
batches of different lengths (each reads the log's head when it starts) both commit,
and the longer applies the shorter one's events a second time (the soak of
``tests/reliability`` saw daily usage count runs twice with eight processes querying).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder

from ..ports.failures import Failure
from ..ports.retry import DEFAULT_RETRY
from ..ports.views import ViewCursor

_QMARK = re.compile(r"\?")
#: SQLSTATEs of a ``CREATE ... IF NOT EXISTS`` that lost a race: duplicate_object (the
#: table's row type) and duplicate_table. PostgreSQL checks existence before it takes
#: the catalog's locks, so concurrent creators can fail this way, or with a unique
#: violation in the catalog, which every recorder already reports as a conflict.
_CREATION_RACE_SQLSTATES = {"42710", "42P07"}


def lost_creation_race(exc: BaseException) -> bool:
    """Whether ``exc`` (or the driver error behind it) is a ``CREATE ... IF NOT EXISTS``
    refused because a concurrent creator committed the same object first."""
    return any(
        getattr(error, "sqlstate", None) in _CREATION_RACE_SQLSTATES
        for error in (exc, exc.__cause__)
    )


class SqlViewCursor:
    """A driver cursor behind the :class:`~agent_sessions.ports.views.ViewCursor` port;
    ``raw`` is the driver's own, for the tracking recorder."""

    def __init__(self, raw: Any, *, pyformat: bool) -> None:
        self.raw = raw
        self._pyformat = pyformat

    def _statement(self, statement: str) -> str:
        if self._pyformat:
            return _QMARK.sub("%s", statement.replace("%", "%%"))
        return statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> SqlViewCursor:
        self.raw.execute(self._statement(statement), tuple(params))
        return self

    def executemany(self, statement: str, params: Sequence[Sequence[Any]]) -> None:
        self.raw.executemany(self._statement(statement), [tuple(p) for p in params])

    def fetchone(self) -> Any:
        return self.raw.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self.raw.fetchall())


class TrackedViews:
    """Mixed into a dialect's tracking recorder to make it a ``ViewStore``."""

    dialect: str
    #: Whether statements are rewritten from ``?`` to ``%s`` for the driver.
    pyformat: bool = False
    #: The tracking table as statements name it.
    tracking_table: str
    datastore: Any

    if TYPE_CHECKING:  # provided by the dialect's tracking recorder and the backend

        def _insert_tracking(self, c: Any, tracking: Tracking) -> None: ...

        def max_tracking_id(self, application_name: str) -> int | None: ...

        def classify(self, exc: BaseException) -> Failure | None: ...

    def create_table(self) -> None:
        """The dialect recorder's ``create_table``, retried when it loses a race.
        Processes that use a new store's read models for the first time at the same
        moment all create the tracking table: the stock recorder checks whether it
        exists and then creates it with its first row, so all but one fail (SQLite on
        that row, PostgreSQL on the table's type, as a duplicate object or a catalog
        unique violation). A retry finds the winner's table and row and creates
        nothing."""
        dialect_recorder = cast(Any, super())
        DEFAULT_RETRY.run(
            "create the views' tracking table",
            dialect_recorder.create_table,
            self._classify_creation,
        )

    def _classify_creation(self, exc: BaseException) -> Failure | None:
        """:meth:`classify`, with a lost creation race as a conflict: retried, the
        ``IF NOT EXISTS`` then finds the winner's table."""
        return Failure.CONFLICT if lost_creation_race(exc) else self.classify(exc)

    @property
    def tracking(self) -> TrackingRecorder:
        assert isinstance(self, TrackingRecorder)  # mixed into a tracking recorder
        return self

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[ViewCursor]:
        with self.datastore.transaction(commit=commit) as c:
            yield SqlViewCursor(c, pyformat=self.pyformat)

    def position(self, name: str) -> int:
        return self.max_tracking_id(name) or 0

    def claim_position(self, cursor: ViewCursor, name: str, position: int) -> None:
        sql = self._sql_cursor(cursor)
        table = self.tracking_table
        if position == 0:
            # No position yet: the row is made here, and a runner making it at the same
            # moment waits for ours and then finds it (``DO NOTHING``), as it would find
            # a moved position below.
            made = sql.execute(
                f"INSERT INTO {table} (application_name, notification_id) VALUES (?, 0) "
                "ON CONFLICT (application_name) DO NOTHING RETURNING notification_id",
                (name,),
            ).fetchone()
            if made is not None:
                return
        # The update's row lock (SQLite: its write lock) holds the position until this
        # transaction ends; another runner's claim waits, then finds it moved.
        held = sql.execute(
            f"UPDATE {table} SET notification_id = notification_id "
            "WHERE application_name = ? AND notification_id = ? RETURNING notification_id",
            (name, position),
        ).fetchone()
        if held is None:
            msg = f"projection {name} moved on from {position}: another runner applied it"
            raise IntegrityError(msg)

    def record_position(self, cursor: ViewCursor, name: str, notification_id: int) -> None:
        self._insert_tracking(
            self._sql_cursor(cursor).raw,
            Tracking(application_name=name, notification_id=notification_id),
        )

    @staticmethod
    def _sql_cursor(cursor: ViewCursor) -> SqlViewCursor:
        if not isinstance(cursor, SqlViewCursor):
            msg = "positions are recorded on this view store's own cursors"
            raise TypeError(msg)
        return cursor

    def forget_position(self, cursor: ViewCursor, name: str) -> None:
        cursor.execute(f"DELETE FROM {self.tracking_table} WHERE application_name = ?", (name,))

    def close(self) -> None:
        """The datastore belongs to the store's application, which closes it."""
