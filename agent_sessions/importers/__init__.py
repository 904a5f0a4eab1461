"""Importers: real agent history into a store (Claude Code transcripts) and sessions
moved between stores (JSON Lines). ``docs/importing.md`` describes both."""
