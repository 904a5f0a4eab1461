"""Where the command line writes: data on stdout (text for people, JSON with
``--json``), messages and progress on stderr, so that ``| jq`` and ``| head`` see only
data.

Consoles are made per call and write to whatever ``sys.stdout`` is at that moment: a
test runner swaps it, and a console built at import time would keep writing to the
old one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import click
from rich.console import Console, RenderableType
from rich.text import Text


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Rich's own answer is ``SystemExit(1)``; here a closed pipe is the reader
        having had enough, handled where every command ends (``entry.py``)."""
        self.quiet = True
        raise BrokenPipeError


#: The width of standard output when it is a file or a pipe and ``COLUMNS`` does not
#: set one: in effect none. Rich would otherwise lay out for 80 columns (or for the
#: terminal the other streams are attached to) and cut ids and statuses with an
#: ellipsis, so ``| grep completed`` would miss what the screen shows. Tables take
#: their natural width in it (none here expands); texts are never cut
#: (:func:`print_all`).
UNCUT_WIDTH = 1 << 20


def _uncut() -> bool:
    """Standard output is not a terminal, and ``COLUMNS`` does not ask for a width."""
    if os.environ.get("COLUMNS", "").strip().isdigit():
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        return not (callable(isatty) and isatty())
    except ValueError:  # closed
        return True


def console() -> Console:
    """Standard output. No automatic highlighting: numbers and ids in data are not
    coloured by guesswork, only where a view styles them. At a terminal (or with
    ``COLUMNS``) lines fit its width; into a pipe or a file they are whole."""
    if _uncut():
        return _Console(highlight=False, width=UNCUT_WIDTH, soft_wrap=True)
    return _Console(highlight=False)


def error_console() -> Console:
    return _Console(stderr=True, highlight=False)


#: Characters a terminal may act on rather than show: C0 and C1 controls (ESC starts
#: the sequences that move the cursor, recolour, retitle or write the clipboard; 0x9B
#: is a one-character CSI), and the invisible format characters that reorder or hide
#: text (bidirectional overrides and isolates, zero-width characters, tags). Stored
#: payloads are agent and tool output: anything may be in them.
_FORMAT = "\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
_TAGS = "\U000e0000-\U000e007f"
_UNSAFE_TEXT = re.compile(f"[\x00-\x1f\x7f-\x9f{_FORMAT}{_TAGS}]")
#: In JSON the C0 controls are escaped already; the rest are valid inside strings.
_UNSAFE_JSON = re.compile(f"[\x7f-\x9f{_FORMAT}{_TAGS}]")


def printable(text: str) -> str:
    """``text`` with every character a terminal could act on replaced by U+FFFD, one
    for one (so the spans of a ``rich`` text still fit)."""
    return _UNSAFE_TEXT.sub("\ufffd", text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # a surrogate pair, as JSON spells characters beyond the BMP
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def to_json(value: Any) -> str:
    """Compact JSON, non-ASCII text kept readable, but the characters of
    :func:`printable` escaped (the same JSON value, harmless on a terminal).
    ``default=str`` for the few values ``to_dict`` leaves typed."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return _UNSAFE_JSON.sub(_escape, text)


def plain(value: Any) -> Any:
    """A typed result as JSON values: dataclasses as objects (their properties left
    out), times as ISO 8601 strings, records through their own ``to_dict``."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return plain(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    return value


def print_json(value: Any) -> None:
    """One JSON document on one line."""
    click.echo(to_json(value))


def print_json_lines(values: Iterable[Any]) -> None:
    """JSON Lines: one document per line, written as each is produced (a stream of
    10,000 steps starts printing at once and can be cut by ``head``)."""
    for value in values:
        click.echo(to_json(value))


def note(message: str) -> None:
    """A message for the person at the terminal, never part of the data (it may quote
    what the user typed or what the store holds: made printable)."""
    click.echo(printable(message), err=True)


def echo(text: str) -> None:
    """A line of plain text on stdout, made printable."""
    click.echo(printable(text))


def silence_stdout() -> None:
    """After the reader of stdout went away (``| head``): point the descriptor at
    ``/dev/null`` so that the interpreter's last flush at exit does not raise
    ``BrokenPipeError`` again and print "Exception ignored" to stderr."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # not a real file (a test runner's buffer): nothing will flush at exit


def print_all(out: Console, parts: Iterable[RenderableType]) -> None:
    """Print each part, texts made :func:`printable`. At a terminal, a ``Text`` made
    not to wrap (``event_summary.line``) is cut at the console's width
    (``Console.print`` joins texts into a new one and forgets that setting, so it is
    passed along here); into a pipe (``console()``'s soft wrap) no text is wrapped or
    cut. Tables hold only numbers, names and run labels."""
    for part in parts:
        if isinstance(part, Text):
            safe = part.copy()
            safe.plain = printable(part.plain)
            if out.soft_wrap:
                safe.no_wrap, safe.overflow = True, "ignore"
                out.print(safe)
            elif part.no_wrap:
                out.print(safe, no_wrap=True, overflow=part.overflow or "ellipsis")
            else:
                out.print(safe)
        else:
            out.print(part)
