"""Procedural colour textures: the material of the synthetic shots and of the tiny backbone's pretraining.

Each texture mixes a base colour with a pattern (band-limited noise, stripes, checks, dots), so parts
differ in colour *and* local structure, as real parts (skin, hair, cloth) do.
"""

import cv2
import numpy as np

PATTERNS = ("noise", "stripes", "checks", "dots", "flat")


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated-ish RGB colour in [0.1, 0.9], shape (3,)."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(80, 255), rng.uniform(90, 240)]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def band_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Smooth noise in [-1, 1] with features about ``scale`` pixels wide, shape (h, w)."""
    sh, sw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    coarse = rng.standard_normal((sh, sw)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(field / (np.abs(field).max() + 1e-6), -1, 1)


def pattern(rng: np.random.Generator, h: int, w: int, kind: str) -> np.ndarray:
    """A pattern in [-1, 1], shape (h, w), of the given kind (see ``PATTERNS``)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "noise":
        return band_noise(rng, h, w, rng.uniform(2, 10))
    if kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 18)
        return np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    if kind == "checks":
        period = rng.uniform(8, 20)
        return np.where((np.floor(xx / period) + np.floor(yy / period)) % 2 == 0, 1.0, -1.0).astype(np.float32)
    if kind == "dots":
        period = rng.uniform(8, 16)
        d = np.hypot((xx % period) - period / 2, (yy % period) - period / 2)
        return np.where(d < period * rng.uniform(0.2, 0.35), 1.0, -1.0).astype(np.float32)
    return np.zeros((h, w), np.float32)


def random_texture(rng: np.random.Generator, h: int, w: int, kind: str | None = None) -> np.ndarray:
    """A colour texture in [0, 1], shape (h, w, 3): base colour modulated by a pattern and a second colour."""
    kind = kind or PATTERNS[int(rng.integers(len(PATTERNS)))]
    base, accent = random_colour(rng), random_colour(rng)
    amount = rng.uniform(0.25, 0.6)
    p = (pattern(rng, h, w, kind) * 0.5 + 0.5)[..., None] * amount
    grain = band_noise(rng, h, w, 1.5)[..., None] * 0.03
    return np.clip(base * (1 - p) + accent * p + grain, 0.0, 1.0).astype(np.float32)


def random_collage(rng: np.random.Generator, size: int, shapes: int = 6) -> np.ndarray:
    """A textured background with random textured ellipses and polygons on it, shape (size, size, 3)."""
    return random_collage_with_regions(rng, size, shapes)[0]


def random_collage_with_regions(rng: np.random.Generator, size: int, shapes: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """``random_collage`` and its region map: image (size, size, 3) float32, regions (size, size) int32
    (0 = background, k = k-th shape drawn; later shapes cover earlier ones)."""
    img = random_texture(rng, size, size)
    regions = np.zeros((size, size), np.int32)
    for index in range(1, shapes + 1):
        mask = np.zeros((size, size), np.uint8)
        cx, cy = rng.uniform(0, size, 2)
        if rng.random() < 0.5:
            axes = (int(rng.uniform(0.08, 0.3) * size), int(rng.uniform(0.08, 0.3) * size))
            cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, 1, -1)
        else:
            k = int(rng.integers(3, 7))
            ang = np.sort(rng.uniform(0, 2 * np.pi, k))
            rad = rng.uniform(0.08, 0.3, k) * size
            pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.int32)
            cv2.fillPoly(mask, [pts], 1)
        tex = random_texture(rng, size, size)
        img = np.where(mask[..., None] > 0, tex, img)
        regions[mask > 0] = index
    return img, regions
