"""``import adk``: the tables of Google ADK's database session service into the store
(the work is ``agent_sessions/importers/adk.py``)."""

from __future__ import annotations

import click

from ..importers.adk import import_adk
from .conventions import json_option, open_or_create, store_option


@click.command("adk")
@click.argument("db_url", metavar="DB_URL")
@json_option
@store_option
@click.pass_context
def adk(ctx: click.Context, db_url: str, as_json: bool, store_url: str | None) -> None:
    """Import Google ADK sessions from DB_URL, the database of ADK's
    DatabaseSessionService or SqliteSessionService (sqlite:///PATH, a file path, or
    postgresql://...; ADK's async driver names such as sqlite+aiosqlite are accepted).
    Every session with its events, runs (one per invocation) and state, and the app and
    user state; importing again adds nothing.

    With --json: {"sessions", "runs", "events", "already_present", "skipped": [...]}.
    """
    from .transfer_commands import print_report  # it registers this command: imported late

    with open_or_create(ctx, store_url) as store:
        report = import_adk(store, db_url)
    print_report(report, as_json=as_json, source=db_url)
