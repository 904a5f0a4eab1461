"""The library version, kept in one place (``pyproject.toml`` reads it too)."""

__version__ = "0.4.0"
