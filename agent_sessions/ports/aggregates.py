"""The port for saving aggregates other than sessions and runs (the artifact
registry's): load, let the caller decide, save, with the store's retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class AggregateSaver(Protocol):
    def save_aggregate(
        self, aggregate_id: str, change: Callable[[Any], Any], *, operation: str
    ) -> Any:
        """Load the aggregate (``None`` when it does not exist), pass it to ``change``
        and save what ``change`` returns, retrying the whole step when another writer
        saved the aggregate first. Returns what ``change`` returned."""
        ...
