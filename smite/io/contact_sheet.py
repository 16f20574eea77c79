"""Contact sheets: a grid of thumbnails with coloured part overlays, to judge a segmentation at a glance.

Colours are indexed by label value: row 0 is background (never drawn), rows 1.. are the parts, so
``part_colours(n)[labels]`` colours a label map; the legend's swatch of a part is exactly the colour of its
outline in the overlay. Under a part the plate is shown as grey so the tint reads on textured parts. With a
ground truth, each row of overlays is followed by a row of errors: missed (a part's pixels labelled
background), extra (background labelled as a part) and wrong part. All images here are RGB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from smite.errors import SmiteError

_GOLDEN = 0.6180339887498949  # hue step: any number of parts gets well-spread hues
_HUE0 = 0.1  # first part orange: pure red and magenta stay the error colours' (ERRORS)
_BG = (24, 24, 24)
_GAP = 4
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LEGEND_LINE = 26
_SWATCH = 14
TINT = 0.6  # opacity of the part colour over the (grey) plate
# Error colours (RGB in [0, 1]), chosen away from the golden-ratio part hues' usual saturation/value.
ERRORS = {"missed": (1.0, 0.0, 0.0), "extra": (1.0, 1.0, 1.0), "wrong part": (1.0, 0.0, 1.0)}


def part_colours(n: int) -> np.ndarray:
    """Distinct overlay colours for ``n`` label values: float32 (n, 3) RGB in [0, 1]; row 0 (background)
    is black and is never drawn."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise SmiteError(f"part_colours needs a positive number of labels, got {n!r}")
    k = np.arange(n - 1, dtype=np.float32)
    hsv = np.stack([((_HUE0 + k * _GOLDEN) % 1.0) * 360.0,  # OpenCV float HSV: hue in degrees, s and v in [0, 1]
                    np.where(k % 3 == 2, 0.6, 0.9), np.where(k % 2 == 1, 0.85, 1.0)], axis=-1)
    rgb = cv2.cvtColor(hsv[None].astype(np.float32), cv2.COLOR_HSV2RGB)[0] if n > 1 else np.empty((0, 3))
    return np.concatenate([np.zeros((1, 3), np.float32), rgb]).astype(np.float32)


def _as_float_image(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    return frame.astype(np.float32, copy=False)


def _inner_edges(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 4-neighbourhood holds another label: a 1 px outline inside every region, (H, W) bool."""
    p = np.pad(labels, 1, mode="edge")
    c = p[1:-1, 1:-1]
    return (c != p[:-2, 1:-1]) | (c != p[2:, 1:-1]) | (c != p[1:-1, :-2]) | (c != p[1:-1, 2:])


def _grey(img: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of an RGB image, as RGB (H, W, 3)."""
    return np.repeat(img @ np.array([0.2126, 0.7152, 0.0722], np.float32), 3).reshape(img.shape)


def overlay(frame: np.ndarray, labels: np.ndarray, alpha: float = TINT,
            colours: np.ndarray | None = None) -> np.ndarray:
    """Tint each part of ``frame`` with its colour (over the plate's grey, so textures do not drown the tint)
    and outline it in its pure colour.

    Args:
        frame: (H, W, 3) RGB, float32 in [0, 1] (uint8 is accepted and scaled).
        labels: (H, W) integer label map, 0 = background (left untouched).
        alpha: opacity of the tint.
        colours: (n, 3) colours per label value; default ``part_colours(labels.max() + 1)``.

    Returns:
        float32 (H, W, 3) in [0, 1].
    """
    img, labels = _as_float_image(frame), np.asarray(labels)
    if img.ndim != 3 or img.shape[2] != 3 or labels.shape != img.shape[:2]:
        raise SmiteError(f"overlay needs an (H, W, 3) frame and an (H, W) label map, got {img.shape} and "
                         f"{labels.shape}")
    top = int(labels.max()) if labels.size else 0
    colours = part_colours(max(top + 1, 2)) if colours is None else np.asarray(colours, np.float32)
    if labels.min() < 0 or top >= len(colours):
        raise SmiteError(f"label {top} has no overlay colour ({len(colours)} colours given)")
    tint = colours[labels]
    fg = (labels > 0)[..., None]
    out = np.where(fg, _grey(img) * (1 - alpha) + tint * alpha, img)
    edge = (_inner_edges(labels) & (labels > 0))[..., None]
    return np.clip(np.where(edge, tint, out), 0.0, 1.0).astype(np.float32)


def error_kinds(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per pixel: 0 right, 1 missed (truth a part, predicted background), 2 extra (truth background, predicted a
    part), 3 wrong part (both parts, not the same); uint8 (H, W). Indices follow ``ERRORS``."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    kinds = np.zeros(pred.shape, np.uint8)
    kinds[(truth > 0) & (pred == 0)] = 1
    kinds[(truth == 0) & (pred > 0)] = 2
    kinds[(truth > 0) & (pred > 0) & (pred != truth)] = 3
    return kinds


def error_overlay(frame: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The plate darkened to grey with each error region filled half-way and outlined in its ``ERRORS`` colour;
    float32 (H, W, 3) in [0, 1]."""
    img = _as_float_image(frame)
    colours = np.array([(0.0, 0.0, 0.0), *ERRORS.values()], np.float32)
    kinds = error_kinds(pred, truth)
    out = _grey(img) * 0.6
    wrong = (kinds > 0)[..., None]
    out = np.where(wrong, out * 0.5 + colours[kinds] * 0.5, out)
    edge = (_inner_edges(kinds) & (kinds > 0))[..., None]
    return np.clip(np.where(edge, colours[kinds], out), 0.0, 1.0).astype(np.float32)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float) -> None:
    """White text with a dark outline, readable on any plate (in place on uint8 RGB)."""
    cv2.putText(img, text, org, _FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _nearest_resize(labels: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize of a label map that works for any integer dtype."""
    rows = np.minimum(((np.arange(h) + 0.5) * labels.shape[0] / h).astype(np.int64), labels.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * labels.shape[1] / w).astype(np.int64), labels.shape[1] - 1)
    return labels[rows][:, cols]


def legend_entries(names: Sequence[str], colours: np.ndarray, width: int) -> list[tuple[int, int, str, tuple]]:
    """Where each swatch goes: (x, line, name, RGB uint8 colour), wrapped to ``width``."""
    entries, x, line = [], _GAP * 2, 0
    for name, colour in zip(names, colours):
        (tw, _), _ = cv2.getTextSize(name, _FONT, 0.5, 1)
        span = _SWATCH + 6 + tw + 18
        if x + span > width and x > _GAP * 2:
            x, line = _GAP * 2, line + 1
        entries.append((x, line, name, tuple(int(c) for c in np.round(np.asarray(colour) * 255))))
        x += span
    return entries


def _legend(names: Sequence[str], colours: np.ndarray, width: int) -> np.ndarray:
    """Legend rows of colour swatches and names, wrapped to ``width``: uint8 (h, width, 3)."""
    entries = legend_entries(names, colours, width)
    lines = 1 + max(line for _, line, _, _ in entries)
    img = np.full((lines * _LEGEND_LINE + _GAP, width, 3), _BG, np.uint8)
    for x, line, name, colour in entries:
        y = line * _LEGEND_LINE + _GAP + (_LEGEND_LINE - _SWATCH) // 2
        cv2.rectangle(img, (x, y), (x + _SWATCH - 1, y + _SWATCH - 1), colour, -1)
        org = (x + _SWATCH + 6, y + _SWATCH - 2)
        cv2.putText(img, name, org, _FONT, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
    return img


def _check_names(part_names: list[str] | None, top: int) -> None:
    if part_names is None:
        return
    if not part_names or part_names[0] != "background":
        raise SmiteError(f"part names are every label's, background first (as a part model's), got {part_names!r}")
    if top >= len(part_names):
        raise SmiteError(f"labels go up to {top} but only {len(part_names) - 1} part names were given")


def contact_sheet(frames: np.ndarray | Sequence[np.ndarray], labels: np.ndarray | Sequence[np.ndarray],
                  columns: int = 6, thumb_width: int = 192, titles: list[str] | None = None,
                  part_names: list[str] | None = None,
                  truth: np.ndarray | Sequence[np.ndarray] | None = None) -> np.ndarray:
    """A grid of overlaid thumbnails, one per frame, with an optional legend row of part names.

    Args:
        frames: (T, H, W, 3) RGB, float32 in [0, 1] (or uint8), or a sequence of such frames.
        labels: (T, H, W) integer label maps, 0 = background.
        columns: thumbnails per row.
        thumb_width: thumbnail width in px; the height keeps the plate's aspect.
        titles: one corner caption per frame; default the frame numbers 1..T.
        part_names: the name of every label value, background first (``PartModel.part_names``); adds the
            legend row (the parts' swatches, no background).
        truth: (T, H, W) ground-truth label maps; adds a row of errors under each row of overlays and their
            swatches to the legend.

    Returns:
        uint8 (H', W', 3) RGB image.
    """
    frames = np.stack([_as_float_image(f) for f in frames]) if len(frames) else np.empty((0,))
    labels = np.asarray(labels)
    if frames.ndim != 4 or frames.shape[-1] != 3 or labels.shape != frames.shape[:3]:
        raise SmiteError(f"contact_sheet needs (T, H, W, 3) frames and (T, H, W) labels with T >= 1, got "
                         f"{frames.shape} and {labels.shape}")
    truth = None if truth is None else np.asarray(truth)
    if truth is not None and truth.shape != labels.shape:
        raise SmiteError(f"ground truth {truth.shape} does not match the labels {labels.shape}")
    if columns < 1 or thumb_width < 16:
        raise SmiteError(f"columns must be >= 1 and thumb_width >= 16, got {columns} and {thumb_width}")
    count = len(frames)
    titles = [str(i + 1) for i in range(count)] if titles is None else list(titles)
    if len(titles) != count:
        raise SmiteError(f"got {len(titles)} titles for {count} frames; give one title per frame")
    top = int(labels.max())
    _check_names(part_names, top)
    colours = part_colours(max(top + 1, len(part_names or ())))

    tw = int(thumb_width)
    th = max(1, round(frames.shape[1] * tw / frames.shape[2]))
    cols = min(columns, count)
    rows = math.ceil(count / cols) * (1 if truth is None else 2)
    width = cols * (tw + _GAP) + _GAP
    sheet = np.full((rows * (th + _GAP) + _GAP, width, 3), _BG, np.uint8)
    for i in range(count):
        thumb = cv2.resize(frames[i], (tw, th), interpolation=cv2.INTER_AREA)
        small = _nearest_resize(labels[i], th, tw)
        cells = [(overlay(thumb, small, colours=colours), titles[i])]
        if truth is not None:
            kinds = error_kinds(small, _nearest_resize(truth[i], th, tw))
            cells.append((error_overlay(thumb, small, _nearest_resize(truth[i], th, tw)),
                          f"{titles[i]}  err {100 * np.mean(kinds > 0):.1f}%"))
        row = (i // cols) * len(cells)
        for j, (image, title) in enumerate(cells):
            y, x = _GAP + (row + j) * (th + _GAP), _GAP + (i % cols) * (tw + _GAP)
            cell = np.round(image * 255).astype(np.uint8)
            _text(cell, title, (4, 16), 0.45)
            sheet[y:y + th, x:x + tw] = cell
    if part_names and len(part_names) > 1:
        sheet = np.concatenate([sheet, _legend(part_names[1:], colours[1:len(part_names)], width)])
    if truth is not None:  # the error swatches on their own line
        sheet = np.concatenate([sheet, _legend(list(ERRORS), np.array(list(ERRORS.values())), width)])
    return sheet
