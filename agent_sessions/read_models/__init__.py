"""Read models over the event log, one module each, owning their tables, their
``apply`` and the named queries over them: ``sessions``, ``runs``, ``events`` (the event
index and the pruned ranges) and ``artifacts``. ``catalog.ReadModels`` bundles them with
the ``engine`` that keeps them and the one read path services use; ``projection`` is
the base class of every projection, built-in or yours."""
