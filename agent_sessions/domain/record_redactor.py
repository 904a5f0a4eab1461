"""Redaction of whole records: what a session, a run or an event may carry to storage.

Event payloads are not the only way a secret reaches a store. A run's input is the
user's prompt, its output and error are what the provider said (stderr included), the
metadata maps and a session's context are whatever the caller put there. Redacting one
of these and not the others only moves the leak, so the rule lives here, once, per
record type: every field a caller fills with free text or JSON is scanned
(``REDACTED_FIELDS``), every identifier is kept (``IDENTIFIER_FIELDS``: ids are how
records are found, and a rewritten id would point nowhere). Applying it is the
composition's job: a store opened with ``redaction=`` and ``RedactingStore`` run every
record through :class:`RecordRedactor` before it is written.

Error messages and details are redacted too (:meth:`RecordRedactor.redact_error`): a
refusal that quotes a value must not carry the secret into a log.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import FunctionType
from typing import Any, TypeVar, cast

from .errors import AgentSessionsError
from .event import Event
from .event_redactor import EventRedactor, RedactionConfig, RedactionReport
from .execution_result import ExecutionResult
from .run import Run
from .session import Session

_Record = TypeVar("_Record", bound=Session | Run | Event)

#: The fields of each record that hold text or JSON a caller or a provider supplied:
#: all of them are scanned, at any depth, map keys included.
REDACTED_FIELDS: Mapping[type, tuple[str, ...]] = {
    Session: ("metadata", "context", "tags"),
    Run: ("input", "output", "error", "metadata", "token_usage", "provider_metadata"),
    Event: ("data", "metadata"),
}
#: Text fields that are identifiers or names from a fixed vocabulary, never redacted.
IDENTIFIER_FIELDS: Mapping[type, tuple[str, ...]] = {
    Session: ("id", "agent_id", "parent_session_id"),
    Run: ("id", "session_id", "provider"),
    Event: ("id", "session_id", "run_id", "provider", "correlation_id"),
}


class RecordRedactor:
    """Applies a :class:`RedactionConfig` to sessions, runs, events, execution results
    and errors (pure). Records with nothing to redact come back as the same object."""

    def __init__(self, config: RedactionConfig) -> None:
        self.config = config
        self.events = EventRedactor(config)

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def redact(self, record: _Record) -> tuple[_Record, RedactionReport]:
        """The record with every secret in its ``REDACTED_FIELDS`` replaced, and what was
        removed. An event also gets the report in ``metadata["_redaction"]``; sessions
        and runs do not (their metadata is the caller's, and a report there would turn
        a re-save into a change)."""
        if not self.config.enabled:
            return record, RedactionReport()
        if isinstance(record, Event):
            event, report = self.events.redact(record)
            return cast(_Record, event), report
        counts: dict[str, int] = {}
        changes: dict[str, Any] = {}
        for name in REDACTED_FIELDS[type(record)]:
            before = sum(counts.values())
            value = self.events.redact_value(getattr(record, name), counts)
            if sum(counts.values()) != before:
                changes[name] = value
        if not changes:
            return record, RedactionReport()
        # ``dataclasses.replace`` (not ``Session.replace``, which moves ``updated_at``):
        # the record is the caller's, with only its secrets gone; its validation runs
        # again on the rewritten values.
        return dataclasses.replace(record, **changes), RedactionReport(counts, list(changes))

    def redact_result(self, result: ExecutionResult) -> tuple[ExecutionResult, RedactionReport]:
        """Session, run, events and provider metadata of a flush, each redacted."""
        if not self.config.enabled:
            return result, RedactionReport()
        session, session_report = self.redact(result.session)
        run, run_report = self.redact(result.run)
        counts = _added({}, session_report, run_report)
        events = []
        for event in result.events:
            redacted, report = self.redact(event) if isinstance(event, Event) else (event, None)
            events.append(redacted)
            if report is not None:
                _added(counts, report)
        provider_metadata = self.events.redact_value(result.provider_metadata, counts)
        if not counts:
            return result, RedactionReport()
        redacted_result = dataclasses.replace(
            result,
            session=session,
            run=run,
            events=events,
            provider_metadata=provider_metadata,
        )
        return redacted_result, RedactionReport(counts)

    def redact_json(self, value: Any) -> Any:
        """Any JSON value (artifact metadata, a caller's map) with its secrets replaced."""
        if not self.config.enabled:
            return value
        return self.events.redact_value(value, {})

    def redact_error(self, error: AgentSessionsError) -> AgentSessionsError:
        """``error`` itself, its message and details redacted in place (its type, code
        and traceback kept), so whoever logs or shows it sees no secret."""
        if not self.config.enabled:
            return error
        counts: dict[str, int] = {}
        message = self.events.redact_text(error.message, counts)
        details = self.events.redact_value(error.details, counts)
        if counts:
            error.message = message
            error.args = (message,)
            error.details = details
        return error


def _added(counts: dict[str, int], *reports: RedactionReport) -> dict[str, int]:
    for report in reports:
        for category, count in report.categories.items():
            counts[category] = counts.get(category, 0) + count
    return counts


@contextmanager
def redacted_errors(redactor: RecordRedactor | None) -> Iterator[None]:
    """Errors raised inside the block leave it redacted (when ``redactor`` is on)."""
    try:
        yield
    except AgentSessionsError as error:
        if redactor is not None:
            redactor.redact_error(error)
        raise


_T = TypeVar("_T")


def errors_redacted(target: _T, redactor: RecordRedactor | None) -> _T:
    """``target`` with every public method of its class answering as before, except
    that the errors they raise leave redacted (:func:`redacted_errors`); ``target``
    itself when ``redactor`` is ``None``.

    A refusal or a not-found quotes what the caller passed (an id, a filter, a cursor),
    and reads are as able as writes to carry a secret into a log: a redacting store
    wraps itself and every service object it hands out (queries, maintenance, history)
    this way, so no method is left out by forgetting it."""
    if redactor is None:
        return target
    for name, member in inspect.getmembers_static(type(target)):
        if name.startswith("_") or not isinstance(member, FunctionType):
            continue  # properties, static and class methods hand out no caller's input
        setattr(target, name, _redacting(getattr(target, name), redactor))
    return target


def _redacting(method: Callable[..., Any], redactor: RecordRedactor) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def steps(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with redacted_errors(redactor):
                yield from method(*args, **kwargs)

        return steps

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with redacted_errors(redactor):
            return method(*args, **kwargs)

    return call


__all__ = [
    "IDENTIFIER_FIELDS",
    "REDACTED_FIELDS",
    "RecordRedactor",
    "errors_redacted",
    "redacted_errors",
]
