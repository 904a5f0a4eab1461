"""``migrate(url)``: bring a store's schema to the version this code reads and writes.

The numbered migrations and the version record live with the backends
(``backends/schema.py``); this module runs them in order, each in its own locked
transaction, then replays the log into the read models a migration marked for rebuild.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backends import open_backend, schema
from ..domain.errors import AgentSessionsError
from ..ports.backend import Backend, SchemaAccess, SchemaCursor


def migrate(
    url: str | None = None,
    *,
    dry_run: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    **options: Any,
) -> schema.MigrationReport:
    """Apply every pending migration of the store at ``url`` (the same URLs and options
    as :func:`open_store`) and return what each did; with ``dry_run`` only say what
    would be done. Safe to run twice, from two processes at once, and again after a
    crash: each migration commits together with its version record."""
    from .open_store import default_url

    url = url or default_url()
    backend = open_backend(url, options)
    try:
        return _migrate(backend, url, dry_run=dry_run, progress=progress, options=options)
    except AgentSessionsError:
        raise
    except Exception as exc:
        if backend.classify(exc) is None:
            raise
        raise backend.open_error(exc) from exc


def _migrate(
    backend: Backend,
    url: str,
    *,
    dry_run: bool,
    progress: Callable[[str, int, int], None] | None,
    options: dict[str, Any],
) -> schema.MigrationReport:
    from .open_store import open_store

    access = backend.schema()
    state = None if access is None else access.inspect()
    before = schema.version_of(state)
    report = schema.MigrationReport(
        url=backend.url, version_before=before, version_after=before, dry_run=dry_run
    )
    if access is None or before is None:
        # Nothing stored yet: open_store creates it at the current version.
        return report
    if state is not None and state.recorded is not None and before > schema.CURRENT_VERSION:
        raise schema.too_new(backend.url, before, state.recorded[1])
    for migration in schema.pending(before):
        if dry_run:
            outcome = "pending"
        else:
            outcome = _apply(access, migration)
            report.version_after = migration.version
        report.steps.append(
            schema.MigrationStep(
                version=migration.version,
                name=migration.name,
                description=migration.description,
                outcome=outcome,
                rebuild=migration.rebuild,
            )
        )
    if not dry_run:
        # Every read model is caught up, not only the ones rebuilt now: a replay that an
        # earlier run started and did not finish (a crash) is finished here too.
        with open_store(url, **options) as store:
            engine = store.projections
            for name in engine.names:
                applied = engine.catch_up(name, progress=progress)
                if applied:
                    report.rebuilt[name] = applied
    return report


def _apply(access: SchemaAccess, migration: schema.Migration) -> str:
    with access.locked() as cursor:
        for statement in schema.create_statements(access.prefix):
            cursor.execute(statement)
        current = _locked_version(cursor, access)
        if current >= migration.version:
            return "already applied"
        for statement in migration.statements(access):
            cursor.execute(statement)
        if migration.rewrite is not None:
            migration.rewrite(cursor, access)
        if migration.rebuild:
            _forget_positions(cursor, access, migration.rebuild)
        schema.record(cursor, access, migration.version, migration.name)
    return "applied"


def _locked_version(cursor: SchemaCursor, access: SchemaAccess) -> int:
    # Re-read under the lock: another process may have migrated meanwhile.
    recorded = schema.recorded_version(cursor, access.prefix)
    return schema.LEGACY_VERSION if recorded is None else recorded[0]


def _forget_positions(cursor: SchemaCursor, access: SchemaAccess, names: tuple[str, ...]) -> None:
    state = access.inspect()
    table = access.tracking_table.rsplit(".", 1)[-1]
    if state is None or table not in state.tables:
        return  # no read model was ever built here
    marks = ",".join([access.param] * len(names))
    cursor.execute(
        f"DELETE FROM {access.tracking_table} WHERE application_name IN ({marks})", names
    )


def check_version(backend: Backend, *, migrate_now: bool, url: str, options: Any) -> None:
    """Refuse a store whose schema differs from this code's, before anything is written;
    create the version record of a brand-new one."""
    access = backend.schema()
    if access is None:
        return
    state = access.inspect()
    version = schema.version_of(state)
    if version is None:
        with access.locked() as cursor:
            for statement in schema.create_statements(access.prefix):
                cursor.execute(statement)
            schema.record(cursor, access, schema.CURRENT_VERSION, "created")
        return
    if version > schema.CURRENT_VERSION:
        library = state.recorded[1] if state is not None and state.recorded else "unknown"
        raise schema.too_new(backend.url, version, library)
    if version < schema.CURRENT_VERSION:
        if not migrate_now:
            raise schema.outdated(backend.url, version)
        migrate(url, **options)
