"""The error payload convention of error events and failed runs.

``error_occurred``, ``run_failed`` and ``session_failed`` carry ``{error_code,
error_message, provider_error?, details?}``; ``Run.error`` carries the same error as
``{code, message, provider_error?, details?}``. ``provider_error`` describes what the
provider itself reported (``provider, kind, message, exit_code?, stderr?``), with its
``stderr`` bounded. The builder applies the convention to raw error events; the session
manager uses it to record a failed run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import AgentSessionsError, ErrorCode
from .event_types import EventType

#: Default limits for provider stderr kept in an error payload (``EventBuilder`` takes
#: others): a crashing CLI can print megabytes, and the head is where the cause usually is.
ERROR_TEXT_MAX_BYTES = 16384
ERROR_TEXT_MAX_LINES = 200
#: Event types whose payload follows the error convention.
ERROR_EVENT_TYPES = frozenset(
    {EventType.ERROR_OCCURRED, EventType.RUN_FAILED, EventType.SESSION_FAILED}
)


def truncate_error_text(
    text: str,
    *,
    max_bytes: int = ERROR_TEXT_MAX_BYTES,
    max_lines: int = ERROR_TEXT_MAX_LINES,
) -> tuple[str, bool]:
    """The first ``max_lines`` lines, then at most ``max_bytes`` of UTF-8 (never cutting
    a character in half); and whether anything was cut.

    A byte cut inside a word drops the rest of that word too (back to the last
    whitespace, when there is one): half a token is not recognisable as a secret by
    redaction, which runs later, yet is still most of one."""
    lines = text.splitlines(keepends=True)
    truncated = len(lines) > max_lines
    if truncated:
        text = "".join(lines[:max_lines])
    encoded = text.encode("utf-8")
    if len(encoded) > max_bytes:
        head = encoded[:max_bytes].decode("utf-8", errors="ignore")
        if head and not head[-1].isspace() and not text[len(head)].isspace():
            cut = max(head.rfind(space) for space in (" ", "\n", "\t", "\r"))
            head = head[: cut + 1] if cut >= 0 else head
        text = head
        truncated = True
    return text, truncated


def provider_error_payload(
    value: Mapping[str, Any],
    *,
    provider: str | None = None,
    max_bytes: int = ERROR_TEXT_MAX_BYTES,
    max_lines: int = ERROR_TEXT_MAX_LINES,
) -> dict[str, Any]:
    """The ``provider_error`` map of the convention: ``provider`` (the context's when
    absent, else ``unknown``), ``kind``, ``message``, optional ``exit_code``, and
    ``stderr`` bounded with ``truncated: true`` when it was cut. Other keys are kept."""
    payload = dict(value)
    payload["provider"] = payload.get("provider") or provider or "unknown"
    stderr = payload.get("stderr")
    if isinstance(stderr, str):
        stderr, cut = truncate_error_text(stderr, max_bytes=max_bytes, max_lines=max_lines)
        payload["stderr"] = stderr
        if cut:
            payload["truncated"] = True
    return payload


def error_payload(
    error: AgentSessionsError | Mapping[str, Any] | str,
    *,
    provider: str | None = None,
) -> dict[str, Any]:
    """``{error_code, error_message, provider_error?, details?}`` for an error event
    (``error_occurred``, ``run_failed``, ``session_failed``).

    An ``AgentSessionsError`` supplies its code and message and, when it has one, its
    ``provider_error`` attribute; a mapping may use either the event keys
    (``error_code``/``error_message``) or the record keys (``code``/``message``); a bare
    string is a message with code ``unknown_error``.
    """
    provider_error: Any = None
    details: Any = None
    if isinstance(error, AgentSessionsError):
        code, message, details = str(error.code), error.message, error.details
        provider_error = getattr(error, "provider_error", None)
    elif isinstance(error, Mapping):
        code = str(error.get("error_code") or error.get("code") or ErrorCode.UNKNOWN_ERROR)
        message = str(error.get("error_message") or error.get("message") or code)
        provider_error, details = error.get("provider_error"), error.get("details")
    else:
        code, message = str(ErrorCode.UNKNOWN_ERROR), str(error)
    payload: dict[str, Any] = {"error_code": code, "error_message": message}
    if isinstance(provider_error, Mapping):
        payload["provider_error"] = provider_error_payload(provider_error, provider=provider)
    if details:
        payload["details"] = dict(details)
    return payload


def run_error(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The same error in the shape of ``Run.error``: ``{code, message, provider_error?,
    details?}``."""
    record = {"code": payload["error_code"], "message": payload["error_message"]}
    record.update({k: payload[k] for k in ("provider_error", "details") if k in payload})
    return record
