"""The workloads of the performance issue on our store, each measured in the same run
beside its baselines, one function per group of rows.

Every contender writes into a fresh database file (SQLite) or a fresh schema
(PostgreSQL); the events are built before the clock starts; a warm-up (opening, first
statements) is done before it. Write figures are medians over ``sizes.rounds`` rounds,
each round on fresh databases and taken in turns (ours, raw, eventsourcing, peer) so
that a noisy neighbour slows all alike. Read figures come from one dataset per
contender, each read timed ``read_repeats x rounds`` times after a warm-up read
(median), contender after contender.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from agent_sessions import Event, ExecutionResult, Run, Session, open_store
from agent_sessions.composition import Store

from . import peers
from .baselines_eventsourcing import open_bare
from .baselines_raw import RawEvent, open_raw, raw_events
from .common import (
    FILTER_TYPE,
    Backend,
    Sizes,
    Skip,
    event_type,
    median,
    payload,
    percentile,
    repeated_ms,
    seconds,
)
from .report import ES, PEER, RAW, REF, Row, Target

Progress = Callable[[str], None]


# events ---------------------------------------------------------------------------------


def our_events(session_id: str, start: int, n: int, run_id: str | None = None) -> list[Event]:
    return [
        Event.new(type=event_type(i), session_id=session_id, run_id=run_id, data=payload(i))
        for i in range(start, start + n)
    ]


def _batches(sizes: Sizes) -> list[tuple[int, int, int]]:
    """(session index, first event, count) of every batch, sessions interleaved."""
    per = sizes.events_per_session
    return [
        (s, start, min(sizes.batch, per - start))
        for start in range(0, per, sizes.batch)
        for s in range(sizes.sessions)
    ]


def _session(agent_id: str = "bench") -> Session:
    return Session.new(agent_id=agent_id).with_status("active")


# batch append ---------------------------------------------------------------------------


def _ours_batch(backend: Backend, sizes: Sizes) -> float:
    with open_store(backend.store_url()) as store:
        sessions = [_session() for _ in range(sizes.sessions)]
        for session in [*sessions, warm := _session()]:
            store.save_session(session)
        store.append_events(our_events(warm.id, 0, sizes.batch))
        plan = [
            our_events(sessions[s].id, start, n)
            for s, start, n in _batches(sizes)  # built before the clock starts
        ]
        elapsed = seconds(_each(store.append_events, plan))
    return sum(len(b) for b in plan) / elapsed


def _raw_batch(backend: Backend, sizes: Sizes) -> float:
    raw = open_raw(backend)
    try:
        raw.append("warm", raw_events(0, sizes.batch))
        plan = [(f"s{s}", raw_events(start, n)) for s, start, n in _batches(sizes)]
        elapsed = seconds(_each(lambda item: raw.append(*item), plan))
    finally:
        raw.close()
    return sum(len(b) for _, b in plan) / elapsed


def _es_batch(backend: Backend, sizes: Sizes) -> float:
    bare = open_bare(backend)
    try:
        bare.append("warm", raw_events(0, sizes.batch))
        plan = [(f"s{s}", raw_events(start, n)) for s, start, n in _batches(sizes)]
        elapsed = seconds(_each(lambda item: bare.append(*item), plan))
    finally:
        bare.close()
    return sum(len(b) for _, b in plan) / elapsed


def _rounds(
    sizes: Sizes, contenders: dict[str, Callable[[], float]]
) -> tuple[dict[str, float | None], str]:
    """Median over the rounds of each contender's figure, taken in turns; a contender
    that raises ``Skip`` is ``None``, and the note says why."""
    figures: dict[str, list[float]] = {name: [] for name in contenders}
    skipped: dict[str, str] = {}
    for _ in range(sizes.rounds):
        for name, measure in contenders.items():
            if name in skipped:
                continue
            try:
                figures[name].append(measure())
            except Skip as why:
                skipped[name] = str(why)
    out: dict[str, float | None] = {
        name: (median(values) if values else None) for name, values in figures.items()
    }
    return out, "; ".join(f"{name}: {why}" for name, why in skipped.items())


def batch_append(backend: Backend, sizes: Sizes) -> list[Row]:
    contenders: dict[str, Callable[[], float]] = {
        "ours": lambda: _ours_batch(backend, sizes),
        RAW: lambda: _raw_batch(backend, sizes),
        ES: lambda: _es_batch(backend, sizes),
    }
    targets = [Target(RAW, 0.5)]
    if not backend.is_postgres:
        contenders[PEER] = lambda: peers.openai_batch(backend, sizes)
        targets.append(Target(PEER, 1.0))
    figures, note = _rounds(sizes, contenders)
    return [
        Row(
            "batch_append",
            backend.name,
            "events/s",
            figures.pop("ours"),
            figures,
            peer="openai" if PEER in figures else None,
            targets=targets,
            note=note,
            extra={
                "shape": f"{sizes.sessions} sessions x {sizes.events_per_session} events, "
                f"batches of {sizes.batch}",
                "peer_detail": "openai-agents SQLiteSession.add_items, same batches",
            },
        )
    ]


# single appends and flushes -------------------------------------------------------------


def _each(call: Callable[[Any], object], items: list[Any]) -> Callable[[], None]:
    """A thunk that calls ``call(item)`` for every item, in order."""

    def run() -> None:
        for item in items:
            call(item)

    return run


def _latencies(calls: list[Callable[[], object]]) -> list[float]:
    out = []
    for call in calls:
        started = time.perf_counter()
        call()
        out.append(time.perf_counter() - started)
    return out


def _ours_singles(backend: Backend, sizes: Sizes) -> list[float]:
    with open_store(backend.store_url()) as store:
        session = _session()
        store.save_session(session)
        for event in our_events(session.id, 0, 10):
            store.append_event(event)
        events = our_events(session.id, 10, sizes.singles)
        return _latencies([functools.partial(store.append_event, e) for e in events])


def _raw_singles(backend: Backend, sizes: Sizes) -> list[float]:
    raw = open_raw(backend)
    try:
        for event in raw_events(0, 10):
            raw.append("s", [event])
        events = raw_events(10, sizes.singles)
        return _latencies([functools.partial(raw.append, "s", [e]) for e in events])
    finally:
        raw.close()


def _es_singles(backend: Backend, sizes: Sizes) -> list[float]:
    bare = open_bare(backend)
    try:
        for event in raw_events(0, 10):
            bare.append("s", [event])
        events = raw_events(10, sizes.singles)
        return _latencies([functools.partial(bare.append, "s", [e]) for e in events])
    finally:
        bare.close()


def _ours_flushes(backend: Backend, sizes: Sizes) -> float:
    with open_store(backend.store_url()) as store:
        session = _session()
        store.save_session(session)
        run = Run.new(session_id=session.id, input={"prompt": "go"}).with_status("running")
        store.save_run(run)
        for i in range(5):  # warm-up
            run = run.increment_turn()
            events = our_events(session.id, i, 1, run_id=run.id)
            store.flush(ExecutionResult(session=session, run=run, events=events))
        plan = [our_events(session.id, i, 1, run_id=run.id) for i in range(sizes.flushes)]
        started = time.perf_counter()
        for events in plan:
            run = run.increment_turn()
            store.flush(ExecutionResult(session=session, run=run, events=events))
        return sizes.flushes / (time.perf_counter() - started)


def _raw_flushes(backend: Backend, sizes: Sizes) -> float:
    raw = open_raw(backend)
    try:
        for event in raw_events(0, 5, run_id="r"):
            raw.flush_shaped("s", "r", event)
        plan = raw_events(5, sizes.flushes, run_id="r")
        elapsed = seconds(_each(lambda e: raw.flush_shaped("s", "r", e), plan))
        return sizes.flushes / elapsed
    finally:
        raw.close()


def singles_and_flush(backend: Backend, sizes: Sizes) -> list[Row]:
    runs: dict[str, list[list[float]]] = {"ours": [], RAW: [], ES: [], PEER: []}
    flushes: dict[str, list[float]] = {"ours": [], RAW: []}
    peer_note = ""
    for _ in range(sizes.rounds):
        runs["ours"].append(_ours_singles(backend, sizes))
        runs[RAW].append(_raw_singles(backend, sizes))
        runs[ES].append(_es_singles(backend, sizes))
        if not backend.is_postgres and not peer_note:
            try:
                runs[PEER].append(peers.openai_singles(backend, sizes))
            except Skip as why:
                peer_note = f"peer: {why}"
        flushes["ours"].append(_ours_flushes(backend, sizes))
        flushes[RAW].append(_raw_flushes(backend, sizes))

    def rate(name: str) -> float | None:
        rounds = runs[name]
        return median([len(r) / sum(r) for r in rounds]) if rounds else None

    def pct(name: str, q: float) -> float | None:
        rounds = runs[name]
        return median([percentile(r, q) * 1000 for r in rounds]) if rounds else None

    peer = "openai" if runs[PEER] else None
    rows = [
        Row(
            "single_append",
            backend.name,
            "events/s",
            rate("ours"),
            {RAW: rate(RAW), ES: rate(ES), PEER: rate(PEER)},
            peer=peer,
            targets=[Target(RAW, 0.6)],
            note=peer_note,
            extra={
                "appends": sizes.singles,
                "peer_detail": "openai-agents SQLiteSession.add_items([item])",
            },
        )
    ]
    for q in (50, 99):
        rows.append(
            Row(
                f"single_append_p{q}",
                backend.name,
                "ms",
                pct("ours", q),
                {RAW: pct(RAW, q), ES: pct(ES, q), PEER: pct(PEER, q)},
                peer=peer,
            )
        )
    rows.append(
        Row(
            "flush",
            backend.name,
            "flushes/s",
            median(flushes["ours"]),
            {RAW: rate(RAW), REF: median(flushes[RAW])},
            targets=[Target(RAW, 0.3)],
            extra={
                "reference": "raw-flush-tx",
                "shape": "session + run (turn incremented) + 1 event per flush; raw column: "
                "the raw single-row commit rate (the target's baseline)",
            },
        )
    )
    return rows


# reads and replay -----------------------------------------------------------------------


def reads_and_replay(backend: Backend, sizes: Sizes) -> list[Row]:
    n, last = sizes.read_events, sizes.last_n
    middle = n // 2
    repeats = sizes.read_repeats * sizes.rounds
    ours: dict[str, float] = {}
    theirs: dict[str, dict[str, float | None]] = {}
    extra: dict[str, Any] = {}
    peer_note = ""

    with open_store(backend.store_url()) as store:
        session = _session()
        store.save_session(session)
        for start in range(0, n, 100):
            store.append_events(our_events(session.id, start, min(100, n - start)))
        sid = session.id
        ours["full_read"] = n / repeated_ms(lambda: store.get_events(sid), repeats) * 1000
        ours["last_n_read"] = repeated_ms(
            lambda: store.get_events(sid, order="desc", limit=last), repeats
        )
        ours["read_after"] = repeated_ms(lambda: store.get_events(sid, after=middle), repeats)
        ours["read_type"] = repeated_ms(lambda: store.get_events(sid, type=FILTER_TYPE), repeats)
        opened = seconds(lambda: store.history(sid)) * 1000
        history = store.history(sid)
        ours["replay_at"] = repeated_ms(lambda: history.at(middle), repeats)
        extra["replay_history_open_ms"] = opened
        naive = _naive_fold(store, sid, middle)
        theirs["replay_at"] = {REF: repeated_ms(naive, max(3, sizes.rounds))}

    raw = open_raw(backend)
    try:
        for start in range(0, n, 100):
            raw.append("s", raw_events(start, min(100, n - start)))
        theirs["full_read"] = {RAW: n / repeated_ms(lambda: raw.read("s"), repeats) * 1000}
        theirs["last_n_read"] = {RAW: repeated_ms(lambda: raw.read("s", last=last), repeats)}
        theirs["read_after"] = {RAW: repeated_ms(lambda: raw.read("s", after=middle), repeats)}
        theirs["read_type"] = {RAW: repeated_ms(lambda: raw.read("s", type_=FILTER_TYPE), repeats)}
    finally:
        raw.close()

    bare = open_bare(backend)
    try:
        for start in range(0, n, 100):
            bare.append("s", raw_events(start, min(100, n - start)))
        theirs["full_read"][ES] = n / repeated_ms(lambda: bare.read("s"), repeats) * 1000
    finally:
        bare.close()

    if not backend.is_postgres:
        try:
            full, tail = peers.openai_reads(backend, n, last, repeats)
            theirs["full_read"][PEER] = full
            theirs["last_n_read"][PEER] = tail
        except Skip as why:
            peer_note = f"peer: {why}"
    peer = "openai" if PEER in theirs["full_read"] else None
    shape = f"one session of {n:,} events"
    return [
        Row(
            "full_read",
            backend.name,
            "events/s",
            ours["full_read"],
            theirs["full_read"],
            peer=peer,
            targets=[Target(RAW, 0.5)] + ([Target(PEER, 1.0)] if peer else []),
            note=peer_note,
            extra={"shape": shape, "peer_detail": "openai-agents SQLiteSession.get_items()"},
        ),
        Row(
            "last_n_read",
            backend.name,
            "ms",
            ours["last_n_read"],
            theirs["last_n_read"],
            peer=peer,
            extra={
                "shape": f"newest {last} of {n:,}",
                "peer_detail": f"openai-agents SQLiteSession.get_items(limit={last})",
            },
        ),
        Row(
            "read_after",
            backend.name,
            "ms",
            ours["read_after"],
            theirs["read_after"],
            extra={"shape": f"after={middle} of {n:,}"},
        ),
        Row(
            "read_type",
            backend.name,
            "ms",
            ours["read_type"],
            theirs["read_type"],
            extra={"shape": f"type={FILTER_TYPE}, one event in ten of {n:,}"},
        ),
        Row(
            "replay_at",
            backend.name,
            "ms",
            ours["replay_at"],
            theirs["replay_at"],
            targets=[Target(limit=50)],
            extra={"shape": f"history.at({middle}) of {n:,}", "reference": "naive-fold", **extra},
        ),
    ]


def _naive_fold(store: Store, session_id: str, n: int) -> Callable[[], object]:
    try:
        from agent_sessions.services.history import DEFAULT_WINDOW
        from benchmarks.replay import naive_at
    except ImportError:  # pragma: no cover - the script moved
        return lambda: store.get_events(session_id)
    return lambda: naive_at(store, session_id, n, DEFAULT_WINDOW)


# the Claude Code import -----------------------------------------------------------------

_REAL_TRANSCRIPTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "claude-code"


def transcripts(folder: Path, sizes: Sizes) -> tuple[list[Path], str]:
    """The real transcripts beside the repository (full runs), else generated ones."""
    if not sizes.quick and _REAL_TRANSCRIPTS.is_dir():
        return [_REAL_TRANSCRIPTS], f"the real transcripts in {_REAL_TRANSCRIPTS}"
    from agent_sessions.importers.sample_transcript import write_sample_transcript

    count = 10 if sizes.quick else 200
    target = folder / f"transcripts_{count}"
    if not target.exists():
        for seed in range(count):
            write_sample_transcript(target / f"project-{seed}", seed=seed)
    return [target], f"{count} generated sample transcripts"


def _raw_import(backend: Backend, paths: list[Path]) -> tuple[float, int]:
    """Every line parsed with orjson and stored as one raw event, a transaction per
    file: the floor under any importer."""
    files = sorted(p for root in paths for p in root.rglob("*.jsonl"))
    raw = open_raw(backend)
    lines = 0
    try:
        started = time.perf_counter()
        for number, path in enumerate(files):
            batch: list[RawEvent] = []
            with path.open("rb") as handle:
                for i, line in enumerate(handle):
                    if line.strip():
                        doc = orjson.loads(line)
                        batch.append((f"{number}:{i}", str(doc.get("type")), None, i, doc))
            if batch:
                raw.append(f"file-{number}", batch)
            lines += len(batch)
        return time.perf_counter() - started, lines
    finally:
        raw.close()


def claude_code_import(backend: Backend, sizes: Sizes) -> list[Row]:
    from agent_sessions.importers.claude_code import import_claude_code

    paths, source = transcripts(backend.folder, sizes)
    ours: list[float] = []
    base: list[float] = []
    events = lines = 0
    for _ in range(sizes.rounds):
        with open_store(backend.store_url()) as store:
            started = time.perf_counter()
            report = import_claude_code(store, paths)
            ours.append(time.perf_counter() - started)
            events = report.events
        elapsed, lines = _raw_import(backend, paths)
        base.append(elapsed)
    return [
        Row(
            "claude_code_import",
            backend.name,
            "s",
            median(ours),
            {RAW: median(base)},
            extra={
                "source": source,
                "events": events,
                "lines": lines,
                "events_per_s": events / median(ours),
                "raw": "each line parsed with orjson and inserted, one transaction per file",
            },
        )
    ]


# projections and queries ----------------------------------------------------------------


def _fill_queries(store: Store, sizes: Sizes) -> int:
    per_session = max(10, sizes.query_events // sizes.query_sessions)
    per_run = per_session // 2
    written = 0
    for s in range(sizes.query_sessions):
        session = Session.new(agent_id=f"agent-{s % 10}", tags=["bench"]).with_status(
            "completed" if s % 3 else "active"
        )
        runs = []
        events: list[Event] = []
        for r in range(2):
            run = (
                Run.new(session_id=session.id, input={"prompt": f"task {r}"})
                .with_status("completed")
                .replace(
                    provider="anthropic" if s % 2 else "openai",
                    token_usage={"input_tokens": 1000 + s, "output_tokens": 200 + r},
                    turn_count=5,
                )
            )
            runs.append(run)
            events.extend(
                Event.new(
                    type=event_type(i),
                    session_id=session.id,
                    run_id=run.id,
                    provider=run.provider,
                    data=payload(i),
                )
                for i in range(per_run)
            )
        store.write_session(session, runs, events)
        written += len(events)
    return written


def _log_decode(backend: Backend, url: str) -> Callable[[], int]:
    """The raw driver reading the store's stored-events table and decoding every
    payload with orjson: the floor under any catch-up."""
    if backend.server is None:
        import sqlite3

        path = url.split("://", 1)[1][1:]

        def read_sqlite() -> int:
            with sqlite3.connect(path) as conn:
                rows = conn.execute("SELECT state FROM stored_events ORDER BY rowid")
                return sum(1 for (state,) in rows if orjson.loads(state) is not None)

        return read_sqlite
    import psycopg

    schema = url.rsplit("schema=", 1)[1]

    def read_pg() -> int:
        with psycopg.connect(backend.server or "", options=f"-c search_path={schema}") as conn:
            cur = conn.execute("SELECT state FROM agentsessions_events ORDER BY notification_id")
            return sum(1 for (state,) in cur if orjson.loads(state) is not None)

    return read_pg


def _raw_query_ms(backend: Backend, url: str, sql: str, params: tuple[Any, ...], n: int) -> float:
    """Median ms of the same question asked in SQL on our own index tables, through the
    plain driver (its own connection, closed afterwards)."""
    if backend.server is None:
        import sqlite3

        with contextlib.closing(sqlite3.connect(url.split("://", 1)[1][1:])) as conn:
            return repeated_ms(lambda: conn.execute(sql, params).fetchall(), n)
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(
        backend.server or "", autocommit=True, options=f"-c search_path={schema}"
    ) as pg:
        return repeated_ms(lambda: pg.execute(sql.replace("?", "%s"), params).fetchall(), n)


def projections_and_queries(backend: Backend, sizes: Sizes) -> list[Row]:
    url = backend.store_url()
    with open_store(url) as store:
        written = _fill_queries(store, sizes)
    catch_ups: list[float] = []
    rebuilds: list[float] = []
    head = 0
    with open_store(url) as store:
        engine = store.projections  # registers the built-in views: nothing applied yet
        head = engine.head()
        catch_ups.append(seconds(engine.catch_up))
        for _ in range(sizes.rounds):
            rebuilds.append(seconds(_each(engine.rebuild, list(engine.names))))
        names = list(engine.names)
        q = store.query()
        query_ms = {
            "query_search_sessions": repeated_ms(
                lambda: q.search_sessions(agent_id="agent-3", status="completed", limit=50),
                sizes.query_repeats,
            ),
            "query_count_events": repeated_ms(
                lambda: q.count_events(types=[FILTER_TYPE]), sizes.query_repeats
            ),
            "query_usage_summary": repeated_ms(lambda: q.get_usage_summary(), sizes.query_repeats),
        }
    decode = _log_decode(backend, url)
    floor = median([seconds(decode) for _ in range(max(1, sizes.rounds))])
    raw_sql = {
        "query_search_sessions": (
            "SELECT session_id FROM session_index WHERE agent_id = ? AND status = ? "
            "ORDER BY updated_us DESC LIMIT 50",
            ("agent-3", "completed"),
        ),
        "query_count_events": ("SELECT count(*) FROM agent_events WHERE type = ?", (FILTER_TYPE,)),
    }
    raw_ms: dict[str, float | None] = {
        name: _raw_query_ms(backend, url, sql, params, sizes.query_repeats)
        for name, (sql, params) in raw_sql.items()
    }
    shape = f"{sizes.query_sessions:,} sessions, {written:,} agent events"
    views = {"views": names, "log_notifications": head, "shape": shape}
    rows = [
        Row(
            "projection_catch_up",
            backend.name,
            "events/s",
            head / median(catch_ups),
            {RAW: head / floor},
            targets=[] if backend.is_postgres else [Target(limit=20_000)],
            extra={**views, "raw": "read + orjson-decode the whole log (no view written)"},
        ),
        Row(
            "projection_rebuild",
            backend.name,
            "events/s",
            head / median(rebuilds),
            {RAW: head / floor},
            extra={**views, "raw": "read + orjson-decode the whole log (no view written)"},
        ),
    ]
    for name, ms in query_ms.items():
        rows.append(
            Row(
                name,
                backend.name,
                "ms",
                ms,
                {RAW: raw_ms.get(name)},
                targets=[Target(limit=20)],
                extra={
                    "shape": shape,
                    "p50 of": sizes.query_repeats,
                    "raw": "the same question in SQL on our index tables"
                    if name in raw_ms
                    else "none",
                },
            )
        )
    return rows


# the async facade -----------------------------------------------------------------------


def async_facade(backend: Backend, sizes: Sizes) -> list[Row]:
    import asyncio

    from agent_sessions import open_async_store

    n, concurrency = sizes.singles, 16
    page = min(50, n // 2)
    span = n - page  # reads start anywhere in the first n - page events
    url = backend.store_url()
    with open_store(url) as store:
        session = _session()
        store.save_session(session)
        events = our_events(session.id, 0, n)
        sync_append = n / seconds(_each(store.append_event, events))
        sync_read = n / seconds(
            _each(
                lambda i: store.get_events(session.id, after=i % span, limit=page), list(range(n))
            )
        )
        sid = session.id

    async def facade() -> tuple[float, float]:
        async with open_async_store(url) as astore:
            fresh = our_events(sid, n, n)
            await astore.append_event(our_events(sid, 2 * n, 1)[0])  # warm-up

            async def worker(items: list[Event]) -> None:
                for item in items:
                    await astore.append_event(item)

            started = time.perf_counter()
            await asyncio.gather(*(worker(fresh[k::concurrency]) for k in range(concurrency)))
            appended = n / (time.perf_counter() - started)

            async def reader(offsets: list[int]) -> None:
                for i in offsets:
                    await astore.get_events(sid, after=i % span, limit=page)

            started = time.perf_counter()
            offsets = list(range(n))
            await asyncio.gather(*(reader(offsets[k::concurrency]) for k in range(concurrency)))
            return appended, n / (time.perf_counter() - started)

    async_append, async_read = asyncio.run(facade())
    extra = {"reference": "sync-store", "concurrency": concurrency}
    return [
        Row(
            "async_append",
            backend.name,
            "events/s",
            async_append,
            {REF: sync_append},
            extra={**extra, "shape": f"{n} single appends from {concurrency} tasks"},
        ),
        Row(
            "async_read",
            backend.name,
            "reads/s",
            async_read,
            {REF: sync_read},
            extra={**extra, "shape": f"{n} reads of {page} events from {concurrency} tasks"},
        ),
    ]
