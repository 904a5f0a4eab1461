"""Progress bars for long commands (migrations, projection rebuilds): on stderr, and
only when stderr is a terminal, so that logs and pipes get no control characters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from .output import error_console

#: What the library's ``progress=`` arguments call: (name, position, head).
ProgressFn = Callable[[str, int, int], None]


@contextmanager
def progress_bars() -> Iterator[ProgressFn | None]:
    """A ``progress=`` callback drawing one bar per name, or ``None`` (no terminal)."""
    stderr = error_console()
    if not stderr.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def update(name: str, position: int, head: int) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=head)
            bars.update(tasks[name], completed=position, total=head)

        yield update
