"""``memory://``: the SQLite backend on a private in-memory database.

Nothing touches the disk and nothing is shared between two stores, yet every index
query, erasure, pruning and health check is the same SQL as on a file: there is no
second implementation of the index to keep in step.
"""

from __future__ import annotations

from collections.abc import Mapping

from .sqlite import SQLiteBackend, memory_database_name
from .url_options import COMMON_OPTIONS, Option


class MemoryBackend(SQLiteBackend):
    """``memory://``: in this process only, gone when the store closes. Only the options
    every backend takes (``max_event_bytes``)."""

    options: Mapping[str, Option] = COMMON_OPTIONS
    name = "memory"

    def _database(self, url: str) -> str:
        self.poll_interval = None  # no other process can reach it
        return memory_database_name()
