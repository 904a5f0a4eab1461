"""The read models of one store: the built-in views, the engine that keeps them, and
the one way services read them.

Which read model answers what (each fact is kept once):

* sessions (search, filters, retention age candidates): ``sessions`` (``view_sessions``);
* runs, token usage, costs and the daily rollup: ``runs`` (``view_runs``,
  ``view_usage_daily``);
* events (search, counts, per-session first/last timestamps, pruning candidates): the
  event index ``agent_events``, read by ``events`` without catching up;
* pruned sequence ranges: ``events`` (``view_pruned_ranges``);
* artifact metadata: ``artifacts`` (``view_artifacts``);
* the cursor key, view shapes and failed views: ``view_meta``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from eventsourcing.persistence import ApplicationRecorder, Mapper

from ..domain.errors import AgentSessionsError, ErrorCode
from ..ports.failures import storage_error
from ..ports.retry import DEFAULT_RETRY
from ..ports.views import ViewCursor, ViewStore
from . import view_meta
from .artifacts import ArtifactsView
from .engine import ProjectionEngine, ProjectionFailure
from .events import EventsView
from .projection import Projection
from .runs import RunsView
from .sessions import SessionsView

_T = TypeVar("_T")


class ReadModels:
    """The built-in read models over one store's log, registered with a
    :class:`ProjectionEngine` (which also runs your own projections)."""

    def __init__(
        self, recorder: ApplicationRecorder, mapper: Mapper[Any], views: ViewStore
    ) -> None:
        self.sessions = SessionsView()
        self.runs = RunsView()
        self.events = EventsView()
        self.artifacts = ArtifactsView()
        self.engine = ProjectionEngine(recorder, mapper, views, self.builtin)

        def make_key() -> bytes:
            with views.transaction(commit=True) as cursor:
                return view_meta.cursor_key(cursor)

        # Made now rather than on a query's first page: an in-memory database does not
        # allow this write while a read transaction is open. Retried, as every write.
        self._cursor_key = DEFAULT_RETRY.run("read models", make_key, views.classify)

    @property
    def builtin(self) -> list[Projection]:
        """The built-in views, in the order they are registered."""
        return [self.sessions, self.runs, self.events, self.artifacts]

    @property
    def views(self) -> ViewStore:
        return self.engine.views

    @property
    def cursor_key(self) -> bytes:
        """The key that signs this store's query cursors (kept in ``view_meta``)."""
        return self._cursor_key

    def read(
        self,
        work: Callable[[ViewCursor], _T],
        *,
        catch_up: Iterable[str] = (),
        stale_ok: bool = False,
        operation: str = "query",
    ) -> _T:
        """``work`` in one read transaction, after catching the ``catch_up`` views up to
        the log's head (skipped with ``stale_ok``), so a read after a write sees it.

        A read that needs a view stopped at an event it cannot apply is
        ``projection_failed`` (naming the view and the event), stale or not: its rows
        would silently miss everything after that event. Reads of other views go on.
        Storage failures leave as coded storage errors; any other failure of the read
        is ``query_error``.
        """
        needed = list(catch_up)
        try:
            if not stale_ok:
                for name in needed:
                    self.engine.catch_up(name)  # raises projection_failed
            with self.views.transaction(commit=False) as cursor:
                if stale_ok and needed:
                    self._refuse_failed(cursor, needed)
                return work(cursor)
        except AgentSessionsError:
            raise
        except Exception as exc:
            kind = self.views.classify(exc)
            if kind is None:
                raise AgentSessionsError(
                    f"{operation} failed: {exc}", code=ErrorCode.QUERY_ERROR
                ) from exc
            raise storage_error(exc, operation, kind) from exc

    @staticmethod
    def _refuse_failed(cursor: ViewCursor, names: list[str]) -> None:
        marks = view_meta.failures(cursor, names)
        for name in names:
            if name in marks:
                raise ProjectionFailure.from_dict(marks[name]).to_error()

    def close(self) -> None:
        self.views.close()


__all__ = ["ReadModels"]
