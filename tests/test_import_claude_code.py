"""Importing Claude Code transcripts (issue 13): every line type mapped, ids derived so a
second import adds nothing, token totals and costs that match an independent count over
the files, and hostile files reported line by line while the rest is imported, in
bounded memory.

The real transcripts are read where they are (``transcript_gen.SHARED``); without them the
project's generated sample stands in (``transcript_gen.py``), so nothing is skipped.
"""

from __future__ import annotations

import json
import math
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from agent_loop_support import raises_code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_server import fresh_schema, with_options
from transcript_gen import (
    PUBLISHED,
    expected_session_id,
    models_in,
    objects,
    tally,
    transcript_files,
    transcript_root,
)

from agent_sessions import RedactionConfig, open_store
from agent_sessions.composition import Store
from agent_sessions.domain.event_types import EventType
from agent_sessions.domain.pricing import DEFAULT_PRICING, calculate_cost
from agent_sessions.importers.claude_code import import_claude_code
from agent_sessions.importers.report import ImportReport
from agent_sessions.importers.sample_transcript import (
    TranscriptBuilder,
    sample_session,
    write_sample_transcript,
)


@pytest.fixture(params=["sqlite", "postgres"])
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "imported.db")
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store("sqlite:///" + str(tmp_path / "store.db")) as opened:
        yield opened


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return transcript_root(tmp_path)


def _sample(tmp_path: Path, seed: int = 0) -> Path:
    return write_sample_transcript(tmp_path / "projects" / f"sample-{seed}", seed=seed)


def _stored_counts(store: Store) -> tuple[int, int, int]:
    sessions = store.list_sessions()
    runs = sum(len(store.list_runs(s.id)) for s in sessions)
    events = sum(len(store.get_events(s.id)) for s in sessions)
    return len(sessions), runs, events


# importing twice ------------------------------------------------------------------------


def test_importing_every_transcript_twice_gives_the_counts_of_once(
    durable_url: str, root: Path
) -> None:
    with open_store(durable_url) as store:
        first = import_claude_code(store, [root])
        once = _stored_counts(store)
        second = import_claude_code(store, [root])
        twice = _stored_counts(store)
    assert first.skipped == []
    assert first.sessions == len(transcript_files(root)) == once[0]
    assert (first.sessions, first.runs, first.events) == once
    assert twice == once
    assert (second.sessions, second.runs, second.events) == (0, 0, 0)
    assert second.already_present == sum(once)
    assert second.skipped == []


def test_each_session_totals_equal_an_independent_count_over_its_file(
    store: Store, root: Path
) -> None:
    import_claude_code(store, [root])
    for path in transcript_files(root):
        expected = tally(path)
        session_id = expected_session_id(path)
        runs = store.list_runs(session_id)
        summed = Counter[str]()
        for run in runs:
            summed.update({k: v for k, v in run.token_usage.items() if isinstance(v, int)})
        assert summed["input_tokens"] == expected.input_tokens, path.name
        assert summed["output_tokens"] == expected.output_tokens, path.name
        assert summed["cache_read_tokens"] == expected.cache_read_tokens, path.name
        assert summed["cache_creation_tokens"] == expected.cache_creation_tokens, path.name
        assert summed["total_tokens"] == expected.total_tokens, path.name
        # The usage events say the same as the run totals.
        usage = [e for e in store.get_events(session_id) if e.type is EventType.TOKEN_USAGE_UPDATED]
        assert len(usage) == len([m for m in expected.messages.values() if any(_counts(m[1]))]), (
            path.name
        )
        assert sum(e.data["total_tokens"] for e in usage) == expected.total_tokens
        stats = store.query().get_session_stats(session_id)
        assert stats.token_totals.input_tokens == expected.input_tokens
        assert stats.token_totals.total_tokens == expected.total_tokens


def _counts(usage: dict[str, object]) -> list[object]:
    keys = ("input_tokens", "output_tokens", "cache_read_input_tokens")
    return [usage.get(k) for k in (*keys, "cache_creation_input_tokens")]


def test_sub_agent_transcripts_become_child_sessions(store: Store, root: Path) -> None:
    import_claude_code(store, [root])
    for path in transcript_files(root):
        session = store.get_session(expected_session_id(path))
        if path.parent.name == "subagents":
            owner = path.parent.parent
            parent_id = expected_session_id(owner.parent / (owner.name + ".jsonl"))
            assert session.parent_session_id == parent_id
            assert "subagent" in session.tags
        else:
            assert session.parent_session_id is None


def test_a_session_file_brings_its_sub_agents_and_a_sub_agent_file_alone_finds_its_parent(
    tmp_path: Path,
) -> None:
    session_file = _sample(tmp_path)
    child_file = next((session_file.parent / session_file.stem / "subagents").glob("*.jsonl"))
    with open_store("memory://") as store:
        report = import_claude_code(store, [session_file])
        assert report.sessions == 2
    with open_store("memory://") as store:
        import_claude_code(store, [child_file])
        (child,) = store.list_sessions()
        assert child.id == expected_session_id(child_file)
        assert child.parent_session_id == expected_session_id(session_file)


def test_a_session_folder_without_its_session_file_gives_its_sub_agents(tmp_path: Path) -> None:
    """A session's folder named on its own, or left in a project without its session
    file, holds transcripts: its sub-agents', children of the session the folder is
    named after."""
    session_file = _sample(tmp_path)
    folder = session_file.parent / session_file.stem
    (child_file,) = (folder / "subagents").glob("*.jsonl")
    with open_store("memory://") as store:
        report = import_claude_code(store, [folder])
        (child,) = store.list_sessions()
    assert (report.sessions, report.skipped) == (1, [])
    assert child.id == expected_session_id(child_file)
    assert child.parent_session_id == expected_session_id(session_file)

    session_file.unlink()  # the project now holds only the folder
    with open_store("memory://") as store:
        import_claude_code(store, [session_file.parent])
        (orphan,) = store.list_sessions()
    assert orphan.id == child.id
    assert orphan.parent_session_id == child.parent_session_id

    empty = tmp_path / "empty-session"
    (empty / "subagents").mkdir(parents=True)
    with open_store("memory://") as store, raises_code("validation_error"):
        import_claude_code(store, [empty])


def test_the_importers_are_importable_from_the_package() -> None:
    """``agent_sessions.importers`` re-exports every entry point and the report types,
    and nothing else public."""
    import agent_sessions.importers as package
    from agent_sessions.importers import adk, jsonl, langgraph, openai_agents, report

    assert package.import_claude_code is import_claude_code
    assert package.ImportReport is ImportReport
    assert package.SkippedLine is report.SkippedLine
    assert package.export_jsonl is jsonl.export_jsonl
    assert package.import_jsonl is jsonl.import_jsonl
    assert package.import_adk is adk.import_adk
    assert package.import_langgraph is langgraph.import_langgraph
    assert package.import_openai_agents is openai_agents.import_openai_agents
    public = {name for name, value in vars(package).items() if callable(value)}
    assert set(package.__all__) == {name for name in public if not name.startswith("_")}


def test_the_folder_of_projects_imports_every_project(tmp_path: Path) -> None:
    """The shape of ``~/.claude/projects``: project folders of session files."""
    files = [_sample(tmp_path, seed) for seed in (0, 1)]
    with open_store("memory://") as store:
        report = import_claude_code(store, [tmp_path / "projects"])
        ids = {s.id for s in store.list_sessions()}
    assert report.sessions == 4
    assert {expected_session_id(f) for f in files} <= ids


# cost that matches the bill -------------------------------------------------------------


def _largest(root: Path) -> Path:
    return max(transcript_files(root), key=lambda p: len(tally(p).messages))


def test_one_real_transcript_costs_what_an_independent_sum_over_its_lines_says(
    tmp_path: Path, root: Path
) -> None:
    path = _largest(root)
    expected = tally(path).cost()
    assert expected > 0
    with open_store("sqlite:///" + str(tmp_path / "one.db")) as store:
        import_claude_code(store, [path])
        session_id = expected_session_id(path)
        runs = store.list_runs(session_id)
        recorded = math.fsum(run.cost_usd or 0.0 for run in runs)
        query = store.query()
        summary = query.get_cost_summary(session_id=session_id)
        by_day = query.get_usage_by_day()
        usage_events = [
            e.data["cost_usd"]
            for e in store.get_events(session_id, type="token_usage_updated")
            if e.data.get("model") in PUBLISHED
        ]
        everything = query.get_cost_summary()
    assert recorded == pytest.approx(expected, rel=1e-12)
    assert summary.total_cost_usd == pytest.approx(expected, rel=1e-12)
    assert summary.unmapped_runs == 0
    assert math.fsum(usage_events) == pytest.approx(expected, rel=1e-9)
    # The file brought its sub-agents' transcripts: the daily rollup and the cost
    # summary agree on all of them, and with the independent sum over all their lines.
    files = [path, *sorted((path.parent / path.stem / "subagents").glob("*.jsonl"))]
    expected_all = math.fsum(tally(p).cost() for p in files)
    assert everything.total_cost_usd == pytest.approx(expected_all, rel=1e-12)
    assert math.fsum(day.cost_usd for day in by_day) == pytest.approx(expected_all, rel=1e-9)
    assert sum(day.run_count for day in by_day) == everything.run_count
    assert sum(day.input_tokens for day in by_day) == sum(tally(p).input_tokens for p in files)


def test_the_daily_rollup_and_the_cost_summary_agree_on_every_day(store: Store, root: Path) -> None:
    import_claude_code(store, [root])
    query = store.query()
    days = query.get_usage_by_day()
    assert days
    for day in {d.day for d in days}:
        start = datetime.fromisoformat(day + "T00:00:00+00:00")
        end = datetime.fromisoformat(day + "T23:59:59.999999+00:00")
        summary = query.get_cost_summary(since=start, until=end)
        rolled = math.fsum(d.cost_usd for d in days if d.day == day)
        assert rolled == pytest.approx(summary.total_cost_usd, rel=1e-9, abs=1e-12)
        assert sum(d.run_count for d in days if d.day == day) == summary.run_count
    assert math.fsum(d.cost_usd for d in days) == pytest.approx(
        query.get_cost_summary().total_cost_usd, rel=1e-9
    )


def test_the_built_in_table_has_a_model_rate_for_every_model_in_the_transcripts(
    root: Path,
) -> None:
    anthropic = DEFAULT_PRICING.providers["anthropic"]
    for model in models_in(root):
        assert any(model.startswith(name) for name in anthropic.models), model


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_the_built_in_table_prices_each_token_kind_at_the_published_rate(model: str) -> None:
    rates = DEFAULT_PRICING.rates_for("anthropic", model)
    assert rates is not None
    published = tuple(price / 1_000_000 for price in PUBLISHED[model])
    assert rates.input == pytest.approx(published[0])
    assert rates.output == pytest.approx(published[1])
    assert rates.cache_read == pytest.approx(published[2])
    assert rates.cache_creation == pytest.approx(published[3])
    assert rates.cache_creation_1h == pytest.approx(published[4])


@pytest.mark.parametrize(
    ("provider", "model", "dollars"),
    [
        # (input, output, cached input) per million tokens, as OpenAI publishes them.
        ("openai", "gpt-5", (1.25, 10.0, 0.125)),
        ("openai", "gpt-5-mini-2025-08-07", (0.25, 2.0, 0.025)),
        ("openai", "gpt-5.2", (1.75, 14.0, 0.175)),
        ("openai", "gpt-4.1", (2.0, 8.0, 0.50)),
        ("openai", "gpt-4o-mini", (0.15, 0.60, 0.075)),
        ("codex", "o4-mini", (1.10, 4.40, 0.275)),
    ],
)
def test_the_built_in_table_knows_the_openai_models_and_their_cached_input_rate(
    provider: str, model: str, dollars: tuple[float, float, float]
) -> None:
    million = {"input_tokens": 10**6, "output_tokens": 10**6, "cache_read_tokens": 10**6}
    assert calculate_cost(million, provider, model) == pytest.approx(sum(dollars))


def test_one_hour_cache_writes_cost_twice_the_input_rate_and_are_part_of_the_writes() -> None:
    usage = {"cache_creation_tokens": 1_000_000, "cache_creation_1h_tokens": 400_000}
    # Opus 4.6: 600K five-minute writes at $6.25, 400K one-hour writes at $10.
    assert calculate_cost(usage, "anthropic", "claude-opus-4-6") == pytest.approx(7.75)
    # More one-hour writes than writes is no cost beyond the writes themselves.
    odd = {"cache_creation_tokens": 10, "cache_creation_1h_tokens": 10**9}
    assert calculate_cost(odd, "anthropic", "claude-opus-4-6") == pytest.approx(10e-5)


def test_a_pricing_override_prices_the_import_and_importing_again_reprices(
    tmp_path: Path,
) -> None:
    session_file = _sample(tmp_path)
    flat = {"anthropic": {"input": 1e-6, "output": 1e-6}}
    with open_store("memory://") as store:
        import_claude_code(store, [session_file], pricing=flat)
        tokens = sum(
            run.token_usage["total_tokens"]
            for s in store.list_sessions()
            for run in store.list_runs(s.id)
        )
        overridden = store.query().get_cost_summary().total_cost_usd
        assert overridden == pytest.approx(tokens * 1e-6)
        again = import_claude_code(store, [session_file])
        assert (again.runs, again.events) == (0, 0)
        repriced = store.query().get_cost_summary().total_cost_usd
    independent = sum(tally(p).cost() for p in transcript_files(session_file.parent))
    assert repriced == pytest.approx(independent)
    assert repriced != pytest.approx(overridden)


# the mapping -----------------------------------------------------------------------------


def test_every_line_type_of_the_sample_is_mapped(tmp_path: Path) -> None:
    session_file = _sample(tmp_path)
    with open_store("memory://") as store:
        import_claude_code(store, [session_file])
        session_id = expected_session_id(session_file)
        events = store.get_events(session_id)
        runs = store.list_runs(session_id)
        session = store.get_session(session_id)
    kinds = Counter(e.type for e in events)
    assert kinds[EventType.MESSAGE_SENT] == 3  # three prompts
    assert kinds[EventType.RUN_CANCELLED] == 1
    assert kinds[EventType.TOOL_CALL_STARTED] == 4
    assert kinds[EventType.TOOL_CALL_COMPLETED] == 2
    assert kinds[EventType.TOOL_CALL_FAILED] == 2
    assert kinds[EventType.TOKEN_USAGE_UPDATED] == 6  # one per API message
    assert kinds[EventType.TURN_COMPLETED] == 2
    assert kinds[EventType.WORKSPACE_SNAPSHOT_TAKEN] == 2
    thinking = [e for e in events if e.data.get("kind") == "thinking"]
    assert [e.type for e in thinking] == [EventType.MESSAGE_STREAMED]
    failed = [e for e in events if e.type is EventType.TOOL_CALL_FAILED]
    assert [e.data["tool_name"] for e in failed] == ["Bash", "Edit"]
    starts = {e.data["tool_call_id"]: e for e in events if e.type is EventType.TOOL_CALL_STARTED}
    for result in [*failed, *(e for e in events if e.type is EventType.TOOL_CALL_COMPLETED)]:
        assert starts[result.data["tool_call_id"]].data["tool_name"] == result.data["tool_name"]
    raw = [e for e in events if "raw" in e.data]
    assert {e.data["kind"].split(":")[0] for e in raw} == {
        "file-history-snapshot",
        "progress",
        "system",
        "queue-operation",
    }
    # Timestamps are the lines' own; a snapshot line has its time inside it.
    lines = list(objects(session_file))
    assert events[0].timestamp == datetime.fromisoformat(lines[0]["snapshot"]["timestamp"])
    assert session.created_at == events[0].timestamp
    assert [r.status.value for r in runs] == ["completed", "cancelled", "completed"]
    assert runs[0].input == {"content": lines[2]["message"]["content"]}
    assert runs[0].output is not None
    assert "splits on every comma" in runs[0].output["content"]
    assert all(r.provider == "anthropic" for r in runs)
    assert runs[0].provider_metadata == {"model": "claude-opus-4-6"}
    assert runs[0].ended_at is not None
    assert runs[0].started_at < runs[0].ended_at <= runs[1].started_at
    assert runs[0].turn_count == 4
    usage_run = {e.run_id for e in events if e.type is EventType.TOKEN_USAGE_UPDATED}
    assert usage_run == {r.id for r in runs}


def test_a_grown_transcript_adds_only_its_new_lines(tmp_path: Path) -> None:
    main, _ = sample_session(3)
    path = tmp_path / "grown" / f"{main.session_id}.jsonl"
    main.write(path)
    with open_store("memory://") as store:
        first = import_claude_code(store, [path])
        main.prompt("One more thing: add a test for quoted commas.")
        main.assistant(
            [{"type": "text", "text": "Added."}],
            usage={
                "input_tokens": 2,
                "output_tokens": 9,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 0,
            },
        )
        main.write(path)
        second = import_claude_code(store, [path])
        runs = store.list_runs(f"cc-{main.session_id}")
        session = store.get_session(f"cc-{main.session_id}")
    assert (second.sessions, second.runs) == (0, 1)
    assert second.events == 3  # the prompt, the answer, its usage
    assert second.already_present == first.sessions + first.runs + first.events
    assert runs[-1].output == {"content": "Added."}
    assert session.updated_at == runs[-1].ended_at


def test_a_session_written_in_batches_is_the_session_written_at_once(tmp_path: Path) -> None:
    from io import StringIO

    from agent_sessions.importers.jsonl import export_jsonl

    session_file = _sample(tmp_path)
    exports = []
    for batch_size in (5000, 7):
        with open_store("memory://") as store:
            report = import_claude_code(store, [session_file], batch_size=batch_size)
            out = StringIO()
            export_jsonl(store, out)
            exports.append((report.to_dict(), out.getvalue()))
    assert exports[0] == exports[1]


def test_a_redacting_store_redacts_imported_transcripts(tmp_path: Path) -> None:
    builder = TranscriptBuilder("8f1c2d3e-0000-4000-8000-000000000001")
    builder.prompt("deploy with AWS key AKIAIOSFODNN7EXAMPLE please")
    path = builder.write(tmp_path / "secret" / "s.jsonl")
    with open_store("memory://", redaction=RedactionConfig()) as store:
        import_claude_code(store, [path])
        (session,) = store.list_sessions()
        stored = json.dumps(
            [e.to_dict() for e in store.get_events(session.id)]
            + [r.to_dict() for r in store.list_runs(session.id)]
        )
    assert "AKIAIOSFODNN7EXAMPLE" not in stored
    assert "REDACTED" in stored


def test_progress_is_reported_in_bytes_up_to_the_total(tmp_path: Path) -> None:
    session_file = _sample(tmp_path)
    calls: list[tuple[int, int]] = []
    with open_store("memory://") as store:
        import_claude_code(store, [session_file], progress=lambda d, t: calls.append((d, t)))
    total = sum(p.stat().st_size for p in transcript_files(session_file.parent))
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_mistyped_path_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with open_store("memory://") as store:
        with raises_code("validation_error") as info:
            import_claude_code(store, [_sample(tmp_path), tmp_path / "no-such-file.jsonl"])
        assert info.value.details["field"] == "paths"
        (tmp_path / "empty").mkdir()
        with raises_code("validation_error"):
            import_claude_code(store, [tmp_path / "empty"])
        assert store.list_sessions() == []


# hostile files ---------------------------------------------------------------------------


def _hostile_copy(tmp_path: Path, bad: dict[int, bytes]) -> tuple[Path, Path]:
    """The sample session file, and a copy with ``bad`` lines inserted before the
    given (0-based) positions of the original's lines."""
    clean = _sample(tmp_path)
    lines = clean.read_bytes().splitlines(keepends=True)
    hostile_lines: list[bytes] = []
    for index, line in enumerate(lines):
        if index in bad:
            hostile_lines.append(bad[index] + b"\n")
        hostile_lines.append(line)
    hostile = tmp_path / "hostile" / clean.name
    hostile.parent.mkdir(parents=True)
    hostile.write_bytes(b"".join(hostile_lines))
    return clean, hostile


def _event_ids(store: Store, path: Path) -> set[str]:
    """The ids of the events of the session of transcript ``path``."""
    return {e.id for e in store.get_events(expected_session_id(path))}


def test_hostile_lines_are_reported_by_line_number_and_the_rest_is_imported(
    tmp_path: Path,
) -> None:
    clean_file = _sample(tmp_path)
    valid = clean_file.read_bytes().splitlines()[5]
    bad = {
        1: valid[: len(valid) // 2],  # truncated
        3: bytes(range(128, 256)) * 3,  # binary garbage, not UTF-8
        6: b"[1, 2, 3]",  # JSON, not an object
        8: b'"just a string"',
        10: b'{"no_type": true}',
        12: b'{"type": "user", "uuid": "x"}',  # a user line without its message
        14: b'{"type": "assistant", "message": {"content": 7}}',
        16: b'{"type": "system", "content": 1e999}',  # not a finite number
        18: b"[" * 100_000,  # nested beyond any parser's depth
    }
    _, hostile = _hostile_copy(tmp_path / "h", bad)
    with open_store("memory://") as clean_store:
        import_claude_code(clean_store, [clean_file])
        clean_ids = _event_ids(clean_store, clean_file)
    with open_store("memory://") as store:
        report = import_claude_code(store, [hostile])
        hostile_ids = _event_ids(store, clean_file)
    expected_numbers = [index + 1 + position for position, index in enumerate(sorted(bad))]
    assert [s.line for s in report.skipped] == expected_numbers
    assert {s.path for s in report.skipped} == {str(hostile)}
    assert all(s.reason for s in report.skipped)
    assert hostile_ids == clean_ids
    assert any("not JSON" in s.reason for s in report.skipped)
    assert "skipped 9 lines" in report.lines()[0]


@pytest.mark.parametrize(
    ("options", "ceiling_mb"),
    [({"max_event_bytes": 1 << 20}, 20), ({}, 50)],  # with the default 16 MiB limit too
)
def test_a_100_mb_line_is_reported_and_memory_stays_bounded(
    tmp_path: Path, options: dict[str, int], ceiling_mb: int
) -> None:
    clean = _sample(tmp_path)
    lines = clean.read_bytes().splitlines(keepends=True)
    hostile = tmp_path / "big" / clean.name
    hostile.parent.mkdir()
    chunk = b'{"type":"progress","data":{"output":"' + b"x" * (1 << 20)
    with hostile.open("wb") as out:
        out.writelines(lines[:4])
        for _ in range(100):  # a 100 MB line, written without holding it
            out.write(chunk)
        out.write(b'"}}\n')
        out.writelines(lines[4:])
    with open_store("memory://", **options) as store:
        tracemalloc.start()
        try:
            report = import_claude_code(store, [hostile])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert [s.line for s in report.skipped] == [5]
        assert "over the limit" in report.skipped[0].reason
        assert report.sessions == 1
        imported = _event_ids(store, clean)
    with open_store("memory://") as store:
        import_claude_code(store, [clean])
        assert imported == _event_ids(store, clean)
    assert peak < ceiling_mb * (1 << 20), peak  # the line is 100 MB


def test_a_line_too_large_for_one_event_is_reported_not_fatal(tmp_path: Path) -> None:
    builder = TranscriptBuilder("8f1c2d3e-0000-4000-8000-000000000002")
    builder.prompt("small")
    builder.prompt("big " + "y" * 198_500)  # the line fits 200 KB, its event does not
    builder.prompt("small again")
    path = builder.write(tmp_path / "s" / "s.jsonl")
    with open_store("memory://", max_event_bytes=200_000) as store:
        report = import_claude_code(store, [path])
        assert [s.line for s in report.skipped] == [2]
        assert report.events == 2


def test_a_file_of_nothing_but_garbage_makes_no_session(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_bytes(b'# not a transcript\n\n[1]\n{"type": "user"}\n')
    with open_store("memory://") as store:
        report = import_claude_code(store, [path])
        assert store.list_sessions() == []
    assert [s.line for s in report.skipped] == [1, 3, 4]
    assert (report.sessions, report.runs, report.events) == (0, 0, 0)


_GARBAGE = st.one_of(
    st.binary(min_size=1, max_size=200).filter(lambda b: b"\n" not in b and b"\r" not in b),
    st.sampled_from([b"[]", b"null", b"12", b'"text"', b"{", b'{"type": 5}', b'{"type": ""}']),
    st.builds(
        lambda value: json.dumps(value).encode(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: st.lists(inner, max_size=3),
            max_leaves=8,
        ),
    ),
)


def _is_garbage(line: bytes) -> bool:
    """What the importer must refuse: not a JSON object with a non-empty string type."""
    if not line.strip():
        return False
    try:
        obj = json.loads(line)
    except ValueError:
        return True
    return not (isinstance(obj, dict) and isinstance(obj.get("type"), str) and obj["type"])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(bad=st.dictionaries(st.integers(0, 45), _GARBAGE.filter(_is_garbage), max_size=6))
def test_any_garbage_is_reported_where_it_is_and_the_rest_imported(
    tmp_path_factory: pytest.TempPathFactory, bad: dict[int, bytes]
) -> None:
    folder = tmp_path_factory.mktemp("garbage")
    clean_file, hostile = _hostile_copy(folder, bad)
    with open_store("memory://") as store:
        import_claude_code(store, [clean_file])
        clean_ids = _event_ids(store, clean_file)
    with open_store("memory://") as store:
        report = import_claude_code(store, [hostile])
        hostile_ids = _event_ids(store, clean_file)
    count = len(clean_file.read_bytes().splitlines())
    positions = sorted(i for i in bad if i < count)
    assert [s.line for s in report.skipped] == [i + 1 + n for n, i in enumerate(positions)]
    assert hostile_ids == clean_ids


def test_the_report_reads_as_a_summary() -> None:
    report = ImportReport(sessions=1, runs=2, events=30, already_present=4)
    assert report.lines() == [
        "imported 1 session, 2 runs, 30 events; 4 already present; nothing skipped"
    ]
    for line in range(1, 25):
        report.skip("t.jsonl", line, "not JSON")
    lines = report.lines()
    assert lines[0].endswith("skipped 24 lines:")
    assert lines[1] == "  t.jsonl:1: not JSON"
    assert lines[-1] == "  ... and 4 more"
    assert len(report.to_dict()["skipped"]) == 24
