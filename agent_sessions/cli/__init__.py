"""The ``agent-sessions`` command line: ``click`` commands that print with ``rich``.

Nothing in the package imports it: it sits on top of the layers (import-linter checks
that) and only calls the public API. Every command follows the conventions of
``conventions.py`` (``--store``, ``--json``, which commands may create a store) and of
``entry.py`` (exit codes, one-line errors, a closed pipe ending quietly).
"""

from __future__ import annotations

from .entry import cli, main

__all__ = ["cli", "main"]
