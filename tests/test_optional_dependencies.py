"""Optional extras: the package imports without them, and using one names the extra.

Each case runs in a fresh interpreter where the dependency is made unimportable
(``sys.modules[name] = None``), since this process has every extra installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPORT_ERROR = """
def report(action):
    from agent_sessions import AgentSessionsError
    try:
        action()
    except AgentSessionsError as error:
        print(json.dumps({**error.to_dict(), "type": type(error).__name__}))
    else:
        print(json.dumps(None))
"""


def run_without(blocked: list[str], code: str, *args: str) -> Any:
    """Run ``code`` with ``blocked`` modules unimportable; the JSON its last line prints."""
    script = "\n".join(["import json, sys", *(f"sys.modules[{name!r}] = None" for name in blocked)])
    script += REPORT_ERROR + textwrap.dedent(code)
    completed = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("blocked", "missing"),
    [(["boto3", "botocore"], "boto3"), (["botocore"], "botocore")],
    ids=["no-boto3", "no-botocore"],
)
def test_s3_store_without_boto3_names_the_s3_extra(
    tmp_path: Path, blocked: list[str], missing: str
) -> None:
    error = run_without(
        blocked,
        """
        from agent_sessions.artifacts import FileArtifactStore, S3ArtifactStore
        files = FileArtifactStore(sys.argv[1])  # the rest of the package still works
        files.put("k", b"v")
        assert files.get("k") == b"v"
        report(lambda: S3ArtifactStore("bucket", "asm/"))
        """,
        str(tmp_path),
    )
    assert error["type"] == "DependencyNotAvailable"
    assert error["code"] == "dependency_not_available"
    assert "pip install 'agent-sessions[s3]'" in error["message"]
    assert error["details"]["extra"] == "s3"
    assert error["details"]["dependency"] == "boto3"
    assert error["details"]["missing"].split(".")[0] == missing


def test_importing_the_artifacts_package_does_not_import_boto3() -> None:
    loaded = run_without(
        [],
        """
        import agent_sessions.artifacts
        print(json.dumps(sorted(name for name in ("boto3", "botocore") if name in sys.modules)))
        """,
    )
    assert loaded == []


def test_postgres_store_without_psycopg_names_the_postgres_extra() -> None:
    error = run_without(
        ["psycopg", "psycopg_pool"],
        """
        from agent_sessions import open_store
        report(lambda: open_store("postgresql://user@127.0.0.1:1/db"))
        """,
    )
    assert error["type"] == "DependencyNotAvailable"
    assert error["code"] == "dependency_not_available"
    assert "pip install 'agent-sessions[postgres]'" in error["message"]
    assert error["details"]["extra"] == "postgres"
