"""The checkpoint saver's work on a sync ``Store``: LangGraph's operations as reads and
appends of a thread's log (``langgraph_codec`` says how each record is an event).

One implementation, sync, serves both faces of the saver: the sync methods call it
directly, the async ones run it in the async facade's executor. Keeping the logic in
one place is what keeps the two faces from drifting apart.

Costs: ``put`` and ``put_writes`` are one append (one transaction) each; the first
write to a new thread also creates its session. ``get_tuple`` by checkpoint id is a
lookup by event id, and the latest checkpoint is read from the end of the log
backwards; the pending writes of a checkpoint are read from the log after it (writes
always follow the checkpoint they belong to). ``list`` reads the thread's checkpoint
events and the writes after the oldest one it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..composition.store import Store
from ..domain.errors import ErrorCode, NotFoundError, ValidationError
from ..domain.event import Event
from ..domain.session import Session
from ..domain.statuses import SessionStatus
from .langgraph_codec import (
    AGENT_ID,
    CHECKPOINT_TYPE,
    WRITE_TYPE,
    Serde,
    StoredCheckpoint,
    checkpoint_event,
    checkpoint_event_id,
    decode_value,
    is_write,
    metadata_matches,
    pending_writes,
    stored_checkpoint,
    stored_metadata,
    write_event,
    write_events,
    write_key,
)

#: How many checkpoint events a backward scan for the latest one reads first (the
#: thread's last checkpoint is usually the one wanted), then at a time.
_FIRST_PAGE = 2
_PAGE = 64
#: LangGraph's prune strategies.
STRATEGIES = ("keep_latest", "delete")


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint read back, in LangGraph's terms (the saver makes the tuple)."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    checkpoint: dict[str, Any]
    metadata: dict[str, Any]
    parent_checkpoint_id: str | None
    pending_writes: list[tuple[str, str, Any]]


def thread_session(thread_id: str, **fields: Any) -> Session:
    """The session a new thread gets: active, agent ``langgraph``."""
    metadata = {"framework": AGENT_ID, **fields.pop("metadata", {})}
    return Session.new(agent_id=AGENT_ID, id=thread_id, metadata=metadata, **fields).replace(
        status=SessionStatus.ACTIVE
    )


class CheckpointLog:
    """LangGraph's checkpoint operations over a ``Store``. Thread-safe as the store is."""

    def __init__(self, store: Store, serde: Serde, special_idx: Mapping[str, int]) -> None:
        self.store = store
        self.serde = serde
        self._special_idx = dict(special_idx)

    # writes ---------------------------------------------------------------------------

    def _append(self, thread_id: str, events: Sequence[Event]) -> list[Event]:
        """Append, creating the thread's session on its first write."""
        try:
            return self.store.append_events(events)
        except NotFoundError as error:
            if error.code != ErrorCode.SESSION_NOT_FOUND:
                raise
        # A save of a session another writer has just created merges into it: no
        # conflict to handle here.
        self.store.save_session(thread_session(thread_id))
        return self.store.append_events(events)

    def put(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint: Mapping[str, Any],
        metadata: Mapping[str, Any],
        parent_checkpoint_id: str | None,
    ) -> None:
        event = checkpoint_event(
            self.serde,
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint=checkpoint,
            metadata=metadata,
            parent_checkpoint_id=parent_checkpoint_id,
        )
        self._append(thread_id, [event])

    def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> None:
        events = write_events(
            self.serde,
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint_id,
            writes=writes,
            task_id=task_id,
            task_path=task_path,
            special_idx=self._special_idx,
        )
        if events:
            self._append(thread_id, events)

    # reads ----------------------------------------------------------------------------

    def get(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> LoadedCheckpoint | None:
        """One checkpoint by id, or the thread's latest in the namespace."""
        if checkpoint_id is None:
            return self._latest(thread_id, checkpoint_ns)
        found = self.store.get_events_by_ids(
            [checkpoint_event_id(thread_id, checkpoint_ns, checkpoint_id)]
        )
        stored = next(
            (s for s in map(stored_checkpoint, found) if s and s.event.session_id == thread_id),
            None,
        )
        if stored is None:
            return None
        writes = self._writes_after(thread_id, stored.sequence)
        return self._loaded(thread_id, stored, writes.get(stored.key, []))

    def _latest(self, thread_id: str, checkpoint_ns: str) -> LoadedCheckpoint | None:
        """The latest checkpoint of the namespace -- the highest id on the first page of
        checkpoint events, read from the end of the log, that holds one (ids grow with
        time) -- and its pending writes, which follow it in the log. Two small indexed
        reads in the usual case (the thread's last checkpoint is the one wanted)."""
        before: int | None = None
        size = _FIRST_PAGE
        while True:
            page = self.store.get_events(
                thread_id, type=CHECKPOINT_TYPE, order="desc", limit=size, before=before
            )
            found = [
                s
                for s in map(stored_checkpoint, page)
                if s is not None and s.checkpoint_ns == checkpoint_ns
            ]
            if found:
                latest = max(found, key=lambda s: (s.checkpoint_id, s.sequence))
                writes = self._writes_after(thread_id, latest.sequence)
                return self._loaded(thread_id, latest, writes.get(latest.key, []))
            if len(page) < size:
                return None
            before, size = page[-1].sequence_number, _PAGE

    def _writes_after(self, thread_id: str, sequence: int) -> dict[tuple[str, str], list[Event]]:
        events = self.store.get_events(thread_id, type=WRITE_TYPE, after=sequence)
        grouped: dict[tuple[str, str], list[Event]] = {}
        for event in events:
            if is_write(event):
                grouped.setdefault(write_key(event), []).append(event)
        return grouped

    def _loaded(
        self, thread_id: str, stored: StoredCheckpoint, writes: Iterable[Event]
    ) -> LoadedCheckpoint:
        checkpoint = decode_value(self.serde, stored.event.data["checkpoint"])
        if not isinstance(checkpoint, dict):
            raise ValidationError(
                "a stored LangGraph checkpoint is not a map",
                details={"field": "checkpoint", "event_id": stored.event.id},
            )
        return LoadedCheckpoint(
            thread_id=thread_id,
            checkpoint_ns=stored.checkpoint_ns,
            checkpoint_id=stored.checkpoint_id,
            checkpoint=checkpoint,
            metadata=stored_metadata(self.serde, stored),
            parent_checkpoint_id=stored.parent_checkpoint_id,
            pending_writes=pending_writes(self.serde, writes),
        )

    def checkpoints(self, thread_id: str) -> list[StoredCheckpoint]:
        """Every checkpoint event of the thread, in log order."""
        events = self.store.get_events(thread_id, type=CHECKPOINT_TYPE)
        return [s for s in map(stored_checkpoint, events) if s is not None]

    def thread_ids(self) -> list[str]:
        """Every thread this store holds (sessions of agent ``langgraph``)."""
        return [session.id for session in self.store.list_sessions(agent_id=AGENT_ID)]

    def list(
        self,
        thread_id: str | None,
        *,
        checkpoint_ns: str | None,
        checkpoint_id: str | None,
        metadata_filter: Mapping[str, Any] | None,
        before_id: str | None,
        limit: int | None,
    ) -> list[LoadedCheckpoint]:
        """The matching checkpoints, newest (highest id) first, like LangGraph's own
        savers; across every thread when ``thread_id`` is ``None``."""
        threads = [thread_id] if thread_id is not None else self.thread_ids()
        selected: list[tuple[str, StoredCheckpoint, dict[str, Any]]] = []
        for thread in threads:
            for stored in self.checkpoints(thread):
                if checkpoint_ns is not None and stored.checkpoint_ns != checkpoint_ns:
                    continue
                if checkpoint_id is not None and stored.checkpoint_id != checkpoint_id:
                    continue
                if before_id is not None and not stored.checkpoint_id < before_id:
                    continue
                metadata = stored_metadata(self.serde, stored)
                if metadata_matches(metadata, metadata_filter):
                    selected.append((thread, stored, metadata))
        selected.sort(key=lambda item: (item[1].checkpoint_id, item[1].sequence), reverse=True)
        if limit is not None:
            selected = selected[: max(limit, 0)]
        writes: dict[str, dict[tuple[str, str], list[Event]]] = {}
        for thread in dict.fromkeys(item[0] for item in selected):
            oldest = min(s.sequence for t, s, _ in selected if t == thread)
            writes[thread] = self._writes_after(thread, oldest)
        return [
            self._loaded(thread, stored, writes[thread].get(stored.key, []))
            for thread, stored, _ in selected
        ]

    # deletes, copies, pruning ---------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Erase the thread's session and everything in it (idempotent)."""
        self.store.delete_session(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Prune the checkpoints the runs made (found by their correlation id, which
        is the LangGraph run id) and the pending writes against them, in every thread."""
        if not run_ids:
            return
        query = self.store.query()
        doomed: dict[str, set[tuple[str, str]]] = {}
        for run_id in dict.fromkeys(run_ids):
            cursor: str | None = None
            while True:
                page = query.search_events(
                    types=[CHECKPOINT_TYPE], correlation_id=run_id, cursor=cursor
                )
                for event in page.events:
                    stored = stored_checkpoint(event)
                    if stored is not None:
                        doomed.setdefault(event.session_id, set()).add(stored.key)
                cursor = page.cursor
                if cursor is None:
                    break
        for thread_id, keys in doomed.items():
            self._prune_keys(thread_id, keys.__contains__)

    def _prune_keys(self, thread_id: str, doomed: Callable[[tuple[str, str]], bool]) -> int:
        """Prune the checkpoints whose (namespace, id) ``doomed`` accepts, and every
        write against them; returns how many events went."""
        numbers = []
        for event in self.store.get_events(thread_id):
            stored = stored_checkpoint(event)
            if stored is not None:
                key = stored.key
            elif is_write(event):
                key = write_key(event)
            else:
                continue
            if doomed(key):
                numbers.append(event.sequence_number or 0)
        return self.store.prune_events(thread_id, numbers) if numbers else 0

    def prune(self, thread_ids: Sequence[str], strategy: str, keep: int = 1) -> int:
        """``keep_latest``: keep the newest ``keep`` checkpoints of each namespace (and
        their writes); ``delete``: prune every checkpoint and write. The session and
        the rest of its log stay; pruned events leave a marker, as retention's do."""
        if strategy not in STRATEGIES:
            raise ValidationError(
                f"unknown prune strategy {strategy!r}: use one of {', '.join(STRATEGIES)}",
                details={"field": "strategy", "value": strategy},
            )
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValidationError("keep must be a positive integer", details={"field": "keep"})
        pruned = 0
        for thread_id in dict.fromkeys(thread_ids):
            kept: set[tuple[str, str]] = set()
            if strategy == "keep_latest":
                by_ns: dict[str, list[StoredCheckpoint]] = {}
                for stored in self.checkpoints(thread_id):
                    by_ns.setdefault(stored.checkpoint_ns, []).append(stored)
                for group in by_ns.values():
                    group.sort(key=lambda s: (s.checkpoint_id, s.sequence), reverse=True)
                    kept.update(s.key for s in group[:keep])
            pruned += self._prune_keys(thread_id, _outside(kept))
        return pruned

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of the source thread to the target, under
        ids of the target (copying again adds nothing). A new target session is a child
        of the source's; an empty or unknown source copies nothing."""
        copies: list[Event] = []
        for event in self.store.get_events(source_thread_id):
            stored = stored_checkpoint(event)
            if stored is not None:
                copies.append(
                    event.replace(
                        id=checkpoint_event_id(
                            target_thread_id, stored.checkpoint_ns, stored.checkpoint_id
                        ),
                        session_id=target_thread_id,
                        sequence_number=None,
                    )
                )
            elif is_write(event):
                special = str(event.data.get("channel")) in self._special_idx
                copies.append(
                    write_event(
                        target_thread_id, dict(event.data), special=special, when=event.timestamp
                    )
                )
        if not copies:
            return
        existing = self.store.get_events(target_thread_id, limit=1)
        try:
            self.store.get_session(target_thread_id)
        except NotFoundError:
            if not existing:
                session = thread_session(
                    target_thread_id,
                    parent_session_id=source_thread_id,
                    metadata={"copied_from": source_thread_id},
                )
                self.store.write_session(session, [], copies)
                return
        self._append(target_thread_id, copies)


def _outside(kept: set[tuple[str, str]]) -> Callable[[tuple[str, str]], bool]:
    return lambda key: key not in kept
