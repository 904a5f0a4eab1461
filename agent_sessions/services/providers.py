"""The provider port: what an agent backend (an SDK, a CLI) implements for
``SessionManager``, and a scripted one for tests and demos.

The port is deliberately one call: ``run(input, emit)`` does the whole run, emitting raw
events as they happen and returning the outcome. Streaming, tool loops and retries stay
inside the adapter, where the provider's own protocol is understood; the manager only
records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..domain.errors import AgentSessionsError, ErrorCode
from ..domain.event import Event
from ..domain.event_builder import RawEvent, canonical_type
from ..domain.event_types import EventType
from ..domain.run import merge_token_usage

#: How an adapter hands over an event: a raw mapping (``{"type": ..., "data": ...}``) or
#: an ``Event``. It raises when the run was cancelled meanwhile.
EmitFn = Callable[[RawEvent], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderResult:
    """A successful run's outcome. ``provider_metadata`` carries ``model`` and
    ``provider_session_id`` when the provider has them (they price the run and let a
    later run resume the provider's session); ``cost_usd`` is what the provider itself
    reported, if anything; ``metadata`` is merged into the run's metadata."""

    output: dict[str, Any] = field(default_factory=dict)
    token_usage: dict[str, Any] = field(default_factory=dict)
    provider_metadata: dict[str, Any] = field(default_factory=dict)
    cost_usd: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class ProviderError(AgentSessionsError):
    """A provider failed the run. ``provider_error`` follows the error payload convention
    of ``domain/error_payload.py`` (``provider, kind, message, exit_code?, stderr?``)."""

    default_code = ErrorCode.PROVIDER_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
        provider_error: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.provider_error: dict[str, Any] | None = (
            None if provider_error is None else dict(provider_error)
        )


@runtime_checkable
class Provider(Protocol):
    @property
    def name(self) -> str:
        """Recorded as ``Run.provider`` and ``Event.provider``; keys the pricing table."""
        ...

    def run(self, input: Mapping[str, Any] | None, emit: EmitFn) -> ProviderResult:  # noqa: A002
        """Execute the run, calling ``emit`` for each event; raise ``ProviderError`` (or
        any exception) when it fails."""
        ...


def _type_and_data(raw: RawEvent) -> tuple[EventType | None, Mapping[str, Any]]:
    if isinstance(raw, Event):
        return raw.type, raw.data
    data = raw.get("data")
    return canonical_type(raw.get("type")), data if isinstance(data, Mapping) else {}


class ScriptedProvider:
    """Replays a fixed list of raw events, then succeeds (or raises ``error``).

    Unless given, the output is the last ``message_received`` content and the token usage
    the sum of the ``token_usage_updated`` payloads, so a script reads like a real run.
    """

    def __init__(
        self,
        events: Iterable[RawEvent],
        *,
        name: str = "scripted",
        output: Mapping[str, Any] | None = None,
        token_usage: Mapping[str, Any] | None = None,
        provider_metadata: Mapping[str, Any] | None = None,
        cost_usd: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        self._events = list(events)
        self._name = name
        self._output = None if output is None else dict(output)
        self._token_usage = None if token_usage is None else dict(token_usage)
        self._provider_metadata = dict(provider_metadata or {})
        self._cost_usd = cost_usd
        self._error = error

    @property
    def name(self) -> str:
        return self._name

    def run(self, input: Mapping[str, Any] | None, emit: EmitFn) -> ProviderResult:  # noqa: A002
        reply: Any = None
        usage: dict[str, Any] = {}
        for raw in self._events:
            emit(raw)
            event_type, data = _type_and_data(raw)
            if event_type is EventType.MESSAGE_RECEIVED and "content" in data:
                reply = data["content"]
            elif event_type is EventType.TOKEN_USAGE_UPDATED:
                usage = merge_token_usage(usage, data)
        if self._error is not None:
            raise self._error
        return ProviderResult(
            output=self._output if self._output is not None else {"content": reply},
            token_usage=self._token_usage if self._token_usage is not None else usage,
            provider_metadata=dict(self._provider_metadata),
            cost_usd=self._cost_usd,
        )
