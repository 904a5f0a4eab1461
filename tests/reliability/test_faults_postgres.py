"""Faults of PostgreSQL under writes: backends terminated mid-transaction (one at a
chosen point, many at random), connections cut at random points of the wire protocol,
commits lost on the way in or their answer lost on the way back, every pooled
connection dead at once, the server going away and coming back during a write loop,
lock and statement timeouts.

What each proves: failures reach the caller only as coded errors
(``storage_connection_failed`` after the retries, ``timeout`` with the SQLSTATE for lock
and statement timeouts); the store retries by itself only what is idempotent, so a write
whose commit happened but was never acknowledged is found done by the retry, not made
twice; nothing is lost or duplicated; and the same open store works again once the fault
ends.

The server itself is shared with every other test, so it is never restarted here: a
proxy (``PgFaultProxy``, a ``TcpProxy``) stopped and started again plays the restart
(every connection dropped at once, new ones refused, then accepted again), which is
what a client sees of one.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
from pg_fault_proxy import PgFaultProxy
from pg_server import admin_connection, fresh_schema, with_options
from store_checks import assert_gap_free, assert_store_sound
from tcp_proxy import TcpProxy
from write_scenarios import SCENARIOS, prepare

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    ExecutionResult,
    Run,
    Session,
    open_store,
)
from agent_sessions.composition import Store


@dataclass
class PgTarget:
    server_url: str
    schema: str

    def url(self, server_url: str | None = None, /, **options: object) -> str:
        base = {"schema": self.schema, "pool_size": 2, "max_overflow": 2}
        base["application_name"] = self.schema
        return with_options(server_url or self.server_url, **{**base, **options})


@pytest.fixture
def pg(pg_server_url: str) -> Iterator[PgTarget]:
    with fresh_schema(pg_server_url) as schema:
        yield PgTarget(pg_server_url, schema)


def through(proxy: TcpProxy, server_url: str) -> str:
    """``server_url`` with the proxy's address in place of the server's."""
    parts = urlsplit(server_url)
    netloc = parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    return parts._replace(netloc=netloc).geturl()


def _server(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


# a backend terminated while its transaction waits --------------------------------------


def _waiting_backend(target: PgTarget, timeout: float = 30) -> int:
    """The pid of the store's connection that waits for a row lock."""
    deadline = time.monotonic() + timeout
    with admin_connection(target.server_url) as admin:
        while time.monotonic() < deadline:
            row = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                "AND wait_event_type = 'Lock' AND state = 'active'",
                (target.schema,),
            ).fetchone()
            if row is not None:
                return int(str(row[0]))
            time.sleep(0.01)
    raise AssertionError("the write never waited for the blocker's row locks")


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_a_backend_terminated_mid_transaction_is_retried_exactly_once(
    kind: str, pg: PgTarget
) -> None:
    """The write takes the events table lock, then waits for row locks a second
    connection holds on the session's index rows; its backend is terminated right
    there (``pg_terminate_backend``), inside the transaction. The store retries the
    lost connection: the write completes once."""
    scenario = SCENARIOS[kind]()
    with open_store(pg.url()) as store:
        prepared = prepare(store, kind)
        sid = prepared.session.id
        outcome: dict[str, Any] = {}

        def write() -> None:
            try:
                outcome["result"] = scenario.write(store, prepared)
            except BaseException as exc:  # reported by the main thread
                outcome["error"] = exc

        prefix = f'"{pg.schema}".'
        with admin_connection(pg.server_url) as blocker:
            with blocker.transaction():
                for table in ("session_sequences", "agent_events", "session_index"):
                    blocker.execute(
                        f"SELECT 1 FROM {prefix}{table} WHERE session_id = %s FOR UPDATE", (sid,)
                    ).fetchall()
                writer = threading.Thread(target=write)
                writer.start()
                pid = _waiting_backend(pg)
                with admin_connection(pg.server_url) as admin:
                    assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
            writer.join(timeout=60)
        assert not writer.is_alive()
        assert "error" not in outcome, f"the terminated {kind} was not retried: {outcome}"
        scenario.check(store, prepared, outcome.get("result"))
        assert_store_sound(store)


# a commit that is lost, or whose answer is lost ------------------------------------------


@pytest.fixture
def fault_proxy(pg_server_url: str) -> Iterator[PgFaultProxy]:
    proxy = PgFaultProxy(*_server(pg_server_url), seed=7)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.mark.parametrize("when", ["before_commit", "after_commit"])
@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_a_lost_commit_is_retried_exactly_once(
    kind: str, when: str, pg: PgTarget, fault_proxy: PgFaultProxy
) -> None:
    """The connection is cut as ``COMMIT`` leaves the client (the server rolls back) or
    as its answer leaves the server (the server committed; the client cannot know).
    Either way the retried write leaves the store as one write would, and returns what
    one write returns."""
    scenario = SCENARIOS[kind]()
    with open_store(pg.url(through(fault_proxy, pg.server_url), connect_timeout=2)) as store:
        prepared = prepare(store, kind)
        commits = fault_proxy.commits
        fault_proxy.arm(when)  # type: ignore[arg-type]
        result = scenario.write(store, prepared)
        assert fault_proxy.cuts[when] == 1, f"no {when} cut happened"
        if when == "after_commit":
            assert fault_proxy.commits > commits
        scenario.check(store, prepared, result)
        assert_store_sound(store)


# random cuts during a write loop ---------------------------------------------------------


@dataclass
class WriteLoop:
    """Mixed writes with fixed ids; a write that fails with a coded connection error is
    made again, as a caller would, until it succeeds. What it wrote is then checked."""

    store: Store
    name: str
    sessions: list[Session] = field(default_factory=list)
    appended: dict[str, list[str]] = field(default_factory=dict)
    flushed: dict[str, int] = field(default_factory=dict)
    coded_failures: int = 0
    codes: set[str] = field(default_factory=set)
    steps: int = 0
    #: writes that returned (after any retries)
    completed: int = 0

    def again(self, call: Callable[[], Any], retryable: tuple[str, ...]) -> Any:
        while True:
            try:
                return call()
            except AgentSessionsError as error:
                failure = error
            assert failure.code in retryable, f"unexpected {failure!r} {failure.details}"
            self.coded_failures += 1
            self.codes.add(str(failure.code))
            time.sleep(0.05)

    def run(self, steps: int, retryable: tuple[str, ...] = ("storage_connection_failed",)) -> None:
        """``steps`` more writes (the first call also creates three sessions)."""
        for k in range(3 - len(self.sessions)):
            session = Session.new(id=f"s-{self.name}-{k}", agent_id="loop", metadata={"n": 0})
            self.again(partial(self.store.save_session, session), retryable)
            self.sessions.append(session)
            self.appended[session.id] = []
        for step in range(self.steps, self.steps + steps):
            self.steps += 1
            index = step % len(self.sessions)
            session = self.sessions[index]
            if step % 3 == 2:
                n = int(session.metadata["n"]) + 1
                session = session.with_metadata({"n": n})
                run = Run.new(id=f"r-{self.name}-{step}", session_id=session.id).set_output({})
                events = self._events(f"{step}", session.id, 2, run.id)
                result = ExecutionResult(session=session, run=run, events=events)
                self.again(partial(self.store.flush, result), retryable)
                self.sessions[index] = session
                self.flushed[run.id] = n
            else:
                events = self._events(f"{step}", session.id, 3)
                stored = self.again(partial(self.store.append_events, events), retryable)
                assert [e.id for e in stored] == [e.id for e in events]
            self.appended[session.id] += [e.id for e in events]
            self.completed += 1

    def _events(
        self, step: str, session_id: str, count: int, run_id: str | None = None
    ) -> list[Event]:
        return [
            Event.new(
                id=f"e-{self.name}-{step}-{i}",
                type=EventType.MESSAGE_STREAMED,
                session_id=session_id,
                run_id=run_id,
                data={"step": step},
            )
            for i in range(count)
        ]

    def check(self, store: Store) -> None:
        """Everything written exactly once, in order, gap-free; records as last saved."""
        for session in self.sessions:
            stored = store.get_events(session.id)
            assert [e.id for e in stored] == self.appended[session.id]
            assert_gap_free(store, session.id)
            assert store.get_session(session.id).metadata["n"] == session.metadata["n"]
        for run_id in self.flushed:
            assert store.get_run(run_id).status == "completed"
        assert_store_sound(store)


def _random_cuts(proxy: PgFaultProxy, pg: PgTarget, steps: int, rate: float) -> None:
    url = pg.url(through(proxy, pg.server_url), connect_timeout=2)
    with open_store(url) as store:
        loop = WriteLoop(store, "cuts")
        proxy.chaos(rate)
        try:
            loop.run(steps)
        finally:
            proxy.chaos(0)
        print(
            f"\nrandom cuts: {sum(proxy.cuts.values())} connections cut in {steps} writes, "
            f"{loop.coded_failures} writes failed coded {sorted(loop.codes)} and were made again"
        )
        assert proxy.cuts["chaos"] > 0
    with open_store(pg.url()) as store:
        loop.check(store)


def test_random_cuts_during_a_write_loop(pg: PgTarget, fault_proxy: PgFaultProxy) -> None:
    _random_cuts(fault_proxy, pg, steps=30, rate=0.004)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_many_random_cuts_during_a_long_write_loop(pg: PgTarget, fault_proxy: PgFaultProxy) -> None:
    _random_cuts(fault_proxy, pg, steps=800, rate=0.006)


# backends terminated at random during a write loop ---------------------------------------


def _random_terminations(pg: PgTarget, terminations: int, seed: int) -> None:
    """A second connection terminates the store's backends at random moments (idle,
    mid-statement, mid-transaction, at the commit) while a loop writes, until it has
    terminated ``terminations`` of them."""
    rng = random.Random(seed)
    stop = threading.Event()
    terminated = 0

    def terminate() -> None:
        nonlocal terminated
        with admin_connection(pg.server_url) as admin:
            while terminated < terminations and not stop.wait(rng.uniform(0.02, 0.3)):
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND pid <> pg_backend_pid()",
                    (pg.schema,),
                ).fetchall()
                terminated += len(rows)

    with open_store(pg.url()) as store:
        loop = WriteLoop(store, "terminated")
        loop.run(1)
        killer = threading.Thread(target=terminate)
        killer.start()
        try:
            while killer.is_alive():
                loop.run(1)
        finally:
            stop.set()
            killer.join(timeout=60)
        print(
            f"\nterminated {terminated} backends during {loop.completed} writes: "
            f"{loop.coded_failures} writes failed coded and were made again"
        )
    with open_store(pg.url()) as store:
        loop.check(store)


def test_backends_terminated_at_random_during_a_write_loop(pg: PgTarget) -> None:
    _random_terminations(pg, terminations=10, seed=1)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_backends_terminated_hundreds_of_times_during_a_write_loop(pg: PgTarget) -> None:
    _random_terminations(pg, terminations=400, seed=2)


def test_the_first_write_after_every_pooled_connection_died_succeeds(pg: PgTarget) -> None:
    """Every connection of a full pool dies at once (a server restart, a failover, a
    firewall dropping idle connections); the server itself is fine. The next write
    must succeed: the store's retries must not be spent on dead pooled connections."""
    with open_store(pg.url(pool_size=4, max_overflow=4)) as store:
        session = Session.new(agent_id="pool")
        store.save_session(session)

        def busy() -> None:
            for _ in range(30):
                store.get_events(session.id)
                store.list_sessions(agent_id="pool")

        readers = [threading.Thread(target=busy) for _ in range(12)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(timeout=60)
        with admin_connection(pg.server_url) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (pg.schema,),
            ).fetchall()
        assert len(killed) > 4, "the pool never grew past the store's retries"
        stored = store.append_events([Event.new(type="run_started", session_id=session.id)])
        assert stored[0].sequence_number == 1


# the server going away and coming back -------------------------------------------------


def _outage_during_loop(pg: PgTarget, outages: int, seconds: float) -> None:
    """A thread writes without pause while the server goes away ``outages`` times.
    During each outage a write of this thread must fail, coded, once the store's
    retries are spent; after each, the loop must make five more writes (recovery)
    before the next one."""
    # ``TcpProxy``'s stop and start, without Nagle's delays on every round trip.
    proxy = PgFaultProxy(*_server(pg.server_url))
    proxy.start()
    stop = threading.Event()
    try:
        url = pg.url(through(proxy, pg.server_url), connect_timeout=1)
        # The probe writes through a store of its own: it must not wait for the loop's
        # write lock, only for the server.
        with open_store(url) as store, open_store(url) as probe:
            loop = WriteLoop(store, "outage")
            loop.run(1)  # the sessions exist before the first outage

            errors: list[BaseException] = []

            def write_until_stopped() -> None:
                try:
                    while not stop.is_set():
                        loop.run(1)
                except BaseException as exc:  # reported by the main thread
                    errors.append(exc)

            writer = threading.Thread(target=write_until_stopped)
            writer.start()
            failures: list[AgentSessionsError] = []
            failed_after: list[float] = []
            recovered_after: list[float] = []
            for _ in range(outages):
                time.sleep(0.2)
                proxy.stop()
                began = time.monotonic()
                try:
                    probe.append_events([Event.new(type="message_streamed", session_id="s-x")])
                except AgentSessionsError as error:
                    failures.append(error)
                failed_after.append(time.monotonic() - began)
                time.sleep(seconds)
                proxy.start()
                back, steps = time.monotonic(), loop.completed
                deadline = back + 120
                while loop.completed < steps + 5 and not errors:
                    assert time.monotonic() < deadline, "the loop did not recover"
                    time.sleep(0.01)
                recovered_after.append(time.monotonic() - back)
            stop.set()
            writer.join(timeout=120)
            assert not writer.is_alive()
            assert not errors, f"the write loop failed: {errors[0]!r}"
            assert [f.code for f in failures] == ["storage_connection_failed"] * outages
            print(
                f"\nserver away {outages} times during {loop.completed} writes: a write "
                f"failed coded after {max(failed_after):.1f} s at most; the loop wrote "
                f"again {max(recovered_after):.1f} s at most after the server came back; "
                f"{loop.coded_failures} writes of the loop failed coded and were made again"
            )
            # Recovered: the same open store writes and reads again.
            session = loop.sessions[0]
            loop.appended[session.id].append("e-after")
            store.append_events(
                [Event.new(id="e-after", type="message_streamed", session_id=session.id)]
            )
        with open_store(pg.url()) as store:
            loop.check(store)
    finally:
        stop.set()
        proxy.stop()


def test_server_away_and_back_during_a_write_loop(pg: PgTarget) -> None:
    _outage_during_loop(pg, outages=1, seconds=0.5)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_server_away_and_back_many_times_during_a_write_loop(pg: PgTarget) -> None:
    _outage_during_loop(pg, outages=10, seconds=1.0)


# lock and statement timeouts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "lock", "sqlstate"),
    [
        ({"lock_timeout": 0.3}, "agentsessions_events IN EXCLUSIVE MODE", "55P03"),
        (
            {"lock_timeout": 30, "statement_timeout": 0.3},
            "agent_events IN ACCESS EXCLUSIVE MODE",
            "57014",
        ),
    ],
    ids=["lock_timeout", "statement_timeout"],
)
def test_timeouts_fail_coded_write_nothing_and_recover(
    pg: PgTarget, options: dict[str, float], lock: str, sqlstate: str
) -> None:
    """While another connection holds a lock, every write of a loop times out: coded
    ``timeout`` (retryable by the caller) with the SQLSTATE, at once (the store does not
    retry it: the statement would only wait again), and nothing of it written. Once the lock is
    released the loop goes on where it was; nothing is duplicated."""
    with open_store(pg.url(**options)) as store:
        loop = WriteLoop(store, "timeouts")
        loop.run(3)
        with admin_connection(pg.server_url) as blocker, blocker.transaction():
            blocker.execute(f'LOCK TABLE "{pg.schema}".{lock}')
            errors = []
            for session in loop.sessions:
                try:
                    store.append_events(
                        [Event.new(id=f"e-blocked-{session.id}", type="run_started",
                                   session_id=session.id)]
                    )  # fmt: skip
                except AgentSessionsError as error:
                    errors.append(error)
        assert [e.code for e in errors] == ["timeout"] * len(loop.sessions)
        assert all(e.retryable for e in errors)
        assert {e.details["sqlstate"] for e in errors} == {sqlstate}
        assert store.get_events_by_ids([f"e-blocked-{s.id}" for s in loop.sessions]) == []
        loop.run(6)
        loop.check(store)
