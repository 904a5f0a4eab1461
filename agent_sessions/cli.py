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

from .application.open_store import default_url, open_store
from .application.store_service import EventSourcedSessionStore
from .domain.errors import AgentSessionsError
from .domain.event import Event
from .domain.event_types import EventType
from .domain.execution_result import ExecutionResult
from .domain.run import Run
from .domain.session import Session

_DEMO_TURNS: list[tuple[EventType, dict[str, Any]]] = [
    (EventType.RUN_STARTED, {}),
    (EventType.MESSAGE_SENT, {"role": "user", "content": "List the files in this repository."}),
    (EventType.TOOL_CALL_STARTED, {"tool_name": "bash", "tool_input": {"command": "ls"}}),
    (EventType.TOOL_CALL_COMPLETED, {"tool_name": "bash", "output": "Makefile\nREADME.md"}),
    (EventType.MESSAGE_RECEIVED, {"role": "assistant", "content": "Two files: Makefile, README."}),
    (EventType.TOKEN_USAGE_UPDATED, {"input_tokens": 412, "output_tokens": 57}),
    (EventType.RUN_COMPLETED, {"stop_reason": "end_turn"}),
]


def _demo(store: EventSourcedSessionStore) -> Session:
    """A scripted agent loop: start a session, stream a run's events, finalize with flush."""
    session = Session.new(agent_id="demo-agent", metadata={"provider": "scripted"}, tags=["demo"])
    store.save_session(session)
    store.append_event(Event.new(type=EventType.SESSION_CREATED, session_id=session.id))
    session = session.with_status("active")
    store.save_session(session)

    run = Run.new(session_id=session.id, input={"prompt": "List the files in this repository."})
    run = run.with_status("running")
    store.save_run(run)
    for event_type, data in _DEMO_TURNS[:-1]:
        store.append_event_with_sequence(
            Event.new(type=event_type, session_id=session.id, run_id=run.id, data=data)
        )
    run = (
        run.increment_turn()
        .add_token_usage({"input_tokens": 412, "output_tokens": 57, "total_tokens": 469})
        .with_provider("scripted", {"model": "scripted-1"})
        .set_output({"content": "Two files: Makefile, README."})
    )
    final_type, final_data = _DEMO_TURNS[-1]
    store.flush(
        ExecutionResult(
            session=session.with_status("completed"),
            run=run,
            events=[
                Event.new(type=final_type, session_id=session.id, run_id=run.id, data=final_data)
            ],
        )
    )
    return store.get_session(session.id)


def _print_session(store: EventSourcedSessionStore, session_id: str) -> None:
    session = store.get_session(session_id)
    print(f"session {session.id}  agent={session.agent_id}  status={session.status}")
    for run in store.list_runs(session.id):
        print(
            f"  run {run.id}  status={run.status}  turns={run.turn_count}  "
            f"tokens={run.token_usage.get('total_tokens', 0)}  provider={run.provider}"
        )
    for event in store.get_events(session.id):
        scope = "run" if event.run_id else "session"
        data = json.dumps(event.data, ensure_ascii=False)
        if len(data) > 60:
            data = data[:57] + "..."
        print(f"  #{event.sequence_number:<3} {event.type:<22} [{scope}] {data}")


def _projections(store: EventSourcedSessionStore, args: argparse.Namespace) -> None:
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
    print(f"\r{name:<16} [{bar:<30}] {position}/{head}", end="", file=sys.stderr, flush=True)


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
        with open_store(args.url) as store:
            if args.command == "demo":
                print(f"store: {store.url}")
                session = _demo(store)
                _print_session(store, session.id)
                print(f"{len(store.list_sessions())} session(s) in the store")
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
