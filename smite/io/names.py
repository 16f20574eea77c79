"""Part names that survive Nuke's and Blender's EXR layer naming (see hosts.md).

Nuke splits channel names on ``.``, strips leading digits, maps other characters to ``_`` and reserves
built-in layer names; so every part name becomes ``[a-z0-9_]``, starts with a letter and is unique.
"""

import re

from smite.errors import SmiteError

# Nuke's built-in layers: a part named like one of them would collide in the channel list.
NUKE_RESERVED_LAYERS = frozenset(
    {"rgb", "rgba", "alpha", "depth", "motion", "forward", "backward", "mask", "none", "all", "deep"}
)


def sanitize_part_name(name: str) -> str:
    """Map a free-form part name to a host-safe layer suffix, e.g. ``"Left Eye!"`` -> ``"left_eye"``."""
    if not isinstance(name, str):
        raise SmiteError(f"part name {name!r} is not a string")
    cleaned = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
    cleaned = re.sub(r"_+", "_", cleaned)
    if not cleaned:
        raise SmiteError(f"part name {name!r} has no letters or digits")
    if cleaned[0].isdigit():
        cleaned = "p" + cleaned
    if cleaned in NUKE_RESERVED_LAYERS:
        cleaned = cleaned + "_part"
    return cleaned


def sanitize_part_names(names: list[str]) -> list[str]:
    """Sanitise an ordered list of part names; fail if two names collide after sanitising."""
    if not names:
        raise SmiteError("no part names given")
    cleaned = [sanitize_part_name(n) for n in names]
    seen: dict[str, str] = {}
    for raw, clean in zip(names, cleaned):
        if clean in seen:
            raise SmiteError(
                f"part names {seen[clean]!r} and {raw!r} both become {clean!r} as EXR layer names; rename one"
            )
        seen[clean] = raw
    return cleaned
