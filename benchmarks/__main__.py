"""``python -m benchmarks``: every workload of the performance issue on our store and
its baselines, in one run, as one table of ratios (also written as JSON).

    python -m benchmarks                  # the reference workload (several minutes)
    python -m benchmarks --quick          # small sizes, one round: under two minutes
    python -m benchmarks --only batch_append full_read --postgres ''
    python -m benchmarks --json results.json --rounds 5

``--postgres`` defaults to the local server (postgresql://postgres@127.0.0.1:5432/test)
when it answers; otherwise the PostgreSQL rows are listed as skipped, with the reason.
No threshold is asserted: the table says which targets were met in this run.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from .harness import report, suite
from .harness.common import Sizes, backends, postgres_answers

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in (
        "agent-sessions",
        "eventsourcing",
        "psycopg",
        "orjson",
        "openai-agents",
        "google-adk",
        "langgraph-checkpoint-sqlite",
        "langgraph-checkpoint-postgres",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Every workload on our store and its baselines, as one table of ratios.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (CI)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=None,
        help=f"PostgreSQL server to measure too (default: {DEFAULT_POSTGRES} when it "
        "answers; '' to skip PostgreSQL)",
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="where to write the JSON")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="only these workloads (a workload or row name: "
        + ", ".join(w.name for w in suite.WORKLOADS)
        + ")",
    )
    parser.add_argument("--rounds", type=int, help="rounds per figure (median); default 3, quick 1")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sizes = (Sizes.small() if args.quick else Sizes.reference()).with_rounds(args.rounds)
    chosen = suite.selected(args.only)

    postgres: str | None = DEFAULT_POSTGRES if args.postgres is None else args.postgres
    postgres_note: str | None = None
    if not postgres:
        postgres, postgres_note = None, "PostgreSQL not measured (--postgres '')"
    else:
        why = postgres_answers(postgres)
        if why is not None:
            postgres, postgres_note = None, f"skipped: {why}"

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started = time.perf_counter()
    when = datetime.now(UTC)
    mode = "quick" if sizes.quick else "reference"
    log(
        f"agent-sessions benchmarks ({mode}, {sizes.rounds} round(s)); PostgreSQL: "
        f"{postgres or postgres_note}"
    )
    with backends(postgres) as places:
        rows = suite.run(
            chosen, places, sizes, postgres_note=postgres_note, log=log, preload=sizes.quick
        )
    duration = time.perf_counter() - started

    print()
    print(
        f"agent-sessions benchmarks, {mode} sizes, median of {sizes.rounds} round(s), "
        f"{duration:.0f} s"
    )
    if sizes.quick:
        print(
            "(quick: small sizes, one round, peer libraries imported in the background while "
            "the first workloads run: these figures only show that every path runs)"
        )
    print(report.table(rows))
    print()
    print(report.summary(rows))

    path = args.json or Path(tempfile.gettempdir()) / "agent-sessions-bench" / (
        f"results-{when.strftime('%Y%m%dT%H%M%SZ')}.json"
    )
    meta = {
        "mode": mode,
        "started": when.isoformat(),
        "duration_s": duration,
        "sizes": sizes.as_dict(),
        "postgres": postgres,
        "postgres_note": postgres_note,
        "workloads": [w.name for w in chosen],
        "versions": _versions(),
        "machine": {"platform": platform.platform(), "cpus": _cpus()},
    }
    report.write_json(path, rows, meta)
    print(f"JSON written to {path}")
    return 0


def _cpus() -> int | None:
    import os

    return os.cpu_count()


if __name__ == "__main__":
    raise SystemExit(main())
