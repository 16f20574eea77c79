"""What every ``smite`` command shares: ``--debug/--quiet/--verbose``, one-line failures with documented exit
codes, and never overwriting outputs silently."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from smite import exit_codes
from smite.errors import SmiteError

COMMON_FLAGS = (
    (("--debug",), "on failure, also print the traceback"),
    (("-q", "--quiet"), "print errors only: no progress, no result lines"),
    (("-v", "--verbose"), "also print third-party notices and warnings, one line each"),
)


def add_common_flags(parser: argparse.ArgumentParser, subparsers: argparse._SubParsersAction) -> None:
    """``--debug``, ``--quiet`` and ``--verbose`` before or after the command name (``smite --debug segment``
    and ``smite segment ... --debug``). A subcommand that has one of them already keeps its own."""
    for flags, text in COMMON_FLAGS:
        parser.add_argument(*flags, action="store_true", help=text)
    _add_to_commands(subparsers)


def _add_to_commands(subparsers: argparse._SubParsersAction) -> None:
    """The flags on every command and nested command (``smite submit segment ... --debug``)."""
    for sub in {id(p): p for p in subparsers.choices.values()}.values():
        for flags, text in COMMON_FLAGS:
            if not any(f in sub._option_string_actions for f in flags):
                # SUPPRESS: an absent flag after the command keeps the value given before it.
                sub.add_argument(*flags, action="store_true", default=argparse.SUPPRESS, help=text)
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_to_commands(action)


def run_command(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace,
                debug: bool = False) -> int:
    """Run a command: its return code, or for any failure one ``smite: error:`` line (plus the traceback
    with ``debug``) and the exit code of :mod:`smite.exit_codes`."""
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("smite: cancelled", file=sys.stderr)
        return exit_codes.CANCELLED
    except Exception as exc:  # the top of the command: every failure becomes one line and an exit code
        if debug:
            traceback.print_exc()
        if isinstance(exc, SmiteError) and exc.code == "cancelled":
            print(f"smite: {exc}", file=sys.stderr)
        else:
            print(f"smite: error: {exit_codes.one_line_message(exc)}", file=sys.stderr)
        return exit_codes.exit_code(exc)


def check_outputs(paths: Sequence[Path], overwrite: bool, skip_existing: bool = False) -> list[bool]:
    """Which outputs to write: all with ``overwrite``; the missing ones with ``skip_existing``; else all, but
    an existing one is an error naming the flags (outputs are never replaced silently)."""
    exists = [Path(p).exists() for p in paths]
    if overwrite:
        return [True] * len(paths)
    if skip_existing:
        return [not e for e in exists]
    if any(exists):
        first = next(p for p, e in zip(paths, exists) if e)
        count = sum(exists)
        raise SmiteError(f"{count} of {len(paths)} output file(s) exist already (first: {first}); pass --overwrite "
                         f"to replace them or --skip-existing to write only the missing ones", code="exists")
    return [True] * len(paths)
