"""Exit codes of the ``smite`` commands and the one-line message of any failure.

Farm managers and wrapper scripts act on the code alone: 2 is the request's fault (do not retry), 3 something
named does not exist (a plate, a part model, the weights), 75 a temporary failure that a retry may fix (out of
memory, daemon down or busy, full disk; 75 is ``EX_TEMPFAIL`` of sysexits.h), 130 cancelled (Ctrl-C, as a
shell reports SIGINT), 1 a bug in smite (``--debug`` shows its traceback).
"""

from __future__ import annotations

import errno

OK, INTERNAL, BAD_INPUT, NOT_FOUND, TEMPORARY, CANCELLED = 0, 1, 2, 3, 75, 130
MEANING = {
    OK: "done",
    INTERNAL: "internal error (a bug: run again with --debug and report the traceback)",
    BAD_INPUT: "bad input or usage: fix the command, do not retry",
    NOT_FOUND: "not found: a plate, mask, part model, stored model or the backbone weights",
    TEMPORARY: "temporary failure, retry later or elsewhere: out of memory, daemon down or busy, disk full",
    CANCELLED: "cancelled (Ctrl-C or a cancel request)",
}
# SmiteError / daemon error codes by exit code; any other code is bad input.
NOT_FOUND_CODES = frozenset({"not_found", "model_missing"})
TEMPORARY_CODES = frozenset({"out_of_memory", "timeout", "busy", "queue_full", "shutting_down", "unavailable",
                             "daemon_down", "network", "disk_full", "io_error", "overloaded"})
_TEMPORARY_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT,
                               errno.ECONNREFUSED, errno.EIO})


def code_for_error_code(code: str | None) -> int:
    """The exit code of an error code carried by ``SmiteError.code`` or a daemon reply."""
    if code == "cancelled":
        return CANCELLED
    if code == "internal":  # the daemon's own bug
        return INTERNAL
    if code in NOT_FOUND_CODES:
        return NOT_FOUND
    if code in TEMPORARY_CODES:
        return TEMPORARY
    return BAD_INPUT


def is_out_of_memory(exc: BaseException) -> bool:
    """CPU or GPU out of memory (torch's OutOfMemoryError, or a RuntimeError saying so)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def exit_code(exc: BaseException) -> int:
    """The documented exit code of any exception reaching the top of a command."""
    from smite.errors import SmiteError

    if isinstance(exc, KeyboardInterrupt):
        return CANCELLED
    code = getattr(exc, "code", None)
    if isinstance(exc, SmiteError) or (type(exc).__name__ in ("DaemonError", "DaemonTimeout") and code):
        return code_for_error_code(code)
    if is_out_of_memory(exc):
        return TEMPORARY
    if isinstance(exc, FileNotFoundError):
        return NOT_FOUND
    if isinstance(exc, OSError):
        return TEMPORARY if exc.errno in _TEMPORARY_ERRNOS else BAD_INPUT
    return INTERNAL


def one_line_message(exc: BaseException) -> str:
    """What to print after ``smite: error:`` (one line, no traceback)."""
    from smite.errors import SmiteError

    if isinstance(exc, SmiteError):
        return str(exc)
    if is_out_of_memory(exc):
        return ("out of memory; try --preset fast, a smaller --window, --precision fp16, or free the GPU "
                f"({_first_line(exc)})")
    if isinstance(exc, OSError) or type(exc).__name__ in ("DaemonError", "DaemonTimeout"):
        return _first_line(exc)
    return f"internal error: {type(exc).__name__}: {_first_line(exc)} (run again with --debug for the traceback)"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def exit_code_table() -> str:
    """The codes as a Markdown table (the README's copy is checked against it)."""
    rows = ["| exit code | meaning |", "|---|---|"]
    return "\n".join(rows + [f"| {code} | {text} |" for code, text in MEANING.items()])
