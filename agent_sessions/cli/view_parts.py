"""What every printed view of the command line shares: status colours, short run
labels, section headings, a run on one line."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from ..domain.run import Run
from .event_summary import clock, duration, line

_STATUS_STYLES = {
    "completed": "green",
    "running": "yellow",
    "open": "yellow",
    "active": "yellow",
    "paused": "yellow",
    "failed": "red",
    "timeout": "red",
    "cancelled": "magenta",
}


def status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLES.get(status, ""))


class RunLabels:
    """Short names for runs (``R1``, ``R2``, ...) in order of appearance, so that a
    timeline row need not carry a 36-character id; the runs section maps them back.
    Stable across the steps of one replay."""

    def __init__(self, runs: Iterable[Run] = ()) -> None:
        self._labels: dict[str, str] = {}
        for run in runs:
            self(run.id)

    def __call__(self, run_id: str | None) -> str:
        if run_id is None:
            return "-"
        if run_id not in self._labels:
            self._labels[run_id] = f"R{len(self._labels) + 1}"
        return self._labels[run_id]


def heading(text: str, detail: str = "") -> Text:
    title = line(text, style="bold")
    if detail:
        title.append(f"  {detail}", style="dim")
    return title


def run_line(run: Run, label: str) -> Text:
    """``R1 run_... completed · claude claude-sonnet-4 · 3 turns · 07:06:37.658, took 4 ms``:
    the whole id, which ``--run`` takes."""
    text = line(f"{label:<3} ")
    text.append(run.id, style="cyan")
    text.append(" ")
    text.append_text(status_text(run.status.value))
    model = run.provider_metadata.get("model")
    provider = " ".join(
        part for part in (run.provider, model if isinstance(model, str) else None) if part
    )
    if provider:
        text.append(f" \u00b7 {provider}")
    text.append(f" \u00b7 {run.turn_count} turn(s) \u00b7 started {clock(run.started_at)}")
    if run.ended_at is not None:
        took = (run.ended_at - run.started_at).total_seconds() * 1000
        text.append(f", took {duration(took)}")
    return text
