"""Overlapping windows over a shot (method.md §6.1, §6.2d), for any shot length.

Windows of ``window`` frames start every ``window - overlap`` frames; the last one is shifted back to end
on the last frame (so it may overlap more). A shot shorter than a window is one window. Each window
writes the frames up to the next window's start; the frames it shares with the next window are written
by that window, which receives this window's final maps for them (``carry``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smite.errors import SmiteError

PRESET_WINDOWS = {"fast": (16, 0), "quality": (16, 8)}  # (window, overlap) of each preset


@dataclass(frozen=True)
class Window:
    """Frames [start, end) of the shot; the first ``write`` are output by this window, the last ``carry``
    are handed to the next window (0 for the last window)."""

    start: int
    end: int
    write: int
    carry: int

    @property
    def length(self) -> int:
        return self.end - self.start


def check_window(window: int, overlap: int) -> None:
    """One-line errors for impossible window options."""
    if window < 1:
        raise SmiteError(f"--window must be at least 1 frame, got {window}")
    if not 0 <= overlap < window:
        raise SmiteError(f"--overlap must be in [0, window) = [0, {window}), got {overlap}")


def preset_windows(preset: str, window: int | None = None, overlap: int | None = None) -> tuple[int, int]:
    """(window, overlap) of ``preset`` with ``window``/``overlap`` overriding it; a window shorter than the
    preset's overlap gets the largest overlap it can hold."""
    if preset not in PRESET_WINDOWS:
        raise SmiteError(f"unknown preset {preset!r}: use one of {', '.join(PRESET_WINDOWS)}")
    default_window, default_overlap = PRESET_WINDOWS[preset]
    window = default_window if window is None else window
    return window, (min(default_overlap, window // 2) if overlap is None else overlap)


def window_seed(seed: int, start: int) -> int:
    """The noise seed of the window that starts at frame ``start`` of the shot. Keyed by the shot position, not
    by the order windows run in, so a farm chunk that runs some of a shot's windows draws the same noise in them
    as the whole-shot run."""
    return int(np.random.SeedSequence([seed, start]).generate_state(1)[0])


def plan_windows(num_frames: int, window: int = 16, overlap: int = 8) -> list[Window]:
    """The windows covering ``num_frames`` frames (§6.1). Every frame is written by exactly one window.

    Examples (window 16, overlap 8): 100 frames -> [0,16) [8,24) ... [80,96) [84,100); 10 frames -> [0,10).
    """
    check_window(window, overlap)
    if num_frames < 1:
        raise SmiteError("the shot has no frames")
    spans, start = [], 0
    while True:
        end = start + window
        if end >= num_frames:
            spans.append((max(0, num_frames - window), num_frames))
            break
        spans.append((start, end))
        start = end - overlap
    windows = []
    for k, (a, b) in enumerate(spans):
        nxt = spans[k + 1][0] if k + 1 < len(spans) else b
        windows.append(Window(a, b, write=nxt - a, carry=b - nxt))
    return windows
