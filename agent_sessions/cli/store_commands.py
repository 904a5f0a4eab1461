"""``migrate`` and ``projections``: keeping a store's schema and read models current
(your own projections: ``user_projections.py``)."""

from __future__ import annotations

import dataclasses
import signal
import threading
from typing import Any

import click

from ..composition import migrate
from ..domain.errors import AgentSessionsError, ErrorCode
from ..read_models.engine import ProjectionStatus
from .conventions import json_option, open_existing, resolve_store_url, store_option
from .output import echo, note, print_json
from .progress import progress_bars
from .user_projections import PROJECTION_OPTION, Loaded, register_all, require_known


@click.command("migrate")
@click.option("--dry-run", is_flag=True, help="print what would be done, change nothing")
@json_option
@store_option
@click.pass_context
def migrate_command(
    ctx: click.Context, dry_run: bool, as_json: bool, store_url: str | None
) -> None:
    """Bring the store's schema to this version (see docs/upgrading.md). A store that
    is not there is exit 1: a new one is made at the current version by its first
    write (`import`, `demo`), never by `migrate`."""
    url = resolve_store_url(ctx, store_url)
    _require_store(ctx, store_url)
    with progress_bars() as progress:
        report = migrate(url, dry_run=dry_run, progress=progress)
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    for line in report.lines():
        echo(line)


def _require_store(ctx: click.Context, store_url: str | None) -> None:
    """A missing store is ``not_found``, the one line the read commands print, before
    ``migrate`` is called: it would make the directory of a SQLite file that is not
    there. A store that needs migrating is there; an in-memory one always is."""
    try:
        with open_existing(ctx, store_url):
            pass
    except AgentSessionsError as error:
        if error.code != ErrorCode.MIGRATION_REQUIRED:
            raise


@click.group()
def projections() -> None:
    """Run, rebuild or inspect the read models, built-in and your own."""


def status_dict(found: ProjectionStatus, topic: str | None) -> dict[str, Any]:
    return {
        "name": found.name,
        "topic": topic,
        "loaded": True,
        "position": found.position,
        "head": found.head,
        "lag": found.lag,
        "failure": None if found.failure is None else dataclasses.asdict(found.failure),
        "error": None,
    }


def statuses(loaded: Loaded, engine: Any) -> list[dict[str, Any]]:
    """Every projection's status: the registered ones, then the remembered ones that
    could not be loaded here (their position as stored, and why)."""
    found = [status_dict(engine.status(name), loaded.topics.get(name)) for name in engine.names]
    head = engine.head()
    for name, error in loaded.missing.items():
        position = engine.views.position(name)
        found.append(
            {
                "name": name,
                "topic": loaded.topics[name],
                "loaded": False,
                "position": position,
                "head": head,
                "lag": max(0, head - position),
                "failure": None,
                "error": error.message,
            }
        )
    return found


def status_line(found: dict[str, Any]) -> str:
    text = f"{found['name']:<24} position={found['position']:<10} lag={found['lag']}"
    if found["topic"]:
        text += f"  {found['topic']}"
    if found["failure"] is not None:
        text += f"  FAILED at notification {found['failure']['notification_id']}"
    if not found["loaded"]:
        text += f"  NOT LOADED: {found['error']}"
    return text


@projections.command()
@PROJECTION_OPTION
@json_option
@store_option
@click.pass_context
def status(
    ctx: click.Context, topics: tuple[str, ...], as_json: bool, store_url: str | None
) -> None:
    """Print each projection's position and lag (built-in ones, and yours the store
    remembers)."""
    with open_existing(ctx, store_url) as store:
        loaded = register_all(store, topics)
        found = statuses(loaded, store.projections)
    if as_json:
        print_json({"projections": found})
        return
    for item in found:
        echo(status_line(item))


@projections.command()
@click.argument("name")
@PROJECTION_OPTION
@json_option
@store_option
@click.pass_context
def rebuild(
    ctx: click.Context, name: str, topics: tuple[str, ...], as_json: bool, store_url: str | None
) -> None:
    """Drop a projection's view and replay the whole log into it.

    With --json: {"projection": NAME, "events_applied": N, "status": its status after}.
    """
    with open_existing(ctx, store_url) as store:
        loaded = register_all(store, topics)
        loaded.require([name])
        require_known(name, store.projections.names)
        with progress_bars() as progress:
            applied = store.projections.rebuild(name, progress=progress)
        after = status_dict(store.projections.status(name), loaded.topics.get(name))
    if as_json:
        print_json({"projection": name, "events_applied": applied, "status": after})
        return
    note(f"rebuilt {name}: {applied} events applied")


@projections.command()
@click.argument("name")
@json_option
@store_option
@click.pass_context
def forget(ctx: click.Context, name: str, as_json: bool, store_url: str | None) -> None:
    """Stop loading your projection NAME in later commands (its view stays).

    With --json: {"projection": NAME, "forgotten": whether the store remembered it}.
    """
    with open_existing(ctx, store_url) as store:
        known = store.projections.forget(name)
    if as_json:
        print_json({"projection": name, "forgotten": known})
        return
    note(f"forgot {name}" if known else f"{name} was not remembered: nothing to forget")


@projections.command()
@PROJECTION_OPTION
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True)
@json_option
@store_option
@click.pass_context
def run(
    ctx: click.Context,
    topics: tuple[str, ...],
    batch_size: int,
    as_json: bool,
    store_url: str | None,
) -> None:
    """Follow the log and keep every projection up to date until interrupted (Ctrl-C
    or SIGTERM).

    With --json, once stopped: {"projections": [...]}, each as `projections status
    --json` prints it: where each one stopped.
    """
    with open_existing(ctx, store_url) as store:
        loaded = register_all(store, topics)
        loaded.require()
        engine = store.projections
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        note(f"following {store.url} with {', '.join(engine.names)}")
        try:
            store.run_projections(stop, batch_size=batch_size)
        except KeyboardInterrupt:
            stop.set()
        found = statuses(loaded, engine) if as_json else []
    if as_json:
        print_json({"projections": found})
