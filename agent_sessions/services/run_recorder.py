"""Recording a run from an agent loop the application drives itself (no ``Provider``).

``with store.record_run(session_id, input=...) as run:`` starts a run (saved as
``running`` at once, so readers see it), then ``run.user(...)``, ``run.assistant(...)``,
``run.tool_call(...)``, ``run.tool_result(...)``, ``run.usage(...)`` build events in
the payload schema of ``docs/events.md`` and **buffer** them: nothing else is written
until the block ends. The end writes the run's outcome, the session and every buffered
event in one atomic ``flush``:

* normal exit: ``completed``, with ``run_completed``; ``output`` is what ``run.output``
  was given, else ``{"content": <the last assistant text>}``;
* an exception: ``failed`` with the error (``run_failed``), and the exception goes on;
* ``KeyboardInterrupt`` or ``asyncio.CancelledError``: ``cancelled`` (``run_cancelled``).

Token usage is the sum of the ``usage`` calls; the cost is priced from it with
``pricing`` when the run names a ``provider`` (and ``model``) and no ``cost_usd`` was
given; turns are the assistant messages. If the final flush fails, the error is raised
(from the block's own exception, if any) and the run stays ``running`` in the store.

Entering and leaving the block are :meth:`RunRecorder.start` and
:meth:`RunRecorder.finish`, so the async facade's ``async with store.record_run(...)``
runs the same two steps in its executor rather than a copy of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from ..domain.checks import require_id
from ..domain.error_payload import error_payload, run_error
from ..domain.errors import AgentSessionsError, ErrorCode, ValidationError
from ..domain.event import Event
from ..domain.event_builder import EventContext
from ..domain.event_types import EventType
from ..domain.execution_result import ExecutionResult
from ..domain.pricing import PricingTable
from ..domain.run import Run, merge_token_usage
from ..domain.serialization import new_id, optional_string, required_string
from ..domain.statuses import RunStatus
from ..ports.session_store import SessionStore
from .conflicts import reread_and_retry
from .event_pipeline import EventPipeline, guard_store_call
from .run_recording import usage_counts

#: ``Run.provider`` of a recorded run that names none.
APP_PROVIDER = "app"


def _session_changed(exc: AgentSessionsError) -> bool:
    return exc.details.get("record") == "session"


class RunRecorder:
    """One run recorded from an app-driven loop; see the module docstring."""

    def __init__(
        self,
        store: SessionStore,
        session_id: str,
        *,
        input: Mapping[str, Any] | None = None,  # noqa: A002 - the field name of Run.input
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        pricing: PricingTable | Mapping[str, Any] | None = None,
        pipeline: EventPipeline | None = None,
    ) -> None:
        self._store = store
        self._session_id = require_id(session_id, "session_id")
        self._provider = optional_string(provider, "provider") or APP_PROVIDER
        self._model = optional_string(model, "model")
        self._pricing = PricingTable.coerce(pricing)
        self._pipeline = pipeline if pipeline is not None else EventPipeline(store)
        self._run = Run.new(session_id=self._session_id, input=input, metadata=metadata, id=run_id)
        self._events: list[Event] = []
        self._usage: dict[str, Any] = {}
        self._tools: dict[str, str] = {}
        self._output: dict[str, Any] | None = None
        self._cost: float | None = None
        self._last_reply: Any = None
        self._turns = 0
        self._state = "new"

    # the record ---------------------------------------------------------------------

    @property
    def run(self) -> Run:
        """The run: ``running`` inside the block, its outcome after it."""
        return self._run

    @property
    def run_id(self) -> str:
        return self._run.id

    @property
    def events(self) -> list[Event]:
        """The events recorded so far (buffered inside the block, written after it)."""
        return list(self._events)

    # the block ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(exc)

    def start(self) -> None:
        """Save the run as ``running``: what entering the block does. A step of its own
        so that the async facade's twin (``async with store.record_run(...)``) runs it
        in its executor, off the event loop."""
        if self._state != "new":
            raise AgentSessionsError(
                "a run recorder records one run", code=ErrorCode.INVALID_OPERATION
            )
        metadata = {"model": self._model} if self._model else {}
        running = self._run.with_status(RunStatus.RUNNING).with_provider(self._provider, metadata)
        guard_store_call("save_run", lambda: self._store.save_run(running))
        self._run = running
        self._state = "open"

    def finish(self, exc: BaseException | None) -> None:
        """Write the outcome with the buffered events in one ``flush``: what leaving the
        block does, ``exc`` being the exception that ends it (``None``: completed).
        Does nothing unless the run was started and not finished yet."""
        if self._state != "open":
            return
        self._state = "closing"
        if exc is None:
            self._finish(RunStatus.COMPLETED, None)
        elif isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
            self._finish(RunStatus.CANCELLED, None)
        else:
            self._finish(RunStatus.FAILED, exc)
        self._state = "closed"

    # events -------------------------------------------------------------------------

    def _context(self) -> EventContext:
        return EventContext(
            session_id=self._session_id, run_id=self._run.id, provider=self._provider
        )

    def _add(self, event_type: EventType | str, data: Mapping[str, Any]) -> Event:
        if self._state != "open":
            raise AgentSessionsError(
                "events are recorded inside the record_run block",
                code=ErrorCode.INVALID_OPERATION,
                details={"run_id": self._run.id},
            )
        raw = {"type": event_type, "data": {k: v for k, v in data.items() if v is not None}}
        event = self._pipeline.prepare(raw, self._context())
        self._events.append(event)
        return event

    def user(self, content: Any, **extra: Any) -> Event:
        """A user message (``message_sent``); ``content`` is text or content blocks."""
        return self._add(EventType.MESSAGE_SENT, {**extra, "role": "user", "content": content})

    def system(self, content: str, **extra: Any) -> Event:
        """A system prompt (``message_sent`` with role ``system``)."""
        return self._add(EventType.MESSAGE_SENT, {**extra, "role": "system", "content": content})

    def assistant(self, content: Any, *, thinking: str | None = None, **extra: Any) -> Event:
        """An assistant message (``message_received``); counts one turn."""
        data = {**extra, "role": "assistant", "content": content, "thinking": thinking}
        event = self._add(EventType.MESSAGE_RECEIVED, data)
        self._last_reply = content
        self._turns += 1
        return event

    def tool_call(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        tool_call_id: str | None = None,
        **extra: Any,
    ) -> str:
        """A tool call (``tool_call_started``); returns its ``tool_call_id`` (a new one
        when none is given), which ``tool_result`` answers."""
        tool_name = required_string(name, "name")
        call_id = optional_string(tool_call_id, "tool_call_id") or new_id("call")
        if arguments is not None and not isinstance(arguments, Mapping):
            raise ValidationError("arguments must be a map", details={"field": "arguments"})
        data = {
            **extra,
            "tool_name": tool_name,
            "tool_call_id": call_id,
            "arguments": dict(arguments or {}),
        }
        self._add(EventType.TOOL_CALL_STARTED, data)
        self._tools[call_id] = tool_name
        return call_id

    def tool_result(
        self, tool_call_id: str, output: Any, *, is_error: bool = False, **extra: Any
    ) -> Event:
        """The result of tool call ``tool_call_id`` (``tool_call_completed``, or
        ``tool_call_failed`` when ``is_error``); the call must have been recorded."""
        call_id = required_string(tool_call_id, "tool_call_id")
        if not isinstance(is_error, bool):
            raise ValidationError("is_error must be true or false", details={"field": "is_error"})
        name = self._tools.get(call_id)
        if name is None:
            raise ValidationError(
                f"no tool call {call_id} in this run", details={"field": "tool_call_id"}
            )
        event_type = EventType.TOOL_CALL_FAILED if is_error else EventType.TOOL_CALL_COMPLETED
        data = {
            **extra,
            "tool_name": name,
            "tool_call_id": call_id,
            "output": output,
            "is_error": is_error,
        }
        return self._add(event_type, data)

    def usage(self, *, input_tokens: int = 0, output_tokens: int = 0, **counts: Any) -> Event:
        """Tokens of one model call (``token_usage_updated``); the run's usage is their
        sum. Other counts (``cache_read_tokens``, ``cache_creation_tokens``, ...) are
        summed alike."""
        data = {"input_tokens": input_tokens, "output_tokens": output_tokens, **counts}
        event = self._add(EventType.TOKEN_USAGE_UPDATED, data)
        self._usage = merge_token_usage(self._usage, usage_counts(data))
        return event

    def event(self, event_type: EventType | str, data: Mapping[str, Any] | None = None) -> Event:
        """Any other event of the run, buffered with the rest."""
        if data is not None and not isinstance(data, Mapping):
            raise ValidationError("data must be a map", details={"field": "data"})
        return self._add(event_type, data or {})

    def set_output(self, output: Mapping[str, Any]) -> None:
        """The run's output (default: the last assistant text)."""
        if not isinstance(output, Mapping):
            raise ValidationError("output must be a map", details={"field": "output"})
        self._output = dict(output)

    def set_cost(self, cost_usd: float) -> None:
        """A cost the model API reported; wins over the priced one."""
        self._cost = self._run.with_cost(cost_usd).cost_usd

    # finalization -------------------------------------------------------------------

    def _final_run(self, status: RunStatus, error: BaseException | None) -> Run:
        stored = guard_store_call("get_run", lambda: self._store.get_run(self._run.id))
        run = stored.add_token_usage(self._usage)
        run = run.replace(turn_count=run.turn_count + self._turns)
        if status is RunStatus.COMPLETED:
            output = self._output if self._output is not None else {"content": self._last_reply}
            cost = self._cost
            if cost is None:
                cost = self._pricing.cost(run.token_usage, self._provider, self._model)
            return run.set_output(output).with_cost(cost)
        if status is RunStatus.FAILED and error is not None:
            payload = self._error_payload(error)
            return run.set_error(run_error(payload))
        return run.with_status(RunStatus.CANCELLED)

    def _error_payload(self, error: BaseException) -> dict[str, Any]:
        if isinstance(error, AgentSessionsError):
            return error_payload(error, provider=self._provider)
        wrapped = AgentSessionsError(
            f"{type(error).__name__}: {error}",
            code=ErrorCode.PROVIDER_ERROR,
            details={"exception": type(error).__name__},
        )
        return error_payload(wrapped, provider=self._provider)

    def _closing_event(self, run: Run) -> Event:
        context = self._context()
        if run.status is RunStatus.COMPLETED:
            data: dict[str, Any] = {
                "stop_reason": "completed",
                "token_usage": dict(run.token_usage),
                "turn_count": run.turn_count,
                "cost_usd": run.cost_usd,
            }
            raw = {"type": EventType.RUN_COMPLETED, "data": data}
        elif run.status is RunStatus.FAILED:
            error = run.error or {}
            raw = {
                "type": EventType.RUN_FAILED,
                "data": error_payload(error, provider=self._provider),
            }
        else:
            raw = {"type": EventType.RUN_CANCELLED, "data": {"reason": "cancelled"}}
        return self._pipeline.prepare(raw, context)

    def _finish(self, status: RunStatus, error: BaseException | None) -> None:
        final = self._final_run(status, error)
        events = [*self._events, self._closing_event(final)]

        def flush() -> None:
            session = guard_store_call(
                "get_session", lambda: self._store.get_session(self._session_id)
            )
            result = ExecutionResult(session=session, run=final, events=events)
            guard_store_call("flush", lambda: self._store.flush(result))

        reread_and_retry(flush, only=_session_changed)
        self._run = final
        self._events = events
