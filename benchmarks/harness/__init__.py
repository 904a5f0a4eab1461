"""The harness behind ``python -m benchmarks``: workloads on our store
(``workloads.py``), their baselines (``baselines_raw.py``, ``baselines_eventsourcing.py``,
``peers.py``), the framework adapters beside their peers (``adapters.py``), several
processes at once (``processes.py``), the resident-memory check (``memory.py``) and the
table (``report.py``)."""
