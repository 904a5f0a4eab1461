"""The ``agent-sessions`` command line.

Built on ``argparse`` from the standard library: the commands are few and take plain
arguments, and it keeps the core install down to one dependency (``eventsourcing``).
Nothing in the package imports this module.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.utils import resolve_topic

from .composition import Store, default_url, migrate, open_store
from .domain.errors import AgentSessionsError
from .domain.event_redactor import RedactionConfig
from .domain.session import Session
from .services.event_buffer import EventBuffering
from .services.providers import ScriptedProvider
from .services.session_manager import SessionManager

_DEMO_SCRIPT: list[dict[str, Any]] = [
    {"type": "run_started", "data": {"model": "claude-sonnet-4-20250514"}},
    {"type": "tool_call_started", "data": {"tool_name": "bash", "tool_input": {"cmd": "ls"}}},
    {
        "type": "tool_call_completed",
        "data": {
            "tool_name": "bash",
            "tool_output": "AWS_KEY=AKIAIOSFODNN7EXAMPLE",
        },
    },
    {"type": "message_received", "data": {"role": "assistant", "content": "Two files."}},
    {"type": "token_usage_updated", "data": {"input_tokens": 412, "output_tokens": 57}},
    {"type": "run_completed", "data": {"stop_reason": "end_turn"}},
]


def _demo(store: Store) -> Session:
    """A scripted agent loop through the SessionManager: session, run, streamed events
    (buffered, redacted), one final flush."""
    manager = SessionManager(
        store,
        ScriptedProvider(_DEMO_SCRIPT, name="claude"),
        redaction=RedactionConfig(),
        buffering=EventBuffering(max_events=4),
    )
    session = manager.start_session("demo-agent", tags=["demo"])
    manager.activate_session(session.id)
    run = manager.start_run(session.id, {"prompt": "List the files in this repository."})
    manager.execute_run(run.id)
    return manager.complete_session(session.id)


def _print_session(store: Store, session_id: str) -> None:
    session = store.get_session(session_id)
    print(f"session {session.id}  agent={session.agent_id}  status={session.status}")
    for run in store.list_runs(session.id):
        print(
            f"  run {run.id}  status={run.status}  provider={run.provider}  "
            f"tokens in/out={run.token_usage.get('input_tokens', 0)}/"
            f"{run.token_usage.get('output_tokens', 0)}  cost_usd={run.cost_usd}"
        )
    for event in store.get_events(session.id):
        scope = "run" if event.run_id else "session"
        data = json.dumps(event.data, ensure_ascii=False)
        if len(data) > 72:
            data = data[:69] + "..."
        print(f"  #{event.sequence_number:<3} {event.type:<22} [{scope}] {data}")


def _projections(store: Store, args: argparse.Namespace) -> None:
    engine = store.projections
    for topic in args.projection:
        engine.register(resolve_topic(topic)())
    if args.projection_command == "status":
        for name in engine.names:
            status = engine.status(name)
            print(f"{name:<24} position={status.position:<10} lag={status.lag}")
    elif args.projection_command == "rebuild":
        applied = engine.rebuild(args.name, progress=_progress_bar)
        print(f"\nrebuilt {args.name}: {applied} events applied", file=sys.stderr)
    else:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print(f"following {store.url} with {', '.join(engine.names)}", file=sys.stderr)
        try:
            store.run_projections(stop, batch_size=args.batch_size)
        except KeyboardInterrupt:
            stop.set()


def _progress_bar(name: str, position: int, head: int) -> None:
    done = position / head if head else 1.0
    bar = "#" * int(done * 30)
    end = "\n" if position >= head else ""  # the finished bar keeps its line
    print(f"\r{name:<16} [{bar:<30}] {position}/{head}", end=end, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agent-sessions", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default=None, help=f"store URL (default: $AGENT_SESSIONS_URL or {default_url()})"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="record a scripted agent session and print it back")
    show = commands.add_parser("show", help="print a session, its runs and its events")
    show.add_argument("session_id")
    commands.add_parser("sessions", help="list the stored sessions")
    migrate_command = commands.add_parser(
        "migrate", help="bring the store's schema to this version (see docs/upgrading.md)"
    )
    migrate_command.add_argument(
        "--dry-run", action="store_true", help="print what would be done, change nothing"
    )
    migrate_command.add_argument("--store", dest="store_url", default=None, help="store URL")
    projections = commands.add_parser("projections", help="run, rebuild or inspect read models")
    projection_commands = projections.add_subparsers(dest="projection_command", required=True)
    for name, text in (
        ("run", "follow the log and keep every projection up to date until interrupted"),
        ("status", "print each projection's position and lag"),
        ("rebuild", "drop a projection's view and replay the whole log into it"),
    ):
        sub = projection_commands.add_parser(name, help=text)
        sub.add_argument(
            "--projection",
            action="append",
            default=[],
            metavar="MODULE:CLASS",
            help="also register this Projection subclass (repeatable)",
        )
        if name == "rebuild":
            sub.add_argument("name")
        if name == "run":
            sub.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)

    try:
        if args.command == "migrate":
            report = migrate(
                args.store_url or args.url, dry_run=args.dry_run, progress=_progress_bar
            )
            for line in report.lines():
                print(line)
            return 0
        with open_store(args.url) as store:
            if args.command == "demo":
                print(f"store: {store.url}")
                session = _demo(store)
                _print_session(store, session.id)
                stats = store.query().get_session_stats(session.id)
                usage = store.query().get_usage_summary()
                print(
                    f"query: this session has {stats.event_count} events and "
                    f"{stats.run_count} run; the store holds {usage.run_count} run(s) with "
                    f"{usage.total_input_tokens} input tokens in all"
                )
            elif args.command == "show":
                _print_session(store, args.session_id)
            elif args.command == "projections":
                _projections(store, args)
            elif args.command == "sessions":
                for session in store.list_sessions():
                    print(
                        f"{session.id}  {session.agent_id:<16} {session.status:<10} "
                        f"{session.created_at.isoformat()}"
                    )
    except AgentSessionsError as error:
        print(f"agent-sessions: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
