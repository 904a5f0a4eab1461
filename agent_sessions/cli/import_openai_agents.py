"""``import openai-agents``: the OpenAI Agents SDK's session tables (``SQLiteSession``,
``SQLAlchemySession``) into the store (``agent_sessions/importers/openai_agents.py``).

Same conventions as the other imports: a summary of what was added and skipped (by
table and row id), ``--json`` for all of it, exit 1 when nothing was importable, and
the store created when there is none.
"""

from __future__ import annotations

import click

from ..importers.openai_agents import MESSAGES_TABLE, SESSIONS_TABLE, import_openai_agents
from .conventions import json_option, open_or_create, store_option


@click.command("openai-agents")
@click.argument("source", metavar="PATH_OR_URL")
@click.option(
    "--sessions-table",
    default=SESSIONS_TABLE,
    show_default=True,
    help="the SDK's sessions_table option",
)
@click.option(
    "--messages-table",
    default=MESSAGES_TABLE,
    show_default=True,
    help="the SDK's messages_table option",
)
@json_option
@store_option
@click.pass_context
def openai_agents(
    ctx: click.Context,
    source: str,
    sessions_table: str,
    messages_table: str,
    as_json: bool,
    store_url: str | None,
) -> None:
    """Import OpenAI Agents SDK sessions: a SQLiteSession file (a path or sqlite:///
    URL) or a SQLAlchemySession database (sqlite:/// or postgresql:// URL, driver
    suffixes such as +aiosqlite or +asyncpg accepted). Each SDK session becomes the
    session of the same id, each item one event; importing again adds nothing.

    With --json: {"sessions", "runs", "events", "already_present", "skipped": [...]}.
    """
    from .transfer_commands import print_report  # it registers this command: imported late

    with open_or_create(ctx, store_url) as store:
        report = import_openai_agents(
            store, source, sessions_table=sessions_table, messages_table=messages_table
        )
    print_report(report, as_json=as_json, source=source)
