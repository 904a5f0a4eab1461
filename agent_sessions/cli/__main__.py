"""``python -m agent_sessions.cli``: the same as the ``agent-sessions`` command."""

from __future__ import annotations

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
