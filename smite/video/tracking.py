"""Pluggable point trackers with CoTracker's conventions (method.md §0.5, §6.5).

``tracker.track(video, queries) -> (tracks, visible)``:
* video: float32 (T, H, W, 3) RGB in [0, 1];
* queries: (N, 3) rows (t, x, y), t a frame index, (x, y) in pixels (pixel centres at integers);
* tracks: float32 (T, N, 2) (x, y) pixels in every frame; visible: bool (T, N).

``flow`` (default) chains OpenCV DIS optical flow and needs no weights. ``cotracker`` adapts a
user-installed CoTracker3 offline model (CC-BY-NC: never a dependency of SMITE, never vendored).
This module imports no torch unless the CoTracker adapter is used.
"""

import os
from collections.abc import Iterator
from typing import Any, Protocol

import cv2
import numpy as np

from smite.errors import SmiteError

# OpenCV's DIS presets stop at MEDIUM; "fine" is MEDIUM refined down to full resolution (finest scale 0)
# with denser patches and more variational refinement: on textured test plates about 7x slower, with
# about 2.5x smaller track errors.
DIS_PRESETS = ("medium", "fine")
_DIS_MIN_SIZE = 16  # OpenCV's DIS refuses images smaller than 12 px
COTRACKER_INSTALL = (
    "CoTracker is not installed: pip install git+https://github.com/facebookresearch/co-tracker "
    "(CC-BY-NC, non-commercial) and download scaled_offline.pth, or use the 'flow' tracker"
)


class Tracker(Protocol):
    """Anything that tracks query points through a video (see the module docstring for conventions)."""

    def track(self, video: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """video (T, H, W, 3) float32, queries (N, 3) -> tracks (T, N, 2) float32, visible (T, N) bool."""
        ...


def to_grey(frames: np.ndarray) -> np.ndarray:
    """RGB float frames (..., H, W, 3) in [0, 1] -> grey uint8 (..., H, W)."""
    frames = np.asarray(frames, np.float32)
    rgb = np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)
    grey = cv2.cvtColor(rgb.reshape(-1, frames.shape[-2], 3), cv2.COLOR_RGB2GRAY)
    return grey.reshape(frames.shape[:-1])


def dis_flow(first: np.ndarray, second: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Dense DIS optical flow from grey uint8 ``first`` (H, W) to ``second``: float32 (H, W, 2) (dx, dy).

    ``first[y, x]`` matches ``second`` at ``(x + dx, y + dy)``. Frames smaller than DIS's minimum are
    padded (edge replication).
    """
    if preset not in DIS_PRESETS:
        raise SmiteError(f"unknown DIS flow preset {preset!r}: use one of {', '.join(DIS_PRESETS)}")
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    if preset == "fine":
        dis.setFinestScale(0)
        dis.setPatchStride(2)
        dis.setVariationalRefinementIterations(10)
    h, w = first.shape
    grow = ((0, max(0, _DIS_MIN_SIZE - h)), (0, max(0, _DIS_MIN_SIZE - w)))
    first, second = np.pad(first, grow, mode="edge"), np.pad(second, grow, mode="edge")
    return dis.calc(first, second, None)[:h, :w]


def sample_bilinear(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``field`` (H, W, C) at ``points`` (M, 2) (x, y), border-clamped: (M, C)."""
    h, w = field.shape[:2]
    x = np.clip(points[:, 0], 0, w - 1)
    y = np.clip(points[:, 1], 0, h - 1)
    x0 = np.clip(np.floor(x), 0, max(w - 2, 0)).astype(np.int64)
    y0 = np.clip(np.floor(y), 0, max(h - 2, 0)).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = field[y0, x0] * (1 - fx) + field[y0, x1] * fx
    bottom = field[y1, x0] * (1 - fx) + field[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _check_inputs(video: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    video = np.asarray(video, np.float32)
    queries = np.asarray(queries, np.float64)
    if video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] < 1:
        raise SmiteError(f"tracker video must be (T, H, W, 3) RGB frames, got shape {video.shape}")
    if queries.ndim != 2 or queries.shape[1] != 3:
        raise SmiteError(f"tracker queries must be (N, 3) rows (t, x, y), got shape {queries.shape}")
    t = queries[:, 0]
    if len(t) and (np.any(t != np.round(t)) or t.min() < 0 or t.max() >= video.shape[0]):
        raise SmiteError(
            f"tracker query frames must be integers in [0, {video.shape[0]}), got {np.unique(t)[:10]}"
        )
    return video, queries


def motion_boundary(flow: np.ndarray, radius: int = 0) -> np.ndarray:
    """Squared flow-gradient magnitude |grad u|^2 + |grad v|^2 of ``flow`` (H, W, 2), max-filtered over a
    (2 radius + 1)^2 square: float32 (H, W, 1)."""
    total = np.zeros(flow.shape[:2], np.float32)
    for c in range(2):
        # A 3x3 Sobel sums to 8 times the per-pixel derivative.
        gx = cv2.Sobel(flow[..., c], cv2.CV_32F, 1, 0, ksize=3) / 8.0
        gy = cv2.Sobel(flow[..., c], cv2.CV_32F, 0, 1, ksize=3) / 8.0
        total += gx * gx + gy * gy
    if radius > 0:
        total = cv2.dilate(total, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    return total[..., None]


class FlowTracker:
    """Point tracker chaining DIS optical flow through the shot, with occlusion checks for visibility.

    Flows are computed once per consecutive frame pair in both directions. The queries of one frame are
    chained together forwards and backwards, sampling the flow bilinearly at sub-pixel positions. At each
    step p -> q = p + go(p) a point becomes invisible when
    * the forward-backward round trip fails: ``|go(p) + back(q)| > max(fb_size * max(H, W), fb_rel * |go(p)|)``
      (the point was covered, or the flow is wrong there);
    * it is near a motion boundary: ``max |grad go|^2 > mb_rel * |go(p)|^2 + mb_abs`` within ``mb_radius``
      px of p (the criterion of Sundaram et al., ECCV 2010, widened by a max filter because DIS places
      boundaries to a pixel or two). Flow drags background points along with an occluder's edge
      *consistently* in both directions, which the round trip alone does not catch;
    * it leaves the frame ([0, W-1] x [0, H-1]).
    Once lost, a point stays lost along that direction (its position keeps following the flow, so tracks
    stay defined). The thresholds scale with the image and the flow: DIS's round-trip error on real, noisy,
    JPEG-coded plates is a few pixels at 256 px, and a loss at any of ten chained steps is final, so the
    former 1 px / 0.002 kept only half the points at +10 frames (measured with ``bench/tracker.py`` on warped
    real footage: see the README for the figures).
    """

    def __init__(self, preset: str = "medium", fb_size: float = 0.012, fb_rel: float = 0.15,
                 mb_rel: float = 0.02, mb_abs: float = 0.03, mb_radius: int = 2) -> None:
        if preset not in DIS_PRESETS:
            raise SmiteError(f"unknown DIS flow preset {preset!r}: use one of {', '.join(DIS_PRESETS)}")
        self.preset = preset
        self.fb_size, self.fb_rel = float(fb_size), float(fb_rel)
        self.mb_rel, self.mb_abs, self.mb_radius = float(mb_rel), float(mb_abs), int(mb_radius)

    def track(self, video: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """video (T, H, W, 3) float32, queries (N, 3) -> tracks (T, N, 2) float32, visible (T, N) bool."""
        video, queries = _check_inputs(video, queries)
        grey = to_grey(video)
        num = len(grey)
        forward = [dis_flow(grey[t], grey[t + 1], self.preset) for t in range(num - 1)]
        backward = [dis_flow(grey[t + 1], grey[t], self.preset) for t in range(num - 1)]
        # One chain per direction: links[t] = (next frame, flow to it, its motion boundaries, return flow).
        directions = (
            {t: (t + 1, forward[t], self._boundary(forward[t]), backward[t]) for t in range(num - 1)},
            {t + 1: (t, backward[t], self._boundary(backward[t]), forward[t]) for t in range(num - 1)},
        )
        tracks = np.zeros((num, len(queries), 2), np.float32)
        visible = np.zeros((num, len(queries)), bool)
        frame_of = queries[:, 0].astype(np.int64)
        for t0 in np.unique(frame_of):
            sel = np.flatnonzero(frame_of == t0)
            start = queries[sel, 1:]
            alive = self._inside(start, grey.shape[1:])
            tracks[t0, sel], visible[t0, sel] = start, alive
            for links in directions:
                for t, p, ok in self._chain(start, alive, int(t0), links):
                    tracks[t, sel], visible[t, sel] = p, ok
        return tracks, visible

    def _boundary(self, flow: np.ndarray) -> np.ndarray:
        return motion_boundary(flow, self.mb_radius)

    @staticmethod
    def _inside(p: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        return (p[:, 0] >= 0) & (p[:, 0] <= w - 1) & (p[:, 1] >= 0) & (p[:, 1] <= h - 1)

    def _chain(self, p: np.ndarray, alive: np.ndarray, t: int, links: dict) -> Iterator[tuple]:
        """Follow points ``p`` (M, 2), visible ``alive`` (M,), from frame ``t`` along ``links`` (see track).

        Yields (frame, positions (M, 2), visible (M,)) for each following frame in that direction.
        """
        while t in links:
            t, go_field, boundary, back_field = links[t]
            go = sample_bilinear(go_field, p)
            q = p + go
            speed2 = (go * go).sum(1)
            round_trip = np.linalg.norm(go + sample_bilinear(back_field, q), axis=1)
            fb_floor = self.fb_size * max(go_field.shape[:2])
            consistent = round_trip <= np.maximum(fb_floor, self.fb_rel * np.sqrt(speed2))
            smooth = sample_bilinear(boundary, p)[:, 0] <= self.mb_rel * speed2 + self.mb_abs
            alive = alive & consistent & smooth & self._inside(q, go_field.shape[:2])
            p = q
            yield t, p, alive


class CoTrackerTracker:
    """Adapter for a user-installed CoTracker3 offline model (``cotracker`` package, CC-BY-NC).

    Fixes §12.9: the video is passed in 0..255, the range CoTracker expects. ``model`` may be any callable
    with the predictor's signature ``model(video (1, T, 3, H, W), queries=(1, N, 3), backward_tracking=True)
    -> (tracks (1, T, N, 2), visibility (1, T, N))``; when omitted it is loaded from ``checkpoint``.
    Queries go in one call per query frame, at most ``max_queries`` at a time (§6.5: one frame's 64x64 grid per
    call): the tracker's memory grows with the queries of a call, and a window's F x 4096 at once would not fit
    on a 24-48 GB card.
    """

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", model: Any = None,
                 max_queries: int = 4096) -> None:
        if max_queries < 1:
            raise SmiteError(f"max_queries must be at least 1, got {max_queries}")
        self.device, self.max_queries = device, int(max_queries)
        self.model = model if model is not None else _load_cotracker(checkpoint, device)

    def track(self, video: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """video (T, H, W, 3) float32, queries (N, 3) -> tracks (T, N, 2) float32, visible (T, N) bool."""
        import torch

        video, queries = _check_inputs(video, queries)
        clip = torch.from_numpy(np.ascontiguousarray(video * 255.0)).permute(0, 3, 1, 2)[None].to(self.device)
        tracks = np.zeros((len(video), len(queries), 2), np.float32)
        visible = np.zeros((len(video), len(queries)), bool)
        for sel in self._batches(queries[:, 0]):
            points = torch.from_numpy(queries[sel].astype(np.float32))[None].to(self.device)
            with torch.no_grad():
                out, vis = self.model(clip, queries=points, backward_tracking=True)
            tracks[:, sel] = out[0].detach().float().cpu().numpy()
            vis = vis[0].detach().cpu()
            vis = vis.squeeze(-1) if vis.ndim == 3 else vis
            visible[:, sel] = vis.numpy() if vis.dtype == torch.bool else vis.float().numpy() > 0.5
        return tracks, visible

    def _batches(self, frames: np.ndarray) -> Iterator[np.ndarray]:
        """Indices of the queries of each call: one query frame per call, at most ``max_queries`` each."""
        for t in np.unique(frames):
            sel = np.flatnonzero(frames == t)
            for start in range(0, len(sel), self.max_queries):
                yield sel[start : start + self.max_queries]


def _load_cotracker(checkpoint: str | None, device: str) -> Any:
    """The CoTracker predictor from ``checkpoint``; SmiteError when the file or the package is missing."""
    if not checkpoint or not os.path.isfile(checkpoint):
        raise SmiteError(
            f"CoTracker checkpoint not found: {checkpoint!r}; download "
            "https://huggingface.co/facebook/cotracker3/resolve/main/scaled_offline.pth and pass its path"
        )
    try:
        from cotracker.predictor import CoTrackerPredictor
    except ImportError:
        raise SmiteError(COTRACKER_INSTALL) from None
    return CoTrackerPredictor(checkpoint=checkpoint).to(device).eval()


TRACKERS = {"flow": FlowTracker, "cotracker": CoTrackerTracker}


def get_tracker(name: str, **options: Any) -> Tracker:
    """The tracker called ``name`` (``flow`` or ``cotracker``) built with ``options``."""
    if name not in TRACKERS:
        raise SmiteError(f"unknown tracker {name!r}: use one of {', '.join(TRACKERS)}")
    try:
        return TRACKERS[name](**options)
    except TypeError as err:
        raise SmiteError(f"bad options for tracker {name!r}: {err}") from None
