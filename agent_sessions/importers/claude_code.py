"""``import_claude_code``: Claude Code transcripts into a store, as sessions, runs and
events (the mapping is ``claude_code_fold.py``'s; ``docs/importing.md`` has the table).

Reading is line by line with a ceiling on each line (``line_reader.py``), so memory
never depends on the input: a malformed line (not JSON, not an object, not UTF-8,
missing what its type needs, longer than the store's ``max_event_bytes``) is reported
with its file and line number and skipped, and the import goes on.

Writing is idempotent, which is what makes importing a file twice add nothing: every
id is derived from the transcript, a new session is written whole in one transaction
(``write_session``; a session of more than ``batch_size`` events is written as its
first batch, then appended to), and a session that is already stored only gets the
events it lacks (``append_events`` skips the ids it has) and its records brought up to
date when the file has grown since.

The store's views are caught up as the import goes (after each file and each batch,
``view_follower.py``), so the first query after a bulk import does not wait for the
whole import to be replayed into them.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ..composition import Store
from ..domain.errors import NotFoundError, ValidationError
from ..domain.event import Event
from ..domain.pricing import PricingTable
from ..domain.run import Run
from ..domain.session import Session
from ..ports.payload_limit import DEFAULT_MAX_EVENT_BYTES
from .claude_code_fold import (
    EPOCH,
    Draft,
    TranscriptFold,
    UnusableLine,
    session_id_for,
    source_id,
)
from .line_reader import bounded_lines
from .report import ImportReport
from .transcript_files import Transcript, discover
from .view_follower import ViewFollower

#: Events written per transaction at most: a session up to this size is written whole
#: in one.
DEFAULT_BATCH = 5000
#: Lines read to find a transcript's ``sessionId`` (it is on the first or second).
_IDENTITY_SCAN = 1000
#: Room left in ``max_event_bytes`` for what the store wraps around an event's data.
_ENVELOPE = 2048
#: Progress is reported every this many lines (and at the end of each file).
_PROGRESS_EVERY = 256

ProgressFn = Callable[[int, int], None]


def import_claude_code(
    store: Store,
    paths: Sequence[str | Path],
    *,
    progress: ProgressFn | None = None,
    pricing: PricingTable | Mapping[str, Any] | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> ImportReport:
    """Import the transcripts ``paths`` name: ``.jsonl`` files, project folders, or the
    folder of projects (``~/.claude/projects``); a session's sub-agent transcripts
    (``<session>/subagents/*.jsonl``) become its child sessions.

    ``progress(done, total)`` is called as the files are read, in bytes. ``pricing``
    prices each message's tokens into the runs' ``cost_usd`` (default: the built-in
    list prices, ``domain/pricing.py``); importing again with another table reprices
    the runs. A path that does not exist is ``validation_error`` before anything is
    written."""
    table = PricingTable.coerce(pricing)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(
            "batch_size must be a positive integer", details={"field": "batch_size"}
        )
    transcripts = discover(paths)
    meter = _Meter(progress, sum(t.size for t in transcripts))
    max_bytes = _max_event_bytes(store)
    report = ImportReport()
    follower = ViewFollower(store)
    for transcript in transcripts:
        _import_file(store, transcript, table, max_bytes, batch_size, report, meter, follower)
        follower.written()
        meter.file_done()
    follower.finish()
    meter.finish()
    return report


class _Meter:
    """Bytes read so far, reported to ``progress``."""

    def __init__(self, progress: ProgressFn | None, total: int) -> None:
        self._progress = progress
        self.total = total
        self.done = 0
        self._lines = 0

    def add(self, size: int) -> None:
        self.done += size
        self._lines += 1
        if self._progress is not None and self._lines % _PROGRESS_EVERY == 0:
            self._progress(min(self.done, self.total), self.total)

    def file_done(self) -> None:
        if self._progress is not None:
            self._progress(min(self.done, self.total), self.total)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress(self.total, self.total)


def _max_event_bytes(store: Store) -> int:
    value = getattr(store.application.mapper, "max_event_bytes", DEFAULT_MAX_EVENT_BYTES)
    return int(value)


def _identity(transcript: Transcript, limit: int) -> tuple[str, str | None]:
    """The transcript's Claude ``sessionId`` and, for a sub-agent's, its ``agentId``:
    from the first line that names a session, else from the file names."""
    session: str | None = None
    agent: str | None = None
    with transcript.path.open("rb") as stream:
        for line in itertools.islice(bounded_lines(stream, limit), _IDENTITY_SCAN):
            if line.content is None:
                continue
            try:
                obj = orjson.loads(line.content)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict) and source_id(obj.get("sessionId")) is not None:
                session = source_id(obj.get("sessionId"))
                agent = source_id(obj.get("agentId"))
                break
    in_subagents = transcript.parent is not None or transcript.path.parent.name == "subagents"
    if agent is None and in_subagents:
        agent = source_id(transcript.path.stem.removeprefix("agent-"))
    if session is None:
        owner = transcript.parent if transcript.parent is not None else None
        if owner is None and in_subagents:
            owner = transcript.path.parent.parent
        session = source_id((owner or transcript.path).stem) or "unnamed"
    return session, agent


def _import_file(
    store: Store,
    transcript: Transcript,
    table: PricingTable,
    max_bytes: int,
    batch_size: int,
    report: ImportReport,
    meter: _Meter,
    follower: ViewFollower,
) -> None:
    path = str(transcript.path)
    try:
        claude_session, agent = _identity(transcript, max_bytes)
        modified = datetime.fromtimestamp(transcript.path.stat().st_mtime, UTC)
    except OSError as error:
        report.skip(path, 0, f"cannot read the file: {error.strerror or error}")
        return
    session_id = session_id_for(claude_session, agent)
    fold = TranscriptFold(
        session_id,
        pricing=table,
        parent_session_id=None if agent is None else session_id_for(claude_session, None),
        claude_session_id=claude_session,
        agent_id=agent,
        file_name=transcript.path.name,
        fallback_time=modified if modified > EPOCH else EPOCH,
    )
    writer = _SessionWriter(store, session_id, report, path, batch_size, max_bytes, follower)
    try:
        with transcript.path.open("rb") as stream:
            for line in bounded_lines(stream, max_bytes):
                meter.add(line.size)
                if line.content is None:
                    report.skip(
                        path,
                        line.number,
                        f"a line of {line.size:,} bytes, over the limit of {max_bytes:,} "
                        "(the store's max_event_bytes)",
                    )
                    continue
                if not line.content.strip():
                    continue
                try:
                    obj = orjson.loads(line.content)
                except orjson.JSONDecodeError as error:
                    report.skip(path, line.number, f"not JSON: {str(error)[:200]}")
                    continue
                digest = hashlib.sha256(line.content).hexdigest()[:16]
                try:
                    drafts = fold.add(obj, line.number, digest)
                except UnusableLine as error:
                    report.skip(path, line.number, str(error)[:200])
                    continue
                writer.add(drafts, fold)
    except OSError as error:
        report.skip(path, 0, f"cannot read the file: {error.strerror or error}")
        return
    writer.add(fold.finish(), fold)
    writer.close(fold.session(), fold.runs())


class _SessionWriter:
    """Writes one transcript's session: whole in one transaction when it is new and
    fits a batch, else in batches; only what is missing when it is already stored."""

    def __init__(
        self,
        store: Store,
        session_id: str,
        report: ImportReport,
        path: str,
        batch_size: int,
        max_bytes: int,
        follower: ViewFollower,
    ) -> None:
        self._store = store
        self._follower = follower
        self._session_id = session_id
        self._report = report
        self._path = path
        self._batch_size = batch_size
        self._max_bytes = max_bytes
        self._pending: list[Event] = []
        try:
            self._stored: Session | None = store.get_session(session_id)
        except NotFoundError:
            self._stored = None
        #: Written by this import in batches (its first batch made it).
        self._started: Session | None = None

    def add(self, drafts: list[Draft], fold: TranscriptFold) -> None:
        for draft in drafts:
            size = _approximate_size(draft.event)
            if size > self._max_bytes - _ENVELOPE:
                self._report.skip(
                    self._path,
                    draft.line,
                    f"its {draft.event.type.value} event of about {size:,} bytes is over the "
                    f"store's max_event_bytes of {self._max_bytes:,}",
                )
                continue
            self._pending.append(draft.event)
        if len(self._pending) >= self._batch_size:
            self._flush(fold.session())
            self._follower.written()  # a long transcript is caught up batch by batch

    def _flush(self, session: Session) -> None:
        events, self._pending = self._pending, []
        if not events:
            return
        if self._stored is None and self._started is None:
            self._store.write_session(session, [], events)
            self._started = session
            self._report.sessions += 1
            self._report.events += len({event.id for event in events})
            return
        self._append(events)

    def _append(self, events: list[Event]) -> None:
        before = self._store.get_latest_sequence(self._session_id)
        stored = self._store.append_events(events)
        new = {e.id for e in stored if e.sequence_number is not None and e.sequence_number > before}
        self._report.events += len(new)
        self._report.already_present += len({e.id for e in stored}) - len(new)

    def close(self, session: Session, runs: list[Run]) -> None:
        if self._stored is None and self._started is None:
            # New, and it fits one batch: all of it in one transaction. A file with
            # nothing importable in it (every line skipped) makes no session.
            events, self._pending = self._pending, []
            if not events and not runs:
                return
            self._store.write_session(session, runs, events)
            self._report.sessions += 1
            self._report.runs += len(runs)
            self._report.events += len({event.id for event in events})
            return
        self._append_rest()
        for run in runs:
            self._save_run(run)
        if self._started is not None:
            if session != self._started:
                self._store.save_session(session)
            return
        assert self._stored is not None
        self._report.already_present += 1
        merged = _merged_session(self._stored, session)
        if merged != self._stored:
            self._store.save_session(merged)

    def _append_rest(self) -> None:
        events, self._pending = self._pending, []
        if events:
            self._append(events)

    def _save_run(self, run: Run) -> None:
        try:
            stored: Run | None = self._store.get_run(run.id)
        except NotFoundError:
            stored = None
        if stored is None:
            self._store.save_run(run)
            self._report.runs += 1
            return
        self._report.already_present += 1
        if stored != run:
            # The transcript grew (or is priced with another table) since: the run is
            # what the file says now.
            self._store.save_run(run)


def _merged_session(stored: Session, imported: Session) -> Session:
    """A stored session brought up to date with its transcript: its metadata keys and
    its last activity; what a user changed (status, tags, other metadata) stays."""
    return stored.replace(
        metadata={**stored.metadata, **imported.metadata},
        updated_at=max(stored.updated_at, imported.updated_at),
    )


def _approximate_size(event: Event) -> int:
    """The encoded size of an event's payload, near enough to refuse the ones the
    store would (``max_event_bytes``) before a whole batch is refused for them."""
    return len(orjson.dumps(event.data)) + len(orjson.dumps(event.metadata)) + 512


__all__ = ["DEFAULT_BATCH", "ProgressFn", "import_claude_code"]
