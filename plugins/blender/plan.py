"""What a Learn or Segment click turns into: reference renders, file locations, daemon requests.

Plain Python (no bpy): the operators gather Blender data into these plans, the worker thread sends them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .naming import sanitize_part_names

_MODEL_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ReferenceRender:
    """One render of one mask layer alone at one scene frame, written as a one-channel float EXR."""

    scene_frame: int
    layer: str
    part: str
    path: str


@dataclass(frozen=True)
class LearnPlan:
    """A learn request: plate files and per-part matte files per reference frame."""

    name: str
    parts: list[str]
    plates: list[str]
    masks: list[dict[str, str] | str]  # per plate: {part: matte file}, or a label map file
    reference_ids: list[str]
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SegmentPlan:
    """A segment request: plate files by frame number and where the mattes go. The worker sends paths when
    they lie inside the daemon's roots (it reads and writes them itself), else the frames inline."""

    model: str
    plates: dict[int, str]  # plate frame -> file
    output: str  # matte pattern with ####
    cryptomatte: bool = False
    preset: str = "fast"
    edges: str = "refined"  # "bilinear": the maps resized


def model_name(text: str) -> str:
    """A daemon store name (1-64 of ``A-Z a-z 0-9 _ . -``, starting with a letter or digit) from free text."""
    cleaned = _MODEL_NAME.sub("_", text.strip()).strip("_.-")[:64]
    return cleaned or "smite_parts"


def reference_renders(layers: list[str], names: list[str], frames: list[int], folder: str) -> list[ReferenceRender]:
    """Renders of each mask layer (one per part; ``names`` the part names, by default the layer names) at each
    reference frame."""
    if not frames:
        raise ValueError("no reference frames: key the mask or type frames like 1001,1040")
    parts = sanitize_part_names(names)
    return [ReferenceRender(f, layer, part, os.path.join(folder, "refs", f"{part}.{f:04d}.exr"))
            for f in frames for layer, part in zip(layers, parts)]


def learn_plan(name: str, renders: list[ReferenceRender], plates: dict[int, str], settings: dict) -> LearnPlan:
    """Group reference renders by frame next to the plate file each frame shows."""
    frames = sorted({r.scene_frame for r in renders})
    parts = list(dict.fromkeys(r.part for r in renders))
    mattes = [{r.part: r.path for r in renders if r.scene_frame == f} for f in frames]
    missing = [f for f in frames if f not in plates]
    if missing:
        raise ValueError(f"no plate file for reference frame {missing[0]}")
    return LearnPlan(model_name(name), parts, [plates[f] for f in frames], list(mattes),
                     [os.path.basename(plates[f]) for f in frames], settings)


def matte_pattern(folder: str, name: str) -> str:
    """Where a model's mattes go: ``<folder>/<name>/<name>_mattes.####.exr``."""
    return os.path.join(folder, name, f"{name}_mattes.####.exr")


def inside_roots(paths: list[str], roots: list[str]) -> bool:
    """Whether every path lies inside one of the daemon's roots (then it reads and writes them itself)."""
    if not roots:
        return False
    real_roots = [os.path.realpath(r) for r in roots]

    def inside(path: str) -> bool:
        real = os.path.realpath(path)
        return any(os.path.commonpath([real, r]) == r for r in real_roots)

    return all(inside(p) for p in paths)
