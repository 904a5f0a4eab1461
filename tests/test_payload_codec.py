"""Issue 11, class 1: any JSON value a caller stores comes back identical.

``eventsourcing``'s JSON transcoder decoded every map shaped like its envelope
(``{"_type_": ..., "_data_": ...}``) as a typed value, caller data included: the data
changed, and an unknown type name made a whole session unreadable and stopped every
query. The store's own codec (``store/payload_codec.py``) interprets nothing a caller
sent, on every backend; stores written with the old transcoder still read back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_sessions import Event, EventType, Run, Session, open_store
from agent_sessions.composition import Store
from agent_sessions.store.payload_codec import PayloadCodec

#: Maps a caller may well store (a serialised object of another library, a copy of an
#: ``eventsourcing`` payload) that the old transcoder took for its own.
ENVELOPES: list[Any] = [
    {"_type_": "datetime_iso", "_data_": "2024-01-01T00:00:00+00:00"},
    {"_type_": "uuid_hex", "_data_": "0123456789abcdef0123456789abcdef"},
    {"_type_": "decimal_str", "_data_": "1.5"},
    {"_type_": "no_such_type", "_data_": 1},
    {"_type_": "datetime_iso", "_data_": "not a date"},
    {"outer": [{"_type_": "no_such_type", "_data_": {"_type_": "x", "_data_": None}}]},
]

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]))
)
JSON_VALUES = st.recursive(
    JSON_SCALARS
    | st.sampled_from(ENVELOPES)
    | st.fixed_dictionaries({"_type_": st.text(max_size=12), "_data_": JSON_SCALARS}),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), inner, max_size=4)
    ),
    max_leaves=20,
)


def typed(value: Any) -> Any:
    """``value`` with every scalar tagged by its type: ``1 == 1.0 == True`` in Python,
    but a JSON value that comes back as another type has changed."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def add_session(store: Store, **fields: Any) -> Session:
    session = Session.new(agent_id="agent", **fields)
    store.save_session(session)
    return session


@pytest.mark.parametrize("value", ENVELOPES, ids=range(len(ENVELOPES)))
def test_envelope_shaped_values_read_back_identical_through_every_record(
    store: Store, value: Any
) -> None:
    session = add_session(store, metadata={"m": value}, context={"c": value})
    run = Run.new(session_id=session.id, input={"i": value}, metadata={"m": value})
    store.save_run(run)
    store.save_run(run.replace(output={"o": value}, error={"e": value}))
    event = Event.new(
        type=EventType.MESSAGE_RECEIVED,
        session_id=session.id,
        run_id=run.id,
        data={"content": "hi", "payload": value},
        metadata={"m": value},
    )
    [stored] = store.append_events([event])

    read = store.get_session(session.id)
    assert typed(read.metadata) == typed({"m": value})
    assert typed(read.context) == typed({"c": value})
    read_run = store.get_run(run.id)
    assert typed(read_run.input) == typed({"i": value})
    assert typed(read_run.output) == typed({"o": value})
    assert typed(read_run.error) == typed({"e": value})
    [read_event] = store.get_events(session.id)
    assert typed(read_event.data) == typed(event.data)
    assert typed(read_event.metadata) == typed(event.metadata)
    assert read_event == stored

    # The read models replay the same payloads: every query and the health check work.
    query = store.query()
    [found] = query.search_sessions(agent_id="agent").sessions
    assert typed(found.metadata) == typed(read.metadata)
    assert [r.id for r in query.search_runs(session_id=session.id).runs] == [run.id]
    assert [e.id for e in query.search_events(session_ids=[session.id]).events] == [event.id]
    assert store.maintenance().health_check() == []


@pytest.mark.parametrize("value", ENVELOPES, ids=range(len(ENVELOPES)))
def test_envelope_shaped_artifact_metadata_reads_back_identical(store: Store, value: Any) -> None:
    registry = store.registry
    registry.register(
        key="k",
        byte_size=1,
        checksum_sha256="0" * 64,
        storage_backend="file",
        storage_ref="file:///k",
        metadata={"m": value},
    )
    found = registry.get_by_key("k")
    assert found is not None
    assert typed(found.metadata) == typed({"m": value})
    assert store.maintenance().health_check() == []


def test_integers_beyond_64_bits_read_back_exactly(store: Store) -> None:
    big = [2**64, -(2**63) - 1, 10**300, -(10**4299)]
    session = add_session(store, metadata={"big": big})
    [event] = store.append_events(
        [Event.new(type=EventType.MESSAGE_SENT, session_id=session.id, data={"big": big})]
    )
    assert typed(store.get_session(session.id).metadata) == typed({"big": big})
    [read] = store.get_events(session.id)
    assert typed(read.data) == typed({"big": big}) == typed(event.data)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES)
def test_the_codec_returns_any_json_value_unchanged(value: Any) -> None:
    codec = PayloadCodec()
    now = datetime.now(UTC)
    state = {"timestamp": now, "data": value, "originator_topic": "t"}
    decoded = codec.decode(codec.encode(state))
    assert decoded["timestamp"] == now
    assert typed(decoded["data"]) == typed(value)


@settings(max_examples=150, deadline=None)
@given(value=JSON_VALUES)
def test_a_state_the_old_transcoder_wrote_reads_back_as_stored(value: Any) -> None:
    """Payloads of schema versions 1 and 2 are read without a rewrite: the timestamp
    envelope is opened, and caller data is what the old transcoder wrote (it wrote
    caller maps as they were; only reading them went wrong)."""
    old = JSONTranscoder()
    old.register(DatetimeAsISO())
    now = datetime.now(UTC)
    written = old.encode({"timestamp": now, "data": value})
    decoded = PayloadCodec().decode(written)
    assert decoded["timestamp"] == now
    assert typed(decoded["data"]) == typed(value)


@settings(max_examples=40, deadline=None)
@given(value=JSON_VALUES)
def test_any_json_value_survives_a_store_round_trip_and_a_reopen(
    tmp_path_factory: pytest.TempPathFactory, value: Any
) -> None:
    url = "sqlite:///" + str(tmp_path_factory.mktemp("codec") / "store.db")
    with open_store(url) as store:
        session = add_session(store, context={"v": value})
        store.append_events(
            [Event.new(type=EventType.MESSAGE_SENT, session_id=session.id, data={"v": value})]
        )
    with open_store(url) as store:
        assert typed(store.get_session(session.id).context) == typed({"v": value})
        [event] = store.get_events(session.id)
        assert typed(event.data) == typed({"v": value})


def test_a_stored_payload_is_plain_json(store: Store) -> None:
    """What the table holds is JSON anyone can read (``json`` accepts the leading space
    that marks exact integers), with caller maps as given."""
    session = add_session(store, metadata={"e": ENVELOPES[3], "big": 2**70})
    app = store.application
    [created] = app.recorder.select_events("session:" + session.id)
    state = json.loads(created.state)
    assert state["record"]["metadata"] == {"e": ENVELOPES[3], "big": 2**70}
    assert isinstance(state["timestamp"], str)
