"""Progress bars for long commands (migrations, rebuilds, imports, retention, a query's
long catch-up of the views): on stderr, and only when stderr is a terminal, so that
logs and pipes get no control characters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from ..composition import Store
from ..services.query_api import QueryAPI
from .output import error_console

#: What the library's ``progress=`` arguments call: (name, position, head).
ProgressFn = Callable[[str, int, int], None]


@contextmanager
def progress_bars() -> Iterator[ProgressFn | None]:
    """A ``progress=`` callback drawing one bar per name, or ``None`` (no terminal).
    Nothing is drawn until the first call: a query whose views are current (most of
    them) leaves the terminal as it was, and only a long catch-up shows a bar."""
    stderr = error_console()
    if not stderr.is_terminal:
        yield None
        return
    bars: Progress | None = None
    tasks: dict[str, TaskID] = {}

    def update(name: str, position: int, head: int) -> None:
        nonlocal bars
        if bars is None:
            bars = Progress(
                TextColumn("{task.description:<24}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=stderr,
                transient=False,
            )
            bars.start()
        if name not in tasks:
            tasks[name] = bars.add_task(name, total=head)
        bars.update(tasks[name], completed=position, total=head)

    try:
        yield update
    finally:
        if bars is not None:
            bars.stop()


@contextmanager
def queries(store: Store) -> Iterator[QueryAPI]:
    """``store.query()`` for a command's queries, drawing a bar per view while one
    catches up over a long backlog first (a large import written by an older version,
    a store no process kept current): the wait shows rather than looking hung. Leave
    the block before printing the answer, so the bars are done by then."""
    with progress_bars() as progress:
        yield store.query(progress=progress)


#: What ``Maintenance``'s ``progress=`` calls: (operation, items in the batch just done).
CountFn = Callable[[str, int], None]


@contextmanager
def progress_counts() -> Iterator[CountFn | None]:
    """A callback counting what each operation has done so far (no total is known
    beforehand), or ``None`` (no terminal)."""
    stderr = error_console()
    if not stderr.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description:<32}"),
        TextColumn("{task.completed:,}"),
        console=stderr,
        transient=False,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def update(name: str, done: int) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=None)
            bars.advance(tasks[name], done)

        yield update


#: What the importers' ``progress=`` arguments call: (bytes done, bytes in all).
StepFn = Callable[[int, int], None]


@contextmanager
def byte_progress(name: str) -> Iterator[StepFn | None]:
    """One bar for reading files (``2.7/6.7 MB``), or ``None`` (no terminal)."""
    stderr = error_console()
    if not stderr.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
    ) as bars:
        task = bars.add_task(name, total=None)

        def update(done: int, total: int) -> None:
            bars.update(task, completed=done, total=total)

        yield update
