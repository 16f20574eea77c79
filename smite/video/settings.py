"""Options of shot segmentation: the two presets and their windows."""

from __future__ import annotations

from dataclasses import dataclass

from smite.errors import SmiteError
from smite.video.guidance import GuidanceSettings
from smite.video.mattes import DEFAULT_EDGES, check_edges
from smite.video.windows import PRESET_WINDOWS, check_window, preset_windows

PRESETS = tuple(PRESET_WINDOWS)


@dataclass(frozen=True)
class SegmentSettings:
    """Options of shot segmentation (see ``smite.video.shot``).

    ``preset``: ``quality`` (guided denoising, the default) or ``fast`` (the reference pass alone).
    ``window``/``overlap``: frames per window and frames shared by consecutive windows (None: the preset's,
    16/8 for quality, 16/0 for fast, where an overlap would only recompute frames).
    ``tracker``: ``flow`` or ``cotracker`` (with ``tracker_checkpoint``, default $SMITE_COTRACKER_CHECKPOINT).
    ``coarse_to_fine``: refine the foreground of plates larger than the model frame.
    ``guidance``: constants of the guided path (None: the backbone's defaults).
    ``map_mode=None`` uses the part model's own mode.
    ``shot_offset``: where the first frame given sits in the whole shot (a farm chunk's span starts there); each
    window's noise is keyed by its shot position (``smite.video.windows.window_seed``), so a chunk that runs the
    shot's own windows segments them exactly as the whole-shot run does.
    ``edges``: ``refined`` (mattes re-solved on the plate in the uncertain band, the default) or ``bilinear``
    (the latent-grid maps resized), see ``smite.video.mattes``.
    """

    seed: int = 0
    matte_temperature: float = 1.0
    map_mode: str | None = None
    preset: str = "quality"
    window: int | None = None
    overlap: int | None = None
    tracker: str = "flow"
    tracker_checkpoint: str | None = None
    coarse_to_fine: bool = True
    guidance: GuidanceSettings | None = None
    edges: str = DEFAULT_EDGES
    shot_offset: int = 0

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise SmiteError(f"unknown preset {self.preset!r}: use one of {', '.join(PRESETS)}")
        object.__setattr__(self, "edges", check_edges(self.edges))
        if isinstance(self.guidance, dict):
            object.__setattr__(self, "guidance", GuidanceSettings(**self.guidance))
        check_window(*self.window_and_overlap())
        if self.shot_offset < 0:
            raise SmiteError(f"shot_offset must be 0 or more, got {self.shot_offset}")

    def window_and_overlap(self) -> tuple[int, int]:
        """(window, overlap) with the preset's defaults filled in; a window shorter than the preset's
        overlap gets the largest overlap it can hold."""
        return preset_windows(self.preset, self.window, self.overlap)

