"""How long does ``migrate`` take on a store written by v0.1.0?

Writes a SQLite store with the v0.1.0 code (taken from git, commit db02f70: sessions of
``--events-per-session`` events, its read models caught up, as a user's store would be),
then times ``agent_sessions.migrate`` on it with this code, beside the baseline from the
same run: catching up every read model of a fresh store from the same events (what a
user would otherwise wait for on the first query). PostgreSQL too with ``--postgres URL``.

    python benchmarks/migrate_v0_1_0.py --events 20000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from agent_sessions import migrate, open_store

V0_1_0 = "db02f70"
_WRITER = """
import sys
from agent_sessions import Event, EventType, Session, SessionStatus, open_store
url, sessions, per_session = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
assert "{old}" in __import__("agent_sessions").__file__
with open_store(url) as store:
    for n in range(sessions):
        session = Session.new(agent_id=f"agent-{n % 4}").with_status(SessionStatus.ACTIVE)
        store.save_session(session)
        for start in range(0, per_session, 500):
            store.append_events([
                Event.new(type=EventType.MESSAGE_STREAMED, session_id=session.id,
                          data={"delta": "x" * 200, "index": start + i})
                for i in range(min(500, per_session - start))
            ])
        store.prune_events(session.id, [1, 2, 3])
    store.projections.catch_up()
"""


def _old_code(into: Path) -> Path:
    commit = subprocess.run(
        ["git", "rev-parse", V0_1_0], capture_output=True, text=True, check=True
    ).stdout.strip()
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", commit, "agent_sessions"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _write_old_store(url: str, old: Path, sessions: int, per_session: int) -> None:
    env = {"PYTHONPATH": str(old), "PATH": "/usr/bin:/bin"}
    script = _WRITER.replace("{old}", str(old))
    subprocess.run(
        [sys.executable, "-c", script, url, str(sessions), str(per_session)],
        env=env,
        cwd=old,  # ``-c`` puts the working directory first on sys.path
        check=True,
    )


def _timed(work: object) -> float:
    start = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="SERVER_URL",
        help="also measure PostgreSQL, in a schema of its own on this server (dropped after)",
    )
    args = parser.parse_args()
    per_session = args.events // args.sessions
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        old = _old_code(root / "old")
        urls = {"sqlite": "sqlite:///" + str(root / "store.db")}
        schema = f"agent_sessions_bench_{uuid.uuid4().hex[:8]}"
        if args.postgres:
            urls["postgresql"] = f"{args.postgres}?schema={schema}"
        print(f"{'backend':<11} {'events':>8} {'migrate s':>10} {'read-model catch-up s':>22}")
        for name, url in urls.items():
            _write_old_store(url, old, args.sessions, per_session)
            took = _timed(lambda url=url: migrate(url))

            def rebuild(url: str = url) -> None:
                with open_store(url) as store:
                    for projection in store.projections.names:
                        store.projections.rebuild(projection)

            baseline = _timed(rebuild)
            print(f"{name:<11} {args.events:>8} {took:>10.2f} {baseline:>22.2f}")
        shutil.rmtree(old, ignore_errors=True)
        if args.postgres:
            import psycopg

            with psycopg.connect(args.postgres, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
