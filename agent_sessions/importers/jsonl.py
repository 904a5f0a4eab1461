"""Sessions as JSON Lines: ``export_jsonl`` writes them, ``import_jsonl`` reads them into
the same store or another.

The format (``docs/importing.md``): one JSON object per line with a ``kind``. A
``header`` line first (``format``, ``version``); then, per session, a ``session`` line
(its record, and ``last_sequence``: the number of its last event, pruned or not), its
``run`` lines (by start time, then id), its ``event`` lines (by sequence number) and its
``artifact`` lines (registry metadata by key; the blobs stay in their artifact store).
Records are ``to_dict()`` of the library's records, ids, timestamps and sequence numbers
included.

Output is canonical (sorted keys, no spaces, ASCII with escapes, ``\\n`` after each
line), so exporting, importing into an empty store and exporting again gives the same
bytes. Sequence numbers survive too, gaps included: a session whose events were pruned
is rebuilt with the same numbers, the missing ones pruned again (``docs/decisions.md``).

Importing a session that the store already has adds only what it lacks: events whose
ids are not stored (numbered after the session's last event), runs and artifacts not
registered; stored records are left as they are.

The store's views are caught up as the import goes (after its sessions,
``view_follower.py``), so the first query after a bulk import does not wait for the
whole import to be replayed into them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..composition import Store
from ..domain.aggregates import ArtifactAggregate, artifact_stream_id
from ..domain.artifact import Artifact
from ..domain.errors import AgentSessionsError, NotFoundError, ValidationError
from ..domain.event import Event
from ..domain.event_types import EventType
from ..domain.record_redactor import RecordRedactor
from ..domain.run import Run
from ..domain.session import Session
from ..ports.payload_limit import DEFAULT_MAX_EVENT_BYTES
from .line_reader import bounded_lines
from .report import ImportReport
from .view_follower import ViewFollower

FORMAT = "agent-sessions"
VERSION = 1
#: Events read from the store per query while exporting.
_PAGE = 1000
#: Room beyond ``max_event_bytes`` for a line's JSON around one record.
_LINE_SLACK = 64 * 1024
_KINDS = ("header", "session", "run", "event", "artifact")


def _line(obj: dict[str, Any]) -> str:
    """One canonical line: the same object is always the same bytes."""
    return (
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        + "\n"
    )


def header() -> dict[str, Any]:
    return {"kind": "header", "format": FORMAT, "version": VERSION}


# ------------------------------------------------------------------------------ export


def export_jsonl(store: Store, out: TextIO, session_ids: Sequence[str] | None = None) -> int:
    """Write the sessions (``None``: every session, oldest first) to ``out``; returns
    the number of lines written. An unknown session id is ``session_not_found`` before
    anything is written."""
    if session_ids is not None:
        if isinstance(session_ids, str):
            raise ValidationError(
                "session_ids must be a list of ids", details={"field": "session_ids"}
            )
        ids = list(dict.fromkeys(session_ids))
        for session_id in ids:
            store.get_session(session_id)
    else:
        ids = _all_session_ids(store)
    written = 0
    out.write(_line(header()))
    written += 1
    for session_id in ids:
        for obj in _session_lines(store, session_id):
            out.write(_line(obj))
            written += 1
    return written


def _all_session_ids(store: Store) -> list[str]:
    """Every session's id, oldest first (the index's order: creation time, then id)."""
    ids: list[str] = []
    while True:
        page = store.list_sessions(limit=_PAGE, offset=len(ids))
        ids.extend(session.id for session in page)
        if len(page) < _PAGE:
            return ids


def _session_lines(store: Store, session_id: str) -> Iterator[dict[str, Any]]:
    session = store.get_session(session_id)
    yield {
        "kind": "session",
        "last_sequence": store.get_latest_sequence(session_id),
        "record": session.to_dict(),
    }
    runs = sorted(store.list_runs(session_id), key=lambda run: (run.started_at, run.id))
    for run in runs:
        yield {"kind": "run", "record": run.to_dict()}
    after = 0
    while True:
        page = store.get_events(session_id, after=after, limit=_PAGE)
        for event in page:
            yield {"kind": "event", "record": event.to_dict()}
        if len(page) < _PAGE:
            break
        after = page[-1].sequence_number or after
    artifacts = store.registry.list_by_session(session_id, include_deleted=True)
    for artifact in sorted(artifacts, key=lambda a: a.key):
        yield {"kind": "artifact", "record": artifact.to_dict()}


# ------------------------------------------------------------------------------ import


@dataclass
class _Group:
    """One session's lines, as read."""

    session: Session
    last_sequence: int
    line: int
    runs: list[Run] = field(default_factory=list)
    events: list[tuple[int, Event]] = field(default_factory=list)
    artifacts: list[tuple[int, Artifact]] = field(default_factory=list)


class _Skip(Exception):
    """A line that cannot be imported; the message says why."""


def import_jsonl(store: Store, source: TextIO, *, path: str = "<stdin>") -> ImportReport:
    """Read sessions written by :func:`export_jsonl` from ``source`` into ``store``.
    A line that cannot be read (not JSON, not an object, an unknown ``kind``, a record
    that does not validate, a line of another session than the one being read) is
    reported with ``path`` and its line number and skipped; the rest is imported."""
    report = ImportReport()
    follower = ViewFollower(store)
    limit = _max_event_bytes(store) + _LINE_SLACK
    group: _Group | None = None
    for line in bounded_lines(source, limit):
        if line.content is None:
            report.skip(path, line.number, f"a line of {line.size:,} characters, over {limit:,}")
            continue
        if not line.content.strip():
            continue
        try:
            kind, obj = _parse(line.content)
            if kind == "header":
                _check_header(obj)
            elif kind == "session":
                if group is not None:
                    _write_group(store, group, report, path)
                    follower.written()
                group = None
                group = _session_group(obj, line.number)
            else:
                _add_to_group(group, kind, obj, line.number)
        except _Skip as skip:
            report.skip(path, line.number, _clip(str(skip)))
        except AgentSessionsError as error:
            report.skip(path, line.number, _clip(f"{error.code}: {error.message}"))
    if group is not None:
        _write_group(store, group, report, path)
    follower.finish()
    return report


def _clip(text: str) -> str:
    return text if len(text) <= 300 else text[:299] + "\u2026"


def _max_event_bytes(store: Store) -> int:
    return int(getattr(store.application.mapper, "max_event_bytes", DEFAULT_MAX_EVENT_BYTES))


def _parse(text: str) -> tuple[str, dict[str, Any]]:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise _Skip(f"not JSON: {error}") from None
    if not isinstance(obj, dict):
        raise _Skip(f"a JSON {type(obj).__name__}, not an object")
    kind = obj.get("kind")
    if kind not in _KINDS:
        raise _Skip(f"unknown kind {kind!r} (expected one of {', '.join(_KINDS)})")
    return str(kind), obj


def _check_header(obj: dict[str, Any]) -> None:
    if obj.get("format") != FORMAT:
        raise _Skip(f"a header of another format: {obj.get('format')!r}")
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > VERSION:
        raise _Skip(f"format version {version!r}: this library reads up to {VERSION}; upgrade it")


def _record(obj: dict[str, Any]) -> dict[str, Any]:
    record = obj.get("record")
    if not isinstance(record, dict):
        raise _Skip(f"a {obj['kind']} line without its record")
    return record


def _session_group(obj: dict[str, Any], number: int) -> _Group:
    session = Session.from_dict(_record(obj))
    last = obj.get("last_sequence", 0)
    if not isinstance(last, int) or isinstance(last, bool) or last < 0:
        raise _Skip("last_sequence must be a non-negative integer")
    return _Group(session=session, last_sequence=last, line=number)


def _add_to_group(group: _Group | None, kind: str, obj: dict[str, Any], number: int) -> None:
    record = _record(obj)
    if group is None:
        raise _Skip(f"a {kind} line without a valid session line before it")
    owner = record.get("session_id")
    if owner != group.session.id:
        raise _Skip(f"a {kind} of session {owner!r} among the lines of {group.session.id!r}")
    if kind == "run":
        group.runs.append(Run.from_dict(record))
    elif kind == "event":
        group.events.append((number, Event.from_dict(record)))
    else:
        group.artifacts.append((number, Artifact.from_dict(record)))


def _write_group(store: Store, group: _Group, report: ImportReport, path: str) -> None:
    """One session's records into the store: new, in one transaction (plus one that
    prunes the gaps it had); already stored, only what it lacks."""
    try:
        _write_records(store, group, report)
    except AgentSessionsError as error:
        message = f"session {group.session.id} not imported: {error.code}: {error.message}"
        report.skip(path, group.line, _clip(message))
        return
    for number, artifact in group.artifacts:
        try:
            _register(store, artifact, report)
        except AgentSessionsError as error:
            report.skip(path, number, _clip(f"{error.code}: {error.message}"))


def _write_records(store: Store, group: _Group, report: ImportReport) -> None:
    session_id = group.session.id
    try:
        store.get_session(session_id)
        exists = True
    except NotFoundError:
        exists = False
    events = [event for _, event in group.events]
    if not exists:
        padded, gaps = _with_gaps(group.session, events, group.last_sequence)
        store.write_session(group.session, group.runs, padded)
        if gaps:
            store.prune_events(session_id, gaps)
        report.sessions += 1
        report.runs += len(group.runs)
        report.events += len(events)
        return
    report.already_present += 1
    for run in group.runs:
        try:
            store.get_run(run.id)
            report.already_present += 1
        except NotFoundError:
            store.save_run(run)
            report.runs += 1
    if events:
        before = store.get_latest_sequence(session_id)
        stored = store.append_events(events)
        new = {e.id for e in stored if (e.sequence_number or 0) > before}
        report.events += len(new)
        report.already_present += len({e.id for e in stored}) - len(new)


def _with_gaps(
    session: Session, events: list[Event], last_sequence: int
) -> tuple[list[Event], list[int]]:
    """The events in sequence order with a placeholder at each number the export does
    not hold (pruned in the source) up to ``last_sequence``, and those numbers: written
    in that order, then the placeholders pruned, every event keeps its number. Events
    without a number, or numbered twice, keep the order they came in and get new
    numbers (there is no numbering to keep)."""
    numbers = [event.sequence_number for event in events]
    if any(n is None for n in numbers) or len(set(numbers)) != len(numbers):
        return events, []
    ordered = sorted(events, key=lambda event: event.sequence_number or 0)
    top = max([last_sequence, *(n for n in numbers if n is not None)], default=0)
    by_number = {event.sequence_number: event for event in ordered}
    padded: list[Event] = []
    gaps: list[int] = []
    for number in range(1, top + 1):
        event = by_number.get(number)
        if event is None:
            gaps.append(number)
            event = Event(
                id=f"{session.id}:pruned:{number}",
                type=EventType.MESSAGE_STREAMED,
                session_id=session.id,
                timestamp=session.created_at,
                data={"content": "", "kind": "pruned"},
            )
        padded.append(event)
    return padded, gaps


def _register(store: Store, artifact: Artifact, report: ImportReport) -> None:
    """Register the artifact's metadata as exported (its id, times and deletion), unless
    its key is registered already; a redacting store redacts the metadata, as its
    registry does."""
    if store.redaction is not None and store.redaction.enabled:
        metadata = RecordRedactor(store.redaction).redact_json(artifact.metadata)
        artifact = artifact.replace(metadata=metadata)
    created = False

    def change(aggregate: ArtifactAggregate | None) -> ArtifactAggregate | None:
        nonlocal created
        if aggregate is not None and not aggregate.forgotten:
            return aggregate
        created = True
        if aggregate is None:
            return ArtifactAggregate.start(artifact)
        aggregate.register_again(artifact)
        return aggregate

    store.save_aggregate(artifact_stream_id(artifact.key), change, operation="import_artifact")
    if not created:
        report.already_present += 1


__all__ = ["FORMAT", "VERSION", "export_jsonl", "header", "import_jsonl"]
