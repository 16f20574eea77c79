"""Synthetic test shots with exact ground truth: the acceptance test of the engine.

A shot is a slowly panning textured background with ``num_parts`` textured shapes on it. Each part has
its own pattern kind and a well-separated hue, moves along a smooth orbit while rotating, and deforms
(it breathes in scale and aspect; the blob's outline also wobbles). The texture lives in the part's local
coordinates and is warped with the same transform as the shape, so it moves with the part.

Shapes are implicit functions of the local coordinates and are rasterised through the inverse transform:
the label map is exactly the set of pixels that were painted with a part's texture (no anti-aliasing).
Non-touching parts each orbit inside their own cell of a grid, so they never overlap; touching parts
are a head ("face") with a hair cap ("hair") that share a boundary in every frame.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from smite.errors import SmiteError
from smite.synthetic.textures import pattern, random_texture

SHAPES = ("disc", "bar", "blob", "hexagon", "star")
TOUCHING_NAMES = ("face", "hair")
_PART_PATTERNS = ("stripes", "checks", "dots", "noise")
_MARGIN = 2.0  # px between a part's reach and its cell edge: parts never touch each other or the frame edge
_MIN_ROOM = 4.0  # px of orbit a part must keep; less means the frame is too small for the parts asked for
_MIN_SIDE = 32
_MAX_ORBIT = 0.1  # orbit radius cap as a fraction of the frame's longer side
_GOOD_ROOM = 0.06  # orbit radius a part keeps when it can, as a fraction of the frame's longer side

Inside = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@dataclass
class SyntheticShot:
    """A generated shot and its ground truth.

    Attributes:
        frames: float32 (T, H, W, 3) RGB plates in [0, 1].
        labels: uint8 (T, H, W) label maps, 0 = background, k = ``part_names[k - 1]``.
        part_names: the part names without background, length ``num_parts``.
        part_transforms: float64 (T, num_parts, 2, 3) affine maps from each part's local coordinates
            (origin at the part's centre, texture pixels) to frame pixels, per frame.
    """

    frames: np.ndarray
    labels: np.ndarray
    part_names: list[str]
    part_transforms: np.ndarray

    @property
    def num_labels(self) -> int:
        """Number of label values including background (what ``smite.evaluate.metrics`` calls ``num_parts``)."""
        return len(self.part_names) + 1


@dataclass
class _Motion:
    """Smooth rigid motion plus breathing scale: local part coordinates -> frame pixels at frame t."""

    centre: tuple[float, float]
    orbit: tuple[float, float]
    orbit_speed: float
    orbit_phase: float
    angle0: float
    spin: float
    tilt: float
    tilt_speed: float
    scale_amp: float
    scale_speed: float
    scale_phase: float
    aspect_phase: float

    def matrix(self, t: int) -> np.ndarray:
        """The (2, 3) float64 affine map of frame ``t``."""
        ang = self.orbit_speed * t + self.orbit_phase
        cx = self.centre[0] + self.orbit[0] * math.cos(ang)
        cy = self.centre[1] + self.orbit[1] * math.sin(ang)
        theta = self.angle0 + self.spin * t + self.tilt * math.sin(self.tilt_speed * t)
        s = self.scale_speed * t + self.scale_phase
        sx = 1.0 + self.scale_amp * math.sin(s)
        sy = 1.0 + self.scale_amp * math.sin(s + self.aspect_phase)
        c, n = math.cos(theta), math.sin(theta)
        return np.array([[c * sx, -n * sy, cx], [n * sx, c * sy, cy]], np.float64)


@dataclass
class _Shape:
    """A unit shape: ``inside(u, v, t)`` on unit coordinates; it contains the disc of radius 1 (its
    inradius) and lies within the disc of radius ``r_out``."""

    inside: Inside
    r_out: float


@dataclass
class _Part:
    name: str
    inside: Inside  # on local pixel coordinates
    texture: np.ndarray  # (S, S, 3) float32, centre = local origin
    motion: _Motion
    reach: float  # max distance in frame px from the part's centre to any of its pixels


def _unit_disc(rng: np.random.Generator) -> _Shape:
    a = rng.uniform(1.15, 1.35)
    return _Shape(lambda u, v, t: (u / a) ** 2 + v**2 <= 1.0, a)


def _unit_bar(rng: np.random.Generator) -> _Shape:
    hx, rc = rng.uniform(1.3, 1.6), rng.uniform(0.3, 0.6)

    def inside(u: np.ndarray, v: np.ndarray, t: int) -> np.ndarray:
        # Signed distance of a rounded rectangle with half sizes (hx, 1) and corner radius rc.
        qx, qy = np.abs(u) - (hx - rc), np.abs(v) - (1.0 - rc)
        dist = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
        return dist <= rc

    return _Shape(inside, float(np.hypot(hx, 1.0)))


def _polar(radius: Callable[[np.ndarray, int], np.ndarray], r_out: float) -> _Shape:
    return _Shape(lambda u, v, t: np.hypot(u, v) <= radius(np.arctan2(v, u), t), r_out)


def _unit_blob(rng: np.random.Generator) -> _Shape:
    # A few low harmonics drifting in time: a smooth outline that wobbles from frame to frame.
    total = rng.uniform(0.12, 0.2)
    amps = rng.dirichlet(np.ones(3)) * total
    freqs, phases, speeds = np.array([2, 3, 5]), rng.uniform(0, 2 * np.pi, 3), rng.uniform(0.05, 0.15, 3)
    r0 = 1.0 / (1.0 - total)

    def radius(phi: np.ndarray, t: int) -> np.ndarray:
        wave = (amps * np.cos(freqs * phi[..., None] + phases + speeds * t)).sum(axis=-1)
        return r0 * (1.0 + wave)

    return _polar(radius, r0 * (1.0 + total))


def _unit_hexagon(rng: np.random.Generator) -> _Shape:
    offset, sector = rng.uniform(0, np.pi / 3), np.pi / 3
    return _polar(lambda phi, t: 1.0 / np.cos((phi - offset) % sector - sector / 2), 1.0 / np.cos(sector / 2))


def _unit_star(rng: np.random.Generator) -> _Shape:
    depth, phase = rng.uniform(0.18, 0.25), rng.uniform(0, 2 * np.pi)
    r0 = 1.0 / (1.0 - depth)
    return _polar(lambda phi, t: r0 * (1.0 + depth * np.cos(5 * phi + phase)), r0 * (1.0 + depth))


_UNIT_SHAPES = {"disc": _unit_disc, "bar": _unit_bar, "blob": _unit_blob, "hexagon": _unit_hexagon,
                "star": _unit_star}


def _scaled(inside: Inside, r: float) -> Inside:
    return lambda u, v, t: inside(u / r, v / r, t)


def _hsv_colour(h: float, s: float, v: float) -> np.ndarray:
    """RGB float32 (3,) from OpenCV HSV (h in [0, 180), s and v in [0, 255])."""
    hsv = np.array([[[h % 180.0, s, v]]], np.float32).round().astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def _part_texture(rng: np.random.Generator, size: int, kind: str, hue: float) -> np.ndarray:
    """A saturated texture of one hue, shape (size, size, 3) float32: bright base, dark accent pattern."""
    base = _hsv_colour(hue, rng.uniform(170, 235), rng.uniform(190, 240))
    accent = _hsv_colour(hue + rng.uniform(-6, 6), rng.uniform(150, 230), rng.uniform(60, 120))
    p = (pattern(rng, size, size, kind) * 0.5 + 0.5)[..., None] * rng.uniform(0.55, 0.8)
    return np.clip(base * (1 - p) + accent * p, 0.0, 1.0).astype(np.float32)


def _grid_cells(h: int, w: int, n: int) -> list[tuple[float, float, float, float]]:
    """Cells (cx, cy, cw, ch) of the grid with at least n cells whose smallest cell side is largest."""
    cols = max(range(1, n + 1), key=lambda c: min(h / math.ceil(n / c), w / c))
    rows = math.ceil(n / cols)
    cw, ch = w / cols, h / rows
    return [((i + 0.5) * cw, (j + 0.5) * ch, cw, ch) for j in range(rows) for i in range(cols)]


def _too_small(h: int, w: int, n: int, what: str) -> SmiteError:
    return SmiteError(
        f"a {w}x{h} frame is too small for {n} {what} of at least 1/8 of the frame that can move; "
        "use a larger size or fewer parts"
    )


def _motion(rng: np.random.Generator, cell: tuple[float, float, float, float], reach: float,
            scale_amp: float, head: bool, cap: float) -> _Motion:
    """A smooth orbit within the cell, its radius capped by ``cap`` px so parts move a few px per frame."""
    cx, cy, cw, ch = cell
    room_x, room_y = min(cw / 2 - reach - _MARGIN, cap), min(ch / 2 - reach - _MARGIN, cap)
    sign = rng.choice([-1.0, 1.0])
    return _Motion(
        centre=(cx, cy),
        orbit=(room_x * rng.uniform(0.7, 1.0), room_y * rng.uniform(0.7, 1.0)),
        orbit_speed=sign * 2 * np.pi / rng.uniform(50, 80),
        orbit_phase=rng.uniform(0, 2 * np.pi),
        angle0=rng.uniform(-0.1, 0.1) if head else rng.uniform(0, 2 * np.pi),
        spin=0.0 if head else rng.choice([-1.0, 1.0]) * np.deg2rad(rng.uniform(0.8, 2.5)),
        tilt=np.deg2rad(rng.uniform(8, 15)) if head else 0.0,
        tilt_speed=2 * np.pi / rng.uniform(40, 70),
        scale_amp=scale_amp,
        scale_speed=2 * np.pi / rng.uniform(36, 50),
        scale_phase=rng.uniform(0, 2 * np.pi),
        aspect_phase=rng.uniform(np.pi / 4, np.pi / 2),
    )


def _texture_size(local_reach: float) -> int:
    return 2 * math.ceil(local_reach) + 8


def _separate_parts(rng: np.random.Generator, h: int, w: int, n: int, hues: np.ndarray) -> list[_Part]:
    cells = _grid_cells(h, w, n)
    cap = _MAX_ORBIT * max(h, w)
    order = rng.permutation(len(cells))[:n]
    kinds = rng.permutation(_PART_PATTERNS)
    parts = []
    for k in range(n):
        name, cell = SHAPES[k], cells[order[k]]
        scale_amp = rng.uniform(0.08, 0.12)
        unit = _UNIT_SHAPES[name](rng)
        need = (max(h, w) / 8 + 3) / (2 * (1 - scale_amp))  # inradius keeping the part >= 1/8 frame
        half_cell = min(cell[2], cell[3]) / 2 - _MARGIN
        # Grow the part up to what still leaves a good orbit; shrink the orbit only to reach the minimum size.
        roomy = (half_cell - _GOOD_ROOM * max(h, w)) / (unit.r_out * (1 + scale_amp))
        r = max(need, min(need * rng.uniform(1.15, 1.5), roomy))
        if r * unit.r_out * (1 + scale_amp) > half_cell - _MIN_ROOM:
            raise _too_small(h, w, n, "non-overlapping parts")
        reach = unit.r_out * r * (1 + scale_amp)
        tex = _part_texture(rng, _texture_size(unit.r_out * r), str(kinds[k % len(kinds)]), hues[k])
        motion = _motion(rng, cell, reach, scale_amp, False, cap)
        parts.append(_Part(name, _scaled(unit.inside, r), tex, motion, reach))
    return parts


def _head_parts(rng: np.random.Generator, h: int, w: int, hues: np.ndarray) -> list[_Part]:
    """A face ellipse with a hair cap: the cap is a slightly larger ellipse above a wavy parting line."""
    scale_amp = rng.uniform(0.08, 0.12)
    b, hair_grow = 1.18, 1.08
    split_mid, split_amp = -0.25 * b, 0.07 * b
    split_freq, split_phase = rng.uniform(2.0, 3.0), rng.uniform(0, 2 * np.pi)
    split_speed = rng.uniform(0.1, 0.2)  # rad/frame: the parting line drifts, the hair moves on the face
    r_out = b * hair_grow
    # Thinnest extent of either part in unit coordinates: the hair cap at its centre (>= 1.06).
    thinnest = b * hair_grow + split_mid - split_amp
    need = (max(h, w) / 8 + 3) / (thinnest * (1 - scale_amp) * math.cos(np.deg2rad(15)))
    fits = (min(h, w) / 2 - _MARGIN - _MIN_ROOM) / (r_out * (1 + scale_amp))
    r = min(need * rng.uniform(1.1, 1.3), fits)
    if r < need:
        raise _too_small(h, w, 2, "touching parts")

    def split(u: np.ndarray, t: int) -> np.ndarray:
        return split_mid + split_amp * np.sin(split_freq * u + split_phase + split_speed * t)

    def face(u: np.ndarray, v: np.ndarray, t: int) -> np.ndarray:
        return (u**2 + (v / b) ** 2 <= 1.0) & (v >= split(u, t))

    def hair(u: np.ndarray, v: np.ndarray, t: int) -> np.ndarray:
        return ((u / hair_grow) ** 2 + (v / (b * hair_grow)) ** 2 <= 1.0) & (v < split(u, t))

    reach = r_out * r * (1 + scale_amp)
    motion = _motion(rng, (w / 2, h / 2, float(w), float(h)), reach, scale_amp, True, _MAX_ORBIT * max(h, w))
    size = _texture_size(r_out * r)
    kinds = rng.permutation(_PART_PATTERNS)[:2]
    return [_Part(name, _scaled(fn, r), _part_texture(rng, size, str(kind), hue), motion, reach)
            for name, fn, kind, hue in zip(TOUCHING_NAMES, (face, hair), kinds, hues, strict=True)]


def _background(rng: np.random.Generator, h: int, w: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """A muted textured canvas and the per-frame crop offsets (T, 2) of a constant slow pan."""
    speed, heading = rng.uniform(0.8, 2.0), rng.uniform(0, 2 * np.pi)
    vel = np.array([speed * math.cos(heading), speed * math.sin(heading)])
    travel = np.abs(vel) * max(num_frames - 1, 0)
    canvas_h, canvas_w = h + math.ceil(travel[1]) + 4, w + math.ceil(travel[0]) + 4
    tex = random_texture(rng, canvas_h, canvas_w, "noise")
    # Desaturate and darken so the saturated parts keep their hues to themselves.
    grey = tex.mean(axis=2, keepdims=True)
    canvas = (0.8 * (0.5 * tex + 0.5 * grey)).astype(np.float32)
    start = np.where(vel >= 0, 2.0, np.array([canvas_w - w - 2.0, canvas_h - h - 2.0]))
    offsets = start[None] + vel[None] * np.arange(num_frames)[:, None]
    return canvas, offsets


def _paint(frame: np.ndarray, labels: np.ndarray, part: _Part, label: int, t: int) -> np.ndarray:
    """Paint one part into ``frame``/``labels`` (in place); returns its (2, 3) transform at frame t."""
    h, w = labels.shape
    m = part.motion.matrix(t)
    inv = cv2.invertAffineTransform(m)
    x0, x1 = max(0, int(m[0, 2] - part.reach) - 1), min(w, int(m[0, 2] + part.reach) + 2)
    y0, y1 = max(0, int(m[1, 2] - part.reach) - 1), min(h, int(m[1, 2] + part.reach) + 2)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    u = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    v = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    inside = part.inside(u, v, t)
    half = part.texture.shape[0] / 2
    tex = cv2.remap(part.texture, (u + half).astype(np.float32), (v + half).astype(np.float32),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    frame[y0:y1, x0:x1][inside] = tex[inside]
    labels[y0:y1, x0:x1][inside] = label
    return m


def _check_args(num_frames: int, size: tuple[int, int], num_parts: int, touching: bool, seed: int,
                noise: float) -> tuple[int, int]:
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise SmiteError(f"num_frames must be a positive integer, got {num_frames!r}")
    if len(size) != 2 or any(not isinstance(s, (int, np.integer)) or s < _MIN_SIDE for s in size):
        raise SmiteError(f"size must be (height, width) with integers >= {_MIN_SIDE}, got {size!r}")
    if touching and num_parts != 2:
        raise SmiteError(f"touching=True makes exactly 2 parts (face and hair), got num_parts={num_parts}")
    if not isinstance(num_parts, (int, np.integer)) or not 1 <= num_parts <= len(SHAPES):
        raise SmiteError(f"num_parts must be an integer in 1..{len(SHAPES)}, got {num_parts!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SmiteError(f"seed must be a non-negative integer, got {seed!r}")
    if not (math.isfinite(noise) and noise >= 0):
        raise SmiteError(f"noise must be a finite standard deviation >= 0, got {noise!r}")
    return int(size[0]), int(size[1])


def make_shot(num_frames: int = 24, size: tuple[int, int] = (256, 256), num_parts: int = 3,
              touching: bool = False, seed: int = 0, noise: float = 0.0) -> SyntheticShot:
    """Generate a deterministic synthetic shot with exact part labels.

    Args:
        num_frames: T, number of frames.
        size: (height, width) of the frames in pixels.
        num_parts: parts besides background (1..5); their names are ``SHAPES[:num_parts]``.
        touching: make a head: two parts ``["face", "hair"]`` sharing a boundary in every frame
            (``num_parts`` must be 2).
        seed: the shot is a pure function of its arguments.
        noise: std of per-frame Gaussian noise added to the plates (labels and clean plates are unchanged).

    Returns:
        A :class:`SyntheticShot`: frames float32 (T, H, W, 3) in [0, 1], labels uint8 (T, H, W).
    """
    h, w = _check_args(num_frames, tuple(size), num_parts, touching, seed, noise)
    rng = np.random.default_rng(seed)
    hues = (rng.uniform(0, 180) + 180.0 * np.arange(num_parts) / num_parts) % 180.0
    hues = rng.permutation(hues)
    parts = _head_parts(rng, h, w, hues) if touching else _separate_parts(rng, h, w, num_parts, hues)
    canvas, offsets = _background(rng, h, w, num_frames)

    frames = np.empty((num_frames, h, w, 3), np.float32)
    labels = np.zeros((num_frames, h, w), np.uint8)
    transforms = np.empty((num_frames, len(parts), 2, 3), np.float64)
    noise_rng = np.random.default_rng([seed, 1])  # own stream: noise never changes the clean shot
    for t in range(num_frames):
        shift = np.array([[1.0, 0.0, -offsets[t, 0]], [0.0, 1.0, -offsets[t, 1]]])
        frames[t] = cv2.warpAffine(canvas, shift, (w, h), flags=cv2.INTER_LINEAR)
        for k, part in enumerate(parts):
            transforms[t, k] = _paint(frames[t], labels[t], part, k + 1, t)
        if noise > 0:
            frames[t] += noise_rng.normal(0.0, noise, frames[t].shape).astype(np.float32)
    np.clip(frames, 0.0, 1.0, out=frames)
    return SyntheticShot(frames, labels, [p.name for p in parts], transforms)


def _write_png(path: Path, image: np.ndarray) -> None:
    """Encode with OpenCV and write atomically (temp file in the same folder + os.replace)."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise SmiteError(f"cannot encode {path.name} as PNG")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.tobytes())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_shot(shot: SyntheticShot, folder: str | os.PathLike) -> dict:
    """Write a shot as 8-bit PNGs, frame numbers from 1.

    Layout: ``plate.%04d.png`` (RGB plates), ``gt/label.%04d.png`` (label maps, values 0..num_parts) and
    ``masks/mask.%04d.png`` (the reference masks: the same label maps).

    Returns:
        ``{"plates", "gt", "masks"}``: printf-style path patterns; ``"first_frame"``, ``"last_frame"``;
        ``"part_names"``.
    """
    root = Path(folder)
    try:
        (root / "gt").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SmiteError(f"cannot create shot folder {root}: {exc.strerror}; choose a writable one") from exc
    plates = np.clip(np.round(shot.frames * 255.0), 0, 255).astype(np.uint8)
    for i in range(len(plates)):
        number = i + 1
        _write_png(root / f"plate.{number:04d}.png", cv2.cvtColor(plates[i], cv2.COLOR_RGB2BGR))
        _write_png(root / "gt" / f"label.{number:04d}.png", shot.labels[i])
        _write_png(root / "masks" / f"mask.{number:04d}.png", shot.labels[i])
    return {
        "plates": str(root / "plate.%04d.png"),
        "gt": str(root / "gt" / "label.%04d.png"),
        "masks": str(root / "masks" / "mask.%04d.png"),
        "first_frame": 1,
        "last_frame": len(plates),
        "part_names": list(shot.part_names),
    }
