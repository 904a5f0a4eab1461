"""Which tool call of a session cost the most: where ``demo`` points the replay.

A tool call costs what feeding its result back to the model cost: the input and cache
write tokens of the model call that read its result (the new context it brought), priced
with the run's provider and model. That call is the first usage report after the result,
in the same run (a new prompt would be read with it), that belongs to another model call
than the one that asked for the tool (an importer may log a call's usage after the
results of its tools: the ``message_id`` the events carry tells them apart). Cache reads
are left out on purpose: they are the whole conversation read again on every call, so
they grow with the session and would always name one of its last tool calls. Tool calls
whose results were read together share that call's cost (``shared``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..domain.event import Event
from ..domain.event_types import EventType
from ..domain.pricing import PricingTable, calculate_cost
from ..domain.run import Run
from ..domain.token_usage import token_count

_RESULTS = (EventType.TOOL_CALL_COMPLETED, EventType.TOOL_CALL_FAILED)
#: Counted as new context; the one-hour share of cache writes is priced, not counted.
_NEW_CONTEXT = ("input_tokens", "cache_creation_tokens")
_PRICED = (*_NEW_CONTEXT, "cache_creation_1h_tokens")


@dataclass(frozen=True, slots=True)
class CostlyCall:
    """The tool call (its start and result events), the usage report of the model call
    that read its result, the tokens that call added to the context, and what they cost
    (``None``: no price for the run's model)."""

    started: Event
    ended: Event
    usage: Event
    tokens: int
    cost_usd: float | None
    #: How many tool calls' results that model call read (parallel calls).
    shared: int = 1

    @property
    def tool_name(self) -> str:
        name = self.started.data.get("tool_name")
        return name if isinstance(name, str) else "(unnamed tool)"

    @property
    def key(self) -> tuple[float, int]:
        return (self.cost_usd or 0.0, self.tokens)


def _model(run: Run | None, usage: Event) -> tuple[str | None, str | None]:
    provider = run.provider if run is not None and run.provider else usage.provider
    model = None if run is None else run.provider_metadata.get("model")
    if not isinstance(model, str):
        reported = usage.data.get("model")
        model = reported if isinstance(reported, str) else None
    return provider, model


def _message(event: Event) -> str | None:
    found = event.data.get("message_id")
    return found if isinstance(found, str) else None


def costliest_tool_call(
    events: Iterable[Event], runs: Sequence[Run], pricing: PricingTable | None = None
) -> CostlyCall | None:
    """The costliest tool call of these events (in log order), the first of equals;
    ``None`` when no tool call's result was read by a model call with a usage report."""
    by_id = {run.id: run for run in runs}
    started: dict[str, Event] = {}
    answered: list[tuple[Event, Event]] = []
    best: CostlyCall | None = None
    for event in events:
        call_id = event.data.get("tool_call_id")
        if event.type is EventType.TOOL_CALL_STARTED and isinstance(call_id, str):
            started[call_id] = event
        elif event.type in _RESULTS and isinstance(call_id, str) and call_id in started:
            answered.append((started.pop(call_id), event))
        elif event.type is EventType.TOKEN_USAGE_UPDATED and answered:
            # A result is read by a later call of its own run (a new prompt in another
            # run would be read with it, and take the cost).
            answered = [pair for pair in answered if pair[0].run_id == event.run_id]
            asker = _message(event)
            read = [pair for pair in answered if asker is None or _message(pair[0]) != asker]
            if not read:
                continue  # the usage of the call that asked for these tools
            priced = {key: token_count(event.data, key) for key in _PRICED}
            provider, model = _model(by_id.get(event.run_id or ""), event)
            cost = calculate_cost(priced, provider, model, pricing)
            tokens = sum(priced[key] for key in _NEW_CONTEXT)
            for start, end in read:
                found = CostlyCall(start, end, event, tokens, cost, len(read))
                if best is None or found.key > best.key:
                    best = found
            answered = [pair for pair in answered if pair not in read]
    return best
