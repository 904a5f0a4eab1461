"""Replay: a session's history folded into what the session looked like at one point.

Pure and I/O-free, so that every backend replays by the same rules and the rules are
tested without a store. The store reads what a point needs (the records with the log
position at which each change was committed, the events, the pruned ranges) and hands
them to a :class:`HistoryFold` in position order; the fold only folds.

**Positions.** A session's log position is the sequence number of its last event. A
change to the session or a run committed with event N (in the same transaction) is
visible at N, and one committed before the first event at 0, so the caller interleaves:
a record change at position p is applied after event p and before event p + 1. This is
why notification order will not do: one flush commits a run's status, output and cost
before its log events, yet the run is ``running`` until the last of them.

**Cheap steps.** ``steps()`` takes a snapshot at every event, so a snapshot must not
cost a rebuild: the fold keeps its tuples and maps built and rebuilds one only when an
event or record changes what it holds. Snapshots are immutable values; taking one never
shares anything the fold goes on changing.

**Pairing.** Tool calls are paired with their results, and approval requests with their
answers, by one rule (see :class:`_Waiting`): within the same run, the oldest open item
with the answer's id; else the oldest open item that does not contradict the answer, a
missing id or tool name matching anything. A tool call and its result are always in the
same run (providers reuse ids such as ``call_1`` from one run to the next, so matching
ids across runs would pair a new result with an old, cancelled call). An approval answer
recorded without a run (``record_approval`` called at session level, the usual case:
the request was written in the run it cancelled) may answer a request of any run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from .errors import AgentSessionsError, ErrorCode, ValidationError
from .event import Event
from .event_types import EventType
from .pricing import PricingTable
from .run import Run
from .session import Session
from .statuses import TERMINAL_RUN_STATUSES
from .timestamps import to_iso
from .token_usage import token_count

ToolCallStatus = Literal["open", "completed", "failed"]

#: The events a snapshot lists as errors: what went wrong, not how it was recovered.
#: ``run_timeout`` is one too: a run that ran out of time failed as surely as a
#: ``run_failed`` one.
ERROR_TYPES = frozenset(
    {
        EventType.ERROR_OCCURRED,
        EventType.RUN_FAILED,
        EventType.RUN_TIMEOUT,
        EventType.SESSION_FAILED,
        EventType.TOOL_CALL_FAILED,
    }
)

_RESULT_STATUS: Mapping[EventType, ToolCallStatus] = {
    EventType.TOOL_CALL_COMPLETED: "completed",
    EventType.TOOL_CALL_FAILED: "failed",
}
_APPROVAL_ANSWERS = frozenset({EventType.TOOL_APPROVAL_GRANTED, EventType.TOOL_APPROVAL_DENIED})

#: The events the fold keeps (tool calls, errors, approvals) or reads beyond the
#: provider and model they name (token usage): the only ones a replay needs whole.
#: Every other event only moves the position, counts, and may name a provider or
#: model; a store may hand it to :meth:`HistoryFold.pass_event` as a :class:`LogMark`,
#: without building the event.
KEPT_TYPES = frozenset(
    {
        *_RESULT_STATUS,
        EventType.TOOL_CALL_STARTED,
        EventType.TOKEN_USAGE_UPDATED,
        EventType.TOOL_APPROVAL_REQUESTED,
        *_APPROVAL_ANSWERS,
        *ERROR_TYPES,
    }
)

#: The counts a :class:`Usage` holds, in the order of its fields (the ``token_usage``
#: keys of ``domain/token_usage.py``).
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "total_tokens",
)
_NO_TOKENS = (0, 0, 0, 0, 0)


def _text(data: Mapping[str, Any], key: str) -> str | None:
    """A payload's identifying text (an id, a tool name, a model); anything else, an
    empty string included, identifies nothing."""
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _duration_ms(started: Event, ended: Event) -> float:
    return (ended.timestamp - started.timestamp).total_seconds() * 1000


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class LogMark:
    """What a replay reads of a stored event whose type is not in :data:`KEPT_TYPES`:
    its place, time and run, and the provider and model it names (``model`` is its
    ``data["model"]`` when that is a non-empty string, else ``None``)."""

    sequence_number: int
    session_id: str
    run_id: str | None
    timestamp: datetime
    provider: str | None
    model: str | None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call paired with its result.

    ``started`` is the ``tool_call_started`` event, ``ended`` the ``tool_call_completed``
    or ``tool_call_failed`` one (``None`` while the call is open). A result that found
    no open call to answer (its start was pruned, or never recorded) is kept as an
    *orphan*: ``started`` is ``None``, ``status`` is the result's and there is no
    duration. Presenting the result as its own start would show a start that never
    happened. ``tool_call_id`` and ``tool_name`` are the start's, else the result's.
    """

    tool_call_id: str | None
    tool_name: str | None
    run_id: str | None
    started: Event | None
    ended: Event | None
    status: ToolCallStatus
    duration_ms: float | None

    def __post_init__(self) -> None:
        if self.started is None and self.ended is None:
            raise ValidationError("a tool call needs its start or its result")

    @property
    def first_event(self) -> Event:
        """Where the call appears on the timeline: its start, or an orphan's result."""
        event = self.started if self.started is not None else self.ended
        if event is None:  # refused on construction
            raise AssertionError("a tool call needs its start or its result")
        return event

    @property
    def sequence(self) -> int:
        return self.first_event.sequence_number or 0

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def is_orphan(self) -> bool:
        return self.started is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool_call_id": self.tool_call_id,
            "tool_name": self.tool_name,
            "run_id": self.run_id,
            "status": self.status,
            "started": None if self.started is None else self.started.sequence_number,
            "ended": None if self.ended is None else self.ended.sequence_number,
            "duration_ms": self.duration_ms,
        }


@dataclass(frozen=True, slots=True)
class PrunedRange:
    """Events ``first`` to ``last`` (inclusive) were removed by retention: a replay shows
    the hole rather than pretending the log was continuous."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not 1 <= self.first <= self.last:
            raise ValidationError(
                f"a pruned range runs from a first to a last sequence number, 1 <= first "
                f"<= last; got {self.first}..{self.last}",
                details={"field": "first"},
            )

    def __str__(self) -> str:
        if self.first == self.last:
            return f"event {self.first} pruned"
        return f"events {self.first}\u2013{self.last} pruned"

    def to_dict(self) -> dict[str, int]:
        return {"first": self.first, "last": self.last}


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage and cost so far.

    Counts are read as the runs view reads them (``token_count``): ``total_tokens`` is
    the sum of what the provider reported as total, not ``input + output``, so a replay
    at the end of a run agrees with the view. ``cost_estimated`` says that (some of)
    ``cost_usd`` was priced from a pricing table rather than recorded on the run;
    ``cost_partial`` that some tokens could not be priced (unknown provider or model),
    so ``cost_usd`` leaves them out. ``cost_usd`` is ``None`` when nothing was priced.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None
    cost_estimated: bool = False
    cost_partial: bool = False

    @property
    def counts(self) -> tuple[int, int, int, int, int]:
        """The counts in the order of :data:`USAGE_KEYS`."""
        return (
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_creation_tokens,
            self.total_tokens,
        )

    @property
    def has_tokens(self) -> bool:
        return any(self.counts)

    def token_usage(self) -> dict[str, int]:
        """The counts as a ``token_usage`` map (what a pricing table prices)."""
        return dict(zip(USAGE_KEYS, self.counts, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.token_usage(),
            "cost_usd": self.cost_usd,
            "cost_estimated": self.cost_estimated,
            "cost_partial": self.cost_partial,
        }


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """What the session looked like at log position ``sequence`` (0: before its first
    event): its record and its runs' records as they were then, and what the events up
    to then add up to.

    ``events`` is the window of events the caller passed in (the fold keeps no copy of
    the log: a point in the middle of a long session needs only the events around it);
    ``event_count`` is how many events were applied up to ``sequence``. ``timestamp`` is
    that of the last applied event. ``usage_by_run`` has every run known so far, and
    ``usage`` their total plus any usage reported outside a run. ``gaps`` are the
    pruned ranges that start at or below ``sequence``; ``approximate`` says that some
    record change applied was placed by an approximate position (a store migrated from
    before positions were recorded).
    """

    sequence: int
    timestamp: datetime | None
    event_count: int
    session: Session
    runs: tuple[Run, ...]
    events: tuple[Event, ...]
    tool_calls: tuple[ToolCall, ...]
    open_tool_calls: tuple[ToolCall, ...]
    usage_by_run: Mapping[str, Usage]
    usage: Usage
    errors: tuple[Event, ...]
    pending_approvals: tuple[Event, ...]
    gaps: tuple[PrunedRange, ...]
    approximate: bool

    def run(self, run_id: str) -> Run | None:
        """The run as it was, or ``None`` when it did not exist yet."""
        return next((run for run in self.runs if run.id == run_id), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible map (``--json`` output)."""
        return {
            "sequence": self.sequence,
            "timestamp": to_iso(self.timestamp),
            "event_count": self.event_count,
            "session": self.session.to_dict(),
            "runs": [run.to_dict() for run in self.runs],
            "events": [event.to_dict() for event in self.events],
            "tool_calls": [call.to_dict() for call in self.tool_calls],
            "open_tool_calls": [call.to_dict() for call in self.open_tool_calls],
            "usage_by_run": {run_id: u.to_dict() for run_id, u in self.usage_by_run.items()},
            "usage": self.usage.to_dict(),
            "errors": [event.to_dict() for event in self.errors],
            "pending_approvals": [event.to_dict() for event in self.pending_approvals],
            "gaps": [gap.to_dict() for gap in self.gaps],
            "approximate": self.approximate,
        }


# ---------------------------------------------------------------------------- pairing


@dataclass(frozen=True, slots=True)
class _Ticket:
    """What identifies an open item (a call, a request) or an answer to one."""

    run_id: str | None
    item_id: str | None
    name: str | None

    @classmethod
    def of(cls, event: Event) -> _Ticket:
        data = event.data
        return cls(event.run_id, _text(data, "tool_call_id"), _text(data, "tool_name"))

    def accepts(self, answer: _Ticket) -> bool:
        """Nothing contradicts: ids are not both present (equal ids are matched first),
        and the names are equal or one is missing."""
        if self.item_id is not None and answer.item_id is not None:
            return False
        return self.name is None or answer.name is None or self.name == answer.name


class _Waiting:
    """Open items awaiting an answer, oldest first, indexed by run so that an answer
    scans only its run's open items. Tokens are increasing integers handed out by the
    fold, so insertion order is age order."""

    def __init__(self) -> None:
        self._all: dict[int, _Ticket] = {}
        self._by_run: dict[str | None, dict[int, _Ticket]] = {}

    def __iter__(self) -> Iterator[int]:
        return iter(self._all)

    def add(self, token: int, ticket: _Ticket) -> None:
        self._all[token] = ticket
        self._by_run.setdefault(ticket.run_id, {})[token] = ticket

    def take(self, answer: _Ticket, *, any_run: bool = False) -> int | None:
        """The token of the oldest open item ``answer`` answers, removed; ``None`` when
        none does. ``any_run``: an answer without a run may answer any run's item."""
        pool = self._all if any_run else self._by_run.get(answer.run_id, {})
        token = self._find(pool, answer)
        if token is not None:
            ticket = self._all.pop(token)
            del self._by_run[ticket.run_id][token]
        return token

    @staticmethod
    def _find(pool: Mapping[int, _Ticket], answer: _Ticket) -> int | None:
        if answer.item_id is not None:
            for token, ticket in pool.items():
                if ticket.item_id == answer.item_id:
                    return token
        for token, ticket in pool.items():
            if ticket.accepts(answer):
                return token
        return None


# ---------------------------------------------------------------------------- usage


@dataclass(slots=True)
class _RunUsage:
    """What the events of one run (or of no run: key ``None``) said about its usage."""

    counts: tuple[int, int, int, int, int] = _NO_TOKENS
    provider: str | None = None
    model: str | None = None


def _record_counts(run: Run | None) -> tuple[int, int, int, int, int] | None:
    """A finished run's recorded totals: what was billed, so they win over the sum of
    its usage events (which may be partial, or absent for providers that report only a
    total). A run still going, or one recorded without usage, has none to offer."""
    if run is None or run.status not in TERMINAL_RUN_STATUSES:
        return None
    if not any(key in run.token_usage for key in USAGE_KEYS):
        return None
    usage = run.token_usage
    return (
        token_count(usage, "input_tokens"),
        token_count(usage, "output_tokens"),
        token_count(usage, "cache_read_tokens"),
        token_count(usage, "cache_creation_tokens"),
        token_count(usage, "total_tokens"),
    )


def _usage_of(run: Run | None, events: _RunUsage, pricing: PricingTable) -> Usage:
    """One run's usage so far: the record's totals when it finished with some, else the
    events' sums; its recorded cost when set, else its tokens priced with the run's
    provider and model (the record's, else the latest its events named)."""
    counts = _record_counts(run)
    if counts is None:
        counts = events.counts
    tokens = Usage(*counts)
    if run is not None and run.cost_usd is not None:
        return Usage(*counts, cost_usd=run.cost_usd)
    provider = run.provider if run is not None and run.provider else events.provider
    model = None
    if run is not None:
        model = _text(run.provider_metadata, "model")
    if model is None:
        model = events.model
    cost = pricing.cost(tokens.token_usage(), provider, model)
    if cost is None:
        return Usage(*counts, cost_partial=tokens.has_tokens)
    return Usage(*counts, cost_usd=cost, cost_estimated=True)


def _total(parts: Sequence[Usage]) -> Usage:
    """The sum; the cost is the sum of the known costs, ``None`` only when no part has
    one (a total of 0.0 would claim the unpriced runs were free)."""
    known = [u.cost_usd for u in parts if u.cost_usd is not None]
    return Usage(
        input_tokens=sum(u.input_tokens for u in parts),
        output_tokens=sum(u.output_tokens for u in parts),
        cache_read_tokens=sum(u.cache_read_tokens for u in parts),
        cache_creation_tokens=sum(u.cache_creation_tokens for u in parts),
        total_tokens=sum(u.total_tokens for u in parts),
        cost_usd=sum(known) if known else None,
        cost_estimated=any(u.cost_estimated for u in parts),
        cost_partial=any(u.cost_partial for u in parts),
    )


# ---------------------------------------------------------------------------- the fold


def _position_error(message: str) -> ValidationError:
    return ValidationError(message, details={"field": "sequence_number"})


class HistoryFold:
    """The incremental state of a replay: apply the history in position order, take a
    :class:`SessionSnapshot` whenever wanted.

    ``pricing`` prices runs without a recorded cost; ``None`` means the built-in list
    prices, as for the session manager, so an estimate is shown where one can be made
    (and flagged as one: ``Usage.cost_estimated``).
    """

    def __init__(self, pricing: PricingTable | None = None) -> None:
        self._pricing = PricingTable.coerce(pricing)
        self._session_id: str | None = None
        self._position = 0
        self._timestamp: datetime | None = None
        self._event_count = 0
        self._approximate = False
        self._next_token = 0
        # records
        self._session: Session | None = None
        self._runs: dict[str, Run] = {}
        self._runs_view: tuple[Run, ...] | None = ()
        # tool calls by token, in order of their first event; the open ones
        self._calls: dict[int, ToolCall] = {}
        self._calls_view: tuple[ToolCall, ...] | None = ()
        self._open_calls = _Waiting()
        self._open_view: tuple[ToolCall, ...] | None = ()
        # errors, approvals, gaps
        self._errors: list[Event] = []
        self._errors_view: tuple[Event, ...] | None = ()
        self._requests: dict[int, Event] = {}
        self._pending = _Waiting()
        self._pending_view: tuple[Event, ...] | None = ()
        self._gaps: list[PrunedRange] = []
        # usage: by run id (None: usage reported outside any run), in order of appearance
        self._run_usage: dict[str | None, _RunUsage] = {}
        self._usage: dict[str | None, Usage] = {}
        self._dirty_usage: set[str | None] = set()
        self._usage_by_run: Mapping[str, Usage] = MappingProxyType({})
        self._usage_total = Usage()

    @property
    def sequence(self) -> int:
        """The current log position."""
        return self._position

    # -- applying ---------------------------------------------------------------------

    def apply_event(self, event: Event) -> None:
        """The next stored event. Sequence numbers must increase; they may jump over a
        pruned range (say so with :meth:`apply_gap`)."""
        position = event.sequence_number
        if position is None:
            raise _position_error(
                f"event {event.id} has no sequence number: replay needs stored events"
            )
        self._move(position, event.session_id, event.timestamp)
        self._note_provider(event.run_id, event.provider, _text(event.data, "model"))
        kind = event.type
        if kind is EventType.TOOL_CALL_STARTED:
            self._start_call(event)
        elif kind in _RESULT_STATUS:
            self._end_call(event, _RESULT_STATUS[kind])
        elif kind is EventType.TOKEN_USAGE_UPDATED:
            self._add_usage(event)
        elif kind is EventType.TOOL_APPROVAL_REQUESTED:
            token = self._token()
            self._requests[token] = event
            self._pending.add(token, _Ticket.of(event))
            self._pending_view = None
        elif kind in _APPROVAL_ANSWERS:
            answered = self._pending.take(_Ticket.of(event), any_run=event.run_id is None)
            if answered is not None:
                del self._requests[answered]
                self._pending_view = None
        if kind in ERROR_TYPES:
            self._errors.append(event)
            self._errors_view = None

    def pass_event(self, mark: LogMark) -> None:
        """The next stored event, of a type outside :data:`KEPT_TYPES`, as what the fold
        reads of it: the same as :meth:`apply_event` of the whole event."""
        self._move(mark.sequence_number, mark.session_id, mark.timestamp)
        self._note_provider(mark.run_id, mark.provider, mark.model)

    def _move(self, position: int, session_id: str, timestamp: datetime) -> None:
        if position <= self._position:
            raise _position_error(
                f"events are applied in sequence order: {position} after {self._position}"
            )
        self._check_session(session_id, "event")
        self._position = position
        self._timestamp = timestamp
        self._event_count += 1

    def apply_record(self, record: Session | Run, *, approximate: bool = False) -> None:
        """The session or a run as a change committed at the current position left it.
        ``approximate``: that position was derived, not recorded (see the snapshot's
        ``approximate``)."""
        if isinstance(record, Session):
            self._check_session(record.id, "session")
            self._session = record
        elif isinstance(record, Run):
            self._check_session(record.session_id, "run")
            if record.id not in self._runs:
                self._run_usage.setdefault(record.id, _RunUsage())
            self._runs[record.id] = record
            self._runs_view = None
            self._dirty_usage.add(record.id)
        else:
            raise ValidationError(
                f"a replayed record is a Session or a Run, not {type(record).__name__}",
                details={"field": "record"},
            )
        self._approximate = self._approximate or approximate

    def apply_gap(self, first: int, last: int) -> None:
        """Events ``first`` to ``last`` were pruned. It shows in snapshots from position
        ``first`` on; apply it before the events that follow it. It does not move the
        position (events do, and :meth:`advance`)."""
        gap = PrunedRange(first, last)
        if gap not in self._gaps:
            self._gaps.append(gap)
            self._gaps.sort(key=lambda g: (g.first, g.last))

    def advance(self, position: int) -> None:
        """Move to a position no event will be applied at: inside a pruned range, where
        the records committed with the pruned events are still known and are applied
        after this."""
        if position < self._position:
            raise _position_error(f"the position moves forward: {position} after {self._position}")
        self._position = position

    # -- snapshots --------------------------------------------------------------------

    def snapshot(self, *, window: Sequence[Event] = ()) -> SessionSnapshot:
        """The state at the current position. Costs the length of ``window`` plus what
        changed since the last snapshot, not the length of the history."""
        if self._session is None:
            raise AgentSessionsError(
                "a snapshot needs the session record: apply it (at position 0) first",
                code=ErrorCode.INVALID_OPERATION,
            )
        self._refresh_usage()
        return SessionSnapshot(
            sequence=self._position,
            timestamp=self._timestamp,
            event_count=self._event_count,
            session=self._session,
            runs=self._runs_tuple(),
            events=tuple(window),
            tool_calls=self._calls_tuple(),
            open_tool_calls=self._open_tuple(),
            usage_by_run=self._usage_by_run,
            usage=self._usage_total,
            errors=self._errors_tuple(),
            pending_approvals=self._pending_tuple(),
            gaps=tuple(gap for gap in self._gaps if gap.first <= self._position),
            approximate=self._approximate,
        )

    # -- internals --------------------------------------------------------------------

    def _check_session(self, session_id: str, what: str) -> None:
        """One fold, one session: history of another mixed in is a store bug to report,
        not to fold."""
        if self._session_id is None:
            self._session_id = session_id
        elif session_id != self._session_id:
            raise AgentSessionsError(
                f"a {what} of session {session_id} in the history of {self._session_id}",
                code=ErrorCode.SESSION_MISMATCH,
                details={"session_id": session_id, "expected": self._session_id},
            )

    def _token(self) -> int:
        self._next_token += 1
        return self._next_token

    def _start_call(self, event: Event) -> None:
        ticket = _Ticket.of(event)
        token = self._token()
        self._calls[token] = ToolCall(
            tool_call_id=ticket.item_id,
            tool_name=ticket.name,
            run_id=event.run_id,
            started=event,
            ended=None,
            status="open",
            duration_ms=None,
        )
        self._open_calls.add(token, ticket)
        self._calls_view = self._open_view = None

    def _end_call(self, event: Event, status: ToolCallStatus) -> None:
        answer = _Ticket.of(event)
        token = self._open_calls.take(answer)
        if token is None:
            self._calls[self._token()] = ToolCall(
                tool_call_id=answer.item_id,
                tool_name=answer.name,
                run_id=event.run_id,
                started=None,
                ended=event,
                status=status,
                duration_ms=None,
            )
            self._calls_view = None
            return
        call = self._calls[token]
        started = call.first_event
        self._calls[token] = ToolCall(
            tool_call_id=call.tool_call_id or answer.item_id,
            tool_name=call.tool_name or answer.name,
            run_id=call.run_id,
            started=started,
            ended=event,
            status=status,
            duration_ms=_duration_ms(started, event),
        )
        self._calls_view = self._open_view = None

    def _note_provider(self, run_id: str | None, provider: str | None, model: str | None) -> None:
        """The provider and model a run's events name: what prices a run whose record
        does not say (yet)."""
        if provider is None and model is None:
            return
        usage = self._run_usage.setdefault(run_id, _RunUsage())
        if provider is not None and provider != usage.provider:
            usage.provider = provider
            self._dirty_usage.add(run_id)
        if model is not None and model != usage.model:
            usage.model = model
            self._dirty_usage.add(run_id)

    def _add_usage(self, event: Event) -> None:
        usage = self._run_usage.setdefault(event.run_id, _RunUsage())
        data = event.data
        usage.counts = (
            usage.counts[0] + token_count(data, "input_tokens"),
            usage.counts[1] + token_count(data, "output_tokens"),
            usage.counts[2] + token_count(data, "cache_read_tokens"),
            usage.counts[3] + token_count(data, "cache_creation_tokens"),
            usage.counts[4] + token_count(data, "total_tokens"),
        )
        self._dirty_usage.add(event.run_id)

    def _refresh_usage(self) -> None:
        if not self._dirty_usage:
            return
        for key in self._dirty_usage:
            run = None if key is None else self._runs.get(key)
            self._usage[key] = _usage_of(run, self._run_usage.get(key, _RunUsage()), self._pricing)
        self._dirty_usage.clear()
        # In order of appearance: a run's record or its first event that counted.
        # Usage outside any run counts only when some was reported: the session-level
        # events that name a provider do not make a zero-token, zero-cost "run".
        ordered = [
            key
            for key, events in self._run_usage.items()
            if key in self._usage and (key is not None or events.counts != _NO_TOKENS)
        ]
        by_run = {key: self._usage[key] for key in ordered if key is not None}
        self._usage_by_run = MappingProxyType(by_run)
        self._usage_total = _total([self._usage[key] for key in ordered])

    def _runs_tuple(self) -> tuple[Run, ...]:
        if self._runs_view is None:
            self._runs_view = tuple(self._runs.values())
        return self._runs_view

    def _calls_tuple(self) -> tuple[ToolCall, ...]:
        if self._calls_view is None:
            self._calls_view = tuple(self._calls.values())
        return self._calls_view

    def _open_tuple(self) -> tuple[ToolCall, ...]:
        if self._open_view is None:
            self._open_view = tuple(self._calls[token] for token in self._open_calls)
        return self._open_view

    def _errors_tuple(self) -> tuple[Event, ...]:
        if self._errors_view is None:
            self._errors_view = tuple(self._errors)
        return self._errors_view

    def _pending_tuple(self) -> tuple[Event, ...]:
        if self._pending_view is None:
            self._pending_view = tuple(self._requests[token] for token in self._pending)
        return self._pending_view


# ---------------------------------------------------------------------------- diff


def _field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: (before.get(name), after.get(name))
        for name in dict.fromkeys([*before, *after])
        if before.get(name) != after.get(name)
    }


FieldChanges = Mapping[str, tuple[Any, Any]]


@dataclass(frozen=True, slots=True)
class SnapshotDiff:
    """What changed from snapshot ``before`` to snapshot ``after`` (normally the later).

    Field values are those of the records' ``to_dict``, so they print and compare as
    stored. ``events_added`` are the stored events between the two positions (after
    the lower, up to the higher), all of them when the diff was given the log
    (``SessionHistory.diff``); :func:`diff` of two snapshots alone knows only those in
    the later snapshot's window (the fold keeps no log). ``events_applied`` is the
    signed count of events applied from ``before`` to ``after`` (negative when
    ``after`` is the earlier point), pruned ones not counted.
    ``tool_calls_opened``: calls started in between; ``tool_calls_closed``: calls whose
    result came in between (a call may be in both); ``errors_added``: error events in
    between. These three are complete whatever the window: the fold keeps every tool
    call and error.
    """

    before: int
    after: int
    session_changes: FieldChanges
    run_changes: Mapping[str, FieldChanges]
    runs_added: tuple[Run, ...]
    runs_removed: tuple[str, ...]
    events_added: tuple[Event, ...]
    events_applied: int
    tool_calls_opened: tuple[ToolCall, ...]
    tool_calls_closed: tuple[ToolCall, ...]
    errors_added: tuple[Event, ...]
    usage: tuple[Usage, Usage] | None = None

    @property
    def is_empty(self) -> bool:
        return not (
            self.session_changes
            or self.run_changes
            or self.runs_added
            or self.runs_removed
            or self.events_applied
            or self.events_added
            or self.tool_calls_opened
            or self.tool_calls_closed
            or self.errors_added
            or self.usage
        )

    def lines(self) -> list[str]:
        """The diff as short lines of text, most general first."""
        # The events themselves are left out: between two far points they are many,
        # and ``events_added`` has them for whoever wants them listed.
        out = [f"{self.before} \u2192 {self.after}: {self.events_applied} event(s) applied"]
        out += [
            f"session {name}: {old!r} \u2192 {new!r}"
            for name, (old, new) in self.session_changes.items()
        ]
        out += [f"run {run.id} created ({run.status.value})" for run in self.runs_added]
        out += [f"run {run_id} not yet created" for run_id in self.runs_removed]
        for run_id, changes in self.run_changes.items():
            out += [
                f"run {run_id} {name}: {old!r} \u2192 {new!r}"
                for name, (old, new) in changes.items()
            ]
        out += [
            f"tool call {_call_label(call)} opened at #{call.sequence}"
            for call in self.tool_calls_opened
        ]
        out += [_closed_line(call) for call in self.tool_calls_closed]
        out += [
            f"error at #{event.sequence_number}: {event.type.value}" for event in self.errors_added
        ]
        if self.usage is not None:
            old_usage, new_usage = self.usage
            out.append(
                f"tokens {old_usage.total_tokens} \u2192 {new_usage.total_tokens} total, "
                f"cost {_money(old_usage.cost_usd)} \u2192 {_money(new_usage.cost_usd)}"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "session_changes": {k: list(v) for k, v in self.session_changes.items()},
            "run_changes": {
                run_id: {k: list(v) for k, v in changes.items()}
                for run_id, changes in self.run_changes.items()
            },
            "runs_added": [run.to_dict() for run in self.runs_added],
            "runs_removed": list(self.runs_removed),
            "events_added": [event.to_dict() for event in self.events_added],
            "events_applied": self.events_applied,
            "tool_calls_opened": [call.to_dict() for call in self.tool_calls_opened],
            "tool_calls_closed": [call.to_dict() for call in self.tool_calls_closed],
            "errors_added": [event.to_dict() for event in self.errors_added],
            "usage": None if self.usage is None else [u.to_dict() for u in self.usage],
        }


def _call_label(call: ToolCall) -> str:
    name = call.tool_name or "(unnamed)"
    return name if call.tool_call_id is None else f"{name} ({call.tool_call_id})"


def _closed_line(call: ToolCall) -> str:
    ended = call.ended.sequence_number if call.ended is not None else None
    text = f"tool call {_call_label(call)} {call.status} at #{ended}"
    if call.duration_ms is not None:
        text += f" after {call.duration_ms:.0f} ms"
    if call.is_orphan:
        text += " (its start is not in the log)"
    return text


def _money(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:.6f}"


def diff(
    a: SessionSnapshot, b: SessionSnapshot, *, events: Sequence[Event] | None = None
) -> SnapshotDiff:
    """What changed from ``a`` to ``b``, two snapshots of the same session.

    ``events`` are the stored events between the two positions, read from the log by
    the caller (``SessionHistory.diff``); without them, ``events_added`` has only the
    ones the later snapshot's window holds."""
    if a.session.id != b.session.id:
        raise AgentSessionsError(
            f"a diff compares two points of one session, not {a.session.id} and {b.session.id}",
            code=ErrorCode.SESSION_MISMATCH,
            details={"session_id": b.session.id, "expected": a.session.id},
        )
    runs_before = {run.id: run for run in a.runs}
    runs_after = {run.id: run for run in b.runs}
    run_changes = {}
    for run_id, run in runs_after.items():
        old = runs_before.get(run_id)
        if old is not None:
            changes = _field_changes(old.to_dict(), run.to_dict())
            if changes:
                run_changes[run_id] = changes
    started_before = {call.first_event.id for call in a.tool_calls}
    ended_before = {call.ended.id for call in a.tool_calls if call.ended is not None}
    errors_before = {event.id for event in a.errors}
    low, high = sorted((a.sequence, b.sequence))
    between = b.events if events is None else events
    return SnapshotDiff(
        before=a.sequence,
        after=b.sequence,
        session_changes=_field_changes(a.session.to_dict(), b.session.to_dict()),
        run_changes=run_changes,
        runs_added=tuple(run for run_id, run in runs_after.items() if run_id not in runs_before),
        runs_removed=tuple(run_id for run_id in runs_before if run_id not in runs_after),
        events_added=tuple(
            event for event in between if low < (event.sequence_number or 0) <= high
        ),
        events_applied=b.event_count - a.event_count,
        tool_calls_opened=tuple(
            call
            for call in b.tool_calls
            if call.started is not None and call.started.id not in started_before
        ),
        tool_calls_closed=tuple(
            call
            for call in b.tool_calls
            if call.ended is not None and call.ended.id not in ended_before
        ),
        errors_added=tuple(event for event in b.errors if event.id not in errors_before),
        usage=None if a.usage == b.usage else (a.usage, b.usage),
    )


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One stored version of a session or run record and the log position its change
    committed at (``RecordEvent.log_position``): what a replay interleaves with the
    log's events. ``approximate`` marks a position derived by a migration.

    ``committed_at`` (the stored change's timestamp) and ``with_events`` (it committed
    in the same transaction as the event at ``position``) place it in time, for a
    replay by time: see :meth:`visible_at`."""

    position: int
    record: Session | Run
    approximate: bool = False
    committed_at: datetime | None = None
    with_events: bool = False

    def visible_at(self, position: int, moment: datetime) -> bool:
        """Whether a replay at ``moment``, whose log position is ``position`` (the last
        event not after it), shows this change: one at an earlier position always; one
        at ``position`` when it committed with that event, or at or before ``moment``
        (a change saved after the event, but after ``moment`` too, did not exist yet).
        A change without a commit time (none is stored without one) counts as not
        after it."""
        if self.position != position:
            return self.position < position
        if self.with_events or self.committed_at is None:
            return True
        return self.committed_at <= moment
