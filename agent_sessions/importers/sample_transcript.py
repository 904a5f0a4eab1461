"""A small Claude Code transcript the project writes itself, in the shape Claude Code
2.1 stores (``~/.claude/projects/<project>/<session-id>.jsonl``, sub-agents in
``<session-id>/subagents/agent-<id>.jsonl``).

What ``make demo`` imports when the real transcripts are not beside the repository, and
what tests build their own transcripts with (:class:`TranscriptBuilder`). Everything is
derived from a seed: the same call writes the same bytes.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MAIN_MODEL = "claude-opus-4-6"
SUBAGENT_MODEL = "claude-haiku-4-5-20251001"
VERSION = "2.1.39"
START = datetime(2026, 2, 12, 9, 0, 0, tzinfo=UTC)


class TranscriptBuilder:
    """Lines of one transcript, as Claude Code writes them: every line links to the one
    before (``parentUuid``); an assistant message is written one content block per line,
    each line repeating the message's usage as it grows."""

    def __init__(
        self,
        session_id: str,
        *,
        seed: int = 0,
        start: datetime = START,
        agent_id: str | None = None,
        cwd: str = "/home/USER/projects/sample",
    ) -> None:
        self.session_id = session_id
        self.agent_id = agent_id
        self.cwd = cwd
        self.lines: list[dict[str, Any]] = []
        self._random = random.Random(seed)
        self.clock = start
        self._parent: str | None = None

    # plumbing -----------------------------------------------------------------------

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def _tick(self, seconds: float = 1.0) -> str:
        self.clock += timedelta(seconds=seconds)
        return self.clock.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _line(self, kind: str, **fields: Any) -> dict[str, Any]:
        line_uuid = self.new_id()
        line: dict[str, Any] = {
            "parentUuid": self._parent,
            "isSidechain": self.agent_id is not None,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.session_id,
            "version": VERSION,
            "gitBranch": "main",
        }
        if self.agent_id is not None:
            line["agentId"] = self.agent_id
        line.update({"type": kind, **fields, "uuid": line_uuid, "timestamp": self._tick()})
        self.lines.append(line)
        self._parent = line_uuid
        return line

    # line kinds ---------------------------------------------------------------------

    def snapshot(self, message_id: str | None = None) -> None:
        """A ``file-history-snapshot`` line: no uuid, no session, no top-level time."""
        anchor = message_id or self.new_id()
        self.lines.append(
            {
                "type": "file-history-snapshot",
                "messageId": anchor,
                "snapshot": {
                    "messageId": anchor,
                    "trackedFileBackups": {},
                    "timestamp": self._tick(0.1),
                },
                "isSnapshotUpdate": False,
            }
        )

    def hook(self, event: str, name: str, tool_use_id: str | None = None) -> None:
        ref = tool_use_id or self.new_id()
        self._line(
            "progress",
            data={"type": "hook_progress", "hookEvent": event, "hookName": name, "command": "x"},
            parentToolUseID=ref,
            toolUseID=ref,
        )

    def prompt(self, text: str, **flags: Any) -> str:
        return str(self._line("user", message={"role": "user", "content": text}, **flags)["uuid"])

    def interrupt(self, for_tool_use: bool = False) -> None:
        text = "[Request interrupted by user" + (" for tool use]" if for_tool_use else "]")
        self._line("user", message={"role": "user", "content": [{"type": "text", "text": text}]})

    def assistant(
        self,
        blocks: list[dict[str, Any]],
        *,
        usage: dict[str, int],
        model: str = MAIN_MODEL,
        one_hour_cache: bool = True,
    ) -> str:
        """One API message, one line per block; the usage grows to ``usage`` on the last
        line (``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
        ``cache_creation_input_tokens``)."""
        message_id = "msg_" + self.new_id().replace("-", "")[:24]
        request = "req_" + self.new_id().replace("-", "")[:24]
        for index, block in enumerate(blocks):
            partial: dict[str, Any] = dict(usage)
            if index < len(blocks) - 1:
                # Output tokens grow while the message streams; the rest is known at once.
                partial["output_tokens"] = max(1, usage["output_tokens"] * (index + 1) // 4)
            writes = partial.get("cache_creation_input_tokens", 0)
            partial["cache_creation"] = {
                "ephemeral_5m_input_tokens": 0 if one_hour_cache else writes,
                "ephemeral_1h_input_tokens": writes if one_hour_cache else 0,
            }
            partial["service_tier"] = "standard"
            self._line(
                "assistant",
                message={
                    "model": model,
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "content": [block],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": partial,
                },
                requestId=request,
            )
        return message_id

    def tool_use(self, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "tool_use",
            "id": "toolu_" + self.new_id().replace("-", "")[:24],
            "name": name,
            "input": tool_input,
        }

    def tool_result(self, call: dict[str, Any], content: str, *, is_error: bool = False) -> None:
        block = {"type": "tool_result", "tool_use_id": call["id"], "content": content}
        if is_error:
            block["is_error"] = True
        self._line(
            "user",
            message={"role": "user", "content": [block]},
            toolUseResult=content if is_error else {"stdout": content, "stderr": ""},
        )

    def system(self, subtype: str, **fields: Any) -> None:
        self._line("system", subtype=subtype, level="info", isMeta=False, **fields)

    def queue(self, operation: str, content: str) -> None:
        self.lines.append(
            {
                "type": "queue-operation",
                "operation": operation,
                "timestamp": self._tick(0.1),
                "sessionId": self.session_id,
                "content": content,
            }
        )

    def text(self) -> str:
        return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in self.lines)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text(), encoding="utf-8")
        return path


def _usage(inp: int, out: int, read: int, write: int) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
    }


def sample_session(seed: int = 0) -> tuple[TranscriptBuilder, TranscriptBuilder]:
    """A session of three turns (one interrupted, one with a failing tool and a Task
    sub-agent) and its sub-agent's transcript."""
    rng = random.Random(seed)
    session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    main = TranscriptBuilder(session_id, seed=seed)
    main.snapshot()
    main.hook("SessionStart", "SessionStart:startup")

    # Turn 1: read, test (fails), a sub-agent explores, an answer.
    main.prompt("The tests in tests/test_parser.py fail since yesterday; find out why.")
    read = main.tool_use("Read", {"file_path": "/home/USER/projects/sample/parser.py"})
    main.assistant(
        [
            {"type": "thinking", "thinking": "Read the parser first.", "signature": "c2ln"},
            {"type": "text", "text": "Let me look at the parser."},
            read,
        ],
        usage=_usage(3, 120, 11_000, 4_200),
    )
    main.hook("PreToolUse", "PreToolUse:Read", read["id"])
    main.tool_result(read, "def parse(text):\n    return text.split(',')\n")
    test = main.tool_use("Bash", {"command": "pytest -q tests/test_parser.py"})
    main.assistant([test], usage=_usage(1, 60, 15_200, 300))
    failure = "FAILED tests/test_parser.py::test_quoted - AssertionError"
    main.tool_result(test, failure, is_error=True)
    task = main.tool_use(
        "Task", {"description": "Find callers", "prompt": "Who calls parse()?", "model": "haiku"}
    )
    main.assistant([task], usage=_usage(1, 90, 15_500, 410))
    agent_id = "a" + session_id.replace("-", "")[:6]
    sub = TranscriptBuilder(session_id, seed=seed + 1, start=main.clock, agent_id=agent_id)
    sub.prompt("Who calls parse()?")
    grep = sub.tool_use("Grep", {"pattern": "parse\\("})
    sub.assistant([grep], usage=_usage(5, 40, 0, 9_000), model=SUBAGENT_MODEL, one_hour_cache=False)
    sub.tool_result(grep, "cli.py:12: rows = parse(line)\n")
    sub.assistant(
        [{"type": "text", "text": "Only cli.py calls parse()."}],
        usage=_usage(2, 30, 9_000, 80),
        model=SUBAGENT_MODEL,
        one_hour_cache=False,
    )
    main.clock = sub.clock
    main.tool_result(task, "Only cli.py calls parse().")
    main.assistant(
        [
            {
                "type": "text",
                "text": "parse() splits on every comma, quoted fields included: "
                "that is the failing case.",
            }
        ],
        usage=_usage(1, 240, 16_000, 700),
    )
    main.system("stop_hook_summary", hookCount=1, hookInfos=[], hookErrors=[])
    main.system("turn_duration", durationMs=41_000)

    # Turn 2: an edit the user interrupts.
    main.snapshot()
    main.prompt("Fix it with the csv module.")
    edit = main.tool_use("Edit", {"file_path": "parser.py", "old_string": "x", "new_string": "y"})
    main.assistant([edit], usage=_usage(2, 150, 16_700, 520))
    main.tool_result(edit, "The user doesn't want to proceed with this tool use.", is_error=True)
    main.interrupt(for_tool_use=True)

    # Turn 3: a queued note, then a plain answer.
    main.queue("enqueue", "use csv.reader")
    main.prompt("Use csv.reader, and keep the signature.")
    main.assistant(
        [{"type": "text", "text": "Done: parse() now uses csv.reader and the tests pass."}],
        usage=_usage(4, 80, 17_300, 260),
    )
    main.system("turn_duration", durationMs=12_000)
    return main, sub


def write_sample_transcript(path: str | Path, *, seed: int = 0) -> Path:
    """Write the sample session into ``path``, a project folder (created if missing; the
    file is ``<session-id>.jsonl``) or a ``.jsonl`` file name, with its sub-agent's
    transcript beside it (``<session-id>/subagents/``). Returns the session's file."""
    target = Path(path)
    main, sub = sample_session(seed)
    session_file = target if target.suffix == ".jsonl" else target / f"{main.session_id}.jsonl"
    main.write(session_file)
    sub.write(session_file.parent / session_file.stem / "subagents" / f"agent-{sub.agent_id}.jsonl")
    return session_file


__all__ = ["TranscriptBuilder", "sample_session", "write_sample_transcript"]
