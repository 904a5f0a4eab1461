"""Every ``agent-sessions`` command of issue 13, through click's test runner on SQLite
and PostgreSQL: what each prints (``--json`` parsed back), its exit codes, that read
commands create nothing, and, through the real console script, that ``| head -1``
ends quietly and ``tail`` follows a session live until it ends.

The conventions shared with the older commands (``--store`` placement, storage failures,
usage errors, ``python -m``) are in ``test_cli.py``; ``replay`` and ``fork`` in
``test_cli_replay.py``. Imported history comes from the small transcript the project
writes itself (``importers/sample_transcript.py``), so that no test depends on data
outside the repository; ``test_demo_on_the_real_transcripts`` uses
the real transcripts (``transcript_gen.SHARED``) when they are there, the generated one
when they are not.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_server import fresh_schema, with_options

from agent_sessions import Event, EventType, Run, Session, __version__, open_store
from agent_sessions.backends.schema import CURRENT_VERSION
from agent_sessions.cli import cli
from agent_sessions.importers.sample_transcript import write_sample_transcript

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "claude-code"
MODEL = "claude-sonnet-4-20250514"
NOW = datetime.now(UTC)
LONG_AGO = NOW - timedelta(days=400)


@pytest.fixture
def url(durable_url: str) -> str:
    """The store the commands open anew each time (``conftest.durable_url``)."""
    return durable_url


def invoke(*args: str, stdin: str | None = None) -> Result:
    """The command, its stdout not a terminal and no ``COLUMNS``: what a pipe sees."""
    return CliRunner().invoke(cli, list(args), input=stdin, env={"COLUMNS": None})


def ok(*args: str, stdin: str | None = None) -> Result:
    result = invoke(*args, stdin=stdin)
    assert result.exit_code == 0, (args, result.output)
    return result


def document(*args: str) -> Any:
    """The one JSON document a command prints with ``--json``."""
    return json.loads(ok(*args, "--json").stdout)


def json_lines(*args: str) -> list[Any]:
    return [json.loads(text) for text in ok(*args, "--json").stdout.splitlines()]


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated Claude Code transcripts (a project folder, with a sub-agent's)."""
    folder = tmp_path_factory.mktemp("transcripts")
    write_sample_transcript(folder)
    return folder


# -- seeded stores ------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    """Sessions made with the library: ``recent`` (active, two runs, ten events),
    ``old`` (completed long ago: retention soft-deletes it), ``gone`` (soft-deleted long
    ago: retention erases it), ``pinned`` (old but tagged ``pinned``)."""

    recent: str
    run1: str
    run2: str
    old: str
    gone: str
    pinned: str


def _event(session_id: str, run_id: str | None, kind: EventType, **data: Any) -> Event:
    return Event.new(type=kind, session_id=session_id, run_id=run_id, data=data, provider="claude")


def seed(url: str) -> Seeded:
    with open_store(url) as store:
        recent = Session.new(agent_id="coder", tags=["nightly"]).with_status("active")
        store.save_session(recent)
        runs = []
        for n, (tokens_in, tokens_out) in enumerate(((1000, 200), (3000, 100))):
            run = Run.new(session_id=recent.id, input={"prompt": f"task {n}"})
            store.save_run(run.with_status("running"))
            store.append_events(
                [
                    _event(recent.id, run.id, EventType.MESSAGE_SENT, role="user", content="go"),
                    _event(
                        recent.id,
                        run.id,
                        EventType.TOOL_CALL_STARTED,
                        tool_name="bash",
                        tool_call_id=f"call_{n}",
                    ),
                    _event(
                        recent.id,
                        run.id,
                        EventType.TOOL_CALL_COMPLETED,
                        tool_name="bash",
                        tool_call_id=f"call_{n}",
                        tool_output="ok",
                    ),
                    _event(
                        recent.id,
                        run.id,
                        EventType.TOKEN_USAGE_UPDATED,
                        input_tokens=tokens_in,
                        output_tokens=tokens_out,
                    ),
                ]
            )
            usage = {"input_tokens": tokens_in, "output_tokens": tokens_out}
            done = store.get_run(run.id).with_status("completed")
            store.save_run(
                done.replace(
                    token_usage=usage, provider="claude", provider_metadata={"model": MODEL}
                )
            )
            runs.append(run.id)
        store.append_events(
            [_event(recent.id, None, EventType.MESSAGE_STREAMED, delta=str(n)) for n in range(2)]
        )
        old = Session.new(agent_id="reviewer").replace(
            status="completed", created_at=LONG_AGO, updated_at=LONG_AGO
        )
        pinned = Session.new(agent_id="reviewer", tags=["pinned"]).replace(
            status="completed", created_at=LONG_AGO, updated_at=LONG_AGO
        )
        gone = Session.new(agent_id="reviewer").replace(
            status="completed", created_at=LONG_AGO, updated_at=LONG_AGO, deleted_at=LONG_AGO
        )
        for session in (old, pinned, gone):
            store.save_session(session)
            store.append_event(_event(session.id, None, EventType.MESSAGE_SENT, content="hi"))
        return Seeded(recent.id, runs[0], runs[1], old.id, gone.id, pinned.id)


@pytest.fixture
def seeded(url: str) -> Seeded:
    return seed(url)


# -- import and export --------------------------------------------------------------------


def test_import_claude_code_twice_adds_nothing_the_second_time(url: str, transcripts: Path) -> None:
    first = document("import", "claude-code", str(transcripts), "--store", url)
    assert first["sessions"] >= 1
    assert first["runs"] >= 1
    assert first["events"] >= 1
    assert first["skipped"] == []
    again = document("import", "claude-code", str(transcripts), "--store", url)
    assert (again["sessions"], again["runs"], again["events"]) == (0, 0, 0)
    assert again["already_present"] >= first["sessions"] + first["runs"] + first["events"] - 1

    text = ok("import", "claude-code", str(transcripts), "--store", url)
    assert "already present" in text.stdout

    listed = document("sessions", "--store", url)
    assert listed["total_count"] == first["sessions"]
    ids = {session["id"] for session in listed["sessions"]}
    assert len(ids) == first["sessions"]
    stats = document("stats", "--store", url)
    assert stats["events"] == sum(
        document("stats", session_id, "--store", url)["stats"]["event_count"] for session_id in ids
    )


def test_import_reports_skipped_lines_by_file_and_line(url: str, tmp_path: Path) -> None:
    """A bad line is skipped and named (file:line); the rest is imported, exit 0. A
    file with nothing importable is exit 1; a path that is not there is exit 1 before
    anything is opened."""
    source = write_sample_transcript(tmp_path / "good")
    lines = source.read_text(encoding="utf-8").splitlines()
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("\n".join([lines[0], '{"truncated": ', *lines[1:]]) + "\n")
    result = ok("import", "claude-code", str(damaged), "--store", url)
    assert f"{damaged}:2" in result.stdout
    report = document("import", "claude-code", str(damaged), "--store", url)
    assert [(s["path"], s["line"]) for s in report["skipped"]] == [(str(damaged), 2)]

    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\x00\xff not json\n[1, 2]\n")
    refused = invoke("import", "claude-code", str(garbage), "--store", url)
    assert refused.exit_code == 1, refused.output
    assert "nothing importable" in refused.stderr
    assert f"{garbage}:1" in refused.stdout

    missing = invoke("import", "claude-code", str(tmp_path / "nope.jsonl"), "--store", url)
    assert missing.exit_code == 1
    assert "does not exist" in missing.stderr


def test_import_claude_code_prices_with_the_pricing_file(
    url: str, transcripts: Path, tmp_path: Path
) -> None:
    """``--pricing FILE`` (the shape ``cost --pricing`` reads) is what the imported
    runs' recorded cost is priced with; importing again without it reprices them with
    the built-in table. A bad file is refused before the store is opened."""
    flat = tmp_path / "flat.json"  # one rate for every kind of token
    flat.write_text(json.dumps({"anthropic": {"input": 1e-6, "output": 1e-6}}))
    ok("import", "claude-code", str(transcripts), "--pricing", str(flat), "--store", url)
    ids = [s["id"] for s in document("sessions", "--store", url)["sessions"]]
    runs = [run for i in ids for run in document("show", i, "--store", url)["runs"]]
    assert runs
    for run in runs:
        assert run["cost_usd"] == pytest.approx(run["token_usage"]["total_tokens"] * 1e-6)
    tokens = sum(run["token_usage"]["total_tokens"] for run in runs)
    priced = document("cost", "--store", url)["summary"]["total_cost_usd"]
    assert priced == pytest.approx(tokens * 1e-6)

    again = document("import", "claude-code", str(transcripts), "--store", url)
    assert (again["runs"], again["events"]) == (0, 0)
    assert document("cost", "--store", url)["summary"]["total_cost_usd"] != pytest.approx(priced)

    bad = tmp_path / "bad.json"
    bad.write_text('{"anthropic": {"input": "cheap"}}')
    elsewhere = "sqlite:///" + str(tmp_path / "never.db")
    refused = invoke("import", "claude-code", str(transcripts), "--pricing", str(bad))
    assert refused.exit_code == 1
    assert str(bad) in refused.stderr
    refused = invoke(
        "import", "claude-code", str(transcripts), "--pricing", str(bad), "--store", elsewhere
    )
    assert refused.exit_code == 1
    assert not (tmp_path / "never.db").exists()


def test_import_claude_code_of_a_session_folder_and_a_home_path(url: str, tmp_path: Path) -> None:
    """A session's folder (``<uuid>/`` holding ``subagents/*.jsonl``) imports its
    sub-agents as children of ``<uuid>``'s session; a quoted ``~`` is the home folder."""
    session_file = write_sample_transcript(tmp_path / "home" / "projects" / "sample")
    folder = session_file.parent / session_file.stem
    (child_file,) = (folder / "subagents").glob("*.jsonl")
    report = document("import", "claude-code", str(folder), "--store", url)
    assert (report["sessions"], report["skipped"]) == (1, [])
    (child,) = document("sessions", "--store", url)["sessions"]
    assert child["id"] == f"cc-{session_file.stem}-agent-{child_file.stem.removeprefix('agent-')}"
    assert child["parent_session_id"] == f"cc-{session_file.stem}"

    home = {"HOME": str(tmp_path / "home")}
    at_home = CliRunner().invoke(
        cli,
        ["import", "claude-code", "~/projects", "--json", "--store", url],
        env={"COLUMNS": None, **home},
    )
    assert at_home.exit_code == 0, at_home.output
    assert json.loads(at_home.stdout)["sessions"] == 1  # the parent; its child was there
    assert document("sessions", "--store", url)["total_count"] == 2


def test_export_import_export_is_byte_identical(
    url: str, transcripts: Path, tmp_path: Path
) -> None:
    ok("import", "claude-code", str(transcripts), "--store", url)
    exported = tmp_path / "all.jsonl"
    ok("export", "--all", "-o", str(exported), "--store", url)
    on_stdout = ok("export", "--all", "--store", url).stdout
    assert on_stdout == exported.read_text(encoding="utf-8")

    other = "sqlite:///" + str(tmp_path / "other.db")
    report = document("import", "jsonl", str(exported), "--store", other)
    assert report["sessions"] >= 1
    assert report["skipped"] == []
    assert ok("export", "--all", "--store", other).stdout == on_stdout

    third = "sqlite:///" + str(tmp_path / "third.db")
    ok("import", "jsonl", "-", "--store", third, stdin=on_stdout)  # standard input
    assert ok("export", "--all", "--store", third).stdout == on_stdout

    lines = [json.loads(line) for line in on_stdout.splitlines()]
    session_id = next(line["record"]["id"] for line in lines if line["kind"] == "session")
    one = ok("export", session_id, "--store", url).stdout
    assert one
    assert set(one.splitlines()) <= set(on_stdout.splitlines())
    for args in ([], ["ses_a", "--all"]):
        refused = invoke("export", *args, "--store", url)
        assert refused.exit_code == 1
        assert "--all" in refused.stderr
    unknown = invoke("export", "ses_missing", "-o", str(tmp_path / "x.jsonl"), "--store", url)
    assert unknown.exit_code == 1
    assert "session_not_found" in unknown.stderr
    assert not (tmp_path / "x.jsonl").exists()  # a file appears whole or not at all
    nowhere = invoke("export", "--all", "-o", str(tmp_path / "no_dir" / "x.jsonl"), "--store", url)
    assert nowhere.exit_code == 1
    assert "cannot write" in nowhere.stderr


# -- sessions, show, events, tail ---------------------------------------------------------


def test_sessions_filters_and_pages(url: str, seeded: Seeded) -> None:
    def ids(*args: str) -> list[str]:
        return [s["id"] for s in document("sessions", *args, "--store", url)["sessions"]]

    assert set(ids()) == {seeded.recent, seeded.old, seeded.pinned}
    assert set(ids("--include-deleted")) == {seeded.recent, seeded.old, seeded.pinned, seeded.gone}
    assert ids("--agent", "coder") == [seeded.recent]
    assert ids("--status", "active") == [seeded.recent]
    assert set(ids("--status", "active", "--status", "completed")) == set(ids())
    assert ids("--tag", "pinned") == [seeded.pinned]
    assert ids("--since", (NOW - timedelta(days=1)).date().isoformat()) == [seeded.recent]
    assert ids("--order", "oldest")[-1] == seeded.recent
    assert ids("--order", "newest")[0] == seeded.recent

    first = document("sessions", "--limit", "2", "--order", "oldest", "--store", url)
    assert first["total_count"] == 3
    assert len(first["sessions"]) == 2
    rest = document(
        "sessions", "--limit", "2", "--order", "oldest", "--cursor", first["cursor"], "--store", url
    )
    paged = [s["id"] for s in first["sessions"] + rest["sessions"]]
    assert paged == ids("--order", "oldest")

    text = ok("sessions", "--limit", "2", "--order", "oldest", "--store", url)
    assert f"--cursor {first['cursor']}" in text.stderr  # the next page, on stderr
    assert first["cursor"] not in text.stdout
    assert len(text.stdout.splitlines()) == 2

    for bad in (["--limit", "0"], ["--status", "sleeping"], ["--since", "yesterday"]):
        refused = invoke("sessions", *bad, "--store", url)
        assert refused.exit_code == 1, bad
        assert len(refused.stderr.splitlines()) == 1
    wrong = invoke("sessions", "--cursor", "not-a-cursor", "--store", url)
    assert wrong.exit_code == 1
    assert "invalid_cursor" in wrong.stderr


def test_show_prints_record_runs_stats_and_filtered_events(url: str, seeded: Seeded) -> None:
    shown = document("show", seeded.recent, "--store", url)
    assert shown["session"]["id"] == seeded.recent
    assert [run["id"] for run in shown["runs"]] == [seeded.run1, seeded.run2]
    assert shown["stats"]["event_count"] == len(shown["events"]) == 10
    assert shown["stats"]["token_totals"]["input_tokens"] == 4000

    only = document(
        "show", seeded.recent, "--run", seeded.run2, "--type", "tool_call_started", "--store", url
    )
    assert [e["data"]["tool_call_id"] for e in only["events"]] == ["call_1"]

    text = ok("show", seeded.recent, "--store", url).stdout
    assert f"session {seeded.recent}" in text
    assert "10 event(s) \u00b7 2 run(s) (completed 2)" in text
    assert "in 4,000" in text
    full = ok("show", seeded.recent, "--type", "token_usage_updated", "--full", "--store", url)
    assert '"input_tokens": 3000' in full.stdout  # the payload, as indented JSON
    other = invoke("show", seeded.old, "--run", seeded.run1, "--store", url)
    assert other.exit_code == 1
    assert "run_mismatch" in other.stderr


def test_events_takes_the_get_events_filters(url: str, seeded: Seeded) -> None:
    def numbers(*args: str) -> list[int]:
        found = json_lines("events", seeded.recent, *args, "--store", url)
        return [event["sequence_number"] for event in found]

    assert numbers() == list(range(1, 11))
    assert numbers("--run", seeded.run1) == [1, 2, 3, 4]
    assert numbers("--type", "tool_call_started") == [2, 6]
    assert numbers("--after", "3", "--before", "7") == [4, 5, 6]
    assert numbers("--after", "3", "--limit", "2") == [4, 5]
    assert numbers("--since", NOW.isoformat()) == list(range(1, 11))
    assert numbers("--since", (NOW + timedelta(days=1)).isoformat()) == []

    text = ok("events", seeded.recent, "--type", "tool_call_completed", "--store", url).stdout
    assert [line.split()[0] for line in text.splitlines()] == ["3", "7"]
    assert "bash \u2192 ok" in text
    unknown = invoke("events", "ses_missing", "--store", url)
    assert unknown.exit_code == 1
    assert "session_not_found" in unknown.stderr


def test_tail_of_an_ended_session_prints_its_last_events_and_ends(url: str, seeded: Seeded) -> None:
    with open_store(url) as store:
        store.save_session(store.get_session(seeded.recent).with_status("completed"))
    found = json_lines("tail", seeded.recent, "-n", "3", "--store", url)
    assert [e["sequence_number"] for e in found] == [8, 9, 10]
    everything = json_lines("tail", seeded.recent, "--after", "0", "--store", url)
    assert len(everything) == 10
    typed = json_lines(
        "tail", seeded.recent, "--after", "0", "--type", "message_sent", "--store", url
    )
    assert [e["type"] for e in typed] == ["message_sent", "message_sent"]


def _console_script() -> str:
    return str(Path(sys.executable).parent / "agent-sessions")


def test_tail_follows_a_live_session_until_it_ends(url: str, seeded: Seeded) -> None:
    """The real console script: it prints what is there, then each event appended by
    another process as it comes, and exits 0 once the session is completed."""
    tail = subprocess.Popen(
        [
            _console_script(),
            "tail",
            seeded.recent,
            "-n",
            "1",
            "--json",
            "--wait",
            "1",
            "--store",
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert tail.stdout is not None
    assert tail.stderr is not None
    try:
        first = json.loads(tail.stdout.readline())
        assert first["sequence_number"] == 10  # the last one there; now it follows
        with open_store(url) as store:
            for n in range(3):
                store.append_event(
                    _event(seeded.recent, None, EventType.MESSAGE_STREAMED, delta=f"live {n}")
                )
                arrived = json.loads(tail.stdout.readline())  # blocks until printed
                assert arrived["data"]["delta"] == f"live {n}"
            ended = store.get_session(seeded.recent).with_status("completed")
            store.save_session(ended)
            store.append_event(_event(seeded.recent, None, EventType.SESSION_COMPLETED))
        rest = [json.loads(line) for line in tail.stdout]
        assert tail.wait(timeout=60) == 0, tail.stderr.read()
    finally:
        tail.kill()
        tail.wait()
    assert [e["type"] for e in rest] == ["session_completed"]


# -- stats, usage, cost -------------------------------------------------------------------


def test_stats_usage_and_cost(url: str, seeded: Seeded, tmp_path: Path) -> None:
    overview = document("stats", "--store", url)
    assert overview["sessions"] == 3  # the soft-deleted one is not counted
    assert overview["sessions_by_status"]["active"] == 1
    assert overview["events"] == 13
    assert overview["usage"]["total_input_tokens"] == 4000
    assert overview["cost"]["total_cost_usd"] > 0

    one = document("stats", seeded.recent, "--store", url)
    assert one["stats"]["run_count"] == 2
    assert one["cost"]["by_model"][MODEL]["input_tokens"] == 4000
    assert one["cost"]["total_cost_usd"] == overview["cost"]["total_cost_usd"]

    used = document("usage", "--store", url)
    assert used["summary"]["by_provider"]["claude"]["input_tokens"] == 4000
    today = NOW.date().isoformat()
    assert [(d["day"], d["input_tokens"]) for d in used["by_day"]] == [(today, 4000)]
    old_days = document("usage", "--since", "2000-01-01", "--until", "2000-01-02", "--store", url)
    assert old_days["by_day"] == []
    assert old_days["summary"]["run_count"] == 0

    spent = document("cost", "--store", url)
    assert spent["summary"]["by_provider"]["claude"]["run_count"] == 2
    assert spent["summary"]["total_cost_usd"] == overview["cost"]["total_cost_usd"]
    assert document("cost", "--agent", "reviewer", "--store", url)["summary"]["run_count"] == 0

    pricing = tmp_path / "pricing.json"  # dollars per token
    pricing.write_text(json.dumps({"claude": {"input": 0.000001, "output": 0.000002}}))
    priced = document("cost", "--pricing", str(pricing), "--store", url)
    assert priced["summary"]["total_cost_usd"] == pytest.approx(4000e-6 + 300 * 2e-6)

    for command in (["stats"], ["stats", seeded.recent], ["usage"], ["cost"]):
        text = ok(*command, "--store", url).stdout
        assert "claude" in text or MODEL in text, command
    assert invoke("usage", "--since", "June", "--store", url).exit_code == 1


# -- maintain and doctor ------------------------------------------------------------------


def test_maintain_is_a_dry_run_until_apply(url: str, seeded: Seeded, tmp_path: Path) -> None:
    before = ok("export", "--all", "--store", url).stdout
    plan = document("maintain", "--max-events-per-session", "8", "--store", url)
    assert plan["dry_run"] is True
    assert plan["plan"]["sessions_to_soft_delete"] == [seeded.old]  # pinned is exempt
    assert plan["plan"]["sessions_to_hard_delete"] == [seeded.gone]
    # Streamed chunks and usage reports go first (the policy's default order).
    assert plan["plan"]["events_to_prune"] == {seeded.recent: 2}
    assert plan["policy"]["max_events_per_session"] == 8
    assert ok("export", "--all", "--store", url).stdout == before  # nothing changed

    text = ok("maintain", "--max-events-per-session", "8", "--store", url)
    assert f"soft-delete 1 session(s): {seeded.old}" in text.stdout
    assert "dry run" in text.stderr

    done = document("maintain", "--max-events-per-session", "8", "--apply", "--store", url)
    report = done["report"]
    assert (report["sessions_soft_deleted"], report["sessions_hard_deleted"]) == (1, 1)
    assert report["events_pruned"] == 2
    assert report["errors"] == []
    again = document("maintain", "--max-events-per-session", "8", "--store", url)["plan"]
    assert again["sessions_to_soft_delete"] == []
    assert again["events_to_prune"] == {}

    policy = tmp_path / "policy.toml"
    policy.write_text("max_completed_session_age_days = 1\nexempt_tags = []\n")
    from_file = document("maintain", "--policy", str(policy), "--store", url)
    assert from_file["plan"]["sessions_to_soft_delete"] == [seeded.pinned]
    overridden = document(
        "maintain", "--policy", str(policy), "--exempt-tag", "pinned", "--store", url
    )
    assert overridden["plan"]["sessions_to_soft_delete"] == []
    never = document("maintain", "--max-completed-session-age-days", "never", "--store", url)
    assert never["policy"]["max_completed_session_age_days"] is None

    typo = tmp_path / "typo.json"
    typo.write_text('{"max_event_per_session": 3}')
    for args, expected in (
        (["--policy", str(typo)], "unknown retention option: max_event_per_session"),
        (["--max-total-events", "0"], "--max-total-events"),
        (["--exempt-status", "asleep"], "--exempt-status"),
    ):
        refused = invoke("maintain", *args, "--store", url)
        assert refused.exit_code == 1, args
        assert expected in refused.stderr, (args, refused.stderr)


def test_the_dry_run_plans_what_apply_then_does(url: str, seeded: Seeded) -> None:
    """Every step at once, the store-wide cap included: the plan's counts are the
    report's, and a plan made right after is empty."""
    policy = ["--max-events-per-session", "8", "--max-total-events", "6", "--prune-first",
              "message_streamed", "--store", url]  # fmt: skip
    plan = document("maintain", *policy)["plan"]
    # The erased session's event goes with it; the cap then prunes what is not protected.
    assert plan["events_to_prune_total"] == 13 - 1 - 6
    report = document("maintain", *policy, "--apply")["report"]
    assert report["sessions_soft_deleted"] == len(plan["sessions_to_soft_delete"]) == 1
    assert report["sessions_hard_deleted"] == len(plan["sessions_to_hard_delete"]) == 1
    assert report["events_pruned"] == plan["events_to_prune_total"]
    after = document("maintain", *policy)["plan"]
    assert after["events_to_prune"] == {}
    assert document("stats", "--store", url)["events"] == 6


def test_doctor_reports_versions_lag_and_health(url: str, seeded: Seeded) -> None:
    found = document("doctor", "--store", url)
    assert found["healthy"] is True
    assert found["issues"] == []
    assert found["version"] == __version__
    assert found["schema_version"] == found["schema_version_expected"] == CURRENT_VERSION
    assert {"sessions", "runs", "events", "artifacts"} <= {p["name"] for p in found["projections"]}
    text = ok("doctor", "--store", url).stdout
    assert "health: ok" in text
    assert f"schema version {CURRENT_VERSION}" in text


# -- your own projections -----------------------------------------------------------------

USER_PROJECTIONS = """
from typing import Any

from agent_sessions import AgentEventRecorded, Projection, topics_of


class Counter(Projection):
    name = "{prefix}_counter"
    topics = topics_of(AgentEventRecorded)
    tables = ("CREATE TABLE IF NOT EXISTS {prefix}_counter (n BIGINT NOT NULL)",)

    def apply(self, view: Any, event: Any) -> None:
        view.execute("INSERT INTO {prefix}_counter (n) VALUES (1)")


class Broken(Projection):
    name = "{prefix}_broken"
    topics = topics_of(AgentEventRecorded)

    def apply(self, view: Any, event: Any) -> None:
        raise ValueError("this projection cannot apply anything")
"""


def test_user_projections_are_remembered_by_the_store(
    url: str, seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = "pg" if url.startswith("postgresql") else "lite"
    module = f"my_views_{prefix}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(USER_PROJECTIONS.format(prefix=prefix)))
    monkeypatch.chdir(tmp_path)
    counter = f"{prefix}_counter"

    def listed(*args: str) -> dict[str, Any]:
        found = document("projections", "status", *args, "--store", url)["projections"]
        return {p["name"]: p for p in found}

    first = listed("--projection", f"{module}:Counter")
    assert first[counter]["topic"] == f"{module}:Counter"
    assert first[counter]["loaded"]
    assert listed()[counter]["loaded"]  # remembered: no --projection needed now
    rebuilt = ok("projections", "rebuild", counter, "--store", url)
    assert f"rebuilt {counter}: 13 events" in rebuilt.stderr  # every agent event of the log
    assert listed()[counter]["lag"] == 0

    listed("--projection", f"{module}:Broken")
    sick = invoke("doctor", "--json", "--store", url)
    assert sick.exit_code == 1
    report = json.loads(sick.stdout)
    assert report["healthy"] is False
    assert any(f"projection {prefix}_broken failed" in issue for issue in report["issues"])
    assert "problem(s) found" in sick.stderr

    # Another directory, where the module cannot be imported (a new process: this one
    # has imported it): reported, never silently dropped.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_console_script(), *args, "--store", url],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=120,
        )

    status = run("projections", "status", "--json")
    assert status.returncode == 0, status.stderr
    gone = {p["name"]: p for p in json.loads(status.stdout)["projections"]}[counter]
    assert gone["loaded"] is False
    assert "cannot load" in gone["error"]
    assert "NOT LOADED" in run("projections", "status").stdout
    refused = run("projections", "run")
    assert refused.returncode == 1
    assert "cannot be loaded here" in refused.stderr
    assert "agent-sessions projections forget" in refused.stderr  # says what to do
    assert "forgot" in run("projections", "forget", counter).stderr
    left = json.loads(run("projections", "status", "--json").stdout)["projections"]
    assert counter not in {p["name"] for p in left}


# -- conventions --------------------------------------------------------------------------

READ_COMMANDS = [
    ["sessions"],
    ["show", "ses_x"],
    ["events", "ses_x"],
    ["tail", "ses_x"],
    ["stats"],
    ["usage"],
    ["cost"],
    ["maintain"],
    ["maintain", "--apply"],
    ["doctor"],
    ["export", "--all"],
    ["projections", "status"],
    ["projections", "forget", "x"],
    # Not a read, but a missing store is a mistyped URL for it too: a new store is
    # made by its first write, at the current version.
    ["migrate"],
    ["migrate", "--dry-run"],
]


def test_read_commands_never_create_a_store(tmp_path: Path, pg_server_url: str) -> None:
    missing = tmp_path / "no_dir" / "x.db"
    with fresh_schema(pg_server_url) as schema:
        for url in ("sqlite:///" + str(missing), with_options(pg_server_url, schema=schema)):
            for command in READ_COMMANDS:
                result = invoke(*command, "--store", url)
                assert result.exit_code == 1, (command, result.output)
                assert result.stdout == ""
                assert "[not_found] no store at" in result.stderr, (command, result.stderr)
                assert len(result.stderr.splitlines()) == 1
        with psycopg.connect(pg_server_url.split("?")[0], autocommit=True) as connection:
            found = connection.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
            ).fetchall()
        assert found == []
    assert not missing.parent.exists()


def test_storage_failures_are_exit_2() -> None:
    url = "postgresql://agent:s3cret@127.0.0.1:1/db?connect_timeout=1"
    for command in (["events", "ses_x"], ["stats"], ["doctor"], ["import", "jsonl", "-"]):
        result = invoke(*command, "--store", url)
        assert result.exit_code == 2, (command, result.output)
        assert "storage_connection_failed" in result.stderr
        assert "s3cret" not in result.output


def test_a_closed_pipe_ends_quietly(sqlite_url: str, transcripts: Path) -> None:
    """``... | head -1`` through the real console script: exit 0, nothing on stderr,
    with output enough to fill the pipe many times."""
    with open_store(sqlite_url) as store:
        session = Session.new(agent_id="chatty")
        store.save_session(session)
        store.append_events(
            [
                _event(session.id, None, EventType.MESSAGE_STREAMED, delta="token " * 20)
                for _ in range(3000)
            ]
        )
    commands = [
        ["events", session.id],
        ["events", session.id, "--json"],
        ["show", session.id, "--full"],
        ["export", "--all"],
        ["tail", session.id, "--after", "0", "--json"],
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
        writer.stdout.close()
        errors = writer.stderr.read().decode()
        assert writer.wait(timeout=120) == 0, (command, errors)
        assert errors == "", (command, errors)
        assert head.stdout.count(b"\n") == 1, command


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One seeded SQLite store for the tests that only read it."""
    url = "sqlite:///" + str(tmp_path_factory.mktemp("small") / "store.db")
    seed(url)
    return url


OPTION_VALUES = [
    ("sessions", "--since"),
    ("sessions", "--limit"),
    ("sessions", "--cursor"),
    ("usage", "--since"),
    ("cost", "--until"),
    ("maintain", "--max-total-events"),
    ("maintain", "--max-completed-session-age-days"),
    ("events", "--after"),
]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    where=st.sampled_from(OPTION_VALUES),
    value=st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
)
def test_any_option_value_is_taken_or_refused_in_one_line(
    small_store: str, where: tuple[str, str], value: str
) -> None:
    """Whatever text an option is given: exit 0, or exit 1 with one line on stderr;
    never a traceback, never exit 2 (the store is fine)."""
    command, option = where
    target = ["ses_none"] if command == "events" else []
    result = invoke(command, *target, option, value, "--json", "--store", small_store)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    if command == "events" and result.exit_code == 1:
        assert "session_not_found" in result.stderr or option in result.stderr
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output


def test_names_from_the_store_print_as_inert_text(url: str) -> None:
    """Provider and model names are stored data: in a table they are shown, not obeyed
    (no escape reaches the terminal, rich markup stays literal)."""
    with open_store(url) as store:
        session = Session.new(agent_id="agent")
        store.save_session(session)
        run = Run.new(session_id=session.id).with_status("completed")
        store.save_run(
            run.replace(
                provider="\x1b]52;c;ZXZpbA==\x07evil",
                provider_metadata={"model": "[bold red]model[/]\u202e"},
                token_usage={"input_tokens": 10, "output_tokens": 1},
            )
        )
    for command in (["cost"], ["usage"], ["stats"], ["stats", session.id]):
        text = ok(*command, "--store", url).stdout
        for character in ("\x1b", "\x07", "\u202e"):
            assert character not in text, command
    assert "[bold red]model[/]" in ok("cost", "--store", url).stdout


def test_every_command_has_help_and_json() -> None:
    """Every command answers --help and accepts --json: each prints data or a result
    (export prints JSON Lines either way)."""
    commands = {
        "import claude-code", "import jsonl", "export", "sessions", "show", "events", "tail",
        "replay", "fork", "stats", "usage", "cost", "maintain", "doctor",
        "projections status", "projections run", "projections rebuild", "projections forget",
        "migrate", "demo",
    }  # fmt: skip
    for name in commands:
        result = ok(*name.split(), "--help")
        assert "--json" in result.stdout, name


# -- demo ---------------------------------------------------------------------------------


def test_demo_on_the_generated_transcript(sqlite_url: str) -> None:
    result = ok("demo", "--store", sqlite_url)
    for command in ("$ agent-sessions import claude-code", "$ agent-sessions sessions", "stats"):
        assert command in result.stdout
    assert "$ agent-sessions replay" in result.stdout
    assert "costliest tool call" in result.stderr
    found = document("demo", "--store", sqlite_url)  # imported again: nothing new
    assert found["import"]["sessions"] == 0
    call = found["tool_call"]
    assert call["event"]["type"] == "tool_call_started"
    assert call["result_event"]["data"]["tool_call_id"] == call["event"]["data"]["tool_call_id"]
    # The replay is at the result, and the model call that read it comes later.
    assert found["replay"]["sequence"] == call["result_event"]["sequence_number"]
    assert call["usage_event"]["sequence_number"] > found["replay"]["sequence"]
    listed = document("sessions", "--store", sqlite_url)
    assert found["session"] in {s["id"] for s in listed["sessions"]}


def test_demo_on_the_real_transcripts(tmp_path: Path, transcripts: Path) -> None:
    data = SHARED if SHARED.is_dir() else transcripts
    url = "sqlite:///" + str(tmp_path / "demo.db")
    found = document("demo", "--data", str(data), "--store", url)
    assert found["import"]["skipped"] == []
    assert found["tool_call"] is not None
    replay, call = found["replay"], found["tool_call"]
    assert replay["sequence"] == call["result_event"]["sequence_number"]
    assert any(e["id"] == call["event"]["id"] for e in replay["events"])
    assert call["tokens"] > 0
