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

A query never waits on a long catch-up without saying so: :meth:`ReadModels.lag` tells
how far behind the views are (what a ``stale_ok`` answer may miss), and a catch-up over
more than ``LONG_CATCH_UP`` notifications is logged at INFO as it goes and reported to
the query's ``progress`` callback (the command line draws it as a bar).
"""

from __future__ import annotations

import logging
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
_log = logging.getLogger(__name__)

#: A catch-up that must apply more than this many notifications to one view before a
#: query answers is long: a few seconds on SQLite, more on a remote database. It is
#: logged and reported to ``progress``; shorter ones stay silent, as most are.
LONG_CATCH_UP = 10_000

#: What a query's ``progress`` is called with: (view name, notifications applied so
#: far, notifications to apply in all), first with 0 done, then after each batch.
CatchUpProgress = Callable[[str, int, int], None]


class _CatchUpReport:
    """Logs one query's long catch-ups and reports them to ``progress``: counts from
    where each view started, so that a bar fills from empty whatever its position."""

    def __init__(self, progress: CatchUpProgress | None, long_catch_up: int) -> None:
        self._progress = progress
        self._long = long_catch_up
        self._start: dict[str, int] = {}
        self._total: dict[str, int] = {}
        self._logged: dict[str, int] = {}

    def starting(self, name: str, position: int, stop: int) -> None:
        total = stop - position
        if total <= self._long:
            return
        self._start[name] = position
        self._total[name] = total
        self._logged[name] = 0
        _log.info(
            "catching up view %s over %d notifications (position %d, head %d) before "
            "the query answers; stale_ok=True answers at once, without them",
            name,
            total,
            position,
            stop,
        )
        if self._progress is not None:
            self._progress(name, 0, total)

    def batch(self, name: str, position: int, stop: int) -> None:
        start = self._start.get(name)
        if start is None:
            return
        total = self._total[name]
        done = min(position - start, total)
        if self._progress is not None:
            self._progress(name, done, total)
        # Logged every ``long_catch_up`` notifications: a line every few seconds.
        if done >= total or done - self._logged[name] >= self._long:
            self._logged[name] = done
            _log.info("view %s: %d of %d notifications applied", name, done, total)


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
        progress: CatchUpProgress | None = None,
        long_catch_up: int = LONG_CATCH_UP,
    ) -> _T:
        """``work`` in one read transaction, after catching the ``catch_up`` views up to
        the log's head (skipped with ``stale_ok``), so a read after a write sees it.

        A view more than ``long_catch_up`` notifications behind is caught up with its
        progress logged at INFO and reported to ``progress`` (see ``CatchUpProgress``),
        so a first query after a large import is not a silent wait.

        A read that needs a view stopped at an event it cannot apply is
        ``projection_failed`` (naming the view and the event), stale or not: its rows
        would silently miss everything after that event. Reads of other views go on.
        Storage failures leave as coded storage errors; any other failure of the read
        (a ``progress`` callback that raises included) is ``query_error``.
        """
        needed = list(catch_up)

        def run() -> _T:
            if not stale_ok:
                report = _CatchUpReport(progress, long_catch_up)
                for name in needed:
                    # raises projection_failed
                    self.engine.catch_up(name, progress=report.batch, starting=report.starting)
            with self.views.transaction(commit=False) as cursor:
                if stale_ok and needed:
                    self._refuse_failed(cursor, needed)
                return work(cursor)

        return self._guard(run, operation)

    def lag(self, names: Iterable[str] | None = None) -> int:
        """How many notifications the most behind of the ``names`` views (default: the
        built-in ones) has yet to read: an upper bound on the events a ``stale_ok``
        answer from them may miss (notification ids have gaps, and each view skips the
        topics it does not want). 0 when they are caught up. Reads nothing but the
        positions and the log's head: it never catches anything up."""
        wanted = [p.name for p in self.builtin] if names is None else list(names)
        for name in wanted:
            self.engine.get(name)  # an unknown view is validation_error

        def run() -> int:
            head = self.engine.head()
            return max((head - self.views.position(name) for name in wanted), default=0)

        return max(0, self._guard(run, "lag"))

    def head(self) -> int:
        """The id of the log's last notification (0 when empty)."""
        return self._guard(self.engine.head, "read the log's head")

    def catch_up(self, *, until: int | None = None) -> int:
        """Catch every registered view up to ``until`` (default: the log's head);
        returns the events applied. A view stopped at an event it cannot apply stays
        stopped (its mark is what reads report) and the others go on: a writer that
        keeps the views current (a bulk import) must not fail for one of them."""
        return self._guard(lambda: self.engine.catch_up(until=until), "catch up views")

    def _guard(self, run: Callable[[], _T], operation: str) -> _T:
        """``run``'s result; its failures as coded errors (see :meth:`read`)."""
        try:
            return run()
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


__all__ = ["LONG_CATCH_UP", "CatchUpProgress", "ReadModels"]
