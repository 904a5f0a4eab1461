"""``maintain`` and ``doctor``: retention, and whether a store is healthy.

``maintain`` is a dry run unless ``--apply``: it prints what a retention run with the
policy would do now (``Maintenance.plan``, the same candidate queries as the run,
changing nothing), so the person about to erase data sees which data first. The policy
is ``RetentionPolicy``'s defaults, overlaid with ``--policy FILE`` (JSON or TOML, the
``RetentionPolicy.new`` options), overlaid with the flags given.

``doctor`` prints the versions (library, schema), each projection's lag as found, and
``health_check``'s findings after catching the views up; exit 1 when it found a problem,
so a cron job or a probe can act on it.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.exceptions import Exit

from .._version import __version__
from ..backends.schema import CURRENT_VERSION
from ..composition import migrate
from ..domain.errors import ValidationError
from ..domain.retention_policy import RetentionPolicy
from ..services.maintenance_report import MaintenancePlan, MaintenanceReport
from .arguments import EVENT_TYPE, SESSION_STATUS
from .conventions import json_option, open_existing, resolve_store_url, store_option
from .failures import STORAGE_FAILURE, USER_ERROR
from .output import echo, note, plain, print_json
from .progress import progress_counts
from .store_commands import status_line, statuses
from .user_projections import register_all

F = TypeVar("F", bound=Callable[..., Any])

#: Session ids a text plan lists per step (``--json`` lists them all).
LISTED = 10
_NEVER = ("inf", "infinity", "never", "none")


def _days_or_never(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """A positive count, or ``never`` (no limit: ``None`` in the policy). Absent:
    ``...``, so the file's value or the default stays."""
    if value is None:
        return ...
    if value.strip().lower() in _NEVER:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise click.BadParameter(f"{value!r} is not a positive whole number or 'never'")
    return number


def _limit_option(name: str, help_text: str) -> Callable[[F], F]:
    return click.option(
        f"--{name.replace('_', '-')}",
        name,
        default=None,
        metavar="N|never",
        callback=_days_or_never,
        help=help_text,
    )


def _policy_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        options = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(
            f"cannot read the policy file {path}: {exc} (a JSON object, or TOML for *.toml)",
            details={"field": "policy"},
        ) from exc
    if not isinstance(options, dict):
        raise ValidationError(
            f"the policy file {path} is not an object of RetentionPolicy options",
            details={"field": "policy"},
        )
    return options


def policy_from(path: Path | None, flags: dict[str, Any]) -> RetentionPolicy:
    options = {} if path is None else _policy_file(path)
    options.update({key: value for key, value in flags.items() if value is not ...})
    return RetentionPolicy.new(**options)


def _policy_dict(policy: RetentionPolicy) -> dict[str, Any]:
    found = plain(policy)
    found.pop("archive_store", None)
    return dict(found)


def _listed(ids: list[str]) -> str:
    shown = ", ".join(ids[:LISTED])
    return shown + (f" and {len(ids) - LISTED} more" if len(ids) > LISTED else "")


def plan_lines(plan: MaintenancePlan) -> list[str]:
    if plan.empty:
        return ["nothing to do"]
    lines = []
    if plan.sessions_to_soft_delete:
        found = plan.sessions_to_soft_delete
        lines.append(f"soft-delete {len(found)} session(s): {_listed(found)}")
    if plan.sessions_to_hard_delete:
        found = plan.sessions_to_hard_delete
        lines.append(f"erase {len(found)} soft-deleted session(s): {_listed(found)}")
    if plan.events_to_prune:
        busiest = sorted(plan.events_to_prune.items(), key=lambda item: -item[1])
        named = ", ".join(f"{session} {count:,}" for session, count in busiest[:LISTED])
        more = f" and {len(busiest) - LISTED} more" if len(busiest) > LISTED else ""
        lines.append(
            f"prune {plan.events_to_prune_total:,} event(s) in {len(busiest)} session(s): "
            f"{named}{more}"
        )
    if plan.orphaned_artifacts:
        lines.append(f"clean {plan.orphaned_artifacts} orphaned artifact registration(s)")
    if plan.orphaned_sequences:
        lines.append(f"erase what is left of {plan.orphaned_sequences} erased session(s)")
    return lines


def report_lines(report: MaintenanceReport) -> list[str]:
    lines = [
        f"soft-deleted {report.sessions_soft_deleted} session(s), erased "
        f"{report.sessions_hard_deleted}, pruned {report.events_pruned:,} event(s), cleaned "
        f"{report.artifacts_cleaned} orphaned artifact(s) and "
        f"{report.orphaned_sequences_cleaned} orphaned counter(s) in {report.duration_ms} ms"
    ]
    lines += [f"failed: {error}" for error in report.errors]
    return lines


@click.command()
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="RetentionPolicy options as a JSON object (TOML for *.toml); flags override it",
)
@_limit_option("max_completed_session_age_days", "soft-delete sessions not updated for N days")
@_limit_option("max_session_age_days", "soft-delete sessions created over N days ago")
@_limit_option("hard_delete_after_days", "erase sessions soft-deleted over N days ago")
@_limit_option("max_events_per_session", "prune each session down to N events")
@_limit_option("max_total_events", "prune the store down to N events")
@click.option(
    "--exempt-status",
    "exempt_statuses",
    multiple=True,
    type=SESSION_STATUS,
    help="never soft-delete sessions with this status (repeatable; replaces the default)",
)
@click.option(
    "--exempt-tag",
    "exempt_tags",
    multiple=True,
    metavar="TAG",
    help="never soft-delete sessions with this tag (repeatable; replaces the default)",
)
@click.option(
    "--prune-first",
    "prune_event_types_first",
    multiple=True,
    type=EVENT_TYPE,
    help="prune events of this type before the others (repeatable; replaces the default)",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="records per batch")
@click.option("--apply", "apply_now", is_flag=True, help="do it (default: only say what would go)")
@json_option
@store_option
@click.pass_context
def maintain(
    ctx: click.Context,
    /,
    policy_path: Path | None,
    exempt_statuses: tuple[str, ...],
    exempt_tags: tuple[str, ...],
    prune_event_types_first: tuple[str, ...],
    batch_size: int | None,
    apply_now: bool,
    as_json: bool,
    store_url: str | None,
    **limits: Any,
) -> None:
    """Apply a retention policy: soft-delete old sessions, erase long-deleted ones,
    prune events beyond the limits, clean orphans. A dry run unless --apply: prints
    what would go.

    N|never: a number of days or events, or never (no limit).
    """
    flags: dict[str, Any] = dict(limits)
    for name, given in (
        ("exempt_statuses", exempt_statuses),
        ("exempt_tags", exempt_tags),
        ("prune_event_types_first", prune_event_types_first),
    ):
        flags[name] = list(given) if given else ...
    flags["batch_size"] = ... if batch_size is None else batch_size
    policy = policy_from(policy_path, flags)
    with open_existing(ctx, store_url) as store:
        if not apply_now:
            plan = store.maintenance().plan(policy)
            if as_json:
                print_json({"dry_run": True, "policy": _policy_dict(policy), "plan": plain(plan)})
                return
            note("dry run: nothing is changed (--apply does it)")
            for text in ["would:", *("  " + line for line in plan_lines(plan))]:
                echo(text)
            return
        with progress_counts() as progress:
            report = store.maintenance(progress=progress).execute(policy)
    if as_json:
        print_json({"dry_run": False, "policy": _policy_dict(policy), "report": plain(report)})
    else:
        for text in report_lines(report):
            echo(text)
    if report.errors:
        note(f"agent-sessions: {len(report.errors)} step(s) failed; run it again to finish")
        raise Exit(STORAGE_FAILURE)


@click.command()
@json_option
@store_option
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, store_url: str | None) -> None:
    """Check the store: versions, each projection's lag, and the health check (index
    against log, counters, failed or stuck projections). Exit 1 if it found problems."""
    url = resolve_store_url(ctx, store_url)
    with open_existing(ctx, store_url) as store:
        loaded = register_all(store, ())
        found = statuses(loaded, store.projections)  # before the check catches them up
        issues = store.maintenance().health_check()
        issues += [f"projection {name} cannot be loaded here" for name in loaded.missing]
        where = store.url
    schema = migrate(url, dry_run=True).version_before
    if as_json:
        print_json(
            {
                "url": where,
                "version": __version__,
                "schema_version": schema,
                "schema_version_expected": CURRENT_VERSION,
                "projections": found,
                "issues": issues,
                "healthy": not issues,
            }
        )
    else:
        echo(f"store {where}")
        versions = f"schema version {schema} (expected {CURRENT_VERSION})"
        echo(f"agent-sessions {__version__} \u00b7 {versions}")
        echo("projections (lag as found, before the check caught them up):")
        for item in found:
            echo("  " + status_line(item))
        echo("health: ok" if not issues else f"health: {len(issues)} problem(s)")
        for issue in issues:
            echo(f"  {issue}")
    if issues:
        note(f"agent-sessions: {len(issues)} problem(s) found (see above)")
        raise Exit(USER_ERROR)
