"""Process targets for the multi-process artifact tests (spawned, so module-level)."""

from __future__ import annotations

import random
from collections.abc import Iterator

from agent_sessions.artifacts import FileArtifactStore

CHUNK = 64 * 1024


def payload(seed: int, size: int) -> bytes:
    """The bytes writer ``seed`` writes: distinct per writer, the same in every process."""
    return random.Random(seed).randbytes(size)


def in_chunks(data: bytes) -> Iterator[bytes]:
    # Many small writes keep each put busy long enough for writers to overlap.
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


def write_repeatedly(root: str, key: str, seed: int, size: int, rounds: int) -> int:
    store = FileArtifactStore(root)
    data = payload(seed, size)
    for _ in range(rounds):
        store.put(key, in_chunks(data), metadata={"writer": seed})
    return seed
