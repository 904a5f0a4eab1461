"""A process of the two-process pop race: waits for the start file, pops one item,
then waits until the other process has popped one too (so the two truly overlap, however
the scheduler runs them), then pops the session's items until it is empty and prints
what it got, as JSON, one per line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from agent_sessions import open_async_store
from agent_sessions.adapters.openai_agents import AgentSessionsSession


async def pop_all(url: str, session_id: str, start: Path) -> list[object]:
    async with open_async_store(url) as store:
        session = AgentSessionsSession(session_id, store=store)
        await session.get_items(limit=1)  # connected and warm before the start
        await AgentSessionsSession(f"warm-up-{os.getpid()}", store=store).add_items([{}])
        print("ready", flush=True)
        while not start.exists():
            time.sleep(0.001)
        popped = []
        first = await session.pop_item()
        if first is not None:
            popped.append(first)
        (start.parent / f"popped-{os.getpid()}").touch()
        deadline = time.monotonic() + 120
        while len(list(start.parent.glob("popped-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        while (item := await session.pop_item()) is not None:
            popped.append(item)
        return popped


if __name__ == "__main__":
    url, session_id, start = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    for item in asyncio.run(pop_all(url, session_id, start)):
        print(json.dumps(item), flush=True)
