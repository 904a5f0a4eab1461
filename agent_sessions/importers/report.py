"""What an import did: the records it added, what it found already stored, and every
line it could not use, by file and line number, so a user can look at them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: How many skipped lines :meth:`ImportReport.lines` lists one by one; the rest are
#: counted (``to_dict`` keeps them all).
LISTED_SKIPS = 20


@dataclass
class SkippedLine:
    """One line an import left out. ``line`` counts from 1; 0 stands for the whole file
    (it could not be read at all)."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


@dataclass
class ImportReport:
    """Counts of the records an import added (``sessions``, ``runs``, ``events``), of
    those it found already stored (``already_present``: sessions, runs and events,
    which is what makes a second import of the same input a no-op that says so), and
    the lines it skipped."""

    sessions: int = 0
    runs: int = 0
    events: int = 0
    already_present: int = 0
    skipped: list[SkippedLine] = field(default_factory=list)

    def skip(self, path: str, line: int, reason: str) -> None:
        self.skipped.append(SkippedLine(path, line, reason))

    def merge(self, other: ImportReport) -> None:
        self.sessions += other.sessions
        self.runs += other.runs
        self.events += other.events
        self.already_present += other.already_present
        self.skipped.extend(other.skipped)

    def lines(self) -> list[str]:
        """A human summary: one line of counts, then the skipped lines (the first
        :data:`LISTED_SKIPS` of them, and how many more)."""
        summary = (
            f"imported {self.sessions:,} session{_s(self.sessions)}, {self.runs:,} "
            f"run{_s(self.runs)}, {self.events:,} event{_s(self.events)}; "
            f"{self.already_present:,} already present"
        )
        if not self.skipped:
            return [summary + "; nothing skipped"]
        count = len(self.skipped)
        out = [f"{summary}; skipped {count:,} line{_s(count)}:"]
        out.extend(f"  {skipped}" for skipped in self.skipped[:LISTED_SKIPS])
        if count > LISTED_SKIPS:
            out.append(f"  ... and {count - LISTED_SKIPS:,} more")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "runs": self.runs,
            "events": self.events,
            "already_present": self.already_present,
            "skipped": [asdict(skipped) for skipped in self.skipped],
        }


def _s(count: int) -> str:
    return "" if count == 1 else "s"


__all__ = ["LISTED_SKIPS", "ImportReport", "SkippedLine"]
