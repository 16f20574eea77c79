"""Which frames a farm chunk owns, which it must segment, and which are already done.

A shot (``--range``) is split by the farm into chunks (``--chunk``). A chunk *owns* its frames: it is the only
one that writes them. Seams must not show, so a chunk runs the **shot's own windows** (``smite.video.windows``
planned over the whole range): the windows that write its frames, and before them the windows whose maps carry
into them (overlapping windows) as far back as the ``context`` frames before its first frame. Each window then
sees the frames and draws the noise it does in a whole-shot run; only the chain of carried maps is cut, at the
first window the chunk runs (which starts from its own maps instead of its predecessor's). Mattes of frames it
does not own are thrown away. Frames whose matte already exists and is complete are not redone, so a re-queued
task resumes: the span shrinks to the windows of the missing frames. Context is counted in frames of the range
(``1001-1100x2`` steps by 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smite.errors import SmiteError
from smite.io.images import read_mattes_exr
from smite.io.sequences import parse_frame_range
from smite.video.windows import plan_windows


@dataclass(frozen=True)
class ChunkPlan:
    """``owned``: frames this chunk writes; ``todo``: owned frames still missing; ``span``: the contiguous run
    of range frames to segment (the shot's windows around ``todo``, empty when nothing is to do), which starts
    at index ``offset`` of the range."""

    owned: tuple[int, ...]
    todo: tuple[int, ...]
    span: tuple[int, ...]
    offset: int = 0

    @property
    def done(self) -> tuple[int, ...]:
        """Owned frames that are already complete."""
        missing = set(self.todo)
        return tuple(f for f in self.owned if f not in missing)


def frames_spec(frames: Sequence[int]) -> str:
    """A frame-range spec for ``frames`` (comma list; runs written ``a-b``): what the daemon's sequence takes."""
    runs: list[list[int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)


def owned_frames(shot: Sequence[int], chunk: str | None) -> tuple[int, ...]:
    """The frames of ``chunk`` (a range spec; None: the whole shot), checked to lie in the shot."""
    if chunk is None:
        return tuple(shot)
    owned = parse_frame_range(chunk)
    outside = sorted(set(owned) - set(shot))
    if outside:
        raise SmiteError(f"--chunk {chunk} has frames outside --range ({frames_spec(outside)})")
    return tuple(owned)


def plan_chunk(
    shot: Sequence[int], owned: Sequence[int], context: int, done: set[int], window: int, overlap: int,
) -> ChunkPlan:
    """The plan of a chunk: ``todo`` = owned minus ``done``; ``span`` = the windows of the shot (``window``
    frames, ``overlap`` shared) that write a frame to do, and before them each window that carries maps into
    them and still holds a frame of the ``context`` range frames before the first frame to do. Segmented
    alone, the span is planned into exactly those windows (``smite.video.windows.plan_windows``)."""
    if context < 0:
        raise SmiteError(f"--context must be 0 or more frames, got {context}")
    todo = tuple(f for f in owned if f not in done)
    if not todo:
        return ChunkPlan(tuple(owned), (), ())
    index = {f: i for i, f in enumerate(shot)}
    windows = plan_windows(len(shot), window, overlap)

    def writer(frame: int) -> int:
        return next(k for k, w in enumerate(windows) if index[frame] < w.start + w.write)

    first, last, low = writer(todo[0]), writer(todo[-1]), index[todo[0]] - context
    while first > 0 and windows[first - 1].carry and windows[first - 1].end > low:
        first -= 1
    start, end = windows[first].start, windows[last].end
    return ChunkPlan(tuple(owned), todo, tuple(shot[start:end]), start)


def matte_complete(path: Path, part_names: Sequence[str], frame: int) -> bool:
    """Whether ``path`` is a whole matte EXR of this part model's parts for ``frame`` (a truncated or foreign
    file is not: it is redone)."""
    if not path.is_file():
        return False
    try:
        matte = read_mattes_exr(path)
    except SmiteError:
        return False
    return matte.part_names == list(part_names) and matte.metadata.get("frame", frame) == frame


def sweep_temps(paths: Sequence[Path]) -> int:
    """Delete temp files a killed writer left next to ``paths`` (``atomic_path`` names them
    ``.<stem>.<random>.tmp<suffix>``); returns how many went. Only the chunk that owns a frame writes it."""
    removed = 0
    for path in paths:
        if path.parent.is_dir():
            for stale in path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"):
                stale.unlink(missing_ok=True)
                removed += 1
    return removed
