"""Synthetic shots with anti-aliased, sub-pixel exact edges at any plate size (the edge and thin-part benches).

Parts are shapes with exact signed distance functions, moving by sub-pixel amounts: the edge shot has a disc, a
rotating rounded bar and a thin cable a few pixels wide; the puppet has a body, a head and a swinging arm whose
width is chosen (a thin part attached to a larger one). Each pixel's coverage of a shape is
``clip(0.5 - distance, 0, 1)``, the usual analytic anti-aliasing; the plate is composited from the textures with
exactly these coverages (later parts over earlier ones), so the ground-truth mattes are exact by construction, as
a real plate's edges are soft over a pixel. Hard labels are the argmax of the mattes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from smite.errors import SmiteError
from smite.synthetic.textures import random_texture

EDGE_PARTS = ("disc", "bar", "cable")
PUPPET_PARTS = ("body", "head", "arm")


@dataclass
class EdgeShot:
    """frames float32 (T, H, W, 3) in [0, 1]; mattes float32 (T, P, H, W) summing to 1 (background first);
    labels uint8 (T, H, W) = argmax of the mattes; part_names without background."""

    frames: np.ndarray
    mattes: np.ndarray
    labels: np.ndarray
    part_names: list[str]


def _disc(x: np.ndarray, y: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    return np.hypot(x - cx, y - cy) - r


def _box(x: np.ndarray, y: np.ndarray, cx: float, cy: float, hx: float, hy: float, angle: float,
         corner: float) -> np.ndarray:
    """Signed distance of a rotated rounded rectangle (half sizes hx, hy, corner radius ``corner``)."""
    c, s = math.cos(angle), math.sin(angle)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    qx, qy = np.abs(u) - (hx - corner), np.abs(v) - (hy - corner)
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - corner


def _capsule(x: np.ndarray, y: np.ndarray, a: tuple[float, float], b: tuple[float, float], r: float) -> np.ndarray:
    """Signed distance of the segment a-b thickened by r."""
    bx, by = b[0] - a[0], b[1] - a[1]
    h = np.clip(((x - a[0]) * bx + (y - a[1]) * by) / (bx * bx + by * by), 0, 1)
    return np.hypot(x - a[0] - h * bx, y - a[1] - h * by) - r


def _pixel_centres(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    return x, y


def _edge_distances(t: int, h: int, w: int, thin_px: float, phase: np.ndarray) -> list[np.ndarray]:
    """Signed distances (px) of ``EDGE_PARTS`` at frame t; shapes scale with the frame, the cable's width does
    not."""
    s = min(h, w)
    x, y = _pixel_centres(h, w)
    wobble = 0.03 * s
    disc = _disc(x, y, 0.3 * w + wobble * math.cos(0.11 * t + phase[0]), 0.45 * h + wobble * math.sin(0.09 * t),
                 0.17 * s)
    bar = _box(x, y, 0.62 * w + wobble * math.sin(0.07 * t + phase[1]), 0.55 * h + 0.6 * wobble * math.cos(0.1 * t),
               0.2 * s, 0.07 * s, phase[2] + 0.02 * t, 0.02 * s)
    dx, dy = 0.02 * s * math.sin(0.13 * t + phase[3]), 0.01 * s * math.cos(0.08 * t)
    cable = _capsule(x, y, (0.12 * w + dx, 0.82 * h + dy), (0.88 * w + dx, 0.72 * h - dy), thin_px / 2)
    return [disc, bar, cable]


def _puppet_distances(t: int, h: int, w: int, arm_px: float, phase: np.ndarray) -> list[np.ndarray]:
    """Signed distances (px) of ``PUPPET_PARTS`` at frame t: a rounded body, a head above it, and an arm of
    ``arm_px`` px swinging from the shoulder (its length scales with the frame, its width does not)."""
    s = min(h, w)
    x, y = _pixel_centres(h, w)
    cx, cy = 0.42 * w + 0.03 * s * math.cos(0.1 * t + phase[0]), 0.6 * h + 0.02 * s * math.sin(0.08 * t)
    body = _box(x, y, cx, cy, 0.12 * s, 0.2 * s, 0.05 * math.sin(0.1 * t), 0.04 * s)
    head = _disc(x, y, cx, cy - 0.3 * s, 0.09 * s)
    angle, length = math.radians(25 + 12 * math.sin(0.15 * t + phase[1])), 0.3 * s
    shoulder = (cx + 0.1 * s, cy - 0.15 * s)
    hand = (shoulder[0] + length * math.cos(angle), shoulder[1] + length * math.sin(angle))
    return [body, head, _capsule(x, y, shoulder, hand, arm_px / 2)]


def make_edge_shot(num_frames: int = 8, size: tuple[int, int] = (576, 1024), seed: int = 0,
                   thin_px: float = 4.0, noise: float = 0.0) -> EdgeShot:
    """A deterministic shot of ``EDGE_PARTS`` over a panning textured background, with exact soft mattes.

    Args:
        num_frames: T.
        size: (height, width) of the plates.
        seed: the shot is a pure function of its arguments.
        thin_px: width of the cable in plate pixels (the same at every size: thin things stay thin).
        noise: std of per-frame Gaussian grain added to the plates (the mattes are unchanged).
    """
    return _render(EDGE_PARTS, _edge_distances, num_frames, size, seed, thin_px, noise, "make_edge_shot")


def make_puppet_shot(num_frames: int = 8, size: tuple[int, int] = (256, 256), seed: int = 0,
                     arm_px: float = 16.0, noise: float = 0.0) -> EdgeShot:
    """A deterministic shot of ``PUPPET_PARTS`` (body, head, an arm ``arm_px`` plate pixels wide) over a panning
    textured background, with exact soft mattes; the other arguments as :func:`make_edge_shot`'s."""
    return _render(PUPPET_PARTS, _puppet_distances, num_frames, size, seed, arm_px, noise, "make_puppet_shot")


def _render(names: tuple[str, ...], distances, num_frames: int, size: tuple[int, int], seed: int, thin_px: float,
            noise: float, caller: str) -> EdgeShot:
    """Composite the parts whose signed distances ``distances(t, h, w, thin_px, phase)`` gives, in order."""
    h, w = int(size[0]), int(size[1])
    if num_frames < 1 or min(h, w) < 32 or thin_px <= 0:
        raise SmiteError(f"{caller} needs num_frames >= 1, sides >= 32 and a width > 0, got {num_frames}, "
                         f"{size}, {thin_px}")
    rng = np.random.default_rng(seed)
    period = max(8.0, min(h, w) / 24)  # texture detail scales with the frame, like a real plate at 1K vs 2K
    pad = 8 + num_frames * 2
    canvas = _scaled_texture(rng, h + pad, w + pad, period, muted=True)
    textures = [_scaled_texture(rng, h + pad, w + pad, period) for _ in names]
    phase = rng.uniform(0, 2 * np.pi, 4)
    grain = np.random.default_rng([seed, 1])
    frames = np.empty((num_frames, h, w, 3), np.float32)
    mattes = np.empty((num_frames, len(names) + 1, h, w), np.float32)
    for t in range(num_frames):
        pan = (1.3 * t + 2, 0.7 * t + 2)  # sub-pixel pan of the background, parts move with their own paths
        frame = _shifted(canvas, pan, h, w)
        alphas = []
        for k, dist in enumerate(distances(t, h, w, thin_px, phase)):
            cover = np.clip(0.5 - dist, 0.0, 1.0)
            alphas = [a * (1 - cover) for a in alphas]
            alphas.append(cover)
            frame = frame * (1 - cover[..., None]) + _shifted(textures[k], (2 + 0.9 * t, 2 + 0.4 * k), h, w) * \
                cover[..., None]
        if noise > 0:
            frame = frame + grain.normal(0, noise, frame.shape).astype(np.float32)
        frames[t] = np.clip(frame, 0, 1)
        mattes[t, 1:] = alphas
        mattes[t, 0] = 1.0 - mattes[t, 1:].sum(0)
    labels = mattes.argmax(1).astype(np.uint8)
    return EdgeShot(frames, mattes, labels, list(names))


def _scaled_texture(rng: np.random.Generator, h: int, w: int, period: float, muted: bool = False) -> np.ndarray:
    """A procedural texture rendered at 1/``period`` * 12 scale and resized: features grow with the plate."""
    factor = period / 12.0
    small = random_texture(rng, max(8, int(h / factor)), max(8, int(w / factor)))
    tex = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if muted:
        tex = 0.7 * (0.5 * tex + 0.5 * tex.mean(-1, keepdims=True))
    return tex.astype(np.float32)


def _shifted(texture: np.ndarray, offset: tuple[float, float], h: int, w: int) -> np.ndarray:
    """The (h, w) window of ``texture`` at sub-pixel ``offset`` (x, y), bilinear."""
    m = np.array([[1, 0, -offset[0]], [0, 1, -offset[1]]], np.float32)
    return cv2.warpAffine(texture, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def to_grid(mattes: np.ndarray, cells: tuple[int, int]) -> np.ndarray:
    """Exact mattes (P, H, W) reduced to a coarse grid (P, h, w) by area averaging (still summing to 1)."""
    h, w = cells
    return np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA) for m in mattes]).astype(np.float32)
