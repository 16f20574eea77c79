"""The small interface the controller needs from a host application (Nuke, or a test double).

Methods marked *main* run only on the host's main thread (the controller calls them from its worker
threads through ``call_in_main``/``post``); the others may be called from any thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from smite_nuke.settings import NodeSettings


class Progress(Protocol):
    """A progress bar with a Cancel button."""

    def update(self, fraction: float, message: str) -> None: ...
    def cancelled(self) -> bool: ...
    def close(self) -> None: ...


class Host(Protocol):
    def read_settings(self) -> NodeSettings:
        """*main*: the knob values, the script path and the frame range."""

    def roto_parts(self) -> list[str]:
        """*main*: part names from the roto input's ``smite_<part>`` layers."""

    def roto_key_frames(self) -> list[int]:
        """*main*: the frames where the roto input's shapes have keys."""

    def plate_files(self, frames: list[int]) -> dict[int, str] | None:
        """*main*: the plate's own files when the plate input is an unmodified file reader, else None."""

    def render(self, source: str, frames: list[int], pattern: str) -> list[str]:
        """*main*: render input ``"plate"`` (RGB) or ``"roto"`` (all layers) to EXRs; returns the files."""

    def show_mattes(self, pattern: str, parts: list[str], first: int, last: int) -> None:
        """*main*: point the node's matte reader at ``pattern`` and copy the parts' layers into its output."""

    def set_knobs(self, values: dict[str, Any]) -> None:
        """*main*: set knob values (status, error, connection, model, parts, job...)."""

    def knob_value(self, name: str) -> Any:
        """*main*: one knob's value."""

    def add_roto_part(self, part: str) -> None:
        """*main*: create a roto node drawing into layer ``smite_<part>``, chained into the roto input."""

    def log(self, message: str, error: bool = False) -> None:
        """*main*: a line in the host's message log."""

    def progress(self, title: str) -> Progress:
        """Any thread: open a progress bar."""

    def call_in_main(self, fn: Callable, *args) -> Any:
        """From a worker thread: run ``fn(*args)`` on the main thread, wait, and return its result."""

    def post(self, fn: Callable, *args) -> None:
        """From a worker thread: run ``fn(*args)`` on the main thread later."""
