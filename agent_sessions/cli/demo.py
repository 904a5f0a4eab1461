"""``demo``: real agent history in a store, and the commands that look at it.

It imports Claude Code transcripts (``--data DIR``; without it, a small transcript the
project writes itself, ``importers/sample_transcript.py``), then prints what four
commands print, each under the command line that prints it: the session list, the
stats and cost of the costliest session, and a replay around that session's costliest
tool call (``costly_call.py`` says how a tool call's cost is counted). Importing is
idempotent, so running it twice on one store shows the same.

``--scripted`` records a scripted agent loop through the ``SessionManager`` instead
(the buffered, redacted path a live agent takes) and prints it back.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ..composition import Store
from ..domain.event_redactor import RedactionConfig
from ..domain.session import Session
from ..importers.claude_code import import_claude_code
from ..importers.report import ImportReport
from ..importers.sample_transcript import write_sample_transcript
from ..services.event_buffer import EventBuffering
from ..services.providers import ScriptedProvider
from ..services.session_manager import SessionManager
from .conventions import json_option, open_or_create, store_option
from .costly_call import CostlyCall, costliest_tool_call
from .event_summary import money
from .output import console, note, plain, print_all, print_json
from .progress import byte_progress
from .records_view import session_lines
from .session_commands import print_session, stats_lines
from .snapshot_view import only_run, render_snapshot
from .transfer_commands import print_report
from .usage_commands import cost_table
from .view_parts import RunLabels

#: Sessions the demo lists, and considers for its replay.
LISTED = 50
#: Events shown on each side of the costly tool call's result: at least, at most.
WINDOW = 4
MAX_WINDOW = 12

#: A short run of two turns: a tool call that reads a secret (the redactor must catch
#: it), one that fails, usage with cache tokens after each turn, an answer.
DEMO_SCRIPT: list[dict[str, Any]] = [
    {"type": "run_started", "data": {"model": "claude-sonnet-4-20250514"}},
    {"type": "message_received", "data": {"role": "assistant", "content": "Listing them."}},
    {
        "type": "tool_call_started",
        "data": {"tool_name": "bash", "tool_call_id": "toolu_01", "tool_input": {"cmd": "ls"}},
    },
    {
        "type": "tool_call_completed",
        "data": {
            "tool_name": "bash",
            "tool_call_id": "toolu_01",
            "tool_output": "README.md  setup.env  AWS_KEY=AKIAIOSFODNN7EXAMPLE",
        },
    },
    {
        "type": "token_usage_updated",
        "data": {
            "input_tokens": 412,
            "output_tokens": 57,
            "cache_read_tokens": 2048,
            "cache_creation_tokens": 512,
        },
    },
    {
        "type": "tool_call_started",
        "data": {
            "tool_name": "read_file",
            "tool_call_id": "toolu_02",
            "tool_input": {"path": "setup.env"},
        },
    },
    {
        "type": "tool_call_failed",
        "data": {
            "tool_name": "read_file",
            "tool_call_id": "toolu_02",
            "error": "permission denied: setup.env",
        },
    },
    {
        "type": "token_usage_updated",
        "data": {"input_tokens": 380, "output_tokens": 41, "cache_read_tokens": 2560},
    },
    {
        "type": "message_received",
        "data": {"role": "assistant", "content": "Two files; setup.env is not readable."},
    },
    {"type": "run_completed", "data": {"stop_reason": "end_turn"}},
]


def record_demo(store: Store) -> Session:
    """A scripted agent loop through the SessionManager: session, run, streamed events
    (buffered, redacted), one final flush."""
    manager = SessionManager(
        store,
        ScriptedProvider(DEMO_SCRIPT, name="claude"),
        redaction=RedactionConfig(),
        buffering=EventBuffering(max_events=4),
    )
    session = manager.start_session("demo-agent", tags=["demo"])
    manager.activate_session(session.id)
    run = manager.start_run(session.id, {"prompt": "List the files in this repository."})
    manager.execute_run(run.id)
    return manager.complete_session(session.id)


def _costliest(store: Store, sessions: list[Session]) -> tuple[Session, CostlyCall | None]:
    """The costliest session with a priced tool call (else the costliest session)."""
    query = store.query()
    by_cost = sorted(
        sessions,
        key=lambda s: -query.get_cost_summary(session_id=s.id).total_cost_usd,
    )
    for session in by_cost:
        call = costliest_tool_call(store.get_events(session.id), store.list_runs(session.id))
        if call is not None:
            return session, call
    return by_cost[0], None


def _command(out: Console, text: str) -> None:
    out.print()
    out.print(
        f"$ agent-sessions {text}", style="bold", highlight=False, markup=False, soft_wrap=True
    )


def _show_store(store: Store, where: str, *, as_json: bool, report: ImportReport) -> None:
    query = store.query()
    page = query.search_sessions(order_by="created_at_asc", limit=LISTED)
    if not page.sessions:
        return
    session, call = _costliest(store, page.sessions)
    stats = query.get_session_stats(session.id)
    cost = query.get_cost_summary(session_id=session.id)
    snapshot = None
    latest = store.get_latest_sequence(session.id)
    at = window = 0
    if call is not None:
        # At the result, wide enough to show the call and the usage of the model call
        # that read it, within bounds.
        at = call.ended.sequence_number or 0
        start, usage = call.started.sequence_number or 0, call.usage.sequence_number or 0
        window = min(MAX_WINDOW, max(WINDOW, at - start, usage - at))
        history = store.history(session.id)
        snapshot = only_run(history.at(at, window=window), call.started.run_id or "")
    if as_json:
        print_json(
            {
                "import": report.to_dict(),
                "sessions": [s.to_dict() for s in page.sessions],
                "session": session.id,
                "stats": plain(stats),
                "cost": plain(cost),
                "tool_call": None
                if call is None
                else {
                    "event": call.started.to_dict(),
                    "result_event": call.ended.to_dict(),
                    "usage_event": call.usage.to_dict(),
                    "tokens": call.tokens,
                    "cost_usd": call.cost_usd,
                    "read_with": call.shared - 1,
                },
                "replay": None if snapshot is None else snapshot.to_dict(),
            }
        )
        return
    out = console()
    _command(out, f"sessions --order oldest{where}")
    print_all(out, session_lines(page.sessions))
    _command(out, f"stats {session.id}{where}")
    print_all(out, [*stats_lines(stats, store.list_runs(session.id)), cost_table(cost)])
    if call is None or snapshot is None:
        note("no tool call in this session was followed by a usage report: nothing to replay")
        return
    together = f", with {call.shared - 1} other result(s)," if call.shared > 1 else ""
    note(
        f"its costliest tool call: #{call.started.sequence_number} {call.tool_name}, whose "
        f"result (#{at}) the model call of #{call.usage.sequence_number} read{together} as "
        f"{call.tokens:,} new tokens of context ({money(call.cost_usd)})"
    )
    run = call.started.run_id
    _command(out, f"replay {session.id} --at {at} --run {run} --window {window}{where}")
    labels = RunLabels(snapshot.runs)
    print_all(out, render_snapshot(snapshot, latest=latest, whole_log=False, labels=labels))


@click.command()
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    metavar="DIR",
    help="import the Claude Code transcripts here (default: a small generated one)",
)
@click.option(
    "--scripted", is_flag=True, help="record a scripted agent session instead, and print it"
)
@json_option
@store_option
@click.pass_context
def demo(
    ctx: click.Context, data: Path | None, scripted: bool, as_json: bool, store_url: str | None
) -> None:
    """Import agent transcripts (creating the store if needed), then print the session
    list, the costliest session's stats and cost, and a replay around its costliest
    tool call, each under the command that prints it."""
    where = "" if store_url is None else f" --store {shlex.quote(store_url)}"
    with open_or_create(ctx, store_url) as store:
        note(f"store: {store.url}")
        if scripted:
            session = record_demo(store)
            print_session(store, session.id, as_json=as_json)
            if not as_json:
                note(f"replay it: agent-sessions replay {session.id} --at 9{where}")
            return
        with tempfile.TemporaryDirectory(prefix="agent-sessions-demo-") as scratch:
            if data is None:
                source = Path(scratch)
                write_sample_transcript(source)
            else:
                source = data
            note(f"importing {source}")
            with byte_progress("import") as progress:
                report = import_claude_code(store, [source], progress=progress)
        if not as_json:
            _command(console(), f"import claude-code {shlex.quote(str(source))}{where}")
            print_report(report, as_json=False, source=str(source))
        _show_store(store, where, as_json=as_json, report=report)
