"""The README's LangGraph example, run as written (in a directory of its own, where its
``sqlite:///agent_sessions.db`` lands)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def langgraph_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n### LangGraph\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # A module of its own: LangGraph reads the state's type hints from the module
    # that defines it.
    module = types.ModuleType("readme_langgraph")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    exec(compile(langgraph_example(), "README.md#langgraph", "exec"), namespace)
    assert (tmp_path / "agent_sessions.db").exists()
    history = namespace["history"]
    assert isinstance(history, list)
    assert len(history) == 3
