"""Redaction covers every channel (issue 11, class 8): with it on, no default-pattern
secret planted anywhere a caller or a provider can put one comes back through any read
API, on memory, SQLite and PostgreSQL; and no error or log line carries one.

Each test has a control: the same planting without redaction finds every needle, so a
channel that silently stopped reaching storage cannot make a test pass.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_loop_support import raises_code
from secret_channels import (
    PlantingProvider,
    Secrets,
    cut_secret_stderr,
    plant_through_manager,
    plant_through_store,
    read_everything,
    render,
)

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventPipeline,
    RedactionConfig,
    Run,
    Session,
    SessionManager,
    SessionStore,
    Store,
    open_store,
)
from agent_sessions.domain.error_payload import ERROR_TEXT_MAX_BYTES, truncate_error_text
from agent_sessions.domain.event_builder import EventContext
from agent_sessions.domain.record_redactor import (
    IDENTIFIER_FIELDS,
    REDACTED_FIELDS,
    RecordRedactor,
)
from agent_sessions.services.redacting_store import RedactingStore, redacting_store
from agent_sessions.testing import SessionStoreContract

ON = RedactionConfig()


@pytest.fixture
def artifacts_url(tmp_path: Path) -> str:
    return "file://" + str(tmp_path / "blobs")


@pytest.fixture
def redacting(store_url: str, artifacts_url: str) -> Iterator[Store]:
    with open_store(store_url, artifacts=artifacts_url, redaction=ON) as store:
        yield store


@pytest.fixture
def plain(store_url: str, artifacts_url: str) -> Iterator[Store]:
    with open_store(store_url, artifacts=artifacts_url) as store:
        yield store


# the rule: which record fields are scanned ----------------------------------------------


@pytest.mark.parametrize("record", [Session, Run, Event])
def test_every_text_or_json_field_of_a_record_is_scanned_or_an_identifier(
    record: type,
) -> None:
    """A field added to a record later must be classified, not silently unscanned."""
    hints = typing.get_type_hints(record)
    text_fields = {
        f.name
        for f in dataclasses.fields(record)
        if any(word in str(hints[f.name]) for word in ("str", "dict"))
    }
    classified = set(REDACTED_FIELDS[record]) | set(IDENTIFIER_FIELDS[record])
    assert text_fields - classified == set()
    assert not set(REDACTED_FIELDS[record]) & set(IDENTIFIER_FIELDS[record])


def test_a_run_is_redacted_in_every_field_and_keeps_its_identity() -> None:
    s = Secrets()
    run = Run.new(session_id="ses_1", input={"p": s("input")}, metadata={s("key"): 1})
    run = run.set_error({"message": s("error"), "provider_error": {"stderr": s("stderr")}})
    run = run.with_provider("claude", {"x": s("provider")})
    run = run.replace(token_usage={"input_tokens": 1, "note": s("usage")})
    redacted, report = RecordRedactor(ON).redact(run)
    assert s.found_in(render(redacted)) == []
    assert (redacted.id, redacted.session_id, redacted.status, redacted.ended_at) == (
        run.id,
        run.session_id,
        run.status,
        run.ended_at,
    )
    assert report.count == 6
    assert sorted(report.fields) == sorted(
        ["input", "metadata", "error", "provider_metadata", "token_usage"]
    )
    assert RecordRedactor(ON).redact(redacted)[0] is redacted


def test_a_session_keeps_its_timestamps_when_redacted() -> None:
    s = Secrets()
    session = Session.new(agent_id="a", context={"c": s("context")}, tags=[s("tag")])
    redacted, _ = RecordRedactor(ON).redact(session)
    assert (redacted.created_at, redacted.updated_at) == (session.created_at, session.updated_at)
    assert s.found_in(render(redacted)) == []
    assert RecordRedactor(RedactionConfig(enabled=False)).redact(session)[0] is session


# through the store ---------------------------------------------------------------------


def test_every_write_of_a_redacting_store_is_redacted(redacting: Store) -> None:
    s = Secrets()
    session_id = plant_through_store(redacting, s, artifacts=True)
    assert s.found_in(read_everything(redacting, [session_id])) == []


def test_control_without_redaction_every_channel_reaches_the_reads(plain: Store) -> None:
    s = Secrets()
    session_id = plant_through_store(plain, s, artifacts=True)
    # An execution result's provider metadata is not stored by ``flush`` (it is
    # redacted all the same, for stores that keep it).
    stored = set(s.needles) - {"flush.provider_metadata"}
    assert s.found_in(read_everything(plain, [session_id])) == sorted(stored)


def test_redacting_store_wraps_any_store(plain: Store) -> None:
    s = Secrets()
    wrapped = RedactingStore(plain, ON)
    assert isinstance(wrapped, SessionStore)
    session_id = plant_through_store(wrapped, s)
    assert s.found_in(read_everything(plain, [session_id])) == []
    assert redacting_store(plain, None) is plain
    assert redacting_store(plain, RedactionConfig(enabled=False)) is plain
    assert redacting_store(wrapped, ON) is wrapped


def test_open_store_refuses_a_redaction_that_is_not_a_config() -> None:
    with raises_code("validation_error") as info:
        open_store("memory://", redaction={"enabled": True})  # type: ignore[arg-type]
    assert info.value.details["field"] == "redaction"


# through the session manager -----------------------------------------------------------


def _manager_on(store: SessionStore, redaction: RedactionConfig | None = None) -> typing.Any:
    def make(provider: PlantingProvider) -> SessionManager:
        return SessionManager(store, provider, redaction=redaction)

    return make


def test_a_session_manager_over_a_redacting_store_leaks_nothing(
    redacting: Store, caplog: pytest.LogCaptureFixture
) -> None:
    s = Secrets()
    with caplog.at_level(logging.DEBUG):
        session_ids, results = plant_through_manager(_manager_on(redacting), s)
    assert s.found_in(read_everything(redacting, session_ids)) == []
    assert s.found_in(render([r.errors for r in results])) == []
    assert s.found_in(caplog.text) == []
    assert any(r.rejected_events for r in results)  # the refusal was met, and redacted


def test_a_session_manager_with_redaction_over_a_plain_store_leaks_nothing(
    plain: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """``SessionManager(store, redaction=...)``: sessions and runs too, not only events."""
    s = Secrets()
    with caplog.at_level(logging.DEBUG):
        session_ids, results = plant_through_manager(_manager_on(plain, ON), s)
    assert s.found_in(read_everything(plain, session_ids)) == []
    assert s.found_in(render([r.errors for r in results])) == []
    assert s.found_in(caplog.text) == []


def test_control_a_plain_session_manager_stores_every_channel(plain: Store) -> None:
    s = Secrets()
    session_ids, _ = plant_through_manager(_manager_on(plain), s)
    # All but the refused event, which is never stored, and the cut secrets, whose
    # needle goes with the rest of the cut word.
    stored = set(s.needles) - {c for c in s.needles if c.endswith((".refused", "_cut"))}
    assert s.found_in(read_everything(plain, session_ids)) == sorted(stored)


# errors and logs ------------------------------------------------------------------------


def test_a_refusal_quoting_a_secret_is_redacted_before_it_is_raised_or_logged(
    redacting: Store, caplog: pytest.LogCaptureFixture
) -> None:
    s = Secrets()
    session = Session.new(agent_id="a")
    redacting.save_session(session)
    pipeline = EventPipeline(redacting)
    context = EventContext(session_id=session.id)
    bad = {"type": "message_sent", "data": {s("key", shape=4).encode(): 1}}
    with caplog.at_level(logging.DEBUG), raises_code("validation_error") as info:
        pipeline.process(bad, context)
    assert s.found_in(render(info.value, info.value.details, str(info.value))) == []
    with caplog.at_level(logging.DEBUG), raises_code("validation_error") as batch:
        pipeline.process_batch([{"type": "message_sent"}, bad], context)
    assert batch.value.details["index"] == 1
    assert s.found_in(render(batch.value, batch.value.details)) == []
    assert s.found_in(caplog.text) == []
    # A context's own redaction applies to its refusals too.
    plain_pipeline = EventPipeline(open_store("memory://"))
    with raises_code("validation_error") as own:
        plain_pipeline.prepare(bad, EventContext(session_id="ses_x", redaction=ON))
    assert s.found_in(render(own.value)) == []


def _reads_quoting(store: typing.Any, secret_id: str) -> list[typing.Callable[[], object]]:
    """Reads whose refusal or not-found quotes the id they were given."""
    query = store.query()
    return [
        lambda: store.get_session(secret_id),
        lambda: store.get_run(secret_id),
        lambda: store.list_runs(secret_id, status=secret_id),
        lambda: store.get_events(secret_id, type=secret_id),
        lambda: store.history(secret_id),
        lambda: store.fork(secret_id, at=0),
        lambda: query.get_session_stats(secret_id),
        lambda: query.export_session(secret_id),
        lambda: query.search_sessions(status=secret_id),
    ]


def test_a_read_refusing_a_secret_id_says_so_redacted(redacting: Store, plain: Store) -> None:
    s = Secrets()
    secret_id = "x-" + s("id", shape=0)
    for read in _reads_quoting(redacting, secret_id):
        with pytest.raises(AgentSessionsError) as refused:
            read()
        assert s.found_in(render(refused.value, refused.value.details, str(refused.value))) == []
    # Control: without redaction the same reads quote the id, so each is a channel.
    quoted = 0
    for read in _reads_quoting(plain, secret_id):
        with pytest.raises(AgentSessionsError) as refused:
            read()
        quoted += bool(s.found_in(render(refused.value, refused.value.details, str(refused.value))))
    assert quoted == len(_reads_quoting(plain, secret_id))


def test_a_redacting_wrapper_redacts_the_errors_of_its_reads(plain: Store) -> None:
    s = Secrets()
    wrapped = RedactingStore(plain, ON)
    with raises_code("session_not_found") as missing:
        wrapped.get_session("x-" + s("id", shape=0))
    assert s.found_in(render(missing.value, missing.value.details, str(missing.value))) == []


def test_a_pipeline_over_a_redacting_store_redacts_with_its_config(redacting: Store) -> None:
    s = Secrets()
    session = Session.new(agent_id="a")
    redacting.save_session(session)
    event = EventPipeline(redacting).prepare(
        {"type": "message_received", "data": {"content": s("c"), "role": 5}},
        EventContext(session_id=session.id),
    )
    # Redacted before validation: the shape warning quoting ``content`` holds no secret.
    assert s.found_in(render(event)) == []
    assert event.metadata["_redaction"]["count"] == 1


# cut text -------------------------------------------------------------------------------


def test_stderr_cut_inside_a_word_loses_the_whole_word() -> None:
    s = Secrets()
    secret = s("cut", shape=0)
    text, cut = truncate_error_text(cut_secret_stderr(secret))
    assert cut is True
    assert s.found_in(text) == []
    assert text.endswith(" ")
    assert len(text.encode()) <= ERROR_TEXT_MAX_BYTES
    # A cut that falls between words keeps everything before it.
    exact = "a " * (ERROR_TEXT_MAX_BYTES // 2) + "tail"
    assert truncate_error_text(exact)[0] == "a " * (ERROR_TEXT_MAX_BYTES // 2)


# the switch keeps every promise of the port -------------------------------------------


class TestRedactingOpenStoreContract(SessionStoreContract):
    """``open_store(url, redaction=...)``: the same store, only redacting."""

    supports_pruning = True

    @pytest.fixture
    def store(self) -> Iterator[SessionStore]:
        with open_store("memory://", redaction=ON) as store:
            yield store


class TestRedactingStoreContract(SessionStoreContract):
    """``RedactingStore`` around another store."""

    supports_pruning = True

    @pytest.fixture
    def store(self) -> Iterator[SessionStore]:
        with RedactingStore(open_store("memory://"), ON) as store:
            yield store
