"""``python -m agent_sessions``: the ``agent-sessions`` command where no console script
is installed (or to pick the interpreter explicitly)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
