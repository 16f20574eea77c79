"""What the SMITE node's knobs say, as plain Python: frame lists, part names, file patterns.

Host-independent and standard-library only (this runs inside Nuke's Python).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

LAYER_PREFIX = "smite_"
LABEL_LAYER = "smite_label"
# Nuke built-in layer names a part must not shadow (hosts.md): `smite_` makes a clash impossible, but the
# part names themselves are also used as Blender sockets and model part names, so keep them clean.
RESERVED = frozenset({"background", "label", "rgba", "rgb", "alpha", "depth", "motion", "forward", "backward",
                      "mask", "none", "all"})
_PART = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PADDING = re.compile(r"#+|%0?(\d*)d")
PRESETS = ("fast", "quality")
TRACKERS = ("flow", "cotracker")
EDGES = ("refined", "bilinear")  # refined (the default): mattes re-solved on the plate


class NodeError(Exception):
    """A mistake in the node's settings or inputs: its message is one sentence for the artist."""


@dataclass
class NodeSettings:
    """The knob values one Learn/Segment run uses (read once, on the main thread)."""

    node: str
    address: str
    model: str = ""
    parts: list[str] = field(default_factory=list)
    ref_frames: list[int] = field(default_factory=list)
    preset: str = "fast"
    tracker: str = "flow"
    edges: str = "refined"
    cryptomatte: bool = False
    output_folder: str = ""
    first: int = 1
    last: int = 1
    learn_steps: int = 0  # 0: the daemon's default for its backbone
    window: int = 0  # 0: the preset's default
    learn_options: dict = field(default_factory=dict)  # TD: extra learning settings for the daemon (JSON knob)
    timeout: float = 10.0
    server_key: str = ""  # CURVE: the daemon's public key file (remote daemons)
    client_key: str = ""  # CURVE: this artist's .key_secret file
    script: str = ""  # the saved .nk script ('' while unsaved)

    @property
    def frames(self) -> list[int]:
        return list(range(self.first, self.last + 1))


def parse_frames(text: str) -> list[int]:
    """``"1001, 1040 1050-1052"`` -> [1001, 1040, 1050, 1051, 1052] (sorted, unique)."""
    frames: set[int] = set()
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        match = re.fullmatch(r"(-?\d+)(?:-(-?\d+))?", item)
        if match is None:
            raise NodeError(f"reference frames: '{item}' is not a frame number or a range like 1001-1005.")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first or last - first > 10000:
            raise NodeError(f"reference frames: '{item}' is not a valid range.")
        frames.update(range(first, last + 1))
    return sorted(frames)


def format_frames(frames: list[int]) -> str:
    return ",".join(str(f) for f in sorted(set(frames)))


def check_part(name: str) -> str:
    """A part name usable as a layer (``smite_<part>``) in Nuke and Blender, or NodeError."""
    if not _PART.match(name) or name in RESERVED:
        raise NodeError(f"part name '{name}' must be lower-case letters, digits and _, not start with a digit, "
                        "and not be a reserved name such as background or label.")
    return name


def parse_parts(text: str) -> list[str]:
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    if len(set(parts)) != len(parts):
        raise NodeError("each part must be named once.")
    return [check_part(p) for p in parts]


def parts_from_channels(channels: list[str]) -> list[str]:
    """Part names from a stream's channels: the layers ``smite_<part>`` (not ``smite_label``), in order."""
    parts: list[str] = []
    for channel in channels:
        layer = channel.split(".")[0]
        part = layer[len(LAYER_PREFIX):]
        if layer.startswith(LAYER_PREFIX) and layer != LABEL_LAYER and part != "background" and part not in parts:
            parts.append(part)
    return parts


def model_name(settings: NodeSettings) -> str:
    """The store name to learn into: the model knob, else ``<script>_<node>``."""
    name = settings.model.strip()
    if name.endswith(".smite"):
        name = os.path.splitext(os.path.basename(name))[0]
    if not name:
        stem = os.path.splitext(os.path.basename(settings.script))[0] if settings.script else "untitled"
        name = f"{stem}_{settings.node}"
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64]
    if not _MODEL_NAME.match(name):
        raise NodeError(f"part model name '{name}' must start with a letter or digit (A-Z a-z 0-9 _ . -).")
    return name


def output_folder(settings: NodeSettings) -> str:
    """Where this node's files go: the knob, else ``<script folder>/smite/<script stem>``; never a temp dir."""
    folder = settings.output_folder.strip()
    if not folder:
        if not settings.script:
            raise NodeError("save the script first (SMITE writes its files next to it) or set the output folder.")
        stem = os.path.splitext(os.path.basename(settings.script))[0]
        folder = os.path.join(os.path.dirname(os.path.abspath(settings.script)), "smite", stem)
    if not os.path.isabs(folder):
        raise NodeError(f"output folder '{folder}' must be an absolute path.")
    return os.path.normpath(folder)


def frame_path(pattern: str, frame: int) -> str:
    """The file of one frame of ``plate.####.exr`` / ``plate.%04d.exr`` (a pattern without padding: itself)."""
    def pad(match: re.Match) -> str:
        text = match.group(0)
        width = len(text) if text.startswith("#") else int(match.group(1) or 0)
        return f"{frame:0{width}d}"

    return _PADDING.sub(pad, pattern)


def has_padding(pattern: str) -> bool:
    return _PADDING.search(os.path.basename(pattern)) is not None


def parse_options(text: str) -> dict:
    """The Advanced "learning settings" knob: a JSON map such as ``{"lr_kv": 0.05}`` ('' = none)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise NodeError(f"learning settings must be a JSON map like {{\"steps\": 50}}: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise NodeError('learning settings must be a JSON map like {"steps": 50}')
    return value
