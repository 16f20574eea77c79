"""Training augmentation of reference frames and masks (method.md §4.1), on model-sized squares.

Sizes given for 512-px frames in the method (dropout holes of 16-128 px) scale with the model resolution.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

_SIDE_WORD = re.compile(r"left|right")
_SIDE_TOKEN = {"l": "<side>", "r": "<side>", "lt": "<side>", "rt": "<side>"}


@dataclass(frozen=True)
class AugmentSettings:
    """Probabilities and ranges of §4.1 (defaults: the method's, non-face datasets)."""

    zoom_out_p: float = 0.1
    blur_p: float = 0.5
    dropout_p: float = 0.3
    flip: bool = True
    min_crop_ratio: float = 0.6
    rotate_p: float = 0.5
    max_rotation: float = 30.0
    enabled: bool = True


def mirrored_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of part names that differ only by left/right (``left_eye``/``right_eye``, ``eye_l``/``eye_r``).

    A horizontal flip swaps such parts without swapping their labels, so flip augmentation must be off for them.
    """
    def side_free(name: str) -> str:
        tokens = re.split(r"[_\-\s.]+", _SIDE_WORD.sub("<side>", name.lower()))
        return "_".join(_SIDE_TOKEN.get(t, t) for t in tokens)

    keys = [side_free(n) for n in names]
    return [(a, b) for i, a in enumerate(names) for j, b in enumerate(names)
            if i < j and keys[i] == keys[j] and "<side>" in keys[i]]


def _zoom_out(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shrink by U(0.5, 0.8) and paste at a random place on a black, background-labelled canvas."""
    r = img.shape[0]
    side = max(1, int(r * rng.uniform(0.5, 0.8)))
    y, x = rng.integers(0, r - side + 1, 2)
    canvas, canvas_lab = np.zeros_like(img), np.zeros_like(lab)
    canvas[y : y + side, x : x + side] = cv2.resize(img, (side, side), interpolation=cv2.INTER_LINEAR)
    canvas_lab[y : y + side, x : x + side] = cv2.resize(lab, (side, side), interpolation=cv2.INTER_NEAREST)
    return canvas, canvas_lab


def _coarse_dropout(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator) -> None:
    """1-8 black holes of 16-128 px (at 512 px), set to background in the mask; in place."""
    r = img.shape[0]
    lo, hi = max(1, r * 16 // 512), max(2, r * 128 // 512)
    for _ in range(int(rng.integers(1, 9))):
        hh, ww = rng.integers(lo, hi + 1, 2)
        y, x = rng.integers(0, r - hh + 1), rng.integers(0, r - ww + 1)
        img[y : y + hh, x : x + ww] = 0
        lab[y : y + hh, x : x + ww] = 0


def _part_aware_crop(lab: np.ndarray, target: int, rng: np.random.Generator, min_ratio: float) -> tuple:
    """Square crop (y, x, side) keeping > 30 % of the target part's pixels (or any crop if it is absent)."""
    r = lab.shape[0]
    total = int((lab == target).sum())
    for _ in range(50):
        side = max(8, int(r * rng.uniform(min_ratio, 1.0)))
        y, x = rng.integers(0, r - side + 1, 2)
        if total == 0 or (lab[y : y + side, x : x + side] == target).sum() > 0.3 * total:
            return y, x, side
    return 0, 0, r


def _rotate(img: np.ndarray, lab: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    r = img.shape[0]
    m = cv2.getRotationMatrix2D((r / 2, r / 2), angle, 1.0)
    img = cv2.warpAffine(img, m, (r, r), flags=cv2.INTER_LINEAR, borderValue=0)
    lab = cv2.warpAffine(lab, m, (r, r), flags=cv2.INTER_NEAREST, borderValue=0)
    return img, lab


def augment(
    image: np.ndarray, labels: np.ndarray, target: int, rng: np.random.Generator, settings: AugmentSettings
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented training sample.

    image (R, R, 3) float32, labels (R, R) int; ``target`` is the part the crop must keep (the caller cycles
    it over the parts). Returns new arrays of the same shapes (labels int32).
    """
    img, lab = image.copy(), labels.astype(np.int32)
    if not settings.enabled:
        return img, lab
    r = img.shape[0]
    if rng.random() < settings.zoom_out_p:
        img, lab = _zoom_out(img, lab, rng)
    if rng.random() < settings.blur_p:
        k = int(rng.choice([1, 3, 5]))
        img = cv2.GaussianBlur(img, (k, k), 0) if k > 1 else img
    if rng.random() < settings.dropout_p:
        _coarse_dropout(img, lab, rng)
    if settings.flip and rng.random() < 0.5:
        img, lab = img[:, ::-1].copy(), lab[:, ::-1].copy()
    y, x, side = _part_aware_crop(lab, target, rng, settings.min_crop_ratio)
    img = cv2.resize(img[y : y + side, x : x + side], (r, r), interpolation=cv2.INTER_LINEAR)
    lab = cv2.resize(lab[y : y + side, x : x + side], (r, r), interpolation=cv2.INTER_NEAREST)
    if rng.random() < settings.rotate_p:
        img, lab = _rotate(img, lab, rng.uniform(-settings.max_rotation, settings.max_rotation))
    return img, lab


def labels_to_latent(labels: np.ndarray, latent_size: int) -> np.ndarray:
    """Nearest-neighbour downsampling of a (R, R) label map to (S, S) (method.md §4.1 step 5)."""
    return cv2.resize(labels.astype(np.int32), (latent_size, latent_size), interpolation=cv2.INTER_NEAREST)
