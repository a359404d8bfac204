"""The ``regpeek`` command: a click group, and one handler turning errors into exit codes.

Exit codes: 0 ok, 1 internal error, 2 usage, 3 not found, 4 auth refused, 5 verification failed,
6 registry unreachable or failing, 7 a local file or program failed, 130 interrupted (Ctrl-C),
143 terminated (SIGTERM, handled like Ctrl-C: what the command was writing is removed). An error is
one line on stderr; ``--debug`` adds the traceback and request logs. Known secrets are scrubbed from
anything printed, and terminal controls in it (from registry data) are shown as escapes
(``regpeek.formats.terminal``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from types import FrameType

import click

from regpeek._version import __version__
from regpeek.cli.help import examples
from regpeek.cli.output import configure_streams
from regpeek.cli.scrub import enable_debug_logging, scrub
from regpeek.errors import RegpeekError, exit_code_for
from regpeek.formats.terminal import safe_text

# Each command and the module that defines it, imported only when that command runs (or for --help),
# so that ``regpeek digest`` does not pay for tar, zstd, rich tables and the async client.
COMMANDS = {
    "inspect": ("regpeek.cli.inspect", "inspect_command"),
    "manifest": ("regpeek.cli.raw", "manifest_command"),
    "config": ("regpeek.cli.raw", "config_command"),
    "digest": ("regpeek.cli.raw", "digest_command"),
    "tags": ("regpeek.cli.tags", "tags_command"),
    "pull": ("regpeek.cli.pull", "pull_command"),
    "copy": ("regpeek.cli.copy", "copy_command"),
    "push": ("regpeek.cli.copy", "push_command"),
    "unpack": ("regpeek.cli.unpack", "unpack_command"),
    "export": ("regpeek.cli.unpack", "export_command"),
    "sif": ("regpeek.cli.sif", "sif_command"),
    "diff": ("regpeek.cli.diff", "diff_command"),
    "tree": ("regpeek.cli.tree", "tree_command"),
    "referrers": ("regpeek.cli.lookups", "referrers_command"),
    "catalog": ("regpeek.cli.catalog", "catalog_command"),
    "ratelimit": ("regpeek.cli.lookups", "ratelimit_command"),
    "cache": ("regpeek.cli.cache", "cache_group"),
    "login": ("regpeek.cli.login", "login_command"),
    "logout": ("regpeek.cli.login", "logout_command"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        command = getattr(importlib.import_module(where[0]), where[1])
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=examples(
        "regpeek inspect alpine:3.20",
        "regpeek pull --platform linux/arm64 alpine:3.20 ./layout",
        "regpeek login ghcr.io -u octocat --password-stdin < token.txt",
    ),
)
@click.version_option(__version__, "--version", prog_name="regpeek", message="%(prog)s %(version)s")
def cli() -> None:
    """Read container images straight from Docker/OCI registries.

    REF is an image reference such as ubuntu, ghcr.io/org/app:1.2 or
    localhost:5000/app@sha256:... (Docker Hub is the default registry).
    Shell completion: eval "$(_REGPEEK_COMPLETE=bash_source regpeek)" (zsh_source, fish_source).
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: every cleanup that runs for Ctrl-C runs for it too."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Handle SIGTERM like SIGINT while a command runs (main thread only; restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _local_message(error: OSError) -> str:
    """An OSError nobody turned into a LocalError: its path and the system's reason."""
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    configure_streams()
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        enable_debug_logging()
    try:
        with _sigterm_as_interrupt():
            cli.main(args=args, prog_name="regpeek", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except SystemExit as done:  # a command's own status (diff's 1, the worst code of a batch)
        return done.code if isinstance(done.code, int) else 1
    except (click.Abort, KeyboardInterrupt) as stop:  # click turns Ctrl-C (and SIGTERM) into Abort
        if isinstance(stop, Terminated) or isinstance(stop.__context__, Terminated):
            click.echo("regpeek: terminated", err=True)
            return 143
        click.echo("regpeek: interrupted", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return 2 if isinstance(error, click.UsageError) else error.exit_code
    except BrokenPipeError:
        return 0
    except Exception as error:  # one line on stderr, the traceback only with --debug
        if debug:
            click.echo(safe_text(scrub(traceback.format_exc()), newlines=True), err=True, nl=False)
        if isinstance(error, OSError):  # a local file problem no command named: still not a bug
            click.echo(safe_text(scrub(f"regpeek: error: {_local_message(error)}")), err=True)
            return 7
        label = "error" if isinstance(error, RegpeekError) else "internal error"
        message = str(error) or type(error).__name__
        click.echo(safe_text(scrub(f"regpeek: {label}: {message}")), err=True)
        return exit_code_for(error)
    return 0


def run() -> None:
    """Console-script entry point.

    Exits with ``os._exit`` once output is flushed: tearing down the interpreter's modules costs more
    than a tenth of a second here and does nothing for a finished command (files are closed by then,
    threads joined).
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(code)
