"""One Claude Code transcript folded into a session's events and runs: the mapping of
every line type, with no I/O (``claude_code.py`` reads the lines and writes the result).

``docs/importing.md`` has the mapping table; in short:

* a user line with text that the user typed (a *prompt*) starts a run and is its
  ``message_sent``; text Claude Code injects (``isMeta``, a compaction summary, a local
  command's output) is a ``message_sent`` of the current run with ``data["kind"]``;
  ``[Request interrupted by user...]`` is ``run_cancelled`` and the run is cancelled;
* an assistant line's blocks: ``text`` is ``message_received``, ``thinking`` is
  ``message_streamed`` with ``data["kind"] = "thinking"`` (model output on the way to
  the answer, not the answer), ``tool_use`` is ``tool_call_started``;
* a ``tool_result`` block is ``tool_call_completed`` or, with ``is_error``,
  ``tool_call_failed``, carrying the name of the ``tool_use`` it answers;
* each assistant *message* (the lines sharing a ``message.id``, each repeating a
  growing ``usage``) is counted once, with its last usage: one ``token_usage_updated``
  when the message is over (the next message, the next prompt, an interruption, the
  ``system`` line that ends a turn, or the end of the file). Tool results do not end
  it: Claude Code runs tools while the message is still being written;
* every other line is kept whole under ``data["raw"]``: ``system`` lines are
  ``turn_completed`` (``turn_duration``), ``error_occurred`` (``api_error``) or
  ``message_streamed``; ``file-history-snapshot`` is ``workspace_snapshot_taken``;
  ``progress``, ``queue-operation``, ``summary`` and unknown types are
  ``message_streamed`` with ``data["kind"]`` naming the line type.

Ids are derived, never random, so a second import of a file finds every event and run
it wrote the first time: an event is ``<session>:<line uuid>:<n>`` (the n-th event of
that line), a line without a ``uuid`` uses a digest of its bytes instead, a message's
usage is ``<session>:usage:<message.id>``, a run is ``<session>:run:<prompt uuid>``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..domain.errors import AgentSessionsError
from ..domain.event import Event
from ..domain.event_types import EventType
from ..domain.pricing import CACHE_1H_KEY, PricingTable
from ..domain.run import Run
from ..domain.session import Session
from ..domain.statuses import RunStatus, SessionStatus
from ..domain.token_usage import token_count

PROVIDER = "anthropic"
AGENT_ID = "claude-code"
#: Session ids are the transcript's ``sessionId`` behind this prefix (and a sub-agent's
#: ``agentId`` after it), so they never meet ids of sessions recorded otherwise.
ID_PREFIX = "cc-"
#: The longest id-like value (a uuid, a message id) taken from a line as it is; a longer
#: one is not an id Claude Code wrote, and the line's digest stands in for it.
MAX_SOURCE_ID = 200
#: The longest prompt or answer a run record repeats (the events hold the full text): a
#: record is one stored event and must stay far below ``max_event_bytes``.
MAX_RECORD_TEXT = 16_384
#: What a provisional timestamp is replaced by when a file holds none at all.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Text Claude Code puts in a user line that the user did not type, by its start.
_INJECTED_PREFIXES = (
    ("<local-command-stdout>", "local_command_output"),
    ("<local-command-stderr>", "local_command_output"),
    ("<local-command-caveat>", "local_command_caveat"),
)
_INTERRUPTED = "[Request interrupted by user"
#: ``system`` lines Claude Code writes when a turn is over: its last message is too.
_TURN_END = frozenset({"turn_duration", "stop_hook_summary"})
#: What a line type may add to an id (a type is free text in a hostile file).
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: The ``usage`` keys of a transcript, by the ``token_usage`` key they become.
_USAGE_KEYS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_tokens", "cache_read_input_tokens"),
    ("cache_creation_tokens", "cache_creation_input_tokens"),
)
COUNT_KEYS = (*(key for key, _ in _USAGE_KEYS), CACHE_1H_KEY)


class UnusableLine(Exception):
    """A line that cannot be imported; the message says why."""


def session_id_for(claude_session_id: str, agent_id: str | None) -> str:
    """The store's id of a transcript's session (``agent_id``: a sub-agent's)."""
    base = ID_PREFIX + claude_session_id
    return base if agent_id is None else f"{base}-agent-{agent_id}"


def source_id(value: Any) -> str | None:
    """An id from a line, when it is one: a non-empty string without NUL, of sane
    length."""
    if isinstance(value, str) and 0 < len(value) <= MAX_SOURCE_ID and "\x00" not in value:
        return value
    return None


def parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def usage_counts(usage: Any) -> dict[str, int]:
    """A transcript's ``message.usage`` as ``token_usage`` counts. The one-hour cache
    writes are a part of the cache writes (``domain/pricing.py``)."""
    if not isinstance(usage, Mapping):
        return dict.fromkeys(COUNT_KEYS, 0)
    counts = {key: token_count(usage, source) for key, source in _USAGE_KEYS}
    counts[CACHE_1H_KEY] = token_count(usage.get("cache_creation"), "ephemeral_1h_input_tokens")
    return counts


def total_tokens(counts: Mapping[str, int]) -> int:
    """Every token the model read or wrote: input, output, cache reads and writes."""
    return sum(counts.get(key, 0) for key, _ in _USAGE_KEYS)


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _clip(text: str) -> str:
    return text if len(text) <= MAX_RECORD_TEXT else text[:MAX_RECORD_TEXT] + "\u2026"


def _text_of(content: Any) -> str:
    """The text of a content value: a string, or the ``text`` of its text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            block["text"]
            for block in content
            if isinstance(block, Mapping)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        )
    return ""


def _tool_output(content: Any) -> Any:
    """A tool result's content as a reader wants it: text when it is only text, else
    the blocks as given (images, documents)."""
    if isinstance(content, list) and all(
        isinstance(block, Mapping) and block.get("type") == "text" for block in content
    ):
        return _text_of(content)
    return content


@dataclass
class _Message:
    """One assistant API message: its lines share ``message.id``."""

    id: str
    run: _RunState | None
    model: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    #: What its usage events said so far (the counts when it was last closed).
    reported: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    reports: int = 0
    timestamp: datetime | None = None
    line: int = 0


@dataclass
class _RunState:
    id: str
    line: int
    started_at: datetime | None
    prompt: str | None
    prompt_uuid: str | None
    ended_at: datetime | None = None
    output: str | None = None
    cancelled: bool = False
    messages: dict[str, _Message] = field(default_factory=dict)


@dataclass
class Draft:
    """An event built from a line, with the line it came from; ``timed`` is false while
    its timestamp is provisional (the line had none: it takes the next one seen)."""

    event: Event
    line: int
    timed: bool


class TranscriptFold:
    """The state of one transcript's import: feed it each line's object in file order
    (:meth:`add`), take the events it releases, then :meth:`finish`, :meth:`runs` and
    :meth:`session`."""

    def __init__(
        self,
        session_id: str,
        *,
        pricing: PricingTable,
        parent_session_id: str | None = None,
        claude_session_id: str | None = None,
        agent_id: str | None = None,
        file_name: str | None = None,
        fallback_time: datetime = EPOCH,
    ) -> None:
        self.session_id = session_id
        self.parent_session_id = parent_session_id
        self._pricing = pricing
        self._fallback_time = fallback_time
        self._metadata: dict[str, Any] = {"source": AGENT_ID}
        if claude_session_id is not None:
            self._metadata["claude_session_id"] = claude_session_id
        if agent_id is not None:
            self._metadata["agent_id"] = agent_id
        if file_name is not None:
            self._metadata["file"] = file_name
        self._bases: Counter[str] = Counter()
        self._runs: dict[str, _RunState] = {}
        self._run: _RunState | None = None
        self._messages: dict[str, _Message] = {}
        self._open: _Message | None = None
        self._tool_names: dict[str, str] = {}
        self._held: list[Draft] = []
        self._first: datetime | None = None
        self._last: datetime | None = None

    # ------------------------------------------------------------------ feeding lines

    def add(self, obj: Any, line: int, digest: str) -> list[Draft]:
        """The events of one line (``digest``: of its bytes, for lines without a
        ``uuid``), and any held back before it that now have a timestamp. Raises
        :class:`UnusableLine` for a line that cannot be imported; none of its events are
        kept (a run it started, or a message's usage it carried, still counts)."""
        if not isinstance(obj, Mapping):
            raise UnusableLine(f"a JSON {type(obj).__name__}, not an object")
        kind = obj.get("type")
        if not isinstance(kind, str) or not kind:
            raise UnusableLine("no line type (the 'type' field)")
        timestamp = parse_timestamp(obj.get("timestamp"))
        if timestamp is None and kind == "file-history-snapshot":
            snapshot = obj.get("snapshot")
            if isinstance(snapshot, Mapping):
                timestamp = parse_timestamp(snapshot.get("timestamp"))
        base = self._base(obj, kind, digest)
        builder = _LineEvents(self, base, line, timestamp, obj)
        try:
            if kind == "user":
                self._user(builder, obj)
            elif kind == "assistant":
                self._assistant(builder, obj)
            else:
                self._other(builder, obj, kind)
        except AgentSessionsError as error:
            raise UnusableLine(error.message) from None
        self._note_time(timestamp)
        self._note_context(obj)
        if self._run is not None and timestamp is not None:
            self._run.ended_at = timestamp
        if timestamp is not None:
            self._stamp_held(timestamp)
        self._held.extend(builder.drafts)
        return self._release()

    def finish(self) -> list[Draft]:
        """The usage of the message still open, and every event still held back."""
        self._close_message()
        stamp = self._last if self._last is not None else self._fallback_time
        self._stamp_held(stamp)
        released, self._held = self._held, []
        return released

    def _release(self) -> list[Draft]:
        """Events are released in file order up to the first one still untimed."""
        ready = 0
        for draft in self._held:
            if not draft.timed:
                break
            ready += 1
        released, self._held = self._held[:ready], self._held[ready:]
        return released

    def _stamp_held(self, timestamp: datetime) -> None:
        for draft in self._held:
            if not draft.timed:
                draft.event = draft.event.replace(timestamp=timestamp)
                draft.timed = True

    def _note_time(self, timestamp: datetime | None) -> None:
        if timestamp is None:
            return
        if self._first is None or timestamp < self._first:
            self._first = timestamp
        if self._last is None or timestamp > self._last:
            self._last = timestamp

    def _note_context(self, obj: Mapping[str, Any]) -> None:
        """The session's working folder, branch, Claude Code version and slug: the first
        of each a line names."""
        for source, key in (
            ("cwd", "cwd"),
            ("gitBranch", "git_branch"),
            ("version", "claude_code_version"),
            ("slug", "slug"),
        ):
            value = obj.get(source)
            if key not in self._metadata and isinstance(value, str) and value:
                self._metadata[key] = value[:1024]

    def _base(self, obj: Mapping[str, Any], kind: str, digest: str) -> str:
        """The id stem of a line's events: its uuid, else its type and digest; a stem
        met again in the file (a repeated line) gets ``~2``, ``~3``..."""
        uuid = source_id(obj.get("uuid"))
        stem = uuid if uuid is not None else f"{_ID_UNSAFE.sub('_', kind[:40])}-{digest}"
        self._bases[stem] += 1
        seen = self._bases[stem]
        return f"{self.session_id}:{stem}" + ("" if seen == 1 else f"~{seen}")

    # ------------------------------------------------------------------ user lines

    def _user(self, out: _LineEvents, obj: Mapping[str, Any]) -> None:
        message = obj.get("message")
        if not isinstance(message, Mapping):
            raise UnusableLine("a user line without a message object")
        content = message.get("content")
        if not isinstance(content, (str, list)):
            raise UnusableLine("a user message without content")
        blocks: list[Any] = [content] if isinstance(content, str) else list(content)
        results = [b for b in blocks if isinstance(b, Mapping) and b.get("type") == "tool_result"]
        text = _text_of(content)
        attachments = [
            b
            for b in blocks
            if isinstance(b, Mapping) and b.get("type") not in ("text", "tool_result")
        ]
        kind = self._injected_kind(obj, text)
        if not results and kind is None and text.startswith(_INTERRUPTED):
            self._cancel(out, text)
            return
        if not results and kind is None and (text or attachments):
            self._start_run(out, obj, text)
        if text or attachments:
            data: dict[str, Any] = {"role": "user", "content": text}
            if kind is not None:
                data["kind"] = kind
            if attachments:
                data["attachments"] = attachments
            out.add(EventType.MESSAGE_SENT, data)
        for block in results:
            self._tool_result(out, block)

    @staticmethod
    def _injected_kind(obj: Mapping[str, Any], text: str) -> str | None:
        """Why a user line's text is not a prompt, or ``None`` when it is one."""
        if obj.get("isCompactSummary") is True:
            return "compact_summary"
        if obj.get("isMeta") is True:
            return "meta"
        stripped = text.lstrip()
        for prefix, kind in _INJECTED_PREFIXES:
            if stripped.startswith(prefix):
                return kind
        return None

    def _cancel(self, out: _LineEvents, text: str) -> None:
        self._close_message()
        out.add(EventType.RUN_CANCELLED, {"reason": text, "content": text})
        if self._run is not None:
            self._run.cancelled = True

    def _tool_result(self, out: _LineEvents, block: Mapping[str, Any]) -> None:
        call_id = source_id(block.get("tool_use_id"))
        output = _tool_output(block.get("content"))
        data: dict[str, Any] = {
            "tool_name": self._tool_names.get(call_id or "", "unknown"),
            "tool_call_id": call_id,
            "tool_output": output,
        }
        failed = block.get("is_error") is True
        if failed:
            data["error"] = output if isinstance(output, str) else _text_of(output)
        out.add(EventType.TOOL_CALL_FAILED if failed else EventType.TOOL_CALL_COMPLETED, data)

    def _start_run(self, out: _LineEvents, obj: Mapping[str, Any], prompt: str | None) -> None:
        self._close_message()
        stem = out.base.removeprefix(self.session_id + ":")
        run = _RunState(
            id=f"{self.session_id}:run:{stem}",
            line=out.line,
            started_at=out.timestamp,
            prompt=prompt,
            prompt_uuid=source_id(obj.get("uuid")),
            ended_at=out.timestamp,
        )
        self._runs[run.id] = run
        self._run = run

    # ------------------------------------------------------------------ assistant lines

    def _assistant(self, out: _LineEvents, obj: Mapping[str, Any]) -> None:
        message = obj.get("message")
        if not isinstance(message, Mapping):
            raise UnusableLine("an assistant line without a message object")
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise UnusableLine("an assistant message without content blocks")
        if self._run is None:
            # Model output before any prompt (a transcript that starts mid-way): its
            # tokens still belong to a run, one that starts here.
            self._start_run(out, obj, None)
        model: str | None = _str(message.get("model")) or None
        model = model[:MAX_SOURCE_ID] if model else None
        message_id = source_id(message.get("id")) or out.base
        self._note_message(message_id, model, message.get("usage"), out)
        common: dict[str, Any] = {"message_id": message_id}
        if model:
            common["model"] = model
        for block in content:
            if not isinstance(block, Mapping):
                continue
            self._assistant_block(out, block, common)

    def _assistant_block(
        self, out: _LineEvents, block: Mapping[str, Any], common: dict[str, Any]
    ) -> None:
        kind = block.get("type")
        if kind == "text":
            text = _str(block.get("text"))
            out.add(
                EventType.MESSAGE_RECEIVED,
                {"role": "assistant", "content": text, **common},
                provider=PROVIDER,
            )
            if text.strip() and self._run is not None:
                self._run.output = text
        elif kind in ("thinking", "redacted_thinking"):
            thinking = block.get("thinking")
            out.add(
                EventType.MESSAGE_STREAMED,
                {
                    "role": "assistant",
                    "kind": kind,
                    "content": thinking if isinstance(thinking, str) else "",
                    **common,
                },
                provider=PROVIDER,
            )
        elif kind in ("tool_use", "server_tool_use"):
            call_id = source_id(block.get("id"))
            name = _str(block.get("name"), "unknown")
            if call_id is not None:
                self._tool_names[call_id] = name
            data = {"tool_name": name, "tool_call_id": call_id, "tool_input": block.get("input")}
            if kind == "server_tool_use":
                data["server"] = True
            out.add(EventType.TOOL_CALL_STARTED, {**data, **common}, provider=PROVIDER)
        elif isinstance(kind, str) and kind.endswith("_tool_result"):
            # A server tool's result (web search) arrives in the assistant's own message.
            call_id = source_id(block.get("tool_use_id"))
            data = {
                "tool_name": self._tool_names.get(call_id or "", kind.removesuffix("_result")),
                "tool_call_id": call_id,
                "tool_output": block.get("content"),
                "server": True,
            }
            out.add(EventType.TOOL_CALL_COMPLETED, {**data, **common}, provider=PROVIDER)
        else:
            out.add(
                EventType.MESSAGE_STREAMED,
                {"role": "assistant", "kind": str(kind), "content": "", "block": dict(block)},
                provider=PROVIDER,
            )

    def _note_message(
        self, message_id: str, model: str | None, usage: Any, out: _LineEvents
    ) -> None:
        """This line's part of message ``message_id``: the latest usage wins."""
        current = self._open
        if current is not None and current.id != message_id:
            self._close_message()
            current = None
        if current is None:
            current = self._messages.get(message_id)
            if current is None:
                current = _Message(id=message_id, run=self._run)
                self._messages[message_id] = current
                if self._run is not None:
                    self._run.messages[message_id] = current
            self._open = current
        # ``<synthetic>`` (Claude Code's own stand-in messages) names a model only
        # when the message has no other.
        if model and (model != "<synthetic>" or current.model is None):
            current.model = model
        if isinstance(usage, Mapping):
            current.counts = usage_counts(usage)
        if out.timestamp is not None:
            current.timestamp = out.timestamp
        current.line = out.line

    def _close_message(self) -> None:
        """The open message is over: report what its usage added since it was last
        reported (all of it, the first time). The report is held with the events
        before the current line's: the message ended before this line began."""
        message, self._open = self._open, None
        if message is None:
            return
        delta = {key: message.counts[key] - message.reported[key] for key in COUNT_KEYS}
        if not any(delta.values()):
            return
        cost_now = self.message_cost(message.counts, message.model)
        cost_before = self.message_cost(message.reported, message.model)
        message.reported = dict(message.counts)
        message.reports += 1
        data: dict[str, Any] = {**delta, "total_tokens": total_tokens(delta)}
        if not data[CACHE_1H_KEY]:
            del data[CACHE_1H_KEY]
        data["message_id"] = message.id
        if message.model:
            data["model"] = message.model
        if cost_now is not None and cost_before is not None:
            data["cost_usd"] = cost_now - cost_before
        suffix = "" if message.reports == 1 else f":{message.reports}"
        event = Event(
            id=f"{self.session_id}:usage:{message.id}{suffix}",
            type=EventType.TOKEN_USAGE_UPDATED,
            session_id=self.session_id,
            timestamp=message.timestamp or EPOCH,
            run_id=None if message.run is None else message.run.id,
            data=data,
            provider=PROVIDER,
        )
        self._held.append(Draft(event, message.line, message.timestamp is not None))

    @property
    def current_run_id(self) -> str | None:
        return None if self._run is None else self._run.id

    def message_cost(self, counts: Mapping[str, int], model: str | None) -> float | None:
        return self._pricing.cost(counts, PROVIDER, model)

    # ------------------------------------------------------------------ other lines

    def _other(self, out: _LineEvents, obj: Mapping[str, Any], kind: str) -> None:
        raw = dict(obj)
        if kind == "system":
            subtype = _str(obj.get("subtype"))
            content = _str(obj.get("content"), subtype)
            label = f"system:{subtype}" if subtype else "system"
            if subtype in _TURN_END:
                self._close_message()
            if subtype == "turn_duration":
                duration = obj.get("durationMs")
                data: dict[str, Any] = {"kind": label, "content": content, "raw": raw}
                if isinstance(duration, (int, float)) and not isinstance(duration, bool):
                    data["duration_ms"] = duration
                out.add(EventType.TURN_COMPLETED, data)
            elif subtype == "api_error" or obj.get("level") == "error":
                out.add(
                    EventType.ERROR_OCCURRED,
                    {"kind": label, "error_message": content or label, "raw": raw},
                )
            else:
                out.add(EventType.MESSAGE_STREAMED, {"kind": label, "content": content, "raw": raw})
        elif kind == "file-history-snapshot":
            out.add(
                EventType.WORKSPACE_SNAPSHOT_TAKEN,
                {"kind": kind, "content": "file history snapshot", "raw": raw},
            )
        elif kind == "progress":
            data_map = _map(obj.get("data"))
            sub = _str(data_map.get("type"))
            summary = next(
                (
                    data_map[key]
                    for key in ("hookName", "command", "message", "output")
                    if isinstance(data_map.get(key), str)
                ),
                sub,
            )
            label = f"progress:{sub}" if sub else "progress"
            out.add(
                EventType.MESSAGE_STREAMED, {"kind": label, "content": summary[:1024], "raw": raw}
            )
        elif kind == "queue-operation":
            operation = _str(obj.get("operation"))
            content = _str(obj.get("content"), operation)
            out.add(
                EventType.MESSAGE_STREAMED,
                {"kind": f"queue-operation:{operation}", "content": content, "raw": raw},
            )
        else:
            summary = _str(obj.get("summary"))
            data = {"kind": kind[:100], "content": summary, "raw": raw}
            out.add(EventType.MESSAGE_STREAMED, data)

    # ------------------------------------------------------------------ results

    def runs(self) -> list[Run]:
        """The runs, finished: completed (or cancelled, when the user interrupted),
        with their token totals (each message once, with its last usage) and cost."""
        return [self._run_record(state) for state in self._runs.values()]

    def _run_record(self, state: _RunState) -> Run:
        totals = dict.fromkeys(COUNT_KEYS, 0)
        costs: list[float] = []
        priced = True
        models: Counter[str] = Counter()
        for message in state.messages.values():
            for key in COUNT_KEYS:
                totals[key] += message.counts[key]
            cost = self.message_cost(message.counts, message.model)
            if cost is None:
                priced = False
            else:
                costs.append(cost)
            if message.model and message.model != "<synthetic>":
                models[message.model] += 1
        usage: dict[str, Any] = {**totals, "total_tokens": total_tokens(totals)}
        if not usage[CACHE_1H_KEY]:
            del usage[CACHE_1H_KEY]
        provider_metadata: dict[str, Any] = {}
        if models:
            provider_metadata["model"] = models.most_common(1)[0][0]
            if len(models) > 1:
                provider_metadata["models"] = sorted(models)
        started = state.started_at or self._first or self._fallback_time
        ended = max(state.ended_at or started, started)
        metadata: dict[str, Any] = {"line": state.line}
        if state.prompt_uuid is not None:
            metadata["prompt_uuid"] = state.prompt_uuid
        return Run(
            id=state.id,
            session_id=self.session_id,
            status=RunStatus.CANCELLED if state.cancelled else RunStatus.COMPLETED,
            input=None if state.prompt is None else {"content": _clip(state.prompt)},
            output=None if state.output is None else {"content": _clip(state.output)},
            metadata=metadata,
            turn_count=len(state.messages),
            token_usage=usage,
            started_at=started,
            ended_at=ended,
            provider=PROVIDER,
            provider_metadata=provider_metadata,
            cost_usd=math.fsum(costs) if priced else None,
        )

    def session(self) -> Session:
        created = self._first or self._fallback_time
        tags = ("claude-code", "subagent") if self.parent_session_id else ("claude-code",)
        return Session(
            id=self.session_id,
            agent_id=AGENT_ID,
            status=SessionStatus.COMPLETED,
            parent_session_id=self.parent_session_id,
            metadata=dict(self._metadata),
            tags=tags,
            created_at=created,
            updated_at=self._last or created,
        )


class _LineEvents:
    """The events one line yields, numbered in order: ``<base>:0``, ``<base>:1``..."""

    def __init__(
        self,
        fold: TranscriptFold,
        base: str,
        line: int,
        timestamp: datetime | None,
        obj: Mapping[str, Any],
    ) -> None:
        self.fold = fold
        self.base = base
        self.line = line
        self.timestamp = timestamp
        self.drafts: list[Draft] = []
        self._count = 0
        metadata: dict[str, Any] = {"line": line}
        for source, key in (("uuid", "uuid"), ("parentUuid", "parent_uuid")):
            value = source_id(obj.get(source))
            if value is not None:
                metadata[key] = value
        self._metadata = metadata

    def add(self, kind: EventType, data: dict[str, Any], *, provider: str | None = None) -> None:
        event = Event(
            id=f"{self.base}:{self._count}",
            type=kind,
            session_id=self.fold.session_id,
            timestamp=self.timestamp or EPOCH,
            run_id=self.fold.current_run_id,
            data=data,
            metadata=self._metadata,
            provider=provider,
        )
        self._count += 1
        self.drafts.append(Draft(event, self.line, self.timestamp is not None))


__all__ = [
    "AGENT_ID",
    "COUNT_KEYS",
    "ID_PREFIX",
    "PROVIDER",
    "Draft",
    "TranscriptFold",
    "UnusableLine",
    "parse_timestamp",
    "session_id_for",
    "source_id",
    "total_tokens",
    "usage_counts",
]
