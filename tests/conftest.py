"""Fixtures shared by the test suite.

Kept to backend locations only: each suite decides how to open and close its stores.
PostgreSQL fixtures live in ``pg_fixtures.py`` (loaded below as a plugin): finding a
server takes more code than a file name does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pg_fixtures"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file of this test alone. ``tmp_path`` is absolute, so the URL has four
    slashes (``sqlite:////tmp/...``), the form ``open_store`` reads as an absolute path."""
    return "sqlite:///" + str(tmp_path / "agent_sessions.db")
