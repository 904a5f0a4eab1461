"""What every command shares: which store it opens and how it prints.

``--store URL`` is accepted before the command (for all of them) and after it (for
that one; it wins). Without it: ``$AGENT_SESSIONS_URL``, else the default SQLite file of
``open_store()``. ``--url`` is the older name of the option before the command.

Read commands open the store with ``create=False``: a mistyped URL is exit 1 saying
there is no store there, never a new empty store and an empty answer. Only commands
whose point is to write (``import``, ``demo``) may create one; ``migrate`` refuses a
missing store too (a new store is made at the current version by its first write).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..composition import DEFAULT_URL, Store, default_url, open_store
from ..domain.errors import AgentSessionsError, ErrorCode

F = TypeVar("F", bound=Callable[..., Any])

STORE_HELP = f"store URL (default: $AGENT_SESSIONS_URL, else {DEFAULT_URL})"


def store_option(command: F) -> F:
    return click.option("--store", "store_url", metavar="URL", default=None, help=STORE_HELP)(
        command
    )


def json_option(command: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="print JSON (one document, or JSON Lines)"
    )(command)


def resolve_store_url(ctx: click.Context, url: str | None) -> str:
    """The command's ``--store``, else the one before the command, else the default."""
    if url:
        return url
    root = ctx.find_root().obj
    given = root.get("store_url") if isinstance(root, dict) else None
    return str(given) if given else default_url()


def open_existing(ctx: click.Context, url: str | None) -> Store:
    """The store, which must exist: read commands and writes into an existing one."""
    return open_store(resolve_store_url(ctx, url), create=False)


def open_or_create(ctx: click.Context, url: str | None) -> Store:
    return open_store(resolve_store_url(ctx, url))


def require_run(store: Store, session_id: str, run_id: str) -> None:
    """``--run RUN`` must name a run of the session the command is about."""
    run = store.get_run(run_id)
    if run.session_id != session_id:
        raise AgentSessionsError(
            f"run {run_id} belongs to session {run.session_id}, not {session_id}",
            code=ErrorCode.RUN_MISMATCH,
            details={"field": "run", "run_id": run_id, "session_id": run.session_id},
        )
