"""Lines of a file read with a ceiling on each: the memory an import holds never depends
on the longest line of its input.

``readline(limit)`` stops after ``limit`` bytes (or characters, on a text stream), so a
100 MB line with no newline is never held whole: its first ``limit + 1`` units tell it is
too long, and the rest is read in small pieces and dropped. The line is still counted,
so every later line keeps its number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, AnyStr, Generic

#: The piece an over-long line's rest is read and dropped in.
DRAIN_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Line(Generic[AnyStr]):
    """One line: ``number`` counts from 1, ``content`` is ``None`` when the line was
    longer than the limit (``size`` then says how long it was), else the line with its
    line ending removed."""

    number: int
    content: AnyStr | None
    size: int


def bounded_lines(stream: IO[AnyStr], limit: int) -> Iterator[Line[AnyStr]]:
    """The lines of ``stream``, none of them read into memory beyond ``limit`` units.
    ``size`` counts the units read, line ending included (for progress)."""
    number = 0
    while True:
        piece = stream.readline(limit + 1)
        if not piece:
            return
        number += 1
        newline = piece[-1:] in ("\n", b"\n")
        if newline or len(piece) <= limit:
            yield Line(number, _strip(piece), len(piece))
            continue
        size = len(piece)
        del piece
        while True:
            rest = stream.readline(DRAIN_CHUNK)
            size += len(rest)
            if not rest or rest[-1:] in ("\n", b"\n"):
                break
        yield Line(number, None, size)


def _strip(piece: AnyStr) -> AnyStr:
    """Without its line ending (``\\n`` or ``\\r\\n``)."""
    if isinstance(piece, bytes):
        return piece.rstrip(b"\r\n")
    return piece.rstrip("\r\n")


__all__ = ["DRAIN_CHUNK", "Line", "bounded_lines"]
