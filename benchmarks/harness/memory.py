"""Peak resident memory of appending ``N`` events to one SQLite session and reading
them all back (in pages of 10,000 with ``after=``: a list of a million 0.5 KB events
would be 500 MB of payload whatever the store), in a fresh subprocess so that nothing
else in the run counts; the raw driver doing the same in another subprocess is the
baseline. Run as ``python -m benchmarks.harness.memory --kind ours --events N --db F``."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from .common import Backend, Sizes
from .report import RAW, Row, Target

PAGE = 10_000
BATCH = 1_000


def _peak_mb() -> float:
    """This process's peak resident set. ``VmHWM`` where there is ``/proc``: unlike
    ``ru_maxrss`` it starts afresh at ``exec``, so the parent's size does not count."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _ours(db: str, total: int) -> dict[str, float]:
    from agent_sessions import Session, open_store

    from .workloads import our_events

    imported = _peak_mb()
    with open_store("sqlite:///" + db) as store:
        session = Session.new(agent_id="bench")
        store.save_session(session)
        started = time.perf_counter()
        for start in range(0, total, BATCH):
            store.append_events(our_events(session.id, start, min(BATCH, total - start)))
        written = time.perf_counter() - started
        after_write = _peak_mb()
        seen, after = 0, 0
        started = time.perf_counter()
        while True:
            page = store.get_events(session.id, after=after, limit=PAGE)
            if not page:
                break
            seen += len(page)
            after = page[-1].sequence_number or after
        read = time.perf_counter() - started
    assert seen == total, (seen, total)
    return {
        "peak_mb": _peak_mb(),
        "after_import_mb": imported,
        "after_write_mb": after_write,
        "write_s": written,
        "read_s": read,
    }


def _raw(db: str, total: int) -> dict[str, float]:
    import orjson

    from .baselines_raw import SQLiteRaw, raw_events

    imported = _peak_mb()
    raw = SQLiteRaw(db)
    started = time.perf_counter()
    for start in range(0, total, BATCH):
        raw.append("s", raw_events(start, min(BATCH, total - start)))
    written = time.perf_counter() - started
    after_write = _peak_mb()
    seen, after = 0, 0
    started = time.perf_counter()
    while True:
        page = raw.conn.execute(
            "SELECT sequence_number, data FROM raw_events WHERE session_id = ? "
            "AND sequence_number > ? ORDER BY sequence_number LIMIT ?",
            ("s", after, PAGE),
        ).fetchall()
        if not page:
            break
        decoded = [orjson.loads(data) for _, data in page]
        seen += len(decoded)
        after = page[-1][0]
    read = time.perf_counter() - started
    raw.close()
    assert seen == total, (seen, total)
    return {
        "peak_mb": _peak_mb(),
        "after_import_mb": imported,
        "after_write_mb": after_write,
        "write_s": written,
        "read_s": read,
    }


def _measure(kind: str, backend: Backend, total: int) -> dict[str, float]:
    db = backend.fresh_sqlite_path(f"rss_{kind}")
    command = [sys.executable, "-m", "benchmarks.harness.memory", "--kind", kind]
    command += ["--events", str(total), "--db", db]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def resident_memory(backend: Backend, sizes: Sizes) -> list[Row]:
    total = sizes.memory_events
    name = "memory_rss"
    try:
        ours = _measure("ours", backend, total)
        raw = _measure("raw", backend, total)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
        return [Row(name, backend.name, "MB", note=f"failed: {exc}")]
    return [
        Row(
            name,
            backend.name,
            "MB",
            ours["peak_mb"],
            {RAW: raw["peak_mb"]},
            targets=[Target(limit=300)],
            note="" if total >= 1_000_000 else f"{total:,} events (quick); the target is for 1M",
            extra={
                "events": total,
                "ours": ours,
                "raw": raw,
                "shape": f"append in batches of {BATCH}, read back in pages of {PAGE}",
            },
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("ours", "raw"), required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    measure = _ours if args.kind == "ours" else _raw
    print(json.dumps(measure(args.db, args.events)))


if __name__ == "__main__":
    main()
