"""``demo``: a scripted agent session recorded through the ``SessionManager`` (the
buffered, redacted path a real agent loop takes), then printed back."""

from __future__ import annotations

import shlex
from typing import Any

import click

from ..composition import Store
from ..domain.event_redactor import RedactionConfig
from ..domain.session import Session
from ..services.event_buffer import EventBuffering
from ..services.providers import ScriptedProvider
from ..services.session_manager import SessionManager
from .conventions import json_option, open_or_create, store_option
from .output import note
from .session_commands import print_session

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


@click.command()
@json_option
@store_option
@click.pass_context
def demo(ctx: click.Context, as_json: bool, store_url: str | None) -> None:
    """Record a scripted agent session (creating the store if needed) and print it."""
    with open_or_create(ctx, store_url) as store:
        note(f"store: {store.url}")
        session = record_demo(store)
        print_session(store, session.id, as_json=as_json)
        if as_json:
            return
        stats = store.query().get_session_stats(session.id)
        usage = store.query().get_usage_summary()
        note(
            f"query: this session has {stats.event_count} events and {stats.run_count} "
            f"run; the store holds {usage.run_count} run(s) with "
            f"{usage.total_input_tokens} input tokens in all"
        )
        where = "" if store_url is None else f" --store {shlex.quote(store_url)}"
        note(f"replay it: agent-sessions replay {session.id} --at 9{where}")
