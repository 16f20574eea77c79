"""Frame numbers: file sequences (``####`` / ``%04d`` / a numbered file) and the Image node mapping.

Blender's image user maps a scene frame to a file frame as ``file = clamp(scene - frame_start + 1,
1, frame_duration) + frame_offset`` (hosts.md). A wrong mapping shows black silently, so it is computed
here, in one place, and tested.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%0?(\d*)d")
_LAST_DIGITS = re.compile(r"(\d+)(?!.*\d)")


class SequenceError(ValueError):
    """A sequence path or frame list that cannot be used (one sentence for the panel)."""


@dataclass(frozen=True)
class Sequence:
    """A numbered file sequence: ``head`` + zero-padded frame (``width`` digits) + ``tail``."""

    head: str
    width: int
    tail: str

    def path(self, frame: int) -> str:
        """The file of one frame."""
        return f"{self.head}{frame:0{self.width}d}{self.tail}"

    @property
    def pattern(self) -> str:
        """The ``####`` pattern of the sequence (what the daemon and the README use)."""
        return f"{self.head}{'#' * self.width}{self.tail}"

    def frames(self) -> list[int]:
        """Frame numbers of the files present, sorted (the folder is listed once)."""
        folder, head = os.path.split(self.head)
        try:
            names = os.listdir(folder or ".")
        except OSError:
            return []
        found = []
        for name in names:
            if name.startswith(head) and name.endswith(self.tail):
                digits = name[len(head):len(name) - len(self.tail)]
                if digits.isdigit() and len(digits) >= self.width:
                    found.append(int(digits))
        return sorted(found)


def parse_sequence(path: str) -> Sequence:
    """A sequence from ``x.####.exr``, ``x.%04d.exr`` or one numbered file ``x.1001.exr``."""
    folder, name = os.path.split(path)
    hashes, printf = list(_HASHES.finditer(name)), list(_PRINTF.finditer(name))
    if hashes:
        m = hashes[-1]
        return Sequence(os.path.join(folder, name[:m.start()]), len(m.group(0)), name[m.end():])
    if printf:
        m = printf[-1]
        return Sequence(os.path.join(folder, name[:m.start()]), int(m.group(1) or 1), name[m.end():])
    m = _LAST_DIGITS.search(name)
    if m is None:
        raise SequenceError(f"{path!r} has no frame number (use name.####.exr)")
    return Sequence(os.path.join(folder, name[:m.start()]), len(m.group(1)), name[m.end():])


@dataclass(frozen=True)
class FrameMap:
    """The Image node's ``frame_start``, ``frame_offset``, ``frame_duration``."""

    frame_start: int
    frame_offset: int
    frame_duration: int

    def file_frame(self, scene_frame: int) -> int:
        """The file frame Blender shows at a scene frame (held at both ends of the sequence)."""
        local = min(max(scene_frame - self.frame_start + 1, 1), self.frame_duration)
        return local + self.frame_offset

    def scene_frame(self, file_frame: int) -> int:
        """The scene frame that shows a file frame."""
        return file_frame - self.frame_offset + self.frame_start - 1

    def sub(self, first: int, last: int) -> FrameMap:
        """The mapping of files ``first..last`` shown at the same scene frames as under this one (mattes of a
        part of a plate line up with the plate)."""
        return FrameMap(self.scene_frame(first), first - 1, last - first + 1)


MAP_MODES = ("AUTO", "SAME", "SCENE_START")


def map_sequence(first: int, last: int, scene_start: int, scene_end: int, mode: str = "AUTO") -> FrameMap:
    """Map files ``first..last`` into a scene ``scene_start..scene_end``.

    ``SAME``: scene frame N shows file N (plates numbered like the scene). ``SCENE_START``: the first file
    at the scene's first frame (a 1001 plate in a scene at 1). ``AUTO``: SAME when the two ranges overlap,
    else SCENE_START.
    """
    if last < first:
        raise SequenceError(f"empty frame range {first}-{last}")
    if mode == "AUTO":
        mode = "SAME" if first <= scene_end and last >= scene_start else "SCENE_START"
    if mode not in MAP_MODES:
        raise SequenceError(f"unknown frame mapping {mode!r}; use one of {', '.join(MAP_MODES)}")
    start = first if mode == "SAME" else scene_start
    return FrameMap(frame_start=start, frame_offset=first - 1, frame_duration=last - first + 1)


def parse_frames(text: str) -> list[int]:
    """``"1,5,10-12"`` -> ``[1, 5, 10, 11, 12]`` (sorted, unique)."""
    frames: set[int] = set()
    for item in filter(None, (s.strip() for s in text.replace(" ", ",").split(","))):
        m = re.fullmatch(r"(-?\d+)(?:-(-?\d+))?", item)
        if m is None:
            raise SequenceError(f"frame list {text!r}: {item!r} is not a frame or a range like 1001-1010")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if b < a:
            raise SequenceError(f"frame list {text!r}: range {item!r} runs backwards")
        frames.update(range(a, b + 1))
    return sorted(frames)


def format_frames(frames: list[int]) -> str:
    """``[1, 5, 10, 11, 12]`` -> ``"1,5,10-12"``."""
    out, run = [], []
    for f in sorted(set(frames)):
        if run and f != run[-1] + 1:
            out.append(_run(run))
            run = []
        run.append(f)
    if run:
        out.append(_run(run))
    return ",".join(out)


def _run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"
