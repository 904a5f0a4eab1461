"""``stats``, ``usage`` and ``cost``: the ``QueryAPI`` summaries, as tables.

``stats`` is the overview (of the store, or of one session with its cost); ``usage``
is tokens by provider and by day; ``cost`` is money by provider, model and day. Each
prints the API's result with ``--json`` (``dataclasses`` as objects), so a script gets
exactly what the library answers. Days are UTC, by run start, inclusive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..composition import Store
from ..domain.statuses import SessionStatus
from ..services.query_results import CostSummary, DailyUsage
from .arguments import converted, day, pricing_option, pricing_table
from .conventions import json_option, open_existing, store_option
from .event_summary import line, money
from .output import console, plain, print_all, print_json, printable
from .progress import queries
from .session_commands import run_tokens, stats_lines

#: Token columns of the summaries, in the order of a usage report; a column appears
#: when the API's result has the field.
TOKEN_COLUMNS = (
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cache_read_tokens", "cache read"),
    ("cache_creation_tokens", "cache write"),
    ("total_tokens", "total"),
)


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and value else ""


def _table(
    first: Sequence[str], rows: Iterable[dict[str, Any]], *, cost: bool, tokens: bool = True
) -> Table:
    """One row per item: the ``first`` columns as given, then (with ``tokens``) each
    token count some row has, the run count when the rows have one (a model's cost,
    ``ModelCost``, does not) and (with ``cost``) the cost."""
    found = list(rows)
    keys = [
        (key, label) for key, label in TOKEN_COLUMNS if tokens and any(r.get(key) for r in found)
    ]
    runs = any(isinstance(r.get("run_count"), int) for r in found)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name in first:
        table.add_column(name, no_wrap=True)
    for _, label in keys:
        table.add_column(label, justify="right", no_wrap=True)
    if runs:
        table.add_column("runs", justify="right", no_wrap=True)
    if cost:
        table.add_column("cost", justify="right", no_wrap=True)
    for row in found:
        # Names come from the store: shown as inert text (no markup, no controls).
        cells = [Text(printable(str(row.get(name, "")))) for name in first]
        cells += [Text(_count(row.get(key))) for key, _ in keys]
        if runs:
            cells.append(Text(_count(row.get("run_count"))))
        if cost:
            cells.append(Text(money(row.get("cost_usd"))))
        table.add_row(*cells)
    return table


def _day_bounds(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """The instants that bound ``since``..``until`` (days, inclusive)."""
    start = None if since is None else datetime.combine(datetime.fromisoformat(since), time(), UTC)
    end = None
    if until is not None:
        end = datetime.combine(datetime.fromisoformat(until), time(), UTC) + timedelta(days=1)
        end -= timedelta(microseconds=1)
    return start, end


_SINCE = click.option(
    "--since", default=None, metavar="DAY", callback=converted(day), help="from this day (UTC)"
)
_UNTIL = click.option(
    "--until", default=None, metavar="DAY", callback=converted(day), help="to this day, inclusive"
)
_PROVIDER = click.option("--provider", default=None, help="only this provider's runs")


_PRICING = pricing_option("price runs without a recorded cost with this JSON pricing table")


@click.command()
@click.argument("session_id", metavar="[SESSION]", required=False)
@_PRICING
@json_option
@store_option
@click.pass_context
def stats(
    ctx: click.Context,
    session_id: str | None,
    pricing: Path | None,
    as_json: bool,
    store_url: str | None,
) -> None:
    """The store in numbers (sessions by status, runs, events, tokens, cost), or one
    SESSION's (events, runs, tokens, first and last event, cost)."""
    table = pricing_table(pricing)
    with open_existing(ctx, store_url) as store:
        if session_id is not None:
            _session_stats(store, session_id, table, as_json=as_json)
            return
        with queries(store) as query:
            by_status = {
                status.value: query.search_sessions(status=[status.value], limit=1).total_count
                for status in SessionStatus
            }
            usage = query.get_usage_summary()
            cost = query.get_cost_summary(pricing_table=table)
            event_count = query.count_events()
    if as_json:
        print_json(
            {
                "sessions": sum(by_status.values()),
                "sessions_by_status": by_status,
                "events": event_count,
                "usage": plain(usage),
                "cost": plain(cost),
            }
        )
        return
    statuses = ", ".join(f"{name} {count}" for name, count in by_status.items() if count)
    text = line(f"{sum(by_status.values()):,} session(s)")
    if statuses:
        text.append(f" ({statuses})")
    text.append(f" \u00b7 {usage.run_count:,} run(s) \u00b7 {event_count:,} event(s)")
    print_all(console(), [text, *_cost_lines(cost)])
    rows = [{"provider": name, **plain(found)} for name, found in usage.by_provider.items()]
    if rows:
        print_all(console(), [_table(["provider"], rows, cost=False)])


def _cost_lines(cost: CostSummary) -> list[Any]:
    text = line(f"cost {money(cost.total_cost_usd)} over {cost.run_count:,} run(s)")
    if cost.unmapped_runs:
        text.append(f"; {cost.unmapped_runs} run(s) without a price (not counted)")
    return [text]


def _session_stats(
    store: Store, session_id: str, table: dict[str, Any] | None, *, as_json: bool
) -> None:
    with queries(store) as query:
        found = query.get_session_stats(session_id)
        cost = query.get_cost_summary(session_id=session_id, pricing_table=table)
        usage = query.get_usage_summary(session_id=session_id)
    runs = store.list_runs(session_id)
    if as_json:
        print_json(
            {
                "stats": plain(found),
                "tokens": run_tokens(runs),
                "usage": plain(usage),
                "cost": plain(cost),
            }
        )
        return
    print_all(console(), [*stats_lines(found, runs), cost_table(cost)])


def cost_table(cost: CostSummary) -> Any:
    """The total, then what each model cost (with its tokens)."""
    rows = [{"model": name, **plain(spent)} for name, spent in cost.by_model.items()]
    if not rows:
        return Group(*_cost_lines(cost))
    return Group(*_cost_lines(cost), _table(["model"], rows, cost=True))


def _all(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary's totals as a row of the provider table (``total_input_tokens`` in
    the ``input_tokens`` column)."""
    row: dict[str, Any] = {"provider": "all", "run_count": summary.get("run_count")}
    for key, value in summary.items():
        if key.startswith("total_") and key != "total_tokens":
            row[key[len("total_") :]] = value
    row["total_tokens"] = summary.get("total_tokens")
    return row


def daily_rows(days: Iterable[DailyUsage]) -> list[dict[str, Any]]:
    return [plain(found) for found in days]


@click.command()
@_SINCE
@_UNTIL
@_PROVIDER
@click.option("--model", default=None, help="only this model's runs (the daily table)")
@click.option(
    "--by",
    type=click.Choice(["provider", "day", "both"]),
    default="both",
    show_default=True,
    help="which tables to print",
)
@json_option
@store_option
@click.pass_context
def usage(
    ctx: click.Context,
    since: str | None,
    until: str | None,
    provider: str | None,
    model: str | None,
    by: str,
    as_json: bool,
    store_url: str | None,
) -> None:
    """Tokens used, by provider and by day (UTC, by run start; cache reads and writes
    in their own columns).

    With --json: {"summary": get_usage_summary, "by_day": get_usage_by_day}.
    """
    start, end = _day_bounds(since, until)
    with open_existing(ctx, store_url) as store, queries(store) as query:
        summary = query.get_usage_summary(provider=provider, since=start, until=end)
        days = query.get_usage_by_day(
            provider=provider, model=model, since_day=since, until_day=until
        )
    if as_json:
        print_json({"summary": plain(summary), "by_day": daily_rows(days)})
        return
    out = console()
    if by in ("provider", "both"):
        rows = [{"provider": name, **plain(found)} for name, found in summary.by_provider.items()]
        print_all(out, [_table(["provider"], [*rows, _all(plain(summary))], cost=False)])
    if by in ("day", "both"):
        print_all(out, [_table(["day", "provider", "model"], daily_rows(days), cost=False)])


@click.command()
@_SINCE
@_UNTIL
@_PROVIDER
@click.option("--agent", "agent_id", default=None, help="only this agent's sessions")
@_PRICING
@click.option(
    "--by",
    type=click.Choice(["provider", "model", "day", "all"]),
    default="all",
    show_default=True,
    help="which tables to print",
)
@json_option
@store_option
@click.pass_context
def cost(
    ctx: click.Context,
    since: str | None,
    until: str | None,
    provider: str | None,
    agent_id: str | None,
    pricing: Path | None,
    by: str,
    as_json: bool,
    store_url: str | None,
) -> None:
    """What the runs cost: by provider, by model and by day. A run's recorded cost
    where it has one, else its tokens (cache reads and writes at their own rates)
    priced with the built-in table, or --pricing FILE.

    With --json: {"summary": get_cost_summary, "by_day": get_usage_by_day} (by_day
    is null with --agent: the daily rollup is not kept by agent).
    """
    table = pricing_table(pricing)
    start, end = _day_bounds(since, until)
    with open_existing(ctx, store_url) as store, queries(store) as query:
        summary = query.get_cost_summary(
            provider=provider, since=start, until=end, agent_id=agent_id, pricing_table=table
        )
        # The daily rollup has no agent filter: with --agent there is no day table.
        days = (
            None
            if agent_id is not None
            else query.get_usage_by_day(provider=provider, since_day=since, until_day=until)
        )
    if as_json:
        print_json(
            {"summary": plain(summary), "by_day": None if days is None else daily_rows(days)}
        )
        return
    out = console()
    print_all(out, _cost_lines(summary))
    if by in ("provider", "all"):
        rows = [{"provider": name, **plain(spent)} for name, spent in summary.by_provider.items()]
        print_all(out, [_table(["provider"], rows, cost=True)])
    if by in ("model", "all"):
        rows = [{"model": name, **plain(spent)} for name, spent in summary.by_model.items()]
        print_all(out, [_table(["model"], rows, cost=True)])
    if by in ("day", "all") and days is not None:
        rows = daily_rows(days)
        print_all(out, [_table(["day", "provider", "model"], rows, cost=True, tokens=False)])
