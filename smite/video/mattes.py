"""From per-part logits on the latent grid to mattes at the plate's resolution.

Maps come back by cropping the plate's region of the latent grid and resizing it to the plate's size; soft
mattes are a softmax over parts at ``matte_temperature`` (logit units), labels the argmax.

Edges (issue 13): bilinear upsampling of a 64-cell grid gives soft, blobby edges a cell or two wide. The
``refined`` edges re-solve only the uncertain band (no part above ``BAND_HIGH``, i.e. some part between 0.3 and
0.7: the unknown region of a trimap) with closed-form alpha matting on the plate (Levin et al. 2008, from
pymatting); outside the band each pixel belongs wholly to its most likely part. All parts share one matting
Laplacian, and because its null space holds the constants the per-part solutions sum to 1 by construction
(renormalised after clipping anyway). A weak pull towards the upsampled probabilities keeps the system positive
definite where a band region touches no known pixel (a part the model is unsure of everywhere stays soft
instead of vanishing). ``guided`` (a colour guided filter of each part, used in the band only) is the
compared alternative, kept for the bench. Every length scales with the plate pixels per latent cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from smite.errors import SmiteError
from smite.model.framing import Framing

EDGE_METHODS = ("refined", "bilinear", "guided")
DEFAULT_EDGES = "refined"
BAND_HIGH = 0.7  # a pixel whose most likely part is below this is unknown (two parts: the 0.3-0.7 band)
BAND_GROW = 0.25  # the band is widened by this many latent cells: the grid's 0.5 contour may miss the edge
MATTING_EPSILON = 1e-5  # colour-line regulariser of the matting Laplacian (plates in [0, 1], some grain)
PRIOR_WEIGHT = 1e-3  # pull towards the upsampled probabilities (keeps unseeded band regions soft, not erased)
WORK_CELL = 8.0  # plate px per latent cell at which the band is matted first
MAX_BAND = 0.25  # above this fraction of uncertain pixels a model has no edges to sharpen: mattes stay bilinear
TILE = 128  # plate pixels per matting tile (plus a margin): bounded memory, little work off the band
CG_TOLERANCE = 1e-4


@dataclass
class FrameMattes:
    """Result for one frame: ``alphas`` float32 (n, H, W) summing to 1 over parts, ``labels`` uint16 (H, W)."""

    alphas: np.ndarray
    labels: np.ndarray


def maps_to_plate(maps: torch.Tensor, framing: Framing) -> torch.Tensor:
    """Latent-grid maps (n, S, S) -> plate-sized maps (n, H, W): crop the plate's box, resize bilinearly."""
    r = framing.resolution
    full = F.interpolate(maps[None].float(), size=(r, r), mode="bilinear", align_corners=False)
    top, left, h, w = framing.box
    box = full[..., top : top + h, left : left + w]
    return F.interpolate(box, size=framing.plate_size, mode="bilinear", align_corners=False)[0]


def mattes_from_logits(logits: torch.Tensor, temperature: float) -> FrameMattes:
    """Soft mattes = softmax over parts of logits / temperature; labels = argmax."""
    alphas = torch.softmax(logits / max(temperature, 1e-6), dim=0)
    labels = logits.argmax(0).to(torch.int32)
    return FrameMattes(alphas.cpu().numpy().astype(np.float32), labels.cpu().numpy().astype(np.uint16))


def refine_frame(mattes: FrameMattes, plate: np.ndarray, scale: float, method: str | None = None) -> FrameMattes:
    """A frame's bilinear mattes refined on its plate (``scale`` = plate px per latent cell); labels = argmax."""
    if check_edges(method) == "bilinear":
        return mattes
    alphas = refine_mattes(mattes.alphas, plate, scale, method)
    return FrameMattes(alphas, alphas.argmax(0).astype(np.uint16))


def check_edges(method: str | None) -> str:
    """The edge method's name (None -> the refined default); one clear error for an unknown one."""
    method = DEFAULT_EDGES if method is None else method
    if method not in EDGE_METHODS:
        raise SmiteError(f"unknown edges {method!r}; use one of {', '.join(EDGE_METHODS)}")
    return method


def upsample_mattes(probs: np.ndarray, plate: np.ndarray, method: str | None = None) -> np.ndarray:
    """Part probabilities on a coarse grid -> mattes at the plate's resolution.

    Args:
        probs: float32 (P, h, w), summing to 1 over P, covering the same area as the plate.
        plate: float32 (H, W, 3), display-referred RGB in [0, 1].
        method: ``None`` or ``"refined"`` (closed-form matting in the uncertain band), ``"bilinear"`` (a plain
            bilinear resize, what the mattes were before edges were refined), or ``"guided"``.

    Returns:
        float32 (P, H, W) summing to 1 over P.
    """
    method = check_edges(method)
    probs, plate = np.asarray(probs, np.float32), np.asarray(plate, np.float32)
    if probs.ndim != 3 or plate.ndim != 3 or plate.shape[2] != 3:
        raise SmiteError(f"upsample_mattes needs probs (P, h, w) and a plate (H, W, 3), got {probs.shape}, "
                         f"{plate.shape}")
    size = plate.shape[:2]
    soft = F.interpolate(torch.from_numpy(probs)[None], size=size, mode="bilinear", align_corners=False)[0].numpy()
    if method == "bilinear":
        return soft
    scale = max(size[0] / probs.shape[1], size[1] / probs.shape[2])
    return refine_mattes(soft, plate, scale, method)


def refine_mattes(soft: np.ndarray, plate: np.ndarray, scale: float, method: str | None = None) -> np.ndarray:
    """Refine upsampled mattes (P, H, W) with their plate (H, W, 3); ``scale`` = plate pixels per latent cell.

    Matting runs where a latent cell is at most ``WORK_CELL`` px (the plate reduced by area when it is larger);
    on larger plates its result is brought back to full size and matted again in a narrow band around the
    edges it found, so the cost follows the length of the edges, not the square of the upsampling factor.
    """
    method = check_edges(method)
    if method == "bilinear":
        return soft.astype(np.float32)
    if soft.shape[1:] != plate.shape[:2]:
        raise SmiteError(f"mattes {soft.shape[1:]} and plate {plate.shape[:2]} differ in size")
    plate = np.clip(plate, 0.0, 1.0, dtype=np.float32)
    if _unsure(soft):  # matting the whole frame would cost seconds per frame and sharpen nothing
        return soft.astype(np.float32)
    if method == "guided":
        return _refine_once(soft, plate, BAND_GROW * scale, _guided, scale)
    factor = scale / WORK_CELL
    if factor <= 1.5:
        return _refine_once(soft, plate, BAND_GROW * scale, _matting, scale)
    h, w = plate.shape[:2]
    small = (max(8, round(w / factor)), max(8, round(h / factor)))
    work = np.stack([cv2.resize(p, small, interpolation=cv2.INTER_AREA) for p in soft])
    work = _refine_once(work, cv2.resize(plate, small, interpolation=cv2.INTER_AREA), BAND_GROW * WORK_CELL,
                        _matting, WORK_CELL)
    back = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in work])
    if _unsure(back):
        return back / back.sum(0, keepdims=True)
    return _refine_once(back, plate, factor / 2, _matting, factor)


def _unsure(soft: np.ndarray) -> bool:
    """Whether more than ``MAX_BAND`` of the pixels have no part above ``BAND_HIGH`` (a model unsure almost
    everywhere, e.g. one learned in a few steps)."""
    return bool((soft.max(0) < BAND_HIGH).mean() > MAX_BAND)


def _refine_once(soft: np.ndarray, plate: np.ndarray, grow: float, solve, scale: float) -> np.ndarray:
    """One refinement: pixels off the band take their most likely part wholly, the band is re-solved."""
    unknown = uncertain_band(soft, grow)
    best = soft.argmax(0)
    hard = np.stack([best == c for c in range(len(soft))]).astype(np.float32)
    if not unknown.any():
        return hard
    out = np.clip(solve(soft, hard, plate, unknown, scale), 0.0, 1.0)
    return (out / np.maximum(out.sum(0, keepdims=True), 1e-6)).astype(np.float32)


def uncertain_band(soft: np.ndarray, grow: float) -> np.ndarray:
    """bool (H, W): pixels whose most likely part is below ``BAND_HIGH``, widened by ``grow`` px.

    The widening never swallows a known region whole: a thin part's only seed pixels stay known.
    """
    band = soft.max(0) < BAND_HIGH
    grow = int(round(grow))
    if grow <= 0 or not band.any():
        return band
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    grown = cv2.dilate(band.astype(np.uint8), kernel) > 0
    known = ~band
    _, regions = cv2.connectedComponents(known.astype(np.uint8), connectivity=8)
    surviving = np.zeros(regions.max() + 1, bool)
    surviving[regions[known & ~grown]] = True
    swallowed = known & ~surviving[regions]
    return grown & ~swallowed


# -- closed-form matting in the band ---------------------------------------------------------------------------


def _tiles(unknown: np.ndarray, tile: int, margin: int):
    """(core slices, padded slices) of the tiles whose core holds unknown pixels."""
    h, w = unknown.shape
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            if not unknown[y : y + tile, x : x + tile].any():
                continue
            core = (slice(y, min(y + tile, h)), slice(x, min(x + tile, w)))
            pad = (slice(max(0, y - margin), min(y + tile + margin, h)),
                   slice(max(0, x - margin), min(x + tile + margin, w)))
            yield core, pad


def _matting(soft: np.ndarray, hard: np.ndarray, plate: np.ndarray, unknown: np.ndarray, scale: float) -> np.ndarray:
    """Closed-form matting of every part over the band, tile by tile (each tile sees a margin of context)."""
    out = hard.copy()
    margin = max(8, math.ceil(2 * scale))
    for core, pad in _tiles(unknown, TILE, margin):
        solved = _solve_tile(soft[:, pad[0], pad[1]], hard[:, pad[0], pad[1]], plate[pad], unknown[pad])
        cy, cx = slice(core[0].start - pad[0].start, core[0].stop - pad[0].start), \
            slice(core[1].start - pad[1].start, core[1].stop - pad[1].start)
        region = unknown[core]
        out[:, core[0], core[1]][:, region] = solved[:, cy, cx][:, region]
    return out


def _solve_tile(soft: np.ndarray, hard: np.ndarray, image: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """(L_UU + w I) a_U = -L_UK a_K + w p_U per part present in the tile, sharing one Laplacian and preconditioner."""
    from pymatting import cf_laplacian, cg, ichol  # numba-compiled, imported only when edges are refined

    lap = cf_laplacian(image.astype(np.float64), MATTING_EPSILON, 1, is_known=~unknown)
    u, k = unknown.ravel(), ~unknown.ravel()
    lap_u = lap[u][:, u].tocsc()
    system = (lap_u + PRIOR_WEIGHT * _identity(lap_u.shape[0])).tocsc()
    coupling = lap[u][:, k]
    precondition = ichol(system)
    out = np.zeros_like(soft)
    for c in range(len(soft)):
        known_c, prior = hard[c].ravel()[k].astype(np.float64), soft[c].ravel()[u].astype(np.float64)
        if not known_c.any() and prior.max() < 1e-3:
            continue  # part absent from this tile
        rhs = -coupling.dot(known_c) + PRIOR_WEIGHT * prior
        out[c][unknown] = cg(system, rhs, x0=prior, rtol=CG_TOLERANCE, M=precondition)
    return out


def _identity(n: int):
    import scipy.sparse

    return scipy.sparse.identity(n, format="csc")


# -- guided filter in the band (compared, not the default) -----------------------------------------------------


def _guided(soft: np.ndarray, hard: np.ndarray, plate: np.ndarray, unknown: np.ndarray, scale: float) -> np.ndarray:
    """Colour guided filter (He et al.) of each part's upsampled probability, used in the band only."""
    radius, eps = max(1, round(scale / 2)), 1e-3
    out = hard.copy()
    for c in range(len(soft)):
        if soft[c][unknown].max() < 1e-3:
            continue
        out[c][unknown] = _guided_filter(plate, soft[c], radius, eps)[unknown]
    return out


def _guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Colour-guided filter: per-window linear model src ~ a . guide + b, averaged over windows."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(src)
    cov_ip = box(guide * src[..., None]) - mean_i * mean_p[..., None]
    var = box(np.einsum("hwi,hwj->hwij", guide, guide).reshape(*src.shape, 9)).reshape(*src.shape, 3, 3)
    var = var - np.einsum("hwi,hwj->hwij", mean_i, mean_i) + eps * np.eye(3, dtype=np.float32)
    a = np.linalg.solve(var, cov_ip[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(-1)
    return (box(a) * guide).sum(-1) + box(b)
