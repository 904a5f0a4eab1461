"""The README's OpenAI Agents SDK example, as it is, with a scripted model in place of
OpenAI's; and the adapter without its extra names the extra."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, set_tracing_disabled
from openai_agents_support import ScriptedModel, run, text

README = Path(__file__).resolve().parents[2] / "README.md"

set_tracing_disabled(True)


def example() -> str:
    found = re.search(
        r"<!-- openai-agents-example[^>]*-->\s*```python\n(.*?)```"
        r"\s*<!-- /openai-agents-example -->",
        README.read_text(encoding="utf-8"),
        re.DOTALL,
    )
    assert found is not None, "the example's markers are missing from the README"
    return found.group(1)


def test_the_readme_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {"__name__": "readme"}
    exec(compile(example(), "README.md", "exec"), scope)
    model = ScriptedModel([text("Sunny.")], [text("Rain.")])
    run(scope["chat"](Agent(name="forecaster", model=model)))
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "Rain. 2"
    assert "UserMessage(content='And tomorrow?'" in printed[1]  # the log keeps the popped item
    assert (tmp_path / "sessions.db").exists()


def test_without_the_extra_the_session_names_it() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        sys.modules["agents"] = None
        from agent_sessions import AgentSessionsError
        from agent_sessions.adapters.openai_agents import AgentSessionsSession
        from agent_sessions.importers.openai_agents import import_openai_agents  # no SDK needed
        try:
            AgentSessionsSession("s", store="memory://")
        except AgentSessionsError as error:
            print(json.dumps({**error.to_dict(), "type": type(error).__name__}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout.strip().splitlines()[-1])
    assert error["type"] == "DependencyNotAvailable"
    assert error["code"] == "dependency_not_available"
    assert "pip install 'agent-sessions[openai-agents]'" in error["message"]
    assert error["details"]["extra"] == "openai-agents"
