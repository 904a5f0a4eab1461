"""Opt-in removal of secrets from event payloads before they are persisted.

Agents echo what they see: a tool that prints the environment, a stack trace with a
connection string, a user pasting a token. Once in an append-only log, a secret stays
until erasure, so redaction happens before the write. It is opt-in because it rewrites
what the agent said, and a false positive (a long hex string that looks like a key) is a
loss of data the user should choose to accept.

What was removed is reported in ``metadata["_redaction"]`` by category and count, never
the matched text, so an operator can see that a run leaked a key without the key.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError
from .event import Event
from .event_types import EventType
from .redaction_patterns import DEFAULT_PATTERNS

#: Where an event's redaction report is kept in its metadata.
REDACTION_KEY = "_redaction"
#: Maps and lists nested deeper than this (the data map itself is depth 0) are left as
#: they are: a bound on work for pathological payloads.
MAX_DEPTH = 10
CUSTOM_CATEGORY = "custom"

#: Types whose payloads are produced by the library or carry counters only: nothing an
#: adapter copied from a conversation or a tool, so nothing to scan.
SKIPPED_TYPES = frozenset(
    {
        EventType.SESSION_CREATED,
        EventType.SESSION_STARTED,
        EventType.SESSION_PAUSED,
        EventType.SESSION_RESUMED,
        EventType.SESSION_COMPLETED,
        EventType.SESSION_CANCELLED,
        EventType.RUN_STARTED,
        EventType.RUN_CANCELLED,
        EventType.RUN_TIMEOUT,
        EventType.TOKEN_USAGE_UPDATED,
        EventType.TURN_COMPLETED,
        EventType.WORKSPACE_SNAPSHOT_TAKEN,
        EventType.WORKSPACE_DIFF_COMPUTED,
        EventType.ERROR_RECOVERED,
    }
)

_ERROR_FIELDS = ("error_message", "provider_error")
#: The only keys scanned when ``deep_scan`` is off; types not listed get nothing scanned.
KNOWN_FIELDS: Mapping[EventType, tuple[str, ...]] = {
    EventType.MESSAGE_SENT: ("content",),
    EventType.MESSAGE_RECEIVED: ("content",),
    EventType.MESSAGE_STREAMED: ("content", "delta"),
    EventType.TOOL_CALL_STARTED: ("tool_input",),
    EventType.TOOL_CALL_COMPLETED: ("tool_input", "tool_output"),
    EventType.TOOL_CALL_FAILED: ("tool_input", "tool_output"),
    EventType.ERROR_OCCURRED: _ERROR_FIELDS,
    EventType.RUN_FAILED: _ERROR_FIELDS,
    EventType.SESSION_FAILED: _ERROR_FIELDS,
    EventType.POLICY_VIOLATION: ("details",),
}

PatternSpec = tuple[str, str | re.Pattern[str]] | str | re.Pattern[str]


def _compile(item: object) -> tuple[str, re.Pattern[str]]:
    category: object = CUSTOM_CATEGORY
    source = item
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ValidationError(
                "a redaction pattern is (category, regex) or a regex",
                details={"pattern": repr(item)},
            )
        category, source = item
    if not isinstance(category, str) or not category:
        raise ValidationError(
            "a redaction pattern's category must be a non-empty string",
            details={"pattern": repr(item)},
        )
    if isinstance(source, re.Pattern):
        return category, source
    if not isinstance(source, str) or not source:
        raise ValidationError(
            "a redaction pattern must be a regex string or a compiled pattern",
            details={"pattern": repr(item)},
        )
    try:
        return category, re.compile(source)
    except re.error as exc:
        raise ValidationError(
            f"invalid redaction pattern {source!r}: {exc}",
            details={"category": category, "pattern": source},
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class RedactionConfig:
    """How to redact. ``patterns`` are added to the 22 defaults, or replace them with
    ``use_default_patterns=False``; each is ``(category, regex)`` or a bare regex
    (category ``custom``). ``replacement=None`` writes ``[REDACTED:<category>]``; a
    string is written as it is. A bad pattern is refused here, not skipped: a secret
    pattern that silently does nothing is worse than an error at start-up."""

    enabled: bool = True
    patterns: Sequence[PatternSpec] = ()
    use_default_patterns: bool = True
    replacement: str | None = None
    deep_scan: bool = True
    scan_metadata: bool = False
    compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.patterns, (str, re.Pattern)):
            raise ValidationError("patterns must be a list of patterns")
        own = tuple(_compile(item) for item in self.patterns)
        compiled = (DEFAULT_PATTERNS if self.use_default_patterns else ()) + own
        object.__setattr__(self, "patterns", tuple(self.patterns))
        object.__setattr__(self, "compiled", compiled)

    def marker(self, category: str) -> str:
        return self.replacement if self.replacement is not None else f"[REDACTED:{category}]"


@dataclass(frozen=True, slots=True)
class RedactionReport:
    """What one redaction removed: matches per category and the top-level data keys
    whose values changed."""

    categories: dict[str, int] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.categories.values())

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "categories": dict(self.categories), "fields": self.fields}


class EventRedactor:
    """Applies a :class:`RedactionConfig` to events and plain maps (pure)."""

    def __init__(self, config: RedactionConfig | None = None) -> None:
        self.config = config if config is not None else RedactionConfig()

    def redact_text(self, text: str, counts: dict[str, int]) -> str:
        """Every pattern in order over the progressively rewritten text."""
        for category, pattern in self.config.compiled:
            # Escaped: the marker is literal text, not a template with group references.
            marker = self.config.marker(category).replace("\\", "\\\\")
            text, found = pattern.subn(marker, text)
            if found:
                counts[category] = counts.get(category, 0) + found
        return text

    def _scan(self, value: Any, depth: int, counts: dict[str, int]) -> Any:
        if isinstance(value, str):
            return self.redact_text(value, counts)
        if isinstance(value, Mapping):
            if depth > MAX_DEPTH:
                return value
            return {key: self._scan(item, depth + 1, counts) for key, item in value.items()}
        if isinstance(value, list):
            if depth > MAX_DEPTH:
                return value
            return [self._scan(item, depth + 1, counts) for item in value]
        return value

    def redact_map(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """Every string in the map, at any key, whatever the event type rules say: for
        wrapping what leaves the library unredacted (callbacks, logs)."""
        if not self.config.enabled:
            return dict(value)
        result: dict[str, Any] = self._scan(value, 0, {})
        return result

    def redact(self, event: Event) -> tuple[Event, RedactionReport]:
        """The event with secrets replaced, and the report. An event with nothing to
        redact comes back as the same object, metadata untouched."""
        config = self.config
        if not config.enabled or event.type in SKIPPED_TYPES:
            return event, RedactionReport()
        counts: dict[str, int] = {}
        known = KNOWN_FIELDS.get(event.type, ())
        data: dict[str, Any] = {}
        changed: list[str] = []
        for key, value in event.data.items():
            if config.deep_scan or key in known:
                scanned = self._scan(value, 1, counts)
                if scanned != value:
                    changed.append(key)
                data[key] = scanned
            else:
                data[key] = value
        metadata = event.metadata
        if config.scan_metadata:
            metadata = self._scan(metadata, 0, counts)
        if not counts:
            return event, RedactionReport()
        report = RedactionReport(categories=counts, fields=changed)
        metadata = {**metadata, REDACTION_KEY: report.to_dict()}
        # ``dataclasses.replace`` re-runs the record's validation, which the rewritten
        # strings pass by construction; it is the one way records are changed here.
        return dataclasses.replace(event, data=data, metadata=metadata), report
