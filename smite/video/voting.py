"""Temporal voting along point tracks (method.md §6.5), vectorised, and pixel-track -> latent-grid conversion.

Every latent-grid point of every frame is a query. Along its track, inside a temporal window centred on
its query frame, the point collects the n-vectors of the maps where it is visible; the majority label
wins (ties to the smallest label) and the point's own location receives the mean of the winning vectors.
All query frames and points are processed at once with advanced indexing; query frames are only split
into chunks to bound memory for very long windows.
"""

import numpy as np
import torch
from torch import Tensor

# Upper bound on the elements of the gathered (frames, window, points, n) tensor per chunk of query frames.
_CHUNK_ELEMENTS = 1 << 25


def window_bounds(num_frames: int, window: int = 15) -> Tensor:
    """Start index of each query frame's temporal window, int64 (F,); the window is [a, a + min(window, F)).

    Length-``window`` windows ``[i - window//2, ...)`` centred at i, shifted to stay inside [0, F)
    (§6.5: for window 15, i < 7 -> [0, 15), 7 <= i < F-7 -> [i-7, i+8), else [F-15, F)). A window
    longer than the shot covers the whole shot.
    """
    length = min(window, num_frames)
    i = torch.arange(num_frames)
    return (i - window // 2).clamp(min=0).clamp(max=num_frames - length)


def _check(maps: Tensor, tracks_xy: Tensor, visible: Tensor, window: int) -> None:
    f, _, h, w = maps.shape
    if tracks_xy.shape != (f, f, h * w, 2) or visible.shape != (f, f, h * w):
        raise ValueError(
            f"maps {tuple(maps.shape)} need tracks_xy (F, F, H*W, 2) = {(f, f, h * w, 2)} and visible "
            f"(F, F, H*W); got {tuple(tracks_xy.shape)} and {tuple(visible.shape)}"
        )
    if window < 1:
        raise ValueError(f"voting window must be >= 1, got {window}")


def _vote_chunk(flat: Tensor, tracks_xy: Tensor, visible: Tensor, queries: Tensor, starts: Tensor,
                length: int, width: int) -> Tensor:
    """Voted vectors (Q, P, n) for query frames ``queries`` (Q,) with window starts ``starts`` (Q,).

    flat: maps as (F, H*W, n); tracks_xy/visible: full (F, F, P, 2)/(F, F, P).
    """
    num_points, n = flat.shape[1], flat.shape[2]
    height = num_points // width
    frames = starts[:, None] + torch.arange(length, device=starts.device)  # (Q, L)
    q = queries[:, None]
    xy = tracks_xy[q, frames]  # (Q, L, P, 2)
    vis = visible[q, frames]  # (Q, L, P)
    # The query frame itself: the point is visible at its own grid location, whatever the tracker said.
    own = frames == q  # (Q, L)
    grid = torch.arange(num_points, device=flat.device)
    pos = (xy[..., 1].clamp(0, height - 1) * width + xy[..., 0].clamp(0, width - 1))
    pos = torch.where(own[..., None], grid, pos)
    vis = vis | own[..., None]
    vectors = flat[frames[..., None], pos]  # (Q, L, P, n)
    labels = vectors.argmax(-1)  # first maximum, as a per-vector loop would pick
    onehot = (labels[..., None] == torch.arange(n, device=flat.device)) & vis[..., None]
    winner = onehot.sum(1).argmax(-1)  # (Q, P): the first maximal count is the smallest label
    keep = (vis & (labels == winner[:, None, :])).to(flat.dtype)  # (Q, L, P)
    return (vectors * keep[..., None]).sum(1) / keep.sum(1)[..., None]


def vote(maps: Tensor, tracks_xy: Tensor, visible: Tensor, window: int = 15) -> Tensor:
    """Temporal majority voting of §6.5.

    maps: (F, n, H, W) floating. tracks_xy: (F, F, P=H*W, 2) int64, ``[i, j, k]`` = (x, y) grid position
    in frame j of point k queried in frame i (the points of frame i are its H x W grid in row-major
    order). visible: (F, F, P) bool. Returns the voted maps (F, n, H, W), same dtype; each query point's
    own location in frame i receives the mean of the majority-label vectors along its track inside
    frame i's window (see :func:`window_bounds`); ties go to the smallest label. In its own frame a point
    always counts, at its own grid cell, whatever ``tracks_xy[i, i]``/``visible[i, i]`` say (§6.5: "the
    query frame itself is always visible"). Works for any F >= 1 and any window >= 1; differentiable in
    ``maps``.
    """
    _check(maps, tracks_xy, visible, window)
    f, n, h, w = maps.shape
    device = maps.device
    tracks_xy = tracks_xy.to(device=device, dtype=torch.long)
    visible = visible.to(device=device, dtype=torch.bool)
    flat = maps.reshape(f, n, h * w).transpose(1, 2)  # (F, P, n)
    starts = window_bounds(f, window).to(device)
    length = min(window, f)
    per_frame = max(1, length * h * w * n)
    step = max(1, _CHUNK_ELEMENTS // per_frame)
    queries = torch.arange(f, device=device)
    voted = [
        _vote_chunk(flat, tracks_xy, visible, queries[s:s + step], starts[s:s + step], length, w)
        for s in range(0, f, step)
    ]
    return torch.cat(voted).transpose(1, 2).reshape(f, n, h, w)


def tracks_to_grid(tracks: Tensor | np.ndarray, visible: Tensor | np.ndarray, frame_size: tuple[int, int],
                   grid: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Pixel tracks -> integer latent-grid positions (§6.5).

    tracks: (T, N, 2) float (x, y) in pixels of a frame of ``frame_size`` = (h, w); visible: (T, N) bool
    (numpy arrays or tensors). ``grid`` = (gh, gw) latent size; strides are w/gw and h/gh. Returns
    ``idx`` int64 (T, N, 2) = round(p / stride - 0.5) clamped into the grid, and ``visible`` bool (T, N),
    False where a position falls outside the grid.
    """
    h, w = frame_size
    gh, gw = grid
    p = tracks.double() if isinstance(tracks, Tensor) else torch.from_numpy(np.array(tracks, np.float64))
    vis = visible.bool() if isinstance(visible, Tensor) else torch.from_numpy(np.array(visible, bool))
    stride = torch.tensor([w / gw, h / gh], dtype=torch.float64)
    idx = torch.round(p / stride - 0.5).long()
    limit = torch.tensor([gw - 1, gh - 1])
    inside = ((idx >= 0) & (idx <= limit)).all(-1)
    return torch.minimum(idx.clamp(min=0), limit), vis & inside


def grid_queries(num_frames: int, frame_size: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """Tracker queries for every latent-grid point of every frame (§6.5): float32 (F * gh * gw, 3).

    Rows (t, x, y), frame-major, points row-major, at the cell centres ((gx + 0.5) * stride_x,
    (gy + 0.5) * stride_y) in pixels of a frame of ``frame_size`` = (h, w).
    """
    (h, w), (gh, gw) = frame_size, grid
    gx, gy = np.meshgrid(np.arange(gw), np.arange(gh))
    xy = np.stack([(gx.ravel() + 0.5) * w / gw, (gy.ravel() + 0.5) * h / gh], 1)
    rows = [np.c_[np.full(len(xy), t), xy] for t in range(num_frames)]
    return np.concatenate(rows).astype(np.float32)


def tracks_for_voting(tracks: Tensor | np.ndarray, visible: Tensor | np.ndarray, frame_size: tuple[int, int],
                      grid: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """A tracker's answer to :func:`grid_queries` -> the ``tracks_xy``, ``visible`` inputs of :func:`vote`.

    tracks: (F, F * P, 2) float pixels; visible: (F, F * P) bool, with P = gh * gw. Returns int64
    (F, F, P, 2) and bool (F, F, P), ``[i, j, k]`` = point k of query frame i seen in frame j.
    """
    idx, vis = tracks_to_grid(tracks, visible, frame_size, grid)
    f, p = idx.shape[0], grid[0] * grid[1]
    if idx.shape[1] != f * p:
        raise ValueError(f"expected tracks for {f} x {p} grid queries, got {idx.shape[1]} points")
    # Tracker rows are target frames j, columns query-major (i, k): reorder to [i, j, k].
    xy = idx.reshape(f, f, p, 2).transpose(0, 1).contiguous()
    return xy, vis.reshape(f, f, p).transpose(0, 1).contiguous()
