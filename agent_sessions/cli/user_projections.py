"""Your own projections on the command line: ``--projection module:Class`` loads one
from the working directory, registers it with the store's engine and has the store
remember its topic (``ProjectionEngine.remember``, kept in ``view_meta``), so that every
later ``projections`` or ``doctor`` command on that store loads it again without being
told. A remembered projection that cannot be loaded here (run from another directory,
the module gone) is reported, not silently dropped: the commands that run it refuse to
start, the ones that report on it say why it is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click
from eventsourcing.utils import resolve_topic

from ..composition import Store
from ..domain.errors import ValidationError
from ..read_models.projection import Projection

PROJECTION_OPTION = click.option(
    "--projection",
    "topics",
    multiple=True,
    metavar="MODULE:CLASS",
    help="register this Projection subclass, importable from the working directory; "
    "the store remembers it for later commands (repeatable)",
)


def load(topic: str) -> Projection:
    """``module:Class`` to an instance; the working directory is importable, as it is
    for ``python -m``, so a projection next to the user's code is found."""
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        projection = resolve_topic(topic)()
    except Exception as exc:
        raise ValidationError(
            f"cannot load projection {topic!r}: {type(exc).__name__}: {exc} "
            "(expected module:Class, the module importable from the working directory)",
            details={"field": "projection", "value": topic},
        ) from exc
    if not isinstance(projection, Projection):
        raise ValidationError(
            f"{topic} is not a Projection subclass (name a class that subclasses "
            "agent_sessions.Projection, as module:Class)",
            details={"field": "projection", "value": topic},
        )
    return projection


@dataclass
class Loaded:
    """What :func:`register_all` found: the topic of each user projection by name,
    and why each one that could not be loaded was not."""

    topics: dict[str, str] = field(default_factory=dict)
    missing: dict[str, ValidationError] = field(default_factory=dict)

    def require(self, names: Sequence[str] | None = None) -> None:
        """Raise the error of the first missing one (of ``names``, or of all)."""
        for name, error in self.missing.items():
            if names is None or name in names:
                raise ValidationError(
                    f"the store's projection {name!r} cannot be loaded here: {error.message} "
                    f"(run from the directory it is importable from, or "
                    f"`agent-sessions projections forget {name}`)",
                    details={"field": "projection", "name": name},
                )


def require_known(name: str, known: Sequence[str]) -> None:
    """``name`` is a registered projection; else the error says where the names are
    (the engine's own error says only that it has none of that name)."""
    if name not in known:
        raise ValidationError(
            f"no projection named {name!r}: the names are listed by `agent-sessions "
            "projections status` (for one of yours, pass --projection module:Class once)",
            details={"field": "projection", "name": name},
        )


def register_all(store: Store, topics: Sequence[str]) -> Loaded:
    """Register the projections named by ``topics`` and remember them, then every
    projection the store remembers (those that load)."""
    engine = store.projections
    loaded = Loaded()
    for topic in topics:
        projection = engine.register(load(topic))
        engine.remember(projection.name, topic)
        loaded.topics[projection.name] = topic
    for name, topic in engine.remembered().items():
        loaded.topics.setdefault(name, topic)
        if name in engine.names:
            continue
        try:
            projection = load(topic)
        except ValidationError as error:
            loaded.missing[name] = error
            continue
        engine.register(projection)
    return loaded
