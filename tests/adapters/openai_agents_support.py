"""What the OpenAI Agents SDK adapter tests share: a scripted model for the real
``Runner`` (it answers each turn with the next canned output, tool calls included,
and keeps the input it was given), output builders, and a coroutine runner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from agents import ModelResponse, Usage
from agents.items import TResponseOutputItem
from agents.models.interface import Model
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

_T = TypeVar("_T")


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


def text(content: str, message_id: str = "msg_1") -> ResponseOutputMessage:
    return ResponseOutputMessage(
        type="message",
        id=message_id,
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=content, annotations=[])],
    )


def call(name: str, arguments: dict[str, Any], call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        type="function_call",
        id=f"fc_{call_id}",
        call_id=call_id,
        name=name,
        arguments=json.dumps(arguments),
    )


class ScriptedModel(Model):
    """The SDK's ``Model`` interface answering from a script: one list of output
    items per model call, in order."""

    def __init__(self, *turns: list[TResponseOutputItem]) -> None:
        self.turns = list(turns)
        self.inputs: list[Any] = []

    def script(self, *turns: list[TResponseOutputItem]) -> None:
        self.turns.extend(turns)

    def _next(self, model_input: Any) -> list[TResponseOutputItem]:
        self.inputs.append(model_input)
        if not self.turns:
            raise AssertionError("the script has no answer left")
        return self.turns.pop(0)

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        output = self._next(args[1] if len(args) > 1 else kwargs["input"])
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        output = self._next(args[1] if len(args) > 1 else kwargs["input"])
        response = Response(
            id="resp_scripted",
            created_at=0,
            model="scripted",
            object="response",
            output=output,
            tool_choice="auto",
            tools=[],
            parallel_tool_calls=False,
        )
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=0
        )
