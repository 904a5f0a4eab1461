"""``agent-sessions import langgraph DB_URL``: a LangGraph ``SqliteSaver`` or
``PostgresSaver`` database into the store (the work is
``agent_sessions/importers/langgraph.py``), with the conventions of the other imports:
a summary of what was added and what was skipped, ``--json``, ``--store``, exit 1 when
nothing in the source was importable."""

from __future__ import annotations

import click

from ..importers.langgraph import import_langgraph
from .conventions import json_option, open_or_create, store_option


@click.command("langgraph")
@click.argument("db_url", metavar="DB_URL")
@json_option
@store_option
@click.pass_context
def langgraph(ctx: click.Context, db_url: str, as_json: bool, store_url: str | None) -> None:
    """Import the checkpoints of a LangGraph SqliteSaver or PostgresSaver database
    (DB_URL: sqlite:///path, a file path, or postgresql://...): each thread a session,
    each checkpoint and pending write an event. Importing again adds nothing.

    With --json: {"sessions", "runs", "events", "already_present", "skipped": [...]}.
    """
    # Imported here: transfer_commands registers this command, so it imports this module.
    from .transfer_commands import print_report

    with open_or_create(ctx, store_url) as store:
        report = import_langgraph(store, db_url)
    print_report(report, as_json=as_json, source=db_url)
