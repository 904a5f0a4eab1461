"""``python -m benchmarks --quick`` runs end to end, so the benchmark harness never rots.

No figure is checked against a threshold (the machine is shared and noisy): only that
the run succeeds and that its JSON has a row for every workload of the performance
issue on every backend, each with a number or an explicit note saying why not.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Every row the issue asks for; PostgreSQL rows may be skipped with a note.
EXPECTED = {
    "batch_append",
    "single_append",
    "single_append_p50",
    "single_append_p99",
    "flush",
    "full_read",
    "last_n_read",
    "read_after",
    "read_type",
    "replay_at",
    "processes_4_sessions",
    "processes_1_session",
    "claude_code_import",
    "projection_catch_up",
    "projection_rebuild",
    "query_search_sessions",
    "query_count_events",
    "query_usage_summary",
    "async_append",
    "async_read",
    "adapter_openai_add_items",
    "adapter_openai_get_items",
    "adapter_adk_append_event",
    "adapter_adk_get_session",
    "adapter_langgraph_put",
    "adapter_langgraph_get_tuple",
}
SQLITE_ONLY = {"memory_rss"}


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.timeout(600)
def test_quick_benchmarks_write_every_row(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"JSON written to {out}" in done.stdout
    assert "workload" in done.stdout  # the table was printed

    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["meta"]["mode"] == "quick"
    rows = document["rows"]
    by_key = {(row["workload"], row["backend"]): row for row in rows}

    for name in EXPECTED | SQLITE_ONLY:
        assert (name, "sqlite") in by_key, f"no SQLite row for {name}"
    for name in EXPECTED:
        assert (name, "postgresql") in by_key, f"no PostgreSQL row (figure or note) for {name}"

    for row in rows:
        key = (row["workload"], row["backend"])
        assert _number(row["ours"]) or row["note"].strip(), f"{key}: neither a figure nor a note"
        for baseline, value in row["baselines"].items():
            assert value is None or _number(value), f"{key}: baseline {baseline} is {value!r}"
        for check in row["targets"]:
            assert check["met"] in (True, False, None)
            assert check["target"]
