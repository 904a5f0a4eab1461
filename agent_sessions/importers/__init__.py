"""Importers: real agent history into a store (Claude Code transcripts, the OpenAI
Agents SDK's, ADK's and LangGraph's own stores) and sessions moved between stores (JSON
Lines). ``docs/importing.md`` describes them.

The entry points are re-exported here, so a script writes
``from agent_sessions.importers import import_claude_code`` without knowing which
module holds it. Each returns an :class:`ImportReport` (``export_jsonl``: the number
of lines written); none of them imports an optional dependency until it is called.
"""

from .adk import import_adk
from .claude_code import import_claude_code
from .jsonl import export_jsonl, import_jsonl
from .langgraph import import_langgraph
from .openai_agents import import_openai_agents
from .report import ImportReport, SkippedLine

__all__ = [
    "ImportReport",
    "SkippedLine",
    "export_jsonl",
    "import_adk",
    "import_claude_code",
    "import_jsonl",
    "import_langgraph",
    "import_openai_agents",
]
