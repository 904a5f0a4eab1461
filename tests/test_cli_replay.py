"""``agent-sessions replay`` and ``fork`` (issue 12), through click's test runner on
SQLite and PostgreSQL: what the printed snapshot shows at a point, that ``--json`` is
the API's snapshot, that ``--steps`` walks the log step by step, and that a fork
is a child session holding the events up to the point.

The session under test has what a debugging session looks for: a tool call paired
with its result, one left open, a pending approval, an error, usage with cache
tokens (priced from the pricing table while the run runs, recorded when it ends), a
flush that completes the run with its last events, a second run reusing a tool call
id, and a pruned range. Events are a second apart from ``T0``, so ``--until`` can name
a point by time.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rich.console import Console

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    ExecutionResult,
    Run,
    Session,
    open_store,
)
from agent_sessions.cli import cli
from agent_sessions.cli.output import print_all, printable, to_json
from agent_sessions.cli.snapshot_view import render_snapshot
from agent_sessions.cli.step_view import step_block
from agent_sessions.cli.view_parts import RunLabels
from agent_sessions.domain.replay import HistoryFold

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
V0_1_0_STORE = Path(__file__).parent / "fixtures" / "v0_1_0" / "store.db"
MODEL = "claude-sonnet-4-20250514"


@pytest.fixture
def url(durable_url: str) -> str:
    """The store the commands open anew each time (``conftest.durable_url``)."""
    return durable_url


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """The command line as a user runs it (exit codes and messages included), its
    stdout not a terminal and no ``COLUMNS``: what a pipe sees."""
    runner = CliRunner()
    no_width: dict[str, str | None] = {"COLUMNS": None}
    return runner.invoke(cli, list(args), env={**no_width, **(env or {})})


@dataclass(frozen=True)
class Debugged:
    session: str
    run1: str
    run2: str


def _event(session: Session, run: Run | None, n: int, kind: EventType, **data: Any) -> Event:
    return Event.new(
        type=kind,
        session_id=session.id,
        run_id=None if run is None else run.id,
        data=data,
        timestamp=T0 + timedelta(seconds=n),
        provider="claude",
    )


def record_debugged(url: str) -> Debugged:
    """Events 1-14; 10 and 11 pruned. Run 1 completes with the flush of 8-9."""
    with open_store(url) as store:
        session = Session.new(agent_id="debugger", tags=["cli"]).with_status("active")
        store.save_session(session)
        run1 = Run.new(session_id=session.id, input={"prompt": "fix the bug"})
        run1 = run1.with_status("running")
        store.save_run(run1)
        store.append_events(
            [
                _event(session, run1, 1, EventType.MESSAGE_SENT, role="user", content="fix it"),
                _event(
                    session,
                    run1,
                    2,
                    EventType.TOOL_CALL_STARTED,
                    tool_name="bash",
                    tool_call_id="call_1",
                    tool_input={"cmd": "pytest"},
                ),
                _event(
                    session,
                    run1,
                    3,
                    EventType.TOOL_CALL_COMPLETED,
                    tool_name="bash",
                    tool_call_id="call_1",
                    tool_output="1 failed, 41 passed",
                ),
                _event(
                    session,
                    run1,
                    4,
                    EventType.TOKEN_USAGE_UPDATED,
                    model=MODEL,
                    input_tokens=1000,
                    output_tokens=200,
                    cache_read_tokens=5000,
                    cache_creation_tokens=300,
                ),
                _event(
                    session,
                    run1,
                    5,
                    EventType.TOOL_CALL_STARTED,
                    tool_name="edit",
                    tool_call_id="call_2",
                    tool_input={"path": "app.py"},
                ),
                _event(session, run1, 6, EventType.TOOL_APPROVAL_REQUESTED, tool_name="rm_rf"),
                _event(session, run1, 7, EventType.ERROR_OCCURRED, error="disk quota exceeded"),
            ]
        )
        done = run1.set_output({"content": "Fixed."}).with_status("completed")
        done = done.replace(
            token_usage={
                "input_tokens": 1000,
                "output_tokens": 200,
                "cache_read_tokens": 5000,
                "cache_creation_tokens": 300,
            },
            cost_usd=0.0123,
            provider="claude",
        )
        store.flush(
            ExecutionResult(
                session=store.get_session(session.id),
                run=done,
                events=[
                    _event(
                        session,
                        run1,
                        8,
                        EventType.MESSAGE_RECEIVED,
                        role="assistant",
                        content="Fixed.",
                    ),
                    _event(session, run1, 9, EventType.RUN_COMPLETED),
                ],
            )
        )
        run2 = Run.new(session_id=session.id, input={"prompt": "again"}).with_status("running")
        store.save_run(run2)
        store.append_events(
            [
                _event(session, run2, n, EventType.MESSAGE_STREAMED, delta=f"chunk {n}")
                for n in (10, 11, 12)
            ]
            + [
                _event(
                    session,
                    run2,
                    13,
                    EventType.TOOL_CALL_STARTED,
                    tool_name="bash",
                    tool_call_id="call_1",
                ),
                _event(
                    session,
                    run2,
                    14,
                    EventType.TOOL_CALL_FAILED,
                    tool_name="bash",
                    tool_call_id="call_1",
                    error="timed out after 30 s",
                ),
            ]
        )
        store.prune_events(session.id, [10, 11])
        return Debugged(session.id, run1.id, run2.id)


@pytest.fixture
def debugged(url: str) -> Debugged:
    return record_debugged(url)


def _history_json(url: str, session_id: str, at: int, **options: Any) -> Any:
    with open_store(url) as store:
        snapshot = store.history(session_id).at(at, **options)
        return json.loads(json.dumps(snapshot.to_dict()))


# -- one point --------------------------------------------------------------------------


def test_replay_at_a_point_shows_what_was_open_and_what_it_cost(
    url: str, debugged: Debugged
) -> None:
    result = invoke("replay", debugged.session, "--at", "7", "--store", url)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"session {debugged.session}  at #7 of 14" in out
    assert "status active" in out
    assert f"R1  {debugged.run1} running" in out  # completed only at #9, with its flush
    # the timeline: #2-#12 around #7 (window 5), the point marked, pairs linked
    assert "\u25b6 " in out
    assert "error_occurred" in out
    assert "[\u2192#3 completed" in out  # the start of call_1 points to its result
    assert "[\u2190#2" in out  # and the result back to its start
    assert "\u2026 events 10\u201311 pruned" in out  # the hole after the point
    # usage so far: cache tokens counted, priced from the table (no cost recorded yet)
    assert "5,000" in out
    assert "300" in out
    assert "~$" in out
    # what was unfinished and what went wrong
    assert "Open tool calls  1" in out
    assert "#5 edit (call_2) in R1" in out
    assert "Pending approvals  1" in out
    assert "rm_rf" in out
    assert "Errors so far  1" in out
    assert "disk quota exceeded" in out
    assert result.stderr == ""


def test_replay_at_the_end_shows_recorded_cost_gaps_and_the_second_run(
    url: str, debugged: Debugged
) -> None:
    result = invoke("--store", url, "replay", debugged.session)  # --store before the command
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "at #14 of 14" in out
    assert f"R1  {debugged.run1} completed" in out
    assert f"R2  {debugged.run2} running" in out
    assert "$0.012300" in out  # the run's recorded cost, not an estimate
    assert "Pruned  1" in out
    assert "events 10\u201311 pruned" in out
    # call_1 again, in run 2: paired with run 2's failure, not run 1's old result
    assert "#13 bash (call_1) R2 failed at #14" in out
    assert "Errors so far  2" in out
    assert "timed out after 30 s" in out


def test_replay_json_is_the_snapshot_of_the_api(url: str, debugged: Debugged) -> None:
    for args, at, window in ((["--at", "7"], 7, 5), (["--at", "12", "--window", "1"], 12, 1)):
        result = invoke("replay", debugged.session, *args, "--json", "--store", url)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == _history_json(url, debugged.session, at, window=window)


def test_replay_until_a_time_is_the_last_event_before_it(url: str, debugged: Debugged) -> None:
    moment = (T0 + timedelta(seconds=6, milliseconds=500)).isoformat()
    result = invoke("replay", debugged.session, "--until", moment, "--json", "--store", url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sequence"] == 6
    naive = (T0 + timedelta(seconds=3)).replace(tzinfo=None).isoformat()  # read as UTC
    result = invoke("replay", debugged.session, "--until", naive, "--json", "--store", url)
    assert json.loads(result.stdout)["sequence"] == 3


def test_replay_of_one_run_shows_only_its_events_and_usage(url: str, debugged: Debugged) -> None:
    result = invoke("replay", debugged.session, "--run", debugged.run2, "--json", "--store", url)
    assert result.exit_code == 0, result.output
    snapshot = json.loads(result.stdout)
    assert {event["run_id"] for event in snapshot["events"]} == {debugged.run2}
    assert [run["id"] for run in snapshot["runs"]] == [debugged.run2]
    assert list(snapshot["usage_by_run"]) == [debugged.run2]
    assert snapshot["usage"]["input_tokens"] == 0  # run 2 reported no usage; run 1 did
    text = invoke("replay", debugged.session, "--run", debugged.run2, "--store", url)
    assert text.exit_code == 0, text.output
    assert "R2" in text.stdout
    assert "fix it" not in text.stdout
    other = invoke("replay", debugged.session, "--run", "run_nope", "--store", url)
    assert other.exit_code == 1
    assert "run_not_found" in other.stderr


# -- steps ------------------------------------------------------------------------------


def test_steps_json_lines_are_the_api_steps(url: str, debugged: Debugged) -> None:
    result = invoke("replay", debugged.session, "--steps", "1..", "--json", "--store", url)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["sequence"] for line in lines] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14]
    with open_store(url) as store:
        expected = [s.to_dict() for s in store.history(debugged.session).steps(1)]
    assert lines == json.loads(json.dumps(expected))


def test_steps_print_what_each_step_changed(url: str, debugged: Debugged) -> None:
    result = invoke("replay", debugged.session, "--steps", "7..9", "--store", url)
    assert result.exit_code == 0, result.output
    blocks = _blocks(result.stdout)
    assert sorted(blocks) == [7, 8, 9]
    assert "error_occurred" in blocks[7][0]
    assert not any("status" in line for line in blocks[8])
    # the flush's run changes are visible at the last of its events, not before
    assert any("run R1 status: running \u2192 completed" in line for line in blocks[9])
    assert any("usage so far: cost $0.012300" in line for line in blocks[9])
    one = invoke("replay", debugged.session, "--steps", "3", "--store", url)
    assert sorted(_blocks(one.stdout)) == [3]
    assert any("tool call bash (call_1) completed" in line for line in _blocks(one.stdout)[3])


def test_steps_say_which_pruned_ranges_they_jump_over(url: str, debugged: Debugged) -> None:
    result = invoke("replay", debugged.session, "--steps", "8..13", "--store", url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    gap = lines.index(next(line for line in lines if "pruned" in line))
    assert "events 10\u201311 pruned" in lines[gap]
    assert sum("pruned" in line for line in lines) == 1  # once, where it is passed
    heads = [i for i, line in enumerate(lines) if line.split()[:1] in (["9"], ["12"])]
    step_9, step_12 = heads
    assert step_9 < gap < step_12
    # A range that starts inside the hole still says it jumped over it.
    inside = invoke("replay", debugged.session, "--steps", "11..12", "--store", url)
    assert inside.exit_code == 0, inside.output
    assert "events 10\u201311 pruned" in inside.stdout
    after = invoke("replay", debugged.session, "--steps", "12..14", "--store", url)
    assert "pruned" not in after.stdout


def _blocks(out: str) -> dict[int, list[str]]:
    """Step number -> its lines (a step's first line starts with its number)."""
    blocks: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines()[1:]:  # the first line is the session
        head = line.split()
        if head and head[0].isdigit() and not line.startswith("      "):
            current = blocks.setdefault(int(head[0]), [])
        if current is not None:
            current.append(line)
    return blocks


def test_steps_of_one_run_follow_only_its_events(url: str, debugged: Debugged) -> None:
    result = invoke(
        "replay",
        debugged.session,
        "--steps",
        "1..",
        "--run",
        debugged.run2,
        "--json",
        "--store",
        url,
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["sequence"] for line in result.stdout.splitlines()] == [12, 13, 14]


# -- fork -------------------------------------------------------------------------------


def test_fork_creates_a_child_with_the_events_up_to_the_point(url: str, debugged: Debugged) -> None:
    result = invoke("fork", debugged.session, "--at", "7", "--store", url)
    assert result.exit_code == 0, result.output
    fork_id = result.stdout.strip()
    assert result.stdout == fork_id + "\n"  # only the id on stdout: $(agent-sessions fork ...)
    with open_store(url) as store:
        forked = store.get_session(fork_id)
        assert forked.parent_session_id == debugged.session
        assert forked.metadata["forked_from"] == {"session": debugged.session, "sequence": 7}
        assert store.get_latest_sequence(fork_id) == 7
        [run] = store.list_runs(fork_id)
        assert run.status.value == "running"  # as the run was at #7
    again = invoke("replay", fork_id, "--json", "--store", url)
    snapshot = json.loads(again.stdout)
    assert [call["tool_call_id"] for call in snapshot["open_tool_calls"]] == ["call_2"]
    assert len(snapshot["pending_approvals"]) == 1

    named = invoke(
        "fork",
        debugged.session,
        "--at",
        "3",
        "--session-id",
        "ses_whatif",
        "--json",
        "--store",
        url,
    )
    assert named.exit_code == 0, named.output
    document = json.loads(named.stdout)
    assert document["session"]["id"] == "ses_whatif"
    assert document["event_count"] == 3
    assert document["run_count"] == 1
    taken = invoke(
        "fork", debugged.session, "--at", "3", "--session-id", "ses_whatif", "--store", url
    )
    assert taken.exit_code == 1
    assert "already_exists" in taken.stderr


# -- errors -----------------------------------------------------------------------------


def test_user_errors_are_one_line_and_exit_1(url: str, debugged: Debugged) -> None:
    cases = {
        ("replay", "ses_unknown"): "session_not_found",
        ("replay", debugged.session, "--at", "99"): "past the last event",
        ("replay", debugged.session, "--at", "3", "--until", "2025-03-01"): "give one of them",
        ("replay", debugged.session, "--steps", "9..2"): "runs backwards",
        ("replay", debugged.session, "--steps", "x"): "not a range",
        ("replay", debugged.session, "--until", "noon"): "not an ISO 8601 time",
        ("replay", debugged.session, "--window", "-1"): "--window",
        ("fork", debugged.session): "Missing option '--at'",
    }
    for args, expected in cases.items():
        result = invoke(*args, "--store", url)
        assert result.exit_code == 1, (args, result.output)
        assert result.stdout == "", args
        assert expected in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_soft_deleted_sessions_replay_only_when_asked(url: str, debugged: Debugged) -> None:
    with open_store(url) as store:
        store.save_session(store.get_session(debugged.session).soft_delete())
    hidden = invoke("replay", debugged.session, "--store", url)
    assert hidden.exit_code == 1
    assert "session_not_found" in hidden.stderr
    shown = invoke("replay", debugged.session, "--include-deleted", "--store", url)
    assert shown.exit_code == 0, shown.output
    assert "deleted at" in shown.stdout


def test_a_session_without_events_replays_at_zero(url: str) -> None:
    with open_store(url) as store:
        session = Session.new(agent_id="idle")
        store.save_session(session)
    result = invoke("replay", session.id, "--store", url)
    assert result.exit_code == 0, result.output
    assert "at #0 of 0" in result.stdout
    assert "no events around this point" in result.stdout


# -- a closed pipe ----------------------------------------------------------------------


def _console_script() -> str:
    return str(Path(sys.executable).parent / "agent-sessions")


def test_a_closed_pipe_ends_quietly(sqlite_url: str) -> None:
    """``agent-sessions ... | head -1``: the reader leaves after one line; the command
    ends with exit 0 and nothing on stderr (no ``BrokenPipeError`` traceback, no
    "Exception ignored" at exit). Enough output to fill the pipe several times."""
    with open_store(sqlite_url) as store:
        session = Session.new(agent_id="chatty")
        store.save_session(session)
        store.append_events(
            [
                Event.new(
                    type=EventType.MESSAGE_STREAMED,
                    session_id=session.id,
                    data={"delta": "token " * 20},
                )
                for _ in range(3000)
            ]
        )
    commands = [
        ["show", session.id],
        ["replay", session.id, "--steps", "1..", "--json"],
        ["replay", session.id, "--steps", "1.."],
    ]
    for command in commands:
        writer = subprocess.Popen(
            [_console_script(), *command, "--store", sqlite_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert writer.stdout is not None
        assert writer.stderr is not None
        head = subprocess.run(["head", "-1"], stdin=writer.stdout, capture_output=True, timeout=120)
        writer.stdout.close()  # only head holds the read end now
        errors = writer.stderr.read().decode()
        assert writer.wait(timeout=120) == 0, (command, errors)
        assert errors == "", (command, errors)
        assert head.stdout.count(b"\n") == 1, command


# -- hostile payloads -------------------------------------------------------------------

#: What agent and tool output may hold: terminal escapes (clear screen, write the
#: clipboard), a one-byte CSI, bidirectional overrides, rich markup, line breaks, tags.
HOSTILE = st.sampled_from(
    [
        "\x1b[2J\x1b[H",
        "\x1b]52;c;ZXZpbA==\x07",
        "\x9b31mred",
        "\u202eevil\u202c",
        "[bold red]markup[/]",
        "line\nbreak\r\nand\ttab",
        "zero\u200bwidth\ufeff",
        "\U000e0041tag",
    ]
) | st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


def _stored(session: Session, number: int, kind: EventType, **data: Any) -> Event:
    event = Event.new(type=kind, session_id=session.id, run_id=None, data=data)
    return dataclasses.replace(event, sequence_number=number)


@given(texts=st.lists(HOSTILE, min_size=4, max_size=4))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hostile_payloads_print_as_inert_text(texts: list[str]) -> None:
    """Whatever a payload holds, the text output holds no character a terminal acts on
    (every one is replaced, one for one), rich markup stays literal, and ``--json``
    escapes them while meaning the same JSON value."""
    content, tool, call_id, agent = texts
    try:
        session = Session.new(agent_id=agent or "agent", tags=[content or "t"])
        events = [
            _stored(session, 1, EventType.MESSAGE_SENT, role="user", content=content),
            _stored(session, 2, EventType.TOOL_CALL_STARTED, tool_name=tool, tool_call_id=call_id),
            _stored(
                session,
                3,
                EventType.TOOL_CALL_FAILED,
                tool_name=tool,
                tool_call_id=call_id,
                error=content,
            ),
            _stored(session, 4, EventType.TOOL_APPROVAL_REQUESTED, tool_name=tool),
        ]
    except AgentSessionsError:
        assume(False)  # refused where records are built: nothing to print
        return
    fold = HistoryFold()
    fold.apply_record(session)
    before = fold.snapshot()
    for event in events:
        fold.apply_event(event)
    snapshot = fold.snapshot(window=events)

    out = io.StringIO()
    console = Console(file=out, width=100, highlight=False)
    labels = RunLabels()
    print_all(console, render_snapshot(snapshot, latest=4))
    print_all(console, step_block(before, snapshot, labels, number_width=1))
    text = out.getvalue().replace("\n", "")
    assert printable(text) == text
    if content == "[bold red]markup[/]":
        assert "[bold red]markup[/]" in text

    document = to_json(snapshot.to_dict())
    assert printable(document) == document
    assert json.loads(document) == json.loads(json.dumps(snapshot.to_dict()))


# -- a store written before positions were recorded -------------------------------------


def test_a_v0_1_0_store_replays_after_migrate_with_approximate_positions(
    tmp_path: Path,
) -> None:
    """The v0.1.0 fixture (``fixtures/v0_1_0``): refused until migrated, with the
    command to run; after ``migrate`` its sessions replay, flagged approximate."""
    shutil.copyfile(V0_1_0_STORE, tmp_path / "store.db")
    url = "sqlite:///" + str(tmp_path / "store.db")
    refused = invoke("sessions", "--store", url)
    assert refused.exit_code == 1
    assert "migration_required" in refused.stderr
    assert "agent-sessions migrate --store" in refused.stderr
    assert invoke("migrate", "--store", url).exit_code == 0

    listed = invoke("sessions", "--json", "--include-deleted", "--store", url)
    assert listed.exit_code == 0, listed.output
    with open_store(url) as store:
        logged = {
            s["id"]: s["deleted_at"] is not None
            for s in json.loads(listed.stdout)["sessions"]
            if store.get_latest_sequence(s["id"]) > 0
        }
    assert sorted(set(logged.values())) == [False, True]  # soft-deleted ones too
    for session_id, deleted in logged.items():
        options = ["--include-deleted"] if deleted else []
        result = invoke("replay", session_id, *options, "--json", "--store", url)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["approximate"] is True
        text = invoke("replay", session_id, *options, "--store", url)
        assert text.exit_code == 0, text.output
        assert "\u2248 approximate" in text.stdout
