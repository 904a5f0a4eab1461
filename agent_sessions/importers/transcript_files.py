"""Which files an import of Claude Code transcripts reads, and which session each
sub-agent file belongs to.

Claude Code keeps ``~/.claude/projects/<project>/<session-id>.jsonl`` and, for the
sub-agents a session started, ``<session-id>/subagents/agent-*.jsonl`` beside it. A path
given to the importer is one of those files, a project folder, the folder of projects,
or a session's folder (its sub-agents only); a session file brings its sub-agent files
with it, and a leading ``~`` is the user's home. Files come in a stable
order (sorted by path), each parent before its sub-agents, so a child session is written
after the session it names as its parent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..domain.errors import ValidationError

SUFFIX = ".jsonl"
#: How deep below a given folder transcripts are looked for: the projects folder holds
#: project folders, which hold session files; nothing is deeper (the sub-agent folders
#: are found from their session file).
MAX_DEPTH = 2


@dataclass(frozen=True, slots=True)
class Transcript:
    """A transcript file; ``parent`` is the session file of a sub-agent's transcript."""

    path: Path
    parent: Path | None = None

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


def subagent_files(session_file: Path) -> list[Path]:
    """The sub-agent transcripts of a session file, sorted."""
    return _subagents_in(session_file.parent / session_file.stem)


def _subagents_in(session_folder: Path) -> list[Path]:
    """The transcripts in ``session_folder/subagents/``, sorted."""
    folder = session_folder / "subagents"
    if not folder.is_dir():
        return []
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == SUFFIX and p.is_file())
    except OSError:
        return []  # a folder this user may not list holds nothing to import


def _session_files(folder: Path, depth: int) -> Iterable[Path]:
    """Session files in ``folder`` and in the project folders below it; a folder that
    belongs to a session file (its sub-agents) is not a project. A session's own
    folder reached without its session file (named on its own, or left behind when
    the session file was deleted) gives its sub-agents' files: they still name their
    session."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return  # a folder this user may not list holds nothing to import
    files = [p for p in entries if p.suffix == SUFFIX and p.is_file()]
    yield from files
    # Only folders that are not a session file's are entered: sub-agents without it.
    yield from _subagents_in(folder)
    if depth >= MAX_DEPTH:
        return
    stems = {p.stem for p in files}
    for entry in entries:
        if entry.is_dir() and entry.name not in stems and entry.name != "subagents":
            yield from _session_files(entry, depth + 1)


def discover(paths: Sequence[str | Path]) -> list[Transcript]:
    """Every transcript the paths name, each once, parents before their sub-agents.
    A path that does not exist, or a folder without any transcript, is
    ``validation_error`` naming ``paths``: nothing is imported from a mistyped path."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: list[Transcript] = []
    seen: set[Path] = set()

    def add(path: Path, parent: Path | None) -> None:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            found.append(Transcript(path, parent))

    for given in paths:
        path = Path(given).expanduser()
        if path.is_file():
            session_files: Iterable[Path] = [path]
        elif path.is_dir():
            session_files = list(_session_files(path, 0))
            if not session_files:
                raise ValidationError(
                    f"no Claude Code transcripts (*{SUFFIX}) in {given}: name a transcript, "
                    "a project folder, a session's folder or ~/.claude/projects",
                    details={"field": "paths", "path": str(given)},
                )
        else:
            raise ValidationError(
                f"no such file or folder: {given}", details={"field": "paths", "path": str(given)}
            )
        for session_file in session_files:
            # A sub-agent file named on its own keeps its parent: its folder says whose.
            parent = _parent_of(session_file)
            add(session_file, parent)
            for child in subagent_files(session_file):
                add(child, session_file)
    return found


def _parent_of(path: Path) -> Path | None:
    """The session file a file in ``<session>/subagents/`` belongs to, if it exists."""
    if path.parent.name != "subagents":
        return None
    folder = path.parent.parent
    session_file = folder.parent / (folder.name + SUFFIX)
    return session_file if session_file.is_file() else None


__all__ = ["MAX_DEPTH", "SUFFIX", "Transcript", "discover", "subagent_files"]
