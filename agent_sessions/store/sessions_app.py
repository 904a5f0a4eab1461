"""The ``eventsourcing`` application that holds every stream of a store."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application


class SessionsApplication(Application[str]):
    """One application, one stored-events table: sessions, runs, logs and tombstones.

    No snapshots (DESIGN.md section 8: they are written after the events' transaction and
    would make a failed ``save()`` ambiguous) and no repository cache (the store keeps
    its own, see ``aggregate_cache``).
    """

    name = "AgentSessions"

    def __init__(self, env: dict[str, Any]) -> None:
        settings = {
            "ORIGINATOR_ID_TYPE": "text",
            "IS_SNAPSHOTTING_ENABLED": "no",
        }
        settings.update(env)
        super().__init__(settings)
