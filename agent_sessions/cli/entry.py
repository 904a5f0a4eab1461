"""The ``agent-sessions`` group and ``main``, where every command's failures end.

The group turns whatever a command raises into an exit code and at most one line on
stderr, inside click's own run, so that ``main``, the console script and click's test
runner all see the same behaviour:

* an ``AgentSessionsError``: ``[code] message (hint)``; exit 2 for ``storage_*`` codes,
  else 1 (``failures.py``);
* a usage error (an unknown option, a bad value): the message and where help is; exit
  1, not click's 2, which here means a storage failure;
* stdout closed by its reader (``| head``): nothing more, exit 0: the reader had all it
  wanted;
* Ctrl-C: 130.

Anything else is a bug, and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
from click.exceptions import Exit, NoArgsIsHelpError

from .._version import __version__
from ..domain.errors import AgentSessionsError
from .conventions import STORE_HELP
from .demo import demo
from .event_commands import events, tail
from .failures import INTERRUPTED, OK, USER_ERROR, error_message, exit_code, one_line
from .output import note, silence_stdout
from .replay_commands import fork, replay
from .session_commands import sessions, show
from .store_commands import migrate_command, projections
from .transfer_commands import export, import_group
from .upkeep_commands import doctor, maintain
from .usage_commands import cost, stats, usage

PROG = "agent-sessions"


@contextmanager
def _conventions() -> Iterator[None]:
    """Failures to exit codes (see the module docstring), raised as click's ``Exit``,
    which click turns into the process's exit code, or ``main``'s return value."""
    try:
        yield
    except Exit:
        raise
    except NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help() if error.ctx is not None else "")
        raise Exit(OK) from None
    except AgentSessionsError as error:
        note(f"{PROG}: {error_message(error)}")
        raise Exit(exit_code(error)) from None
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx is not None else PROG
        note(f"{where}: {one_line(error.format_message())} (see `{where} --help`)")
        raise Exit(USER_ERROR) from None
    except click.ClickException as error:
        note(f"{PROG}: {one_line(error.format_message())}")
        raise Exit(USER_ERROR) from None
    except BrokenPipeError:
        silence_stdout()
        raise Exit(OK) from None
    except (KeyboardInterrupt, click.Abort):
        raise Exit(INTERRUPTED) from None


class _Group(click.Group):
    """Parsing (``make_context``) and running (``invoke``, which also parses the
    subcommand's arguments) both under :func:`_conventions`."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _conventions():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _conventions():
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """In the order they were added (a user's path through them), not sorted."""
        return list(self.commands)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--store", "--url", "store_url", metavar="URL", default=None, help=STORE_HELP)
@click.version_option(__version__, "--version", prog_name=PROG, message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, store_url: str | None) -> None:
    """Record, inspect and replay the history of AI agent sessions.

    Every command takes --store URL (before or after the command's name); commands that
    print data take --json. Exit codes: 0 done, 1 something to fix in the command or
    its input (the message says what), 2 the storage failed.
    """
    ctx.obj = {"store_url": store_url}


for _command in (
    import_group,
    export,
    sessions,
    show,
    events,
    tail,
    replay,
    fork,
    stats,
    usage,
    cost,
    maintain,
    doctor,
    projections,
    migrate_command,
    demo,
):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    try:
        result = cli.main(
            args=None if argv is None else list(argv), prog_name=PROG, standalone_mode=False
        )
        sys.stdout.flush()  # what is still buffered may meet a closed pipe too
    except BrokenPipeError:
        silence_stdout()
        return OK
    return result if isinstance(result, int) else OK
