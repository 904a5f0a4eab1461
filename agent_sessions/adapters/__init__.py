"""Adapters that make agent-sessions the store of an agent framework.

Each module is an optional extra and imports its framework only when used: without
the extra, building an adapter raises ``dependency_not_available`` naming the extra.

* ``openai_agents``: a session of the OpenAI Agents SDK (extra ``openai-agents``);
* ``adk``: a session service of Google's Agent Development Kit (extra ``adk``);
* ``langgraph``: a LangGraph checkpoint saver (extra ``langgraph``).
"""
