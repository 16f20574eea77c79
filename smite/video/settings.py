"""Options of shot segmentation: the two presets and their windows."""

from __future__ import annotations

from dataclasses import dataclass

from smite.errors import SmiteError
from smite.video.guidance import GuidanceSettings
from smite.video.mattes import DEFAULT_EDGES, check_edges
from smite.video.windows import check_window

PRESETS = ("fast", "quality")
PRESET_WINDOWS = {"fast": (16, 0), "quality": (16, 8)}  # (window, overlap) of each preset


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

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise SmiteError(f"unknown preset {self.preset!r}: use one of {', '.join(PRESETS)}")
        object.__setattr__(self, "edges", check_edges(self.edges))
        if isinstance(self.guidance, dict):
            object.__setattr__(self, "guidance", GuidanceSettings(**self.guidance))
        check_window(*self.window_and_overlap())

    def window_and_overlap(self) -> tuple[int, int]:
        """(window, overlap) with the preset's defaults filled in; a window shorter than the preset's
        overlap gets the largest overlap it can hold."""
        window, overlap = PRESET_WINDOWS[self.preset]
        window = self.window if self.window is not None else window
        if self.overlap is not None:
            return window, self.overlap
        return window, min(overlap, window // 2)

