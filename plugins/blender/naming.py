"""Part names that survive Nuke's and Blender's EXR layer naming (the rule of ``smite.io.names``).

The add-on cannot import the engine package, so the rule is repeated here; a test keeps both equal.
"""

from __future__ import annotations

import re

RESERVED = frozenset({"rgb", "rgba", "alpha", "depth", "motion", "forward", "backward", "mask", "none", "all", "deep"})


class NamingError(ValueError):
    """A part name that cannot become an EXR layer name (one sentence for the panel)."""


def sanitize_part_name(name: str) -> str:
    """``"Left Eye!"`` -> ``"left_eye"``: ``[a-z0-9_]``, starting with a letter, not a Nuke built-in layer."""
    cleaned = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_"))
    if not cleaned:
        raise NamingError(f"part name {name!r} has no letters or digits")
    if cleaned[0].isdigit():
        cleaned = "p" + cleaned
    return cleaned + "_part" if cleaned in RESERVED else cleaned


def sanitize_part_names(names: list[str]) -> list[str]:
    """Sanitise names in order; fail when two collide after sanitising."""
    if not names:
        raise NamingError("no parts: add one mask layer per part (layer name = part name)")
    seen: dict[str, str] = {}
    for raw in names:
        clean = sanitize_part_name(raw)
        if clean in seen:
            raise NamingError(f"parts {seen[clean]!r} and {raw!r} both become {clean!r}; rename one")
        seen[clean] = raw
    return list(seen)


def socket_name(part: str) -> str:
    """The Image node output of a part: the EXR layer ``smite_<part>`` (channel ``.A``)."""
    return f"smite_{part}"
