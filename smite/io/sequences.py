"""Frame lists and sequence patterns: the one parser every command uses (CLI learn/segment/eval, the daemon).

Frame lists, as Nuke writes them: ``1001-1100``, ``1001-1100x2`` (every 2nd frame), ``1001 1005 1010-1020``
or ``1001,1005,1010-1020`` (items separated by spaces and/or commas), negative frames (``-10--1``, ``-5-5``).
The result is sorted with repeats removed.

Sequence patterns hold one frame token in the file name (never in folder names):

==============  =====================  ================================================
token           frame 7 (frame -7)     from
==============  =====================  ================================================
``####``        ``0007`` (``-007``)    Nuke: one ``#`` per digit
``@@@@``        ``0007`` (``-007``)    RV, Katana, Shake: one ``@`` per digit
``%04d``        ``0007`` (``-007``)    printf (Nuke, Blender, ffmpeg); ``%d`` unpadded
``$F4``         ``0007`` (``-007``)    Houdini (also ``${F4}``); ``$F`` unpadded
==============  =====================  ================================================

Padding is a minimum, as in Nuke: ``####`` writes frame 12345 as ``12345``. A negative frame is formatted
like printf's ``%04d``: the sign counts in the width.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from smite.errors import SmiteError

# One frame token: printf (%d, %04d), a run of # or @ (one per digit), Houdini $F / $F4 / ${F4}.
_TOKEN = re.compile(r"%(?P<printf>0?\d*)d|(?P<hashes>#+)|(?P<ats>@+)|\$(?:F(?P<f>\d?)|\{F(?P<fb>\d?)\})")
_ITEM = re.compile(r"^(-?\d{1,12})(?:-(-?\d{1,12})(?:x(\d{1,12}))?)?$")
_SEPARATORS = re.compile(r"\s*,\s*|\s+")
# A trailing frame number; a minus is its sign only right after a '.' or '_' (plate-0042 is frame 42).
_TRAILING_NUMBER = re.compile(r"(?:(?<=[._])(-))?(\d+)$")
MAX_FRAMES = 1_000_000  # guards against "1-999999999" allocating a huge list by accident
FORMS = "'1001-1100', '1001-1100x2', '1001 1005 1010-1020' or '1001,1005'"


def _items(spec: str) -> Iterator[range]:
    """The ranges of a frame list, checked, without expanding them."""
    if not isinstance(spec, str) or not spec.strip():
        raise SmiteError(f"empty frame range {spec!r}; use e.g. {FORMS}")
    for item in _SEPARATORS.split(spec.strip()):
        yield _parse_item(item, spec)


def _parse_item(item: str, spec: str) -> range:
    """One item of a frame list: ``N``, ``A-B`` or ``A-BxS`` (A, B may be negative)."""
    match = _ITEM.match(item)
    if not match:
        raise SmiteError(f"bad frame range item {item!r} in {spec!r}; use e.g. {FORMS}")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    step = int(match.group(3)) if match.group(3) is not None else 1
    if last < first:
        raise SmiteError(f"frame range item {item!r} in {spec!r} ends before it starts")
    if step < 1:
        raise SmiteError(f"frame range item {item!r} in {spec!r} has a step below 1")
    frames = range(first, last + 1, step)
    if len(frames) > MAX_FRAMES:
        raise SmiteError(f"frame range {spec!r} has more than {MAX_FRAMES} frames")
    return frames


def count_frames(spec: str) -> int:
    """How many frames a frame list names, repeats counted, without expanding it (for size limits)."""
    return sum(len(r) for r in _items(spec))


def parse_frame_range(spec: str) -> list[int]:
    """Parse a frame list (see the module doc) into sorted unique frame numbers."""
    frames: set[int] = set()
    for item in _items(spec):
        frames.update(item)
        if len(frames) > MAX_FRAMES:
            raise SmiteError(f"frame range {spec!r} has more than {MAX_FRAMES} frames")
    return sorted(frames)


def format_frame_range(frames: list[int]) -> str:
    """The shortest plain list of runs (``1001-1003 1010``) that parses back to ``frames``."""
    runs: list[list[int]] = []
    for f in sorted(set(frames)):
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    return " ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def has_frame_token(pattern: str) -> bool:
    """Whether the file name of ``pattern`` holds a frame token (``####``, ``@``, ``%04d``, ``$F4``)."""
    return bool(_TOKEN.search(Path(pattern).name))


def expand_frames(pattern: str, frames: str | None = None) -> list[tuple[int, Path]]:
    """Expand a sequence pattern into ``(frame, path)`` pairs sorted by frame.

    ``pattern`` holds one frame token (see the module doc) or is a plain file path. With ``frames`` (a frame
    list) the paths are formatted without checking that they exist (output patterns use this too). Without
    ``frames`` the folder is searched for existing files matching the pattern; it is an error if none does.
    A plain path gives one pair whose frame is the number at the end of the file's stem (``ref.0042.png`` ->
    42), else 0.
    """
    path = Path(pattern).expanduser()
    found = list(_TOKEN.finditer(path.name))
    if len(found) > 1:
        raise SmiteError(f"{pattern} has {len(found)} frame tokens; use exactly one (####, @@@@, %04d or $F4)")
    if not found:
        if frames is not None:
            raise SmiteError(
                f"{pattern} has no frame token (####, @@@@, %04d or $F4) but frames {frames!r} were given"
            )
        return [(_frame_from_name(path), path)]
    prefix, suffix = path.name[: found[0].start()], path.name[found[0].end() :]
    padding = _padding(found[0])
    if frames is not None:
        return [(f, path.with_name(f"{prefix}{f:0{padding}d}{suffix}")) for f in parse_frame_range(frames)]
    return _glob_sequence(path.parent, prefix, suffix, padding, pattern)


def _padding(token: re.Match) -> int:
    """Minimum digit count of a token: ``####``/``@@@@``/``%04d``/``$F4`` -> 4, ``%d``/``$F`` -> 1."""
    if token.group("hashes") or token.group("ats"):
        return len(token.group(0))
    digits = token.group("printf") if token.group("printf") is not None else (token.group("f") or token.group("fb"))
    return int(digits) if digits else 1


def _frame_from_name(path: Path) -> int:
    """The number at the end of a file's stem (``plate.0042.exr`` -> 42, ``plate.-003`` -> -3), else 0."""
    match = _TRAILING_NUMBER.search(path.stem)
    if not match:
        return 0
    return -int(match.group(2)) if match.group(1) else int(match.group(2))


def _glob_sequence(folder: Path, prefix: str, suffix: str, padding: int, pattern: str) -> list[tuple[int, Path]]:
    """Existing files ``<prefix><frame><suffix>`` in ``folder`` whose digits are the frame formatted with the
    pattern's padding."""
    if not folder.is_dir():
        raise SmiteError(f"folder {folder} of {pattern} does not exist", code="not_found")
    name_re = re.compile(re.escape(prefix) + r"(-?\d+)" + re.escape(suffix) + "$")
    result = []
    for entry in folder.iterdir():
        match = name_re.match(entry.name)
        # "0012" is not frame 12 of a %d pattern, nor "012345" of ####: digits must be the formatted frame.
        if match and f"{int(match.group(1)):0{padding}d}" == match.group(1) and entry.is_file():
            result.append((int(match.group(1)), entry))
    if not result:
        raise SmiteError(f"no files match {pattern}", code="not_found")
    return sorted(result)
