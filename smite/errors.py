"""The one exception type for user mistakes and bad input.

Anything raised as :class:`SmiteError` is shown to the user as a single line (CLI, daemon replies,
plugins); anything else is a bug and keeps its traceback.
"""


class SmiteError(Exception):
    """A user-facing error with a one-line, actionable message."""

    def __init__(self, message: str, code: str = "bad_input") -> None:
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return " ".join(str(self.args[0]).split())


class Cancelled(SmiteError):
    """Raised when a cancel hook asks a long operation to stop."""

    def __init__(self, what: str = "operation") -> None:
        super().__init__(f"{what} cancelled", code="cancelled")

