"""What the SQL backends' view stores share: a cursor speaking ``?`` placeholders on
every dialect, and the position bookkeeping on top of ``eventsourcing``'s tracking
recorders.

Each backend's view store subclasses its own dialect's tracking recorder, whose
conditional upsert refuses a position that does not move forward: that rolls back a
batch another runner has already applied. The position is written with the view's rows,
on the same cursor, in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import Tracking, TrackingRecorder

from ..ports.failures import Failure
from ..ports.views import ViewCursor

_QMARK = re.compile(r"\?")


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

    def record_position(self, cursor: ViewCursor, name: str, notification_id: int) -> None:
        if not isinstance(cursor, SqlViewCursor):
            msg = "positions are recorded on this view store's own cursors"
            raise TypeError(msg)
        self._insert_tracking(
            cursor.raw, Tracking(application_name=name, notification_id=notification_id)
        )

    def forget_position(self, cursor: ViewCursor, name: str) -> None:
        cursor.execute(f"DELETE FROM {self.tracking_table} WHERE application_name = ?", (name,))

    def close(self) -> None:
        """The datastore belongs to the store's application, which closes it."""
