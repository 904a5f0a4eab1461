"""Benchmarks of agent-sessions.

``python -m benchmarks`` (``make bench``) measures every workload of the performance
issue on our store and on its baselines in one run and prints one table of ratios (see
``benchmarks/README.md``). The older single-purpose scripts beside this file still run
on their own: ``python benchmarks/append_scaling.py`` and so on.
"""
