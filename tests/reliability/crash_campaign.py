"""Rounds of writer processes killed with SIGKILL, each round checked against the model.

A round starts ``workers`` processes of ``crash_worker.py`` on one store, each on its
own sessions. The schedule says how each round kills them: from outside after a random
delay (wherever they are: inside a write, between writes, catching a view up), or
aimed at one kind of write (``die_in``), each worker killing itself at a random point
inside such a write. Then the journals are replayed into the model, the
write in flight is resolved (all or nothing), and the store is compared with the model;
every ``deep_every`` rounds, and after the last, ``health_check`` and the views are
checked against a clean rebuild too.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from crash_model import Model, check_sessions
from store_checks import assert_store_sound

from agent_sessions import open_store

WORKER = Path(__file__).with_name("crash_worker.py")
#: How long a worker may take to open its store and read its sessions.
READY_TIMEOUT = 120.0
#: How long an aimed worker may take to reach its kill.
AIMED_TIMEOUT = 300.0


@dataclass
class CampaignReport:
    backend: str
    kills: int = 0
    rounds: int = 0
    deep_checks: int = 0
    events_checked: int = 0
    seconds: float = 0.0
    #: (write in flight, committed) -> count
    outcomes: Counter[tuple[str, bool]] = field(default_factory=Counter)
    #: kills that found no write in flight (between writes, or inside a query)
    between_writes: int = 0

    def summary(self) -> str:
        landed = ", ".join(
            f"{op} {'committed' if done else 'rolled back'} {count}"
            for (op, done), count in sorted(self.outcomes.items())
        )
        return (
            f"crash campaign on {self.backend}: {self.kills} SIGKILLs in {self.rounds} rounds, "
            f"{self.seconds:.1f} s; {self.deep_checks} health+rebuild checks; "
            f"{self.events_checked} event checks; in flight at the kill: {landed}; "
            f"between writes: {self.between_writes}"
        )


class _Process:
    def __init__(self, plan: dict[str, object], log: Path) -> None:
        self.journal = Path(str(plan["journal"]))
        self.tag = str(plan["tag"])
        self.log = log
        paths = [str(WORKER.parent), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
        with log.open("wb") as stderr:
            self.popen = subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(plan)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
            )

    def ready(self) -> bool:
        return self.journal.exists() and b'"ready"' in self.journal.read_bytes()[:200]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready():
            if self.popen.poll() is not None:
                raise AssertionError(f"worker {self.tag} exited early: {self.failure()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.tag} not ready in {READY_TIMEOUT} s")
            time.sleep(0.005)

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)

    def wait_killed(self, timeout: float) -> None:
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.popen.wait(timeout=30)
            raise AssertionError(f"worker {self.tag} did not die in {timeout} s") from None
        assert code == -signal.SIGKILL, f"worker {self.tag} exited {code}: {self.failure()}"

    def failure(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def run_campaign(
    url: str,
    workdir: Path,
    *,
    backend: str,
    schedule: list[str | None],
    workers: int = 1,
    seed: int = 0,
    deep_every: int = 1,
    max_delay: float = 0.4,
) -> CampaignReport:
    """One round per entry of ``schedule``: ``None`` kills from outside, a kind of
    write (one of ``KILLABLE``) aims every worker of the round at it."""
    rng = random.Random(seed)
    report = CampaignReport(backend)
    model = Model()
    started = time.monotonic()
    rounds = len(schedule)
    with open_store(url) as store:
        # The schema and the read models' tables exist before any worker opens them:
        # processes creating them at once is a race of its own, tested on its own
        # (``test_crashes.py``), not a crash.
        store.projections.catch_up()
    for number, aim in enumerate(schedule):
        aimed = aim is not None
        processes = []
        for w in range(workers):
            plan = {
                "url": url,
                "tag": f"w{w}",
                "round": number,
                "seed": rng.randrange(2**32),
                "journal": str(workdir / f"journal-{number}-{w}.jsonl"),
                "die_in": aim,
                "max_ops": 20_000,
            }
            processes.append(_Process(plan, workdir / f"worker-{number}-{w}.log"))
        try:
            for process in processes:
                process.wait_ready()
            if aimed:
                for process in processes:
                    process.wait_killed(AIMED_TIMEOUT)
            else:
                for process in sorted(processes, key=lambda _: rng.random()):
                    time.sleep(rng.uniform(0, max_delay))
                    process.kill()
                for process in processes:
                    process.wait_killed(30)
        finally:
            for process in processes:
                process.kill()
                process.popen.wait(timeout=30)
        report.kills += len(processes)
        report.rounds += 1
        with open_store(url) as store:
            for process in processes:
                outcome = model.replay(process.tag, process.journal, store)
                if outcome is None:
                    report.between_writes += 1
            report.events_checked += check_sessions(model, store)
            if (number + 1) % deep_every == 0 or number == rounds - 1:
                assert_store_sound(store)
                report.deep_checks += 1
    report.outcomes = model.outcomes
    report.seconds = time.monotonic() - started
    return report
