"""Keeps a store's views caught up while an import writes to it.

Without this, a bulk import leaves every view as far behind as the import is long, and
the first query after it (from a dashboard, a CLI command) replays the whole import
into the views before answering. The importers call :meth:`ViewFollower.written` after
each file or session they write, which catches the views up whenever the log has grown
by ``CATCH_UP_EVERY`` notifications since they last were, and :meth:`finish` at the
end: the views are at the log's head when the import returns (issue 16).
"""

from __future__ import annotations

from ..composition import Store

#: Notifications written between two catch-ups: small enough that a catch-up stays a
#: fraction of a second, large enough that its fixed cost (a few reads per view) is
#: spread over many writes rather than paid after each small session.
CATCH_UP_EVERY = 5_000


class ViewFollower:
    """Catches every view registered with ``store``'s engine up as an import goes."""

    def __init__(self, store: Store, every: int = CATCH_UP_EVERY) -> None:
        self._read_models = store.read_models  # builds the views on first use
        self._every = every
        #: The head the views were last caught up to; 0 so that views already behind
        #: before the import are caught up with its first writes.
        self._caught_up_to = 0

    def written(self) -> None:
        """After a write: catch up when the log has grown enough since the last time."""
        head = self._read_models.head()
        if head - self._caught_up_to >= self._every:
            self._catch_up(head)

    def finish(self) -> None:
        """At the end of the import: catch up to the head, whatever is left."""
        self._catch_up(self._read_models.head())

    def _catch_up(self, head: int) -> None:
        # Up to ``head`` only: writers running beside the import do not prolong it.
        self._read_models.catch_up(until=head)
        self._caught_up_to = head


__all__ = ["CATCH_UP_EVERY", "ViewFollower"]
