"""JSON Lines export and import (issue 13): export, import into another store, export
again gives the same bytes (ids, timestamps, sequence numbers and pruned gaps kept, on
SQLite and PostgreSQL); importing into a store that has the session adds only what it
lacks; a bad line is reported by its number and the rest imported.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from agent_loop_support import raises_code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_server import fresh_schema, with_options
from transcript_gen import transcript_root

from agent_sessions import Event, Run, Session, open_store
from agent_sessions.composition import Store
from agent_sessions.domain.event_types import EventType
from agent_sessions.domain.statuses import RunStatus, SessionStatus
from agent_sessions.importers.claude_code import import_claude_code
from agent_sessions.importers.jsonl import export_jsonl, import_jsonl


@pytest.fixture(params=["sqlite", "postgres"])
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "target.db")
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


def export_text(store: Store, session_ids: list[str] | None = None) -> str:
    out = io.StringIO()
    export_jsonl(store, out, session_ids)
    return out.getvalue()


def _register(store: Store, key: str, session_id: str, *, deleted: bool = False) -> None:
    store.registry.register(
        key=key,
        byte_size=12,
        checksum_sha256="0" * 64,
        storage_backend="file",
        storage_ref=f"file:///blobs/{key}",
        session_id=session_id,
        content_type="text/plain",
        metadata={"note": "caf\u00e9 \u2028 \x00"},
    )
    if deleted:
        store.registry.soft_delete(key)


# byte-identical round trips ----------------------------------------------------------------


def test_export_import_export_is_byte_identical_for_imported_transcripts(
    tmp_path: Path, target_url: str
) -> None:
    root = transcript_root(tmp_path)
    with open_store("sqlite:///" + str(tmp_path / "source.db")) as source:
        import_claude_code(source, [root])
        sessions = source.list_sessions()
        first = sessions[0].id
        numbers = [e.sequence_number for e in source.get_events(first)]
        # Gaps in the middle and at the end: pruned events keep their numbers unused.
        assert source.prune_events(first, [numbers[1], numbers[2], numbers[-1]]) == 3
        _register(source, "report.txt", first)
        _register(source, "old.txt", first, deleted=True)
        exported = export_text(source)
    with open_store(target_url) as target:
        report = import_jsonl(target, io.StringIO(exported), path="export.jsonl")
        assert report.skipped == []
        assert report.sessions == len(sessions)
        assert export_text(target) == exported
        assert target.get_latest_sequence(first) == numbers[-1]
        again = import_jsonl(target, io.StringIO(exported))
        assert (again.sessions, again.runs, again.events) == (0, 0, 0)
        assert again.already_present == report.sessions + report.runs + report.events + 2
        assert export_text(target) == exported


def test_the_output_is_canonical_json_lines(tmp_path: Path) -> None:
    with open_store("memory://") as store:
        import_claude_code(store, [transcript_root(tmp_path)])
        text = export_text(store)
        count = export_jsonl(store, io.StringIO())
    lines = text.split("\n")
    assert lines[-1] == ""
    assert len(lines) - 1 == count
    assert text.isascii()
    for line in lines[:-1]:
        obj = json.loads(line)
        assert line == json.dumps(obj, sort_keys=True, separators=(",", ":"))
    assert json.loads(lines[0]) == {"format": "agent-sessions", "kind": "header", "version": 1}
    kinds = [json.loads(line)["kind"] for line in lines[1:-1]]
    assert kinds[0] == "session"
    assert set(kinds) == {"session", "run", "event"}


def test_exporting_chosen_sessions_and_an_unknown_one(tmp_path: Path) -> None:
    with open_store("memory://") as store:
        import_claude_code(store, [transcript_root(tmp_path)])
        sessions = store.list_sessions()
        chosen = export_text(store, [sessions[-1].id])
        session_lines = [line for line in chosen.splitlines() if '"kind":"session"' in line]
        assert len(session_lines) == 1
        assert sessions[-1].id in session_lines[0]
        with raises_code("session_not_found"):
            export_jsonl(store, io.StringIO(), ["no-such-session"])
        with raises_code("validation_error"):
            export_jsonl(store, io.StringIO(), "a-string-not-a-list")  # type: ignore[arg-type]


# generated sessions -----------------------------------------------------------------------

_IDS = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_:", min_size=1, max_size=12)
_JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
_MAPS = st.dictionaries(st.text(max_size=8), _JSON, max_size=4)
_MOMENTS = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2030, 1, 1),
    timezones=st.sampled_from([UTC, None]).map(lambda tz: tz or UTC),
)


@st.composite
def _sessions(draw: st.DrawFn) -> dict[str, Any]:
    """A session with runs, events (some pruned afterwards) and artifacts."""
    session_id = "s-" + draw(_IDS)
    created = draw(_MOMENTS)
    session = Session(
        id=session_id,
        agent_id=draw(_IDS),
        status=draw(st.sampled_from(list(SessionStatus))),
        metadata=draw(_MAPS),
        context=draw(_MAPS),
        tags=tuple(draw(st.lists(_IDS, max_size=3))),
        created_at=created,
        updated_at=created + timedelta(seconds=draw(st.integers(0, 10**6))),
        deleted_at=draw(st.none() | st.just(created + timedelta(days=1))),
    )
    runs = [
        Run(
            id=f"{session_id}-run-{index}",
            session_id=session_id,
            status=draw(st.sampled_from(list(RunStatus))),
            input=draw(st.none() | _MAPS),
            output=draw(st.none() | _MAPS),
            metadata=draw(_MAPS),
            turn_count=draw(st.integers(0, 50)),
            token_usage={"input_tokens": draw(st.integers(0, 10**9)), "extra": draw(_JSON)},
            started_at=draw(_MOMENTS),
            ended_at=draw(st.none() | _MOMENTS),
            provider=draw(st.none() | _IDS),
            provider_metadata=draw(_MAPS),
            cost_usd=draw(st.none() | st.floats(0, 1e6)),
        )
        for index in range(draw(st.integers(0, 3)))
    ]
    run_ids = [None, *(run.id for run in runs)]
    events = [
        Event(
            id=f"{session_id}-evt-{index}",
            type=draw(st.sampled_from(list(EventType))),
            session_id=session_id,
            timestamp=draw(_MOMENTS),
            run_id=draw(st.sampled_from(run_ids)),
            data=draw(_MAPS),
            metadata=draw(_MAPS),
            provider=draw(st.none() | _IDS),
            correlation_id=draw(st.none() | _IDS),
        )
        for index in range(draw(st.integers(0, 12)))
    ]
    pruned = draw(st.sets(st.integers(1, len(events)), max_size=4)) if events else set()
    artifacts = draw(st.lists(st.tuples(_IDS, st.booleans()), max_size=2, unique_by=lambda a: a[0]))
    return {
        "session": session,
        "runs": runs,
        "events": events,
        "pruned": sorted(pruned),
        "artifacts": artifacts,
    }


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(stories=st.lists(_sessions(), min_size=1, max_size=3, unique_by=lambda s: s["session"].id))
def test_any_generated_sessions_round_trip_byte_identical(stories: list[dict[str, Any]]) -> None:
    with open_store("memory://") as source, open_store("memory://") as target:
        for story in stories:
            source.write_session(story["session"], story["runs"], story["events"])
            if story["pruned"]:
                source.prune_events(story["session"].id, story["pruned"])
            for key, deleted in story["artifacts"]:
                _register(
                    source, f"{story['session'].id}/{key}", story["session"].id, deleted=deleted
                )
        exported = export_text(source)
        report = import_jsonl(target, io.StringIO(exported))
        assert report.skipped == []
        assert export_text(target) == exported
        import_jsonl(target, io.StringIO(exported))
        assert export_text(target) == exported


# importing into a store that has the session ------------------------------------------------


def test_importing_into_an_existing_session_appends_only_what_it_lacks(tmp_path: Path) -> None:
    with open_store("memory://") as source:
        import_claude_code(source, [transcript_root(tmp_path)])
        session = source.list_sessions()[0]
        full = export_text(source, [session.id])
    lines = full.splitlines(keepends=True)
    events = [i for i, line in enumerate(lines) if '"kind":"event"' in line]
    runs = [i for i, line in enumerate(lines) if '"kind":"run"' in line]
    # An earlier copy: the last run and the last three events were not there yet.
    dropped = {runs[-1], *events[-3:]}
    kept = [line for i, line in enumerate(lines) if i not in dropped]
    header = json.loads(kept[1])
    header["last_sequence"] = len(events) - 3
    kept[1] = json.dumps(header) + "\n"
    partial = "".join(kept)
    with open_store("memory://") as target:
        first = import_jsonl(target, io.StringIO(partial))
        assert (first.sessions, first.runs, first.events) == (1, len(runs) - 1, len(events) - 3)
        second = import_jsonl(target, io.StringIO(full))
        assert (second.sessions, second.runs, second.events) == (0, 1, 3)
        assert second.already_present == 1 + (len(runs) - 1) + (len(events) - 3)
        stored = target.get_events(session.id)
        assert [e.sequence_number for e in stored] == list(range(1, len(events) + 1))
        assert len({e.id for e in stored}) == len(events)


# bad input --------------------------------------------------------------------------------


def test_bad_lines_are_reported_by_number_and_the_rest_is_imported(tmp_path: Path) -> None:
    with open_store("memory://") as source:
        import_claude_code(source, [transcript_root(tmp_path)])
        sessions = source.list_sessions()[:2]
        good = export_text(source, [s.id for s in sessions])
    lines = good.splitlines(keepends=True)
    second_session = next(
        i for i, line in enumerate(lines) if '"kind":"session"' in line and sessions[1].id in line
    )
    foreign_event = lines[second_session + 1 :]
    foreign = next(line for line in foreign_event if '"kind":"event"' in line)
    bad = {
        2: "not json at all\n",
        3: "[1, 2]\n",
        4: '{"kind": "mystery"}\n',
        5: '{"kind": "event", "record": {"id": "x"}}\n',  # a record that does not validate
        6: foreign,  # an event of another session among the first's
        7: '{"kind": "header", "format": "agent-sessions", "version": 99}\n',
        8: '{"kind": "run"}\n',
    }
    mixed: list[str] = []
    expected: list[int] = []
    for index, line in enumerate(lines):
        if index in bad:
            mixed.append(bad[index])
            expected.append(len(mixed))
        mixed.append(line)
    with open_store("memory://") as target, open_store("memory://") as clean:
        report = import_jsonl(target, io.StringIO("".join(mixed)), path="mixed.jsonl")
        import_jsonl(clean, io.StringIO(good))
        assert [s.line for s in report.skipped] == expected
        assert {s.path for s in report.skipped} == {"mixed.jsonl"}
        assert export_text(target) == export_text(clean) == good


def test_an_event_of_a_session_before_its_session_line_is_reported() -> None:
    event = Event.new(type="message_sent", session_id="s1", data={"content": "hi"})
    record = event.to_dict() | {"sequence_number": 1}
    text = json.dumps({"kind": "event", "record": record}) + "\n"
    with open_store("memory://") as store:
        report = import_jsonl(store, io.StringIO(text))
        assert [(s.line, "without a valid session line" in s.reason) for s in report.skipped] == [
            (1, True)
        ]
        assert store.list_sessions() == []
