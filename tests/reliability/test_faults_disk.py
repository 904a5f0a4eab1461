"""A full disk under a write loop on SQLite (``disk_full_worker.py`` says how).

Two ways to fill it, each a different error from the operating system:

* ``enospc``: a small tmpfs, mounted in a mount namespace of the worker's own
  (``unshare --user --map-root-user --mount``), so nothing of the machine is touched
  and the mount disappears with the worker. Where that cannot be done (no ``unshare``,
  or user namespaces disabled), the file size limit below stands in and the printed
  report says so;
* ``efbig``: ``RLIMIT_FSIZE`` in the worker, with ``SIGXFSZ`` ignored.

What it proves: every failure is a coded storage error (none raw), nothing of a failed
write is stored (no half flush), nothing acknowledged is lost, the same open store
writes again as soon as space is back, appends made again land once, and afterwards
``health_check`` is clean and the views equal a rebuild.

PostgreSQL is not filled: its disk is the shared server's.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("disk_full_worker.py")


def _namespace(directory: Path, size: str = "1m") -> list[str]:
    mount = f"mount -t tmpfs -o size={size} tmpfs {directory}"
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", f'{mount} && exec "$@"']


@functools.cache
def tmpfs_possible() -> bool:
    """Whether this machine lets a process mount a tmpfs in a namespace of its own."""
    if shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as directory:
        probe = subprocess.run(
            [*_namespace(Path(directory)), "sh", "true"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    return probe.returncode == 0


def run_worker(tmp_path: Path, mode: str, tmpfs_size: str, **plan: Any) -> dict[str, Any]:
    directory = tmp_path / "disk"
    directory.mkdir()
    mechanism = mode
    command = [sys.executable, str(WORKER)]
    if mode == "enospc":
        if tmpfs_possible():
            command = [*_namespace(directory, tmpfs_size), "sh", *command]
        else:
            mechanism = "efbig"
    full_plan = {"dir": str(directory), "mode": mechanism, "seed": 5, **plan}
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(WORKER.parent), str(WORKER.parent.parent)]),
    }
    result = subprocess.run(
        [*command, json.dumps(full_plan)],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        env=env,
    )
    assert result.returncode == 0, (
        f"the worker failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    )
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\ndisk full ({mode}, done as {summary['mode']}): {summary}")
    return summary


def _check(summary: dict[str, Any], cycles: int) -> None:
    assert summary["raw"] == [], f"uncoded failures: {summary['raw']}"
    assert len(summary["cycles"]) == cycles
    assert all(cycle["failed"] >= 10 for cycle in summary["cycles"])
    assert set(summary["codes"]) <= {"storage_error", "storage_write_failed"}, summary["codes"]


@pytest.mark.parametrize("mode", ["enospc", "efbig"])
def test_a_full_disk_fails_coded_and_recovers(tmp_path: Path, mode: str) -> None:
    summary = run_worker(tmp_path, mode, "4m", cycles=1, max_writes=3000, writes_after=10)
    _check(summary, 1)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("mode", ["enospc", "efbig"])
def test_a_disk_that_fills_again_and_again(tmp_path: Path, mode: str) -> None:
    summary = run_worker(tmp_path, mode, "64m", cycles=12, max_writes=20000, writes_after=40)
    _check(summary, 12)
