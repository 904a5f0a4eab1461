"""``AgentSessionsSession`` beside the SDK's own ``SQLiteSession`` on the same work.

Both write to a SQLite file in the same temporary folder, and do the same things: add
``--items`` Responses items in batches of ``--batch`` (a turn: a user message, a tool
call and its output, an answer), read the newest 20 items ``--reads`` times (what a
``Runner`` with ``SessionSettings(limit=20)`` does each turn), read the whole history,
and pop ``--pops`` items. Throughput in items per second (reads: items returned), each
figure beside the SDK's, and our figure divided by the SDK's. With ``--postgres URL``
our session on PostgreSQL is a third column (the SDK's SQLAlchemy session needs
SQLAlchemy, which this project does not install).

    .venv/bin/python benchmarks/adapter_openai_agents.py [--items 2000] [--batch 4]
        [--reads 500] [--pops 50] [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agents import SQLiteSession

from agent_sessions import open_async_store
from agent_sessions.adapters.openai_agents import AgentSessionsSession

WINDOW = 20


def turn(n: int) -> list[Any]:
    """One turn's items, as the SDK stores them."""
    call_id = f"call_{n}"
    return [
        {"role": "user", "content": f"Question {n}: what is the weather in Paris?"},
        {
            "type": "function_call",
            "call_id": call_id,
            "name": "weather",
            "arguments": '{"city": "Paris"}',
            "id": f"fc_{n}",
        },
        {"type": "function_call_output", "call_id": call_id, "output": "18°C, sunny"},
        {
            "type": "message",
            "id": f"msg_{n}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "18°C and sunny.", "annotations": []}],
        },
    ]


async def timed(work: Callable[[], Awaitable[int]]) -> float:
    """Items per second of ``work`` (which returns how many items it handled)."""
    start = time.perf_counter()
    count = await work()
    return count / (time.perf_counter() - start)


async def measure(session: Any, items: int, batch: int, reads: int, pops: int) -> dict[str, float]:
    stream = [item for n in range(items // 4 + 1) for item in turn(n)][:items]

    async def add() -> int:
        for start in range(0, len(stream), batch):
            await session.add_items(stream[start : start + batch])
        return len(stream)

    async def window() -> int:
        got = 0
        for _ in range(reads):
            got += len(await session.get_items(limit=WINDOW))
        return got

    async def whole() -> int:
        return len(await session.get_items())

    async def pop() -> int:
        popped = 0
        for _ in range(pops):
            popped += (await session.pop_item()) is not None
        return popped

    figures = {
        "add_items": await timed(add),
        f"get_items(limit={WINDOW})": await timed(window),
        "get_items() whole": await timed(whole),
        "pop_item": await timed(pop),
    }
    assert len(await session.get_items()) == len(stream) - pops
    return figures


async def sdk_figures(folder: Path, args: argparse.Namespace) -> dict[str, float]:
    session = SQLiteSession("bench", folder / "sdk.db")
    try:
        return await measure(session, args.items, args.batch, args.reads, args.pops)
    finally:
        session.close()


async def our_figures(url: str, args: argparse.Namespace) -> dict[str, float]:
    async with open_async_store(url) as store:
        session = AgentSessionsSession(f"bench-{uuid.uuid4().hex[:8]}", store=store)
        return await measure(session, args.items, args.batch, args.reads, args.pops)


def postgres_url(url: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=2):
            return url
    except Exception:
        print(f"(PostgreSQL at {url} does not answer: its column is left out)")
        return None


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        theirs = await sdk_figures(Path(folder), args)
        ours = await our_figures("sqlite:///" + str(Path(folder) / "ours.db"), args)
        pg = postgres_url(args.postgres) if args.postgres else None
        ours_pg = await our_figures(pg, args) if pg else None
    print(
        f"{args.items} items in batches of {args.batch}, {args.reads} reads of the newest "
        f"{WINDOW}, {args.pops} pops; items/s, one run"
    )
    head = f"{'operation':<22}{'SQLiteSession':>15}{'ours (SQLite)':>15}{'ratio':>8}"
    if ours_pg:
        head += f"{'ours (PostgreSQL)':>19}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for name, baseline in theirs.items():
        line = f"{name:<22}{baseline:>15,.0f}{ours[name]:>15,.0f}{ours[name] / baseline:>8.2f}"
        if ours_pg:
            line += f"{ours_pg[name]:>19,.0f}{ours_pg[name] / baseline:>8.2f}"
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--pops", type=int, default=50)
    parser.add_argument("--postgres", default=None, metavar="URL")
    asyncio.run(main(parser.parse_args()))
