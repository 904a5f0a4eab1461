"""``import claude-code``, ``import jsonl`` and ``export``: history into a store and out
of it (the work is in ``agent_sessions/importers/``).

An import prints what it added and what it skipped (by file and line); a line it cannot
use never stops it. Exit 0 when the input held anything importable, even with skipped
lines (the summary lists them; ``--json`` has them all); exit 1 when nothing in it was
importable (no transcript found, or no run or event in it that could be read), since
that is almost always a wrong path or format. Imports write, so they create the store
when there is none (like ``demo``); ``export`` reads, and never creates one. A path may
start with ``~`` even where the shell left it unexpanded (quoted).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click
from click.exceptions import Exit

from ..domain.errors import ValidationError
from ..importers.claude_code import import_claude_code
from ..importers.jsonl import export_jsonl, import_jsonl
from ..importers.report import ImportReport
from .arguments import UserPath, pricing_option, pricing_table
from .conventions import json_option, open_existing, open_or_create, store_option
from .failures import USER_ERROR
from .import_adk import adk as import_adk_command
from .import_langgraph import langgraph as import_langgraph_command
from .import_openai_agents import openai_agents as import_openai_agents_command
from .output import echo, note, print_json
from .progress import byte_progress


def print_report(report: ImportReport, *, as_json: bool, source: str) -> None:
    """The summary on stdout; exit 1 (after it) when nothing was importable."""
    if as_json:
        print_json(report.to_dict())
    else:
        for text in report.lines():
            echo(text)
    # A session record without a run or an event is not history; history already
    # stored is.
    if not (report.runs or report.events or report.already_present):
        note(f"agent-sessions: nothing importable in {source} (check the path and the format)")
        raise Exit(USER_ERROR)


@click.group("import")
def import_group() -> None:
    """Import history into the store (created if there is none)."""


@import_group.command("claude-code")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=UserPath(exists=True, path_type=Path),
    metavar="PATH...",
)
@pricing_option(
    "price the imported runs with this JSON pricing table (the shape of `cost --pricing`; "
    "default: the built-in one)"
)
@json_option
@store_option
@click.pass_context
def claude_code(
    ctx: click.Context,
    paths: tuple[Path, ...],
    pricing: Path | None,
    as_json: bool,
    store_url: str | None,
) -> None:
    """Import Claude Code transcripts: .jsonl files, project folders, a session's
    folder (its sub-agents), or all of ~/.claude/projects. Sub-agent transcripts
    become child sessions; importing a file again adds nothing (with another
    --pricing, it reprices the runs).

    With --json: {"sessions", "runs", "events", "already_present", "skipped": [...]}.
    """
    table = pricing_table(pricing)
    with open_or_create(ctx, store_url) as store, byte_progress("claude-code") as progress:
        report = import_claude_code(store, list(paths), progress=progress, pricing=table)
    print_report(report, as_json=as_json, source=", ".join(str(path) for path in paths))


@contextmanager
def _reading(path: str) -> Iterator[TextIO]:
    """The file, or standard input for ``-``, as UTF-8 text; bytes that are not UTF-8
    become lone surrogates, which the import reports on their line (never a crash
    half-way, never a silent replacement)."""
    if path == "-":
        yield io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
        return
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as source:
        yield source


@import_group.command("jsonl")
@click.argument("path", metavar="FILE", type=UserPath(exists=True, dir_okay=False, allow_dash=True))
@json_option
@store_option
@click.pass_context
def jsonl(ctx: click.Context, path: str, as_json: bool, store_url: str | None) -> None:
    """Import what `agent-sessions export` wrote (FILE, or - for standard input):
    sessions, runs, events and artifact metadata, as they were."""
    name = "<stdin>" if path == "-" else path
    with open_or_create(ctx, store_url) as store, _reading(path) as source:
        report = import_jsonl(store, source, path=name)
    print_report(report, as_json=as_json, source=name)


@contextmanager
def _writing(path: str | None) -> Iterator[TextIO]:
    """Standard output, or a file that appears whole or not at all: written beside
    its place under another name and renamed when complete."""
    if path is None or path == "-":
        yield sys.stdout
        return
    target = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise ValidationError(
            f"cannot write {path}: {exc.strerror or exc}", details={"field": "output"}
        ) from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            yield out
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@click.command()
@click.argument("session_ids", nargs=-1, metavar="[SESSION]...")
@click.option("--all", "everything", is_flag=True, help="every session of the store")
@click.option(
    "-o",
    "--output",
    default=None,
    metavar="FILE",
    type=UserPath(dir_okay=False, writable=True),
    help="write here (default: standard output)",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="accepted for symmetry: the output is JSON Lines with or without it",
)
@store_option
@click.pass_context
def export(
    ctx: click.Context,
    session_ids: tuple[str, ...],
    everything: bool,
    output: str | None,
    as_json: bool,
    store_url: str | None,
) -> None:
    """Write sessions (their runs, events and artifact metadata) as JSON Lines, for
    `agent-sessions import jsonl` into this store or another; exporting what was
    imported gives the same bytes. The format is the data, so --json changes
    nothing."""
    if everything == bool(session_ids):
        raise click.UsageError("name the sessions to export, or pass --all (not both)")
    with open_existing(ctx, store_url) as store, _writing(output) as out:
        written = export_jsonl(store, out, None if everything else list(session_ids))
    note(f"exported {written:,} line(s)" + ("" if output in (None, "-") else f" to {output}"))


import_group.add_command(import_openai_agents_command)
import_group.add_command(import_adk_command)
import_group.add_command(import_langgraph_command)
