"""The composition root: the one place that wires a backend, the event-sourced store,
its read models and the services over them into the object ``open_store`` returns."""

from __future__ import annotations

from .async_store import AsyncStore, open_async_store, tail
from .migrate import migrate
from .open_store import DEFAULT_URL, artifact_store_for, default_url, open_store
from .store import Store

__all__ = [
    "AsyncStore",
    "DEFAULT_URL",
    "Store",
    "artifact_store_for",
    "default_url",
    "migrate",
    "open_async_store",
    "open_store",
    "tail",
]
