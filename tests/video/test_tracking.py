"""Point trackers: DIS flow tracker on a synthetic moving plate, CoTracker adapter against a stand-in."""

import sys

import cv2
import numpy as np
import pytest
import torch

from smite.errors import SmiteError
from smite.video.tracking import CoTrackerTracker, FlowTracker, get_tracker, sample_bilinear

SIZE, PLATE, FRAMES = 192, 320, 15
SHIFT = np.array([1.37, 0.61])  # plate translation per frame, pixels
ANGLE = 0.3  # plate rotation per frame, degrees
SQUARE, SQUARE_START, SQUARE_STEP = 36, np.array([10.0, 120.0]), np.array([5.0, -3.0])


def band_noise_rgb(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Band-limited colour noise in [0, 1], (h, w, 3): a sum of blurred white noise at three scales."""
    img = np.zeros((h, w, 3), np.float32)
    for sigma, weight in ((1.0, 0.3), (2.5, 0.4), (6.0, 0.3)):
        noise = rng.standard_normal((h, w, 3)).astype(np.float32)
        blurred = cv2.GaussianBlur(noise, (0, 0), sigma)
        img += weight * blurred / blurred.std()
    return np.clip(0.5 + 0.18 * img, 0, 1)


def plate_to_frame(t: int) -> np.ndarray:
    """Affine (3, 3) mapping plate pixels to frame-t pixels: rotation about the plate centre, translation."""
    centre = (PLATE / 2, PLATE / 2)
    rot = np.vstack([cv2.getRotationMatrix2D(centre, ANGLE * t, 1.0), [0, 0, 1]])
    offset = np.eye(3)
    offset[:2, 2] = SHIFT * t - (PLATE - SIZE) / 2  # the frame looks at the plate's centre at t = 0
    return offset @ rot


def square_corner(t) -> np.ndarray:
    """Top-left corner (x, y) of the square in frame(s) t (scalar or array): shape t.shape + (2,)."""
    return SQUARE_START + SQUARE_STEP * np.asarray(t, np.float64)[..., None]


@pytest.fixture(scope="module")
def shot() -> np.ndarray:
    """(T, SIZE, SIZE, 3) float32: a textured plate moving and rotating, under an opaque moving square."""
    rng = np.random.default_rng(3)
    plate = band_noise_rgb(rng, PLATE, PLATE)
    occluder = band_noise_rgb(rng, SQUARE, SQUARE)
    frames = []
    for t in range(FRAMES):
        frame = cv2.warpAffine(plate, plate_to_frame(t)[:2], (SIZE, SIZE), flags=cv2.INTER_CUBIC)
        x, y = np.rint(square_corner(t)).astype(int)
        frame[max(y, 0):y + SQUARE, max(x, 0):x + SQUARE] = occluder[max(-y, 0):, max(-x, 0):][
            : SIZE - max(y, 0), : SIZE - max(x, 0)]
        frames.append(frame)
    return np.clip(np.stack(frames), 0, 1).astype(np.float32)


def truth(points: np.ndarray, t0: int) -> np.ndarray:
    """True positions (T, M, 2) of plate points given at (M, 2) in frame t0."""
    back = np.linalg.inv(plate_to_frame(t0))
    homog = np.c_[points, np.ones(len(points))] @ back.T
    return np.stack([(homog @ plate_to_frame(t).T)[:, :2] for t in range(FRAMES)])


def occluded(p: np.ndarray, t: int, margin: float) -> np.ndarray:
    lo = np.rint(square_corner(t)) - 0.5 - margin
    return np.all((p >= lo) & (p <= lo + SQUARE + 2 * margin), axis=-1)


def inside(p: np.ndarray, margin: float) -> np.ndarray:
    return np.all((p >= margin) & (p <= SIZE - 1 - margin), axis=-1)


@pytest.fixture(scope="module")
def flow_result(shot):
    """Tracks of an 8-px grid queried in frames 0 and 7 (bidirectional for frame 7)."""
    xs = np.arange(4, SIZE, 8, dtype=np.float64)
    grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    query_frames = (0, 7)
    keep = [grid[~occluded(grid, t0, 1.0)] for t0 in query_frames]
    pairs = list(zip(query_frames, keep, strict=True))
    queries = np.concatenate([np.c_[np.full(len(g), t0), g] for t0, g in pairs])
    tracks, visible = FlowTracker().track(shot, queries)
    gt = np.concatenate([truth(g, t0) for t0, g in pairs], axis=1)
    return queries, tracks, visible, gt


def test_flow_tracks_follow_the_plate(flow_result):
    queries, tracks, visible, gt = flow_result
    assert tracks.shape == gt.shape and tracks.dtype == np.float32 and visible.dtype == bool
    frames = np.arange(FRAMES)[:, None]
    truly_visible = inside(gt, 2.0) & ~occluded(gt, frames, 2.0)
    # clear[t, m]: point m was never near an edge or the square between its query frame and t.
    safe = inside(gt, 3.0) & ~occluded(gt, frames, 3.0)  # (T, M)
    t0 = queries[:, 0].astype(int)[None, None, :]
    t, s = frames[:, :, None], np.arange(FRAMES)[None, :, None]
    between = (s >= np.minimum(t, t0)) & (s <= np.maximum(t, t0))  # (T, T, M)
    clear = np.all(safe[None] | ~between, axis=1)
    assert clear.sum() > 5000
    assert visible[clear].mean() > 0.9
    err = np.linalg.norm(tracks - gt, axis=-1)[visible & truly_visible]
    assert np.median(err) < 0.5
    assert np.percentile(err, 90) < 1.5
    # The query frame itself returns the queries, visible.
    at_query = tracks[queries[:, 0].astype(int), np.arange(len(queries))]
    np.testing.assert_allclose(at_query, queries[:, 1:], atol=1e-4)


def test_flow_points_leaving_the_frame_are_invisible(flow_result):
    _, _, visible, gt = flow_result
    left = ~inside(gt, -1.5)  # clearly outside the frame
    assert left.sum() > 50
    assert not visible[left].any()


def test_flow_occluded_points_are_invisible(flow_result):
    _, _, visible, gt = flow_result
    hidden = occluded(gt, np.arange(FRAMES)[:, None], -3.0)  # clearly under the square
    assert hidden.sum() > 50
    assert visible[hidden].mean() < 0.02


def test_sample_bilinear_interpolates_and_clamps():
    field = np.arange(12, dtype=np.float32).reshape(3, 4, 1)  # value = 4 y + x
    pts = np.array([[1.5, 0.5], [3.0, 2.0], [-5.0, 10.0], [2.25, 1.75]])
    np.testing.assert_allclose(sample_bilinear(field, pts)[:, 0], [3.5, 11.0, 8.0, 9.25])


def test_flow_tracker_single_frame_and_bad_queries():
    video = np.zeros((1, 16, 16, 3), np.float32)
    tracks, visible = FlowTracker().track(video, np.array([[0, 3.0, 4.0], [0, 20.0, 4.0]]))
    np.testing.assert_allclose(tracks[0], [[3, 4], [20, 4]])
    assert visible.tolist() == [[True, False]]
    with pytest.raises(SmiteError, match="query frames"):
        FlowTracker().track(video, np.array([[1, 3.0, 4.0]]))
    with pytest.raises(SmiteError, match=r"\(T, H, W, 3\)"):
        FlowTracker().track(video[..., 0], np.zeros((0, 3)))


def test_registry():
    assert isinstance(get_tracker("flow", preset="fine"), FlowTracker)
    with pytest.raises(SmiteError, match="flow, cotracker"):
        get_tracker("raft")
    with pytest.raises(SmiteError, match="preset"):
        get_tracker("flow", preset="ultra")
    with pytest.raises(SmiteError, match="bad options"):
        get_tracker("flow", window=3)


class StandIn:
    """Records its inputs and answers like CoTrackerPredictor."""

    def __init__(self):
        self.calls = []  # the queries of each call

    def __call__(self, video, queries=None, backward_tracking=False):
        self.video, self.queries, self.backward = video, queries, backward_tracking
        self.calls.append(queries)
        t, n = video.shape[1], queries.shape[1]
        offset = torch.arange(t, dtype=torch.float32)[None, :, None, None]
        tracks = queries[:, None, :, 1:].repeat(1, t, 1, 1) + offset  # moves by 1 px per frame
        visibility = torch.arange(t)[None, :, None].repeat(1, 1, n) % 2 == 0
        return tracks, visibility


def test_cotracker_adapter_scales_and_converts():
    video = np.random.default_rng(0).random((5, 12, 20, 3), dtype=np.float32)
    queries = np.array([[0, 1.5, 2.0], [3, 7.0, 4.25]])
    model = StandIn()
    tracks, visible = get_tracker("cotracker", model=model).track(video, queries)
    assert model.backward is True
    assert tuple(model.video.shape) == (1, 5, 3, 12, 20)
    np.testing.assert_allclose(model.video[0].permute(0, 2, 3, 1).numpy(), video * 255, rtol=1e-6)
    assert [tuple(q.shape) for q in model.calls] == [(1, 1, 3), (1, 1, 3)]  # one call per query frame
    assert model.queries.dtype == torch.float32
    assert tracks.shape == (5, 2, 2) and tracks.dtype == np.float32
    np.testing.assert_allclose(tracks[4], queries[:, 1:] + 4)
    assert visible.shape == (5, 2) and visible.dtype == bool
    assert visible[:, 0].tolist() == [True, False, True, False, True]


@pytest.mark.parametrize(("max_queries", "sizes"), [(4096, [4096] * 3), (1500, [1500, 1500, 1096] * 3)])
def test_cotracker_queries_one_frame_grid_per_call(max_queries, sizes):
    """§6.5: F calls of one frame's 64x64 grid, not one call of F x 4096 queries (or smaller bounded batches)."""
    video = np.zeros((3, 64, 64, 3), np.float32)
    ys, xs = np.mgrid[0:64, 0:64]
    grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    queries = np.concatenate([np.column_stack([np.full(4096, t), grid]) for t in range(3)])
    model = StandIn()
    tracks, visible = CoTrackerTracker(model=model, max_queries=max_queries).track(video, queries)
    assert [q.shape[1] for q in model.calls] == sizes
    assert all(len(np.unique(q[0, :, 0].numpy())) == 1 for q in model.calls)  # each call: one query frame
    np.testing.assert_allclose(tracks[2], queries[:, 1:] + 2)  # answers land on their own queries
    assert visible.shape == (3, 3 * 4096) and visible[0].all() and not visible[1].any()


def test_cotracker_missing_checkpoint_or_package(tmp_path, monkeypatch):
    with pytest.raises(SmiteError, match="checkpoint not found"):
        CoTrackerTracker(checkpoint=str(tmp_path / "nope.pth"))
    ckpt = tmp_path / "scaled_offline.pth"
    ckpt.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "cotracker", None)  # makes the import fail as when not installed
    monkeypatch.setitem(sys.modules, "cotracker.predictor", None)
    with pytest.raises(SmiteError, match="CoTracker is not installed"):
        CoTrackerTracker(checkpoint=str(ckpt))
