"""Geometry of the coarse-to-fine mode (method.md §7): one crop box per window, crop, paste back.

The coarse pass sees whole plates; where the foreground is small, a second (fine) pass on a crop around it sees
the parts larger. Differences from the released code (§7, §12.17), all deliberate:

* ONE box per window (union of the foreground of all its frames), not one per frame: per-frame boxes make the
  crop sequence jitter, so the tracker sees crop motion mixed with object motion.
* Crops are never stretched (§0.3): the box is squared up inside the plate (the model frame is square, so a square
  crop uses all its pixels) and then fitted like any plate (see ``smite.model.framing``).
* Paste-back keeps the coarse logits outside the box (the released code zeroed them) and feathers the seam on the
  box edges that lie inside the plate.

Pure numpy geometry; no torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smite.errors import SmiteError


@dataclass(frozen=True)
class CropBox:
    """An axis-aligned box in plate pixels: rows ``top : top + height``, columns ``left : left + width``."""

    top: int
    left: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.top < 0 or self.left < 0 or self.height < 1 or self.width < 1:
            raise ValueError(f"invalid crop box {self}: needs top, left >= 0 and height, width >= 1")

    @property
    def bottom(self) -> int:
        """One past the last row."""
        return self.top + self.height

    @property
    def right(self) -> int:
        """One past the last column."""
        return self.left + self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, cols) slices selecting the box from an array whose first two axes are (H, W)."""
        return slice(self.top, self.bottom), slice(self.left, self.right)

    @property
    def area(self) -> int:
        """Number of pixels in the box."""
        return self.height * self.width


def _check_inside(box: CropBox, plate_size: tuple[int, int]) -> None:
    h, w = plate_size
    if box.bottom > h or box.right > w:
        raise ValueError(f"crop box {box} does not fit in a plate of {h}x{w} (h x w)")


def _grow(start: int, stop: int, margin: float, limit: int) -> tuple[int, int]:
    """Grow [start, stop) by ``margin`` of its length on each side (rounded up), clipped to [0, limit)."""
    pad = math.ceil(margin * (stop - start) - 1e-9)  # the epsilon keeps 0.04 * 25 from rounding up to 2
    return max(0, start - pad), min(limit, stop + pad)


def foreground_box(labels: np.ndarray, margin: float = 0.04, min_pixels: int = 3) -> CropBox | None:
    """Bounding box of the foreground (label != 0) of all frames, grown by ``margin`` (§7.3: 4 %).

    ``labels``: (F, H, W) or (H, W) integer label maps at plate resolution, 0 = background. The box bounds the
    union over frames (one box per window). Each side moves out by ``ceil(margin * box height)`` rows
    (top/bottom) or ``ceil(margin * box width)`` columns (left/right), clipped to the plate.
    Returns None when the union has fewer than ``min_pixels`` foreground pixels (nothing worth cropping to).
    """
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must be (F, H, W) or (H, W), got shape {labels.shape}")
    if margin < 0:
        raise SmiteError(f"crop margin must be >= 0, got {margin}")
    fg = labels != 0
    if fg.ndim == 3:
        fg = fg.any(axis=0)
    if int(fg.sum()) < max(1, min_pixels):
        return None
    rows = np.flatnonzero(fg.any(axis=1))
    cols = np.flatnonzero(fg.any(axis=0))
    top, bottom = _grow(int(rows[0]), int(rows[-1]) + 1, margin, fg.shape[0])
    left, right = _grow(int(cols[0]), int(cols[-1]) + 1, margin, fg.shape[1])
    return CropBox(top, left, bottom - top, right - left)


def _centred_span(start: int, length: int, side: int, limit: int) -> tuple[int, int]:
    """A span of ``min(side, limit)`` centred on [start, start + length), shifted into [0, limit)."""
    span = min(side, limit)
    # Floor keeps the original span inside the new one (it is at least as long), also after the shift.
    new_start = start + (length - span) // 2
    return int(np.clip(new_start, 0, limit - span)), span


def square_up(box: CropBox, plate_size: tuple[int, int], min_side: int = 0) -> CropBox:
    """Grow ``box`` to a square of side ``max(box.height, box.width, min_side)`` inside a plate of (H, W).

    The square is centred on the box centre (to the pixel; an odd growth puts the extra pixel above/left) and
    shifted to stay inside the plate. An axis where the plate is shorter than the side takes the whole plate,
    so the result then is not square. The result always contains ``box``.
    """
    _check_inside(box, plate_size)
    side = max(box.height, box.width, min_side)
    top, height = _centred_span(box.top, box.height, side, plate_size[0])
    left, width = _centred_span(box.left, box.width, side, plate_size[1])
    return CropBox(top, left, height, width)


def worth_refining(box: CropBox | None, plate_size: tuple[int, int], resolution: int, min_gain: float = 1.25) -> bool:
    """Whether a fine pass on ``box`` would see the parts at least ``min_gain`` times larger (linear pixels).

    Both the plate and the crop are fitted aspect-kept into the square model frame of side ``resolution``:
    plate scale = resolution / max(H, W), crop scale = resolution / max(box.height, box.width). Pass the box
    that will be cropped (after :func:`square_up`). False for None (no foreground).
    """
    if resolution < 1:
        raise ValueError(f"model resolution must be >= 1, got {resolution}")
    if box is None:
        return False
    plate_scale = resolution / max(plate_size)
    crop_scale = resolution / max(box.height, box.width)
    return crop_scale >= min_gain * plate_scale


def crop_frames(frames: np.ndarray, box: CropBox) -> np.ndarray:
    """Frames (F, H, W, C) -> (F, box.height, box.width, C): a view of the box region (no copy)."""
    if frames.ndim < 3:
        raise ValueError(f"frames must be (F, H, W, C), got shape {frames.shape}")
    _check_inside(box, frames.shape[1:3])
    rows, cols = box.slices
    return frames[:, rows, cols]


def _ramp(length: int, feather: int, low_inner: bool, high_inner: bool) -> np.ndarray:
    """Per-axis weight (length,) float32: (d + 1) / (f + 1) at distance d from each inner edge, capped at 1.

    f is ``feather`` shrunk so that the ramps reach 1 within the span (a small box still gets its centre fully
    from the fine map).
    """
    n_inner = int(low_inner) + int(high_inner)
    weight = np.ones(length, np.float32)
    if n_inner == 0 or feather <= 0:
        return weight
    f = min(feather, (length - 1) // n_inner)
    if f <= 0:
        return weight
    d = np.arange(length, dtype=np.float32)
    if low_inner:
        weight = np.minimum(weight, (d + 1) / (f + 1))
    if high_inner:
        weight = np.minimum(weight, (d[::-1] + 1) / (f + 1))
    return np.minimum(weight, 1.0)


def paste_weight(box: CropBox, plate_size: tuple[int, int], feather: int = 8) -> np.ndarray:
    """Blend weight (box.height, box.width) float32 of the fine logits inside the box.

    weight = min over the box edges that lie inside the plate of ``min(1, (d + 1) / (f + 1))``, d = distance in
    pixels from that edge (0 on the edge row/column), f = ``feather`` (shrunk on an axis too short for its ramps).
    So the edge pixels take 1/(f + 1) of the fine value, pixels f or more inside take the fine value alone, and
    edges lying on the plate border get no ramp (there is no coarse content beyond them to blend with).
    """
    if feather < 0:
        raise SmiteError(f"paste feather must be >= 0 pixels, got {feather}")
    _check_inside(box, plate_size)
    h, w = plate_size
    wy = _ramp(box.height, feather, box.top > 0, box.bottom < h)
    wx = _ramp(box.width, feather, box.left > 0, box.right < w)
    return np.minimum(wy[:, None], wx[None, :])


def paste_logits(coarse: np.ndarray, fine: np.ndarray, box: CropBox, feather: int = 8) -> np.ndarray:
    """Coarse logits (n, H, W) with the box region replaced by ``fine`` (n, box.height, box.width), feathered.

    Returns a float32 copy: inside the box ``coarse * (1 - weight) + fine * weight`` with ``weight`` from
    :func:`paste_weight` (a linear ramp over ``feather`` px inside the box edges that touch the plate interior,
    so the fine region meets the coarse one without a seam); outside the box the coarse logits unchanged.
    Any leading axes work, as long as coarse and fine share them.
    """
    if coarse.ndim < 2 or fine.shape[:-2] != coarse.shape[:-2] or fine.shape[-2:] != (box.height, box.width):
        raise ValueError(
            f"fine logits {fine.shape} must be coarse {coarse.shape} with the last two axes = box "
            f"({box.height}, {box.width})"
        )
    weight = paste_weight(box, coarse.shape[-2:], feather)
    out = np.array(coarse, dtype=np.float32, copy=True)
    rows, cols = box.slices
    region = out[..., rows, cols]
    out[..., rows, cols] = region + weight * (fine.astype(np.float32, copy=False) - region)
    return out
