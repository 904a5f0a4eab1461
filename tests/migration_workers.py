"""Process targets for the multi-process migration tests (spawned, so module-level).

Each runs ``migrate`` in a process of its own: two at the same moment, or one that is
killed with SIGKILL part-way, exactly as a crash or ``kill -9`` would stop it (no
``finally`` blocks, no rollback by the process itself).
"""

from __future__ import annotations

import json
import os
import signal
import traceback
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any
from unittest.mock import patch

from agent_sessions import migrate
from agent_sessions.backends import schema
from agent_sessions.read_models.engine import ProjectionEngine

#: What a worker reports: (version before, version after, [(version, outcome)], rebuilt)
#: or, if ``migrate`` raised, the traceback as text.
Summary = tuple[int | None, int | None, list[tuple[int, str]], dict[str, int]]


def migrate_at_once(url: str, barrier: Barrier, results: Queue[Any]) -> None:
    """Wait until every worker is ready, then migrate; put the summary on ``results``."""
    try:
        barrier.wait(timeout=60)
        report = migrate(url)
        summary: Summary = (
            report.version_before,
            report.version_after,
            [(step.version, step.outcome) for step in report.steps],
            dict(report.rebuilt),
        )
        results.put(summary)
    except BaseException:
        results.put(traceback.format_exc())


def _die(*args: Any, **kwargs: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def migrate_killed_before_recording(url: str) -> None:
    """Migrate, dying at the moment a migration records its version: inside its
    transaction, after its statements ran, before the commit."""
    with patch.object(schema, "record", _die):
        migrate(url)


#: Notifications per batch while rebuilding: one, so that the kill finds the rebuild
#: part-way (the v0.1.0 fixture holds fewer events than one default batch, and a read
#: model may follow only a few of their topics).
REBUILD_BATCH = 1


def migrate_killed_while_rebuilding(url: str, seen: str) -> None:
    """Migrate, rebuilding read models in small batches, and die when the rebuild
    reports its first batch, after writing that report (name, position, head) to
    ``seen``."""
    catch_up = ProjectionEngine.catch_up

    def in_small_batches(
        engine: ProjectionEngine,
        name: str | None = None,
        *,
        batch_size: int = REBUILD_BATCH,
        until: int | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> int:
        return catch_up(engine, name, batch_size=REBUILD_BATCH, until=until, progress=progress)

    def die(name: str, position: int, head: int) -> None:
        Path(seen).write_text(json.dumps([name, position, head]), encoding="utf-8")
        _die()

    with patch.object(ProjectionEngine, "catch_up", in_small_batches):
        migrate(url, progress=die)
