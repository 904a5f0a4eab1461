"""A LangGraph checkpoint saver on agent-sessions: ``AgentSessionsSaver``.

::

    with AgentSessionsSaver.from_url("sqlite:///agent_sessions.db") as saver:
        graph = builder.compile(checkpointer=saver)
        graph.invoke(inputs, {"configurable": {"thread_id": "t-1"}})

A thread is one session; its checkpoints and pending writes are events on the
session's log (``langgraph_codec``), so they have the store's guarantees and show up in
its queries, replay, command line and retention like any other session's events.

Sync and async: the sync methods run on the sync ``Store``; the async ones run the same
code in the async facade's executor (``AsyncStore.call``) when the saver is built on an
``AsyncStore``, else in a worker thread. One implementation (``langgraph_log``) serves
both, so the two faces cannot disagree.

LangGraph is the ``langgraph`` extra: without it, importing this module raises
``dependency_not_available`` naming the extra.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

from ..composition.async_store import AsyncStore, open_async_store
from ..composition.open_store import open_store
from ..composition.store import Store
from ..domain.errors import DependencyNotAvailable, ValidationError

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        get_checkpoint_id,
        get_checkpoint_metadata,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise DependencyNotAvailable(
        "the LangGraph adapter needs the langgraph extra: pip install 'agent-sessions[langgraph]'",
        details={
            "extra": "langgraph",
            "dependency": "langgraph",
            "missing": exc.name or "langgraph",
            "module": "AgentSessionsSaver",
        },
    ) from exc

from .langgraph_log import CheckpointLog, LoadedCheckpoint

_T = TypeVar("_T")


def _configurable(config: RunnableConfig | None, field: str = "config") -> dict[str, Any]:
    configurable = (config or {}).get("configurable")
    if not isinstance(configurable, dict):
        raise ValidationError(f"{field} must have a 'configurable' map", details={"field": field})
    return configurable


def _thread_id(configurable: dict[str, Any], field: str = "config") -> str:
    thread_id = configurable.get("thread_id")
    if thread_id is None or thread_id == "":
        raise ValidationError(
            f"{field} needs configurable.thread_id", details={"field": "thread_id"}
        )
    return str(thread_id)


def _tuple(loaded: LoadedCheckpoint) -> CheckpointTuple:
    parent = None
    if loaded.parent_checkpoint_id is not None:
        parent = {
            "configurable": {
                "thread_id": loaded.thread_id,
                "checkpoint_ns": loaded.checkpoint_ns,
                "checkpoint_id": loaded.parent_checkpoint_id,
            }
        }
    return CheckpointTuple(
        config={
            "configurable": {
                "thread_id": loaded.thread_id,
                "checkpoint_ns": loaded.checkpoint_ns,
                "checkpoint_id": loaded.checkpoint_id,
            }
        },
        checkpoint=loaded.checkpoint,  # type: ignore[arg-type]
        metadata=loaded.metadata,  # type: ignore[arg-type]
        parent_config=parent,  # type: ignore[arg-type]
        pending_writes=loaded.pending_writes,
    )


class AgentSessionsSaver(BaseCheckpointSaver[str]):
    """LangGraph's ``BaseCheckpointSaver`` over an agent-sessions store.

    ``store`` is a ``Store`` (``open_store``), an ``AsyncStore`` (``open_async_store``;
    the async methods then run in its executor) or a store URL (the saver opens the
    store, and ``close()`` closes it). ``serde`` serializes checkpoints and writes
    (LangGraph's default: ``JsonPlusSerializer``)."""

    def __init__(
        self,
        store: Store | AsyncStore | str,
        *,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self._owned = isinstance(store, str)
        self._async: AsyncStore | None = None
        if isinstance(store, str):
            sync_store = open_store(store)
        elif isinstance(store, AsyncStore):
            self._async = store
            sync_store = store.sync_store
        elif isinstance(store, Store):
            sync_store = store
        else:
            raise ValidationError(
                "store must be a Store, an AsyncStore or a store URL", details={"field": "store"}
            )
        self.log = CheckpointLog(sync_store, self.serde, WRITES_IDX_MAP)

    @property
    def store(self) -> Store:
        """The sync store below (sessions, queries, retention of the threads)."""
        return self.log.store

    # construction ---------------------------------------------------------------------

    @classmethod
    @contextmanager
    def from_url(
        cls, url: str | None = None, *, serde: SerializerProtocol | None = None
    ) -> Iterator[AgentSessionsSaver]:
        """A saver on the store at ``url`` (``open_store``'s default when ``None``),
        closed when the block ends."""
        with open_store(url) as store:
            yield cls(store, serde=serde)

    @classmethod
    @asynccontextmanager
    async def afrom_url(
        cls, url: str | None = None, *, serde: SerializerProtocol | None = None
    ) -> AsyncIterator[AgentSessionsSaver]:
        """A saver on the async facade of the store at ``url``, closed when the block
        ends: ``async with AgentSessionsSaver.afrom_url(url) as saver: ...``."""
        async with open_async_store(url) as store:
            yield cls(store, serde=serde)

    def close(self) -> None:
        """Close the store if the saver opened it (from a URL); else leave it open."""
        if self._owned:
            self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Channel versions as LangGraph's SQLite and PostgreSQL savers make them
        (a zero-padded counter and a random fraction), so a thread imported from either
        carries on here, and one exported to them would too. Integer versions (the
        base class's, ``InMemorySaver``'s) are read as their counter."""
        if current is None:
            counter = 0
        elif isinstance(current, int):
            counter = current
        else:
            counter = int(str(current).split(".")[0])
        return f"{counter + 1:032}.{random.random():016}"

    # sync -----------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = _configurable(config)
        loaded = self.log.get(
            _thread_id(configurable),
            str(configurable.get("checkpoint_ns") or ""),
            get_checkpoint_id(config),
        )
        return None if loaded is None else _tuple(loaded)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,  # noqa: A002 - LangGraph's parameter name
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        yield from map(_tuple, self._list(config, filter, before, limit))

    def _list(
        self,
        config: RunnableConfig | None,
        metadata_filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> builtins.list[LoadedCheckpoint]:
        thread_id: str | None = None
        checkpoint_ns: str | None = None
        checkpoint_id: str | None = None
        if config is not None:
            configurable = _configurable(config)
            thread_id = _thread_id(configurable)
            ns = configurable.get("checkpoint_ns")
            checkpoint_ns = None if ns is None else str(ns)
            checkpoint_id = get_checkpoint_id(config)
        before_id = None if before is None else get_checkpoint_id(before)
        return self.log.list(
            thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint_id,
            metadata_filter=metadata_filter,
            before_id=before_id,
            limit=limit,
        )

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = _configurable(config)
        thread_id = _thread_id(configurable)
        checkpoint_ns = str(configurable.get("checkpoint_ns") or "")
        self.log.put(
            thread_id,
            checkpoint_ns,
            checkpoint,
            get_checkpoint_metadata(config, metadata),
            configurable.get("checkpoint_id"),
        )
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = _configurable(config)
        checkpoint_id = configurable.get("checkpoint_id")
        if not checkpoint_id:
            raise ValidationError(
                "put_writes needs configurable.checkpoint_id", details={"field": "checkpoint_id"}
            )
        self.log.put_writes(
            _thread_id(configurable),
            str(configurable.get("checkpoint_ns") or ""),
            str(checkpoint_id),
            writes,
            task_id,
            task_path,
        )

    def delete_thread(self, thread_id: str) -> None:
        self.log.delete_thread(str(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.log.delete_for_runs([str(run_id) for run_id in run_ids])

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.log.copy_thread(str(source_thread_id), str(target_thread_id))

    def prune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep: int = 1
    ) -> None:
        """LangGraph's ``prune``; ``keep`` (ours) keeps the newest ``keep`` checkpoints
        of each namespace instead of one. Pruned events go as retention's do: the
        sequence numbers of the rest never change and a marker records the gap."""
        self.log.prune([str(thread_id) for thread_id in thread_ids], strategy, keep)

    # async ----------------------------------------------------------------------------

    async def _run(self, work: Callable[[], _T]) -> _T:
        if self._async is not None:
            return await self._async.call(work)
        return await asyncio.to_thread(work)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._run(functools.partial(self.get_tuple, config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,  # noqa: A002 - LangGraph's parameter name
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        loaded = await self._run(functools.partial(self._list, config, filter, before, limit))
        for item in loaded:
            yield _tuple(item)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._run(
            functools.partial(self.put, config, checkpoint, metadata, new_versions)
        )

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._run(functools.partial(self.put_writes, config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self._run(functools.partial(self.delete_thread, thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._run(functools.partial(self.delete_for_runs, run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._run(functools.partial(self.copy_thread, source_thread_id, target_thread_id))

    async def aprune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep: int = 1
    ) -> None:
        await self._run(functools.partial(self.prune, thread_ids, strategy=strategy, keep=keep))


__all__ = ["AgentSessionsSaver"]
