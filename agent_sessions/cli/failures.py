"""Exit codes and the one-line error messages of the command line.

0: done. 1: the user can fix it (a wrong argument, an unknown session, a store that is
not there or needs ``migrate``, a missing extra). 2: the storage failed (the database
is unreachable, a read or write failed): retrying later, or fixing the server, may
help; nothing the command was given is wrong. The split follows the error codes: the
``storage_*`` codes are 2, every other ``AgentSessionsError`` is 1.

A message is one line: the error's code, its message, and, where the message alone
does not say what to do next, a hint.
"""

from __future__ import annotations

from ..domain.errors import AgentSessionsError, ErrorCode

OK = 0
USER_ERROR = 1
STORAGE_FAILURE = 2
#: What a shell reports for a process ended by Ctrl-C (128 + SIGINT).
INTERRUPTED = 130

_HINTS: dict[str, str] = {
    ErrorCode.SESSION_NOT_FOUND: "list the sessions with `agent-sessions sessions`",
    ErrorCode.RUN_NOT_FOUND: "the runs of a session are listed by `agent-sessions show SESSION`",
    ErrorCode.STORAGE_CONNECTION_FAILED: "is the server up and the URL right (--store)?",
    ErrorCode.INVALID_CURSOR: (
        "pass the cursor a previous `agent-sessions sessions` printed, with the same "
        "filters and --order, or omit --cursor"
    ),
}


def exit_code(error: AgentSessionsError) -> int:
    return STORAGE_FAILURE if str(error.code).startswith("storage_") else USER_ERROR


def one_line(text: str) -> str:
    return " ".join(text.split())


def error_message(error: AgentSessionsError) -> str:
    message = one_line(f"[{error.code}] {error.message}")
    hint = _HINTS.get(str(error.code))
    if error.code == ErrorCode.NOT_FOUND and error.details.get("field") == "url":
        hint = "pass --store URL or set AGENT_SESSIONS_URL"
    return f"{message} ({hint})" if hint else message
