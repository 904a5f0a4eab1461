"""Opt-in removal of secrets from what is persisted.

Agents echo what they see: a tool that prints the environment, a stack trace with a
connection string, a user pasting a token. Once in an append-only log, a secret stays
until erasure, so redaction happens before the write. It is opt-in because it rewrites
what the agent said, and a false positive (a long hex string that looks like a key) is a
loss of data the user should choose to accept.

When it is on it is total: every string of a payload, map keys included, at any depth,
for every event type. What a record holds besides events is redacted by
``record_redactor.py`` with the same scan.

What was removed from an event is reported in ``metadata["_redaction"]`` by category and
count, never the matched text, so an operator can see that a run leaked a key without
the key.
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
from .serialization import MAX_DEPTH as RECORD_MAX_DEPTH

#: Where an event's redaction report is kept in its metadata.
REDACTION_KEY = "_redaction"
#: The deepest nesting scanned. It is the bound every record already has (see
#: ``serialization.py``), so nothing a record can hold is ever left unscanned; a plain
#: map deeper than that (``redact_map``) is refused rather than passed through.
MAX_DEPTH = RECORD_MAX_DEPTH
CUSTOM_CATEGORY = "custom"
#: The group of a pattern that is replaced when the pattern has one (a URL's password),
#: instead of the whole match.
SECRET_GROUP = "secret"

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
    """How to redact. ``patterns`` are added to the 23 defaults, or replace them with
    ``use_default_patterns=False``; each is ``(category, regex)`` or a bare regex
    (category ``custom``); a regex with a group named ``secret`` has only that group
    replaced. ``replacement=None`` writes ``[REDACTED:<category>]``; a string is written
    as it is. A bad pattern is refused here, not skipped: a secret pattern that silently
    does nothing is worse than an error at start-up.

    ``deep_scan=False`` narrows an event's scan to the known text fields of its type,
    and ``scan_metadata=False`` leaves event metadata alone: both make the guarantee
    ("no default-pattern secret is stored") false, and are for callers who accept that.
    """

    enabled: bool = True
    patterns: Sequence[PatternSpec] = ()
    use_default_patterns: bool = True
    replacement: str | None = None
    deep_scan: bool = True
    scan_metadata: bool = True
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
    """What one redaction removed: matches per category and the top-level keys whose
    values (or the keys themselves) changed, as they read after redaction."""

    categories: dict[str, int] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.categories.values())

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "categories": dict(self.categories), "fields": self.fields}

    def merged(self, previous: Any) -> RedactionReport:
        """This report added to an earlier one read from metadata (a second redaction
        with other patterns must not hide what the first removed)."""
        if not isinstance(previous, Mapping):
            return self
        categories = dict(self.categories)
        earlier = previous.get("categories")
        if isinstance(earlier, Mapping):
            for category, count in earlier.items():
                if isinstance(category, str) and isinstance(count, int):
                    categories[category] = categories.get(category, 0) + count
        fields = previous.get("fields")
        known = [f for f in fields if isinstance(f, str)] if isinstance(fields, list) else []
        return RedactionReport(categories, list(dict.fromkeys([*known, *self.fields])))


def _free_key(key: str, taken: Mapping[str, Any], original: Mapping[str, Any]) -> str:
    """``key``, or ``key #2``, ``key #3``...: the first that is neither a key already
    written nor another key of the original map. Two secrets used as keys both redact to
    the same marker; neither value may be lost to the other."""
    candidate, number = key, 1
    while candidate in taken or candidate in original:
        number += 1
        candidate = f"{key} #{number}"
    return candidate


class EventRedactor:
    """Applies a :class:`RedactionConfig` to text, JSON values and events (pure)."""

    def __init__(self, config: RedactionConfig | None = None) -> None:
        self.config = config if config is not None else RedactionConfig()

    def redact_text(self, text: str, counts: dict[str, int]) -> str:
        """Every pattern in order over the progressively rewritten text. A match is
        counted only when it changes something: text redacted once is left as it is (and
        uncounted) by a second pass, so redacting twice reports once."""
        for category, pattern in self.config.compiled:
            marker = self.config.marker(category)
            found = 0

            def replace(match: re.Match[str], marker: str = marker) -> str:
                nonlocal found
                whole = match.group(0)
                if SECRET_GROUP in match.re.groupindex and match.start(SECRET_GROUP) >= 0:
                    start = match.start(SECRET_GROUP) - match.start()
                    end = match.end(SECRET_GROUP) - match.start()
                    if whole[start:end] == marker:
                        return whole
                    found += 1
                    return whole[:start] + marker + whole[end:]
                if whole == marker:
                    return whole
                found += 1
                return marker

            text = pattern.sub(replace, text)
            if found:
                counts[category] = counts.get(category, 0) + found
        return text

    def redact_value(self, value: Any, counts: dict[str, int], depth: int = 0) -> Any:
        """A JSON value with every string redacted, map keys included, at any depth a
        record can have. Other scalars are returned as they are."""
        if isinstance(value, str):
            return self.redact_text(value, counts)
        if isinstance(value, Mapping):
            self._check_depth(depth)
            result: dict[Any, Any] = {}
            for key, item in value.items():
                if isinstance(key, str):
                    redacted = self.redact_text(key, counts)
                    key = _free_key(redacted, result, value) if redacted != key else key
                result[key] = self.redact_value(item, counts, depth + 1)
            return result
        if isinstance(value, (list, tuple)):
            self._check_depth(depth)
            items = [self.redact_value(item, counts, depth + 1) for item in value]
            return items if isinstance(value, list) else tuple(items)
        return value

    @staticmethod
    def _check_depth(depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ValidationError(
                f"a value nested deeper than {MAX_DEPTH} levels cannot be redacted",
                details={"field": "value"},
            )

    def redact_map(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """Every string in the map, keys included, whatever the event type: for wrapping
        what leaves the library unredacted (callbacks, logs)."""
        if not self.config.enabled:
            return dict(value)
        result: dict[str, Any] = self.redact_value(value, {})
        return result

    def _redact_data(
        self, event: Event, counts: dict[str, int]
    ) -> tuple[dict[str, Any], list[str]]:
        """The event's data redacted, and the (redacted) top-level keys that changed."""
        only = None if self.config.deep_scan else KNOWN_FIELDS.get(event.type, ())
        data: dict[str, Any] = {}
        changed: list[str] = []
        for key, value in event.data.items():
            if only is not None and key not in only:
                data[key] = value
                continue
            before = sum(counts.values())
            new_key = key
            if only is None:
                redacted = self.redact_text(key, counts)
                new_key = _free_key(redacted, data, event.data) if redacted != key else key
            data[new_key] = self.redact_value(value, counts, 1)
            if sum(counts.values()) != before:
                changed.append(new_key)
        return data, changed

    def redact(self, event: Event) -> tuple[Event, RedactionReport]:
        """The event with secrets replaced, and the report. An event with nothing to
        redact comes back as the same object, metadata untouched; one redacted before
        (by the same patterns) too."""
        config = self.config
        if not config.enabled:
            return event, RedactionReport()
        counts: dict[str, int] = {}
        data, changed = self._redact_data(event, counts)
        metadata = event.metadata
        if config.scan_metadata:
            metadata = self.redact_value(metadata, counts)
        if not counts:
            return event, RedactionReport()
        report = RedactionReport(categories=counts, fields=changed)
        stored = report.merged(metadata.get(REDACTION_KEY))
        metadata = {**metadata, REDACTION_KEY: stored.to_dict()}
        # ``dataclasses.replace`` re-runs the record's validation, which the rewritten
        # strings pass by construction; it is the one way records are changed here.
        return dataclasses.replace(event, data=data, metadata=metadata), report
