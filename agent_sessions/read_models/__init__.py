"""Read models over the event log: the projection base, the engine and built-in views."""
