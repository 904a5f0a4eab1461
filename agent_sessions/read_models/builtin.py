"""The views every store has (DESIGN.md section 3)."""

from __future__ import annotations

from .artifacts_view import ArtifactsView
from .events_view import EventsView
from .projection import Projection
from .runs_view import RunsView
from .sessions_view import SessionsView


def builtin_projections() -> list[Projection]:
    return [SessionsView(), RunsView(), EventsView(), ArtifactsView()]
