"""``migrate`` and ``projections``: keeping a store's schema and read models current."""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
from pathlib import Path

import click
from eventsourcing.utils import resolve_topic

from ..composition import Store, migrate
from ..domain.errors import ValidationError
from ..read_models.projection import Projection
from .conventions import json_option, open_existing, resolve_store_url, store_option
from .output import echo, note, print_json
from .progress import progress_bars


@click.command("migrate")
@click.option("--dry-run", is_flag=True, help="print what would be done, change nothing")
@json_option
@store_option
@click.pass_context
def migrate_command(
    ctx: click.Context, dry_run: bool, as_json: bool, store_url: str | None
) -> None:
    """Bring the store's schema to this version (see docs/upgrading.md)."""
    url = resolve_store_url(ctx, store_url)
    with progress_bars() as progress:
        report = migrate(url, dry_run=dry_run, progress=progress)
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    for line in report.lines():
        echo(line)


def _load(topic: str) -> Projection:
    """``module:Class`` to an instance; the working directory is importable, as it is
    for ``python -m``, so a projection next to the user's code is found."""
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        projection = resolve_topic(topic)()
    except Exception as exc:
        raise ValidationError(
            f"cannot load projection {topic!r}: {type(exc).__name__}: {exc} "
            "(expected module:Class, the module importable from here)",
            details={"field": "projection", "value": topic},
        ) from exc
    if not isinstance(projection, Projection):
        raise ValidationError(
            f"{topic} is not a Projection subclass",
            details={"field": "projection", "value": topic},
        )
    return projection


_PROJECTION_OPTION = click.option(
    "--projection",
    "topics",
    multiple=True,
    metavar="MODULE:CLASS",
    help="also register this Projection subclass (repeatable)",
)


def _registered(store: Store, topics: tuple[str, ...]) -> Store:
    for topic in topics:
        store.projections.register(_load(topic))
    return store


@click.group()
def projections() -> None:
    """Run, rebuild or inspect the read models."""


@projections.command()
@_PROJECTION_OPTION
@json_option
@store_option
@click.pass_context
def status(
    ctx: click.Context, topics: tuple[str, ...], as_json: bool, store_url: str | None
) -> None:
    """Print each projection's position and lag."""
    with open_existing(ctx, store_url) as store:
        engine = _registered(store, topics).projections
        found = [engine.status(name) for name in engine.names]
    if as_json:
        print_json(
            {
                "projections": [
                    {
                        "name": s.name,
                        "position": s.position,
                        "head": s.head,
                        "lag": s.lag,
                        "failure": None if s.failure is None else dataclasses.asdict(s.failure),
                    }
                    for s in found
                ]
            }
        )
        return
    for s in found:
        failed = "" if s.failure is None else f"  FAILED at notification {s.failure.position}"
        echo(f"{s.name:<24} position={s.position:<10} lag={s.lag}{failed}")


@projections.command()
@click.argument("name")
@_PROJECTION_OPTION
@store_option
@click.pass_context
def rebuild(ctx: click.Context, name: str, topics: tuple[str, ...], store_url: str | None) -> None:
    """Drop a projection's view and replay the whole log into it."""
    with open_existing(ctx, store_url) as store, progress_bars() as progress:
        applied = _registered(store, topics).projections.rebuild(name, progress=progress)
    note(f"rebuilt {name}: {applied} events applied")


@projections.command()
@_PROJECTION_OPTION
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True)
@store_option
@click.pass_context
def run(
    ctx: click.Context, topics: tuple[str, ...], batch_size: int, store_url: str | None
) -> None:
    """Follow the log and keep every projection up to date until interrupted."""
    with open_existing(ctx, store_url) as store:
        engine = _registered(store, topics).projections
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        note(f"following {store.url} with {', '.join(engine.names)}")
        try:
            store.run_projections(stop, batch_size=batch_size)
        except KeyboardInterrupt:
            stop.set()
