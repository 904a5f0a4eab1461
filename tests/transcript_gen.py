"""Transcripts for the importer tests, and the independent counts they are checked
against.

The real transcripts are read from the data folder beside the repository
(``SHARED``, never copied into it); when that folder is absent, the project's own
sample (``agent_sessions/importers/sample_transcript.py``) stands in, so the tests run
either way. The counts here read the files with ``json`` and nothing of the importer:
each assistant message (lines sharing ``message.id``) once, with its last usage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_sessions.importers.sample_transcript import write_sample_transcript

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "claude-code"

#: Published list prices in dollars per million tokens (input, output, cache read,
#: 5-minute cache write, 1-hour cache write), written out here rather than read from the
#: library's table: the cost test checks the table against them.
PUBLISHED = {
    "claude-opus-4-6": (5.0, 25.0, 0.50, 6.25, 10.0),
    "claude-opus-4-5-20251101": (5.0, 25.0, 0.50, 6.25, 10.0),
    "claude-opus-4-1-20250805": (15.0, 75.0, 1.50, 18.75, 30.0),
    "claude-opus-4-20250514": (15.0, 75.0, 1.50, 18.75, 30.0),
    "claude-sonnet-4-5-20250929": (3.0, 15.0, 0.30, 3.75, 6.0),
    "claude-sonnet-4-20250514": (3.0, 15.0, 0.30, 3.75, 6.0),
    "claude-haiku-4-5-20251001": (1.0, 5.0, 0.10, 1.25, 2.0),
    "claude-3-5-haiku-20241022": (0.80, 4.0, 0.08, 1.0, 1.6),
    "claude-3-haiku-20240307": (0.25, 1.25, 0.03, 0.30, 0.50),
}


def transcript_root(tmp_path: Path) -> Path:
    """The folder of real transcripts, else a folder holding the generated sample."""
    if SHARED.is_dir() and any(SHARED.glob("*.jsonl")):
        return SHARED
    folder = tmp_path / "generated-projects" / "sample"
    write_sample_transcript(folder)
    return folder


def transcript_files(root: Path) -> list[Path]:
    """Every transcript under ``root``: session files and their sub-agents' files."""
    return sorted(p for p in root.rglob("*.jsonl") if p.is_file())


def objects(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                obj = json.loads(line)
                if isinstance(obj, dict):
                    yield obj


def expected_session_id(path: Path) -> str:
    """``cc-<sessionId>``, with ``-agent-<agentId>`` for a sub-agent's transcript."""
    for obj in objects(path):
        if isinstance(obj.get("sessionId"), str):
            agent = obj.get("agentId")
            base = "cc-" + obj["sessionId"]
            return base if not isinstance(agent, str) else f"{base}-agent-{agent}"
    raise AssertionError(f"{path} names no session")


@dataclass
class Tally:
    """Token counts of one transcript, each message once with its last usage."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    messages: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_creation_tokens
        )

    def cost(self) -> float:
        """The bill at the published prices: every message priced by its own model."""
        dollars = 0.0
        for model, usage in self.messages.values():
            price_in, price_out, read, write_5m, write_1h = PUBLISHED[model]
            one_hour = (usage.get("cache_creation") or {}).get("ephemeral_1h_input_tokens", 0)
            writes = usage.get("cache_creation_input_tokens", 0)
            dollars += (
                usage.get("input_tokens", 0) * price_in
                + usage.get("output_tokens", 0) * price_out
                + usage.get("cache_read_input_tokens", 0) * read
                + (writes - one_hour) * write_5m
                + one_hour * write_1h
            ) / 1_000_000
        return dollars


def tally(path: Path) -> Tally:
    last: dict[str, tuple[str, dict[str, Any]]] = {}
    for obj in objects(path):
        if obj.get("type") != "assistant":
            continue
        message = obj["message"]
        if isinstance(message.get("usage"), dict):
            last[message["id"]] = (message["model"], message["usage"])
    counts = Tally(messages=last)
    for _, usage in last.values():
        counts.input_tokens += usage.get("input_tokens", 0)
        counts.output_tokens += usage.get("output_tokens", 0)
        counts.cache_read_tokens += usage.get("cache_read_input_tokens", 0)
        counts.cache_creation_tokens += usage.get("cache_creation_input_tokens", 0)
    return counts


def models_in(root: Path) -> set[str]:
    return {
        obj["message"]["model"]
        for path in transcript_files(root)
        for obj in objects(path)
        if obj.get("type") == "assistant"
    }
