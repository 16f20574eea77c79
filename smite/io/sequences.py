"""Frame-sequence patterns (``plate.%04d.exr``, ``plate.####.exr``) and frame-range specs (``1-24x2,30``).

Placeholders are recognised in the file name only (not in folder names). A placeholder's padding is the
minimum number of digits, as in Nuke: ``####`` writes frame 7 as ``0007`` and frame 12345 as ``12345``.
Frame numbers are non-negative integers.
"""

import re
from pathlib import Path

from smite.errors import SmiteError

# One frame placeholder: printf style (%d, %04d) or a run of hashes (#### = 4 digits).
_PLACEHOLDER = re.compile(r"%(0?\d*)d|#+")
_RANGE_ITEM = re.compile(r"^(\d+)(?:-(\d+)(?:x(\d+))?)?$")
_TRAILING_NUMBER = re.compile(r"(\d+)$")
MAX_FRAMES = 1_000_000  # guards against "1-999999999" allocating a huge list by accident


def parse_frame_range(spec: str) -> list[int]:
    """Parse ``"1-24"``, ``"1-24x2"``, ``"1,5,9"`` or ``"1-10,20"`` into sorted unique frame numbers."""
    if not isinstance(spec, str) or not spec.strip():
        raise SmiteError(f"empty frame range {spec!r}; use e.g. '1-24', '1-24x2' or '1,5,9'")
    frames: set[int] = set()
    for item in spec.replace(" ", "").split(","):
        frames.update(_parse_range_item(item, spec))
        if len(frames) > MAX_FRAMES:
            raise SmiteError(f"frame range {spec!r} has more than {MAX_FRAMES} frames")
    return sorted(frames)


def _parse_range_item(item: str, spec: str) -> range:
    """One comma-separated item of a frame range: ``N``, ``A-B`` or ``A-BxS``."""
    match = _RANGE_ITEM.match(item)
    if not match:
        raise SmiteError(f"bad frame range item {item!r} in {spec!r}; use e.g. '1-24', '1-24x2' or '1,5,9'")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    step = int(match.group(3)) if match.group(3) is not None else 1
    if last < first:
        raise SmiteError(f"frame range item {item!r} in {spec!r} ends before it starts")
    if step < 1:
        raise SmiteError(f"frame range item {item!r} in {spec!r} has a step below 1")
    if (last - first) // step + 1 > MAX_FRAMES:
        raise SmiteError(f"frame range {spec!r} has more than {MAX_FRAMES} frames")
    return range(first, last + 1, step)


def expand_frames(pattern: str, frames: str | None = None) -> list[tuple[int, Path]]:
    """Expand a sequence pattern into ``(frame, path)`` pairs sorted by frame.

    ``pattern`` is ``plate.%04d.exr``, ``plate.####.exr`` (padding = number of ``#``) or a plain file path.
    With ``frames`` (see :func:`parse_frame_range`) the paths are formatted without checking that they exist
    (output patterns use this too). Without ``frames`` the folder is searched for existing files matching the
    pattern; it is an error if none does. A plain path gives one pair whose frame is the number at the end
    of the file's stem (``ref.0042.png`` -> 42), else 0.
    """
    path = Path(pattern).expanduser()
    found = list(_PLACEHOLDER.finditer(path.name))
    if len(found) > 1:
        raise SmiteError(f"{pattern} has {len(found)} frame placeholders; use exactly one (#### or %04d)")
    if not found:
        if frames is not None:
            raise SmiteError(
                f"{pattern} has no frame placeholder (#### or %04d) but frames {frames!r} were given"
            )
        return [(_frame_from_name(path), path)]
    prefix, suffix = path.name[: found[0].start()], path.name[found[0].end() :]
    padding = _padding(found[0].group(0))
    if frames is not None:
        names = {f: f"{prefix}{f:0{padding}d}{suffix}" for f in parse_frame_range(frames)}
        return [(f, path.with_name(name)) for f, name in names.items()]
    return _glob_sequence(path.parent, prefix, suffix, padding, pattern)


def _padding(placeholder: str) -> int:
    """Minimum digit count of a placeholder: ``####`` -> 4, ``%04d`` -> 4, ``%d`` -> 1."""
    if placeholder.startswith("#"):
        return len(placeholder)
    digits = placeholder[1:-1]
    return int(digits) if digits else 1


def _frame_from_name(path: Path) -> int:
    """The number at the end of a file's stem (``plate.0042.exr`` -> 42), or 0 when there is none."""
    match = _TRAILING_NUMBER.search(path.stem)
    return int(match.group(1)) if match else 0


def _glob_sequence(
    folder: Path, prefix: str, suffix: str, padding: int, pattern: str
) -> list[tuple[int, Path]]:
    """Existing files ``<prefix><frame><suffix>`` in ``folder`` whose digits match the pattern's padding."""
    if not folder.is_dir():
        raise SmiteError(f"folder {folder} of {pattern} does not exist")
    name_re = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
    result = []
    for entry in folder.iterdir():
        match = name_re.match(entry.name)
        # "0012" is not frame 12 of a %d pattern, nor "012345" of ####: digits must be the formatted frame.
        if match and f"{int(match.group(1)):0{padding}d}" == match.group(1) and entry.is_file():
            result.append((int(match.group(1)), entry))
    if not result:
        raise SmiteError(f"no files match {pattern}")
    return sorted(result)
