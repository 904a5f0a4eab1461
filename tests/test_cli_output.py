"""What the command line prints, through click's test runner on SQLite and PostgreSQL:
whole lines when stdout is a pipe (no ``COLUMNS``, as under ``| grep``), the next-page
cursor only when there is a next page, tables without columns no row fills, a JSON
result from every command that reports one, and exit-1 messages that say what to do.

The runner's stdout is not a terminal, and ``COLUMNS`` is removed from its environment,
so these tests see what a pipe sees whatever terminal runs them.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from agent_sessions import Event, EventType, Run, Session, open_store
from agent_sessions.cli import cli, usage_commands

MODEL = "claude-sonnet-4-20250514"
#: Longer than a whole 80-column line on its own: rich's default width would cut it.
LONG_AGENT = "an-agent-whose-name-alone-is-longer-than-the-eighty-columns-rich-assumes-by-default"
TAGS = ["nightly-regression-suite", "team-platform-infrastructure"]


@pytest.fixture
def url(durable_url: str) -> str:
    """The store the commands open anew each time (``conftest.durable_url``)."""
    return durable_url


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": None, **(env or {})})


def ok(*args: str, env: dict[str, str | None] | None = None) -> Result:
    result = invoke(*args, env=env)
    assert result.exit_code == 0, (args, result.output)
    return result


def document(*args: str) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def refused(*args: str) -> str:
    """The one line a refused command prints on stderr (exit 1)."""
    result = invoke(*args)
    assert result.exit_code == 1, (args, result.output)
    assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
    assert "Traceback" not in result.output
    return result.stderr


def _long_session(url: str) -> tuple[Session, Run]:
    """A completed session whose lines are all wider than 80 columns."""
    with open_store(url) as store:
        session = Session.new(agent_id=LONG_AGENT, tags=TAGS).replace(status="completed")
        store.save_session(session)
        run = Run.new(session_id=session.id)
        store.save_run(run.with_status("running"))
        store.append_events(
            [
                Event.new(
                    type=kind,
                    session_id=session.id,
                    run_id=run.id,
                    data=data,
                    provider="claude",
                )
                for kind, data in (
                    (EventType.MESSAGE_SENT, {"role": "user", "content": "go"}),
                    (EventType.TOOL_CALL_STARTED, {"tool_name": "bash", "tool_call_id": "c1"}),
                )
            ]
        )
        store.save_run(
            store.get_run(run.id)
            .with_status("completed")
            .replace(
                provider="claude",
                provider_metadata={"model": MODEL},
                token_usage={"input_tokens": 1000, "output_tokens": 100},
            )
        )
    return session, run


# -- whole lines into a pipe ---------------------------------------------------------------


def test_without_columns_sessions_show_and_events_print_whole_lines(url: str) -> None:
    """``agent-sessions sessions | grep completed`` finds the session, with its whole id:
    nothing is cut at rich's default 80 columns, nothing is ellipsized."""
    session, run = _long_session(url)

    listed = ok("sessions", "--store", url).stdout
    assert "\u2026" not in listed
    (found,) = [line for line in listed.splitlines() if "completed" in line]  # the grep
    for part in (session.id, LONG_AGENT, *TAGS):
        assert part in found, (part, found)

    shown = ok("show", session.id, "--store", url).stdout
    assert "\u2026" not in shown
    header = shown.splitlines()[0]
    assert header.startswith(f"session {session.id}  agent {LONG_AGENT} \u00b7 status completed")
    (run_line,) = [line for line in shown.splitlines() if run.id in line]
    assert f"{run.id} completed \u00b7 claude {MODEL}" in run_line

    events = ok("events", session.id, "--store", url).stdout.splitlines()
    assert [line.split()[3] for line in events] == ["message_sent", "tool_call_started"]
    assert events[1].endswith("bash")
    assert not any("\u2026" in line for line in events)


def test_columns_still_sets_the_width_of_a_terminal(url: str) -> None:
    """``COLUMNS`` (what a terminal's size says) still fits each line to it, cutting
    what does not fit with an ellipsis, never the id."""
    session, _ = _long_session(url)
    narrow = ok("sessions", "--store", url, env={"COLUMNS": "100"}).stdout
    (line,) = narrow.splitlines()
    assert len(line) == 100
    assert "completed" in line
    assert line.startswith(session.id)
    assert line.endswith("\u2026")


def test_no_column_of_a_table_is_left_blank(url: str) -> None:
    """Each row of the by-model, by-provider and by-day tables fills every column it
    has (a column no row could fill, such as a run count a summary lacks, is left
    out rather than printed empty)."""
    session, _ = _long_session(url)

    def table(*args: str) -> list[list[str]]:
        text = ok(*args, "--store", url).stdout.splitlines()
        at = next(n for n, line in enumerate(text) if line.split()[0] in {"model", "provider"})
        return [line.split() for line in (text[at], *text[at + 2 :])]

    model_table = ["model", "input", "output", "runs", "cost"]
    for command in (["stats", session.id], ["cost", "--by", "model"]):
        header, row = table(*command)
        assert header == model_table, command
        assert row[:4] == [MODEL, "1,000", "100", "1"], command
    assert table("cost", "--by", "provider") == [
        ["provider", "runs", "cost"],
        ["claude", "1", "$0.004500"],
    ]


def test_a_table_leaves_out_a_run_count_no_row_has() -> None:
    """The rows of a summary without run counts make a table without that column."""
    out = Console(width=200, file=io.StringIO())
    out.print(usage_commands._table(["model"], [{"model": "m", "cost_usd": 1.0}], cost=True))
    header = out.file.getvalue().splitlines()[0]  # type: ignore[attr-defined]
    assert header.split() == ["model", "cost"]


# -- pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 6])
def test_the_cursor_is_null_exactly_on_the_last_page(url: str, limit: int) -> None:
    """Paging five sessions ``limit`` at a time visits each once, in order; every page
    but the last carries a cursor, the last (short or full) carries null, and only a
    page with a next one prints the hint on stderr."""
    start = datetime.now(UTC) - timedelta(days=1)
    with open_store(url) as store:
        made = [
            Session.new(agent_id="pager").replace(created_at=start + timedelta(minutes=n))
            for n in range(5)
        ]
        for session in made:
            store.save_session(session)
    args = ["sessions", "--order", "oldest", "--limit", str(limit), "--store", url]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        more = [] if cursor is None else ["--cursor", cursor]
        page = document(*args, *more)
        text = ok(*args, *more)
        pages += 1
        seen += [s["id"] for s in page["sessions"]]
        assert page["total_count"] == 5
        assert ("--cursor" in text.stderr) == (page["cursor"] is not None)
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == [s.id for s in made]
    assert pages == -(-5 // limit)


def test_a_bad_cursor_says_what_to_pass(url: str) -> None:
    _long_session(url)
    message = refused("sessions", "--cursor", "not-a-cursor", "--store", url)
    assert "[invalid_cursor]" in message
    assert "omit --cursor" in message
    alone = document("sessions", "--limit", "1", "--store", url)
    assert alone["cursor"] is None  # one session, one full page: no next one


# -- JSON results ---------------------------------------------------------------------------


def test_export_accepts_json_and_prints_the_same_lines(url: str) -> None:
    _long_session(url)
    plain = ok("export", "--all", "--store", url).stdout
    assert ok("export", "--all", "--json", "--store", url).stdout == plain
    assert all(json.loads(line) for line in plain.splitlines())


USER_PROJECTION = """
from typing import Any

from agent_sessions import AgentEventRecorded, Projection, topics_of


class Tally(Projection):
    name = "{name}"
    topics = topics_of(AgentEventRecorded)
    tables = ("CREATE TABLE IF NOT EXISTS {name} (n BIGINT NOT NULL)",)

    def apply(self, view: Any, event: Any) -> None:
        view.execute("INSERT INTO {name} (n) VALUES (1)")
"""


def test_projections_rebuild_forget_and_run_print_json(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _long_session(url)
    name = "pg_tally" if url.startswith("postgresql") else "lite_tally"
    module = f"tally_{name}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(USER_PROJECTION.format(name=name)))
    monkeypatch.chdir(tmp_path)
    ok("projections", "status", "--projection", f"{module}:Tally", "--store", url)

    rebuilt = document("projections", "rebuild", name, "--store", url)
    assert rebuilt["projection"] == name
    assert rebuilt["events_applied"] == 2  # the two agent events of the log
    assert rebuilt["status"]["lag"] == 0
    assert rebuilt["status"]["topic"] == f"{module}:Tally"

    builtin = document("projections", "rebuild", "sessions", "--store", url)
    assert builtin["projection"] == "sessions"
    assert builtin["status"]["topic"] is None

    script = str(Path(sys.executable).parent / "agent-sessions")
    process = subprocess.Popen(
        [script, "projections", "run", "--json", "--store", url],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        assert process.stderr.readline().startswith("following ")  # it has started
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0, process.stderr.read()
        stopped = json.loads(process.stdout.read())
    finally:
        process.kill()
        process.wait()
    where = {found["name"]: found for found in stopped["projections"]}
    assert where[name]["lag"] == 0
    assert {"sessions", "runs", name} <= set(where)

    assert document("projections", "forget", name, "--store", url) == {
        "projection": name,
        "forgotten": True,
    }
    assert document("projections", "forget", name, "--store", url)["forgotten"] is False


# -- messages that say what to do ------------------------------------------------------------


def test_exit_1_messages_say_what_to_do(url: str, tmp_path: Path) -> None:
    _long_session(url)
    assert "`agent-sessions projections status`" in refused(
        "projections", "rebuild", "no_such_view", "--store", url
    )
    assert "subclasses agent_sessions.Projection" in refused(
        "projections", "status", "--projection", "json:JSONDecoder", "--store", url
    )
    not_json = tmp_path / "pricing.txt"
    not_json.write_text("input: 3 dollars")
    wrong_rate = tmp_path / "pricing.json"
    wrong_rate.write_text(json.dumps({"claude": {"models": {MODEL: {"inputs": 1e-6}}}}))
    for path in (not_json, wrong_rate):
        for command in (["cost"], ["stats"], ["import", "claude-code", str(tmp_path)]):
            message = refused(*command, "--pricing", str(path), "--store", url)
            assert str(path) in message, (command, message)
            assert '{"provider": {"models": {"model": {"input"' in message, (command, message)
    assert "nothing importable" in refused("import", "jsonl", str(not_json), "--store", url)
