"""Progress of long commands: a tqdm bar on a terminal, plain ``Progress: 42%`` lines otherwise.

Farm managers (Deadline, OpenCue, Tractor wrappers) parse ``Progress: N%`` from a job's log; a bar redrawn
with carriage returns is noise there. ``--quiet`` shows neither.
"""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    """``update(done, note)`` as work advances; ``close()`` (or ``with``) at the end."""

    def __init__(self, total: int, desc: str, unit: str, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.total, self.stream = max(int(total), 1), stream or sys.stderr
        self.done, self._percent, self._bar = 0, -1, None
        self.plain = not quiet and not _is_terminal(self.stream)
        if not quiet and not self.plain:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream)

    def update(self, done: int, note: str | None = None) -> None:
        """Set the amount done (absolute, not an increment) and an optional short note for the bar."""
        self.done = min(int(done), self.total)
        if self._bar is not None:
            self._bar.update(self.done - self._bar.n)
            if note:
                self._bar.set_postfix_str(note, refresh=False)
        elif self.plain:
            percent = 100 * self.done // self.total
            if percent != self._percent:  # one line per whole percent, never more
                self._percent = percent
                print(f"Progress: {percent}%", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False
