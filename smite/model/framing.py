"""Fitting plates of any size and aspect into the model's square frame, and mapping results back.

We never stretch (method.md §0.3): the plate is scaled so its longer side equals the model resolution and the
shorter side is padded symmetrically by edge reflection (reflection keeps textures continuous, so padding
does not invent a new "part"; labels are reflected with it). Maps come back by cropping the valid
region of the latent grid and resizing it to the plate's own size, so mattes keep the plate's
resolution and pixel aspect.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from smite.errors import SmiteError


@dataclass(frozen=True)
class Framing:
    """Where a plate of ``plate_size`` (h, w) sits inside the square model frame of side ``resolution``.

    ``box`` = (top, left, height, width) of the scaled plate inside the model frame, in model pixels.
    """

    plate_size: tuple[int, int]
    resolution: int

    @property
    def scale(self) -> float:
        return self.resolution / max(self.plate_size)

    @property
    def box(self) -> tuple[int, int, int, int]:
        h, w = (max(1, round(s * self.scale)) for s in self.plate_size)
        return (self.resolution - h) // 2, (self.resolution - w) // 2, h, w


def fit_image(image: np.ndarray, framing: Framing) -> np.ndarray:
    """Plate (H, W, C) float32 -> model frame (R, R, C): scaled (area/linear) and reflect-padded."""
    top, left, h, w = framing.box
    interp = cv2.INTER_AREA if framing.scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (w, h), interpolation=interp)
    if scaled.ndim == 2:
        scaled = scaled[..., None]
    r = framing.resolution
    return cv2.copyMakeBorder(
        scaled, top, r - h - top, left, r - w - left, cv2.BORDER_REFLECT_101
    ).reshape(r, r, image.shape[2] if image.ndim == 3 else 1)


def fit_labels(labels: np.ndarray, framing: Framing) -> np.ndarray:
    """Label map (H, W) int -> model frame (R, R) int64: nearest neighbour, reflect-padded like the image
    (the padding shows reflected plate content, so reflected labels are its true labels)."""
    top, left, h, w = framing.box
    scaled = cv2.resize(labels.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
    r = framing.resolution
    return cv2.copyMakeBorder(scaled, top, r - h - top, left, r - w - left, cv2.BORDER_REFLECT_101).astype(np.int64)


def check_frame(frame: np.ndarray, index: int | str = 0) -> None:
    """A plate must be float (H, W, 3) with finite values."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 8:
        shape = getattr(frame, "shape", type(frame).__name__)
        raise SmiteError(f"frame {index} must be an (H, W, 3) image of at least 8x8 pixels, got {shape}")
    if not np.isfinite(frame).all():
        raise SmiteError(f"frame {index} has NaN/Inf pixels; fix or clamp the plate first")

