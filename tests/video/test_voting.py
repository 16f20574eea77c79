"""Temporal voting (method.md §6.5): official vectors, a brute-force loop, and track -> grid conversion."""

from pathlib import Path

import numpy as np
import pytest
import torch

import smite.video.voting as voting
from smite.video.voting import grid_queries, tracks_for_voting, tracks_to_grid, vote, window_bounds

VECTORS = np.load(Path(__file__).parents[1] / "data" / "official_vectors.npz")


def brute_force_vote(maps: np.ndarray, tracks: np.ndarray, vis: np.ndarray, window: int) -> np.ndarray:
    """§6.5 as a literal loop over query frames, points and window frames."""
    f, n, h, w = maps.shape
    out = maps.copy()
    length = min(window, f)
    for i in range(f):
        a = i - window // 2  # centre the window on i, then slide it back inside [0, f)
        a = max(0, min(a, f - length))
        for k in range(h * w):
            qy, qx = divmod(k, w)
            collected = []
            for j in range(a, a + length):
                if j == i:
                    collected.append(maps[j, :, qy, qx])
                elif vis[i, j, k]:
                    x, y = tracks[i, j, k]
                    collected.append(maps[j, :, y, x])
            labels = [int(np.argmax(v)) for v in collected]
            counts = [labels.count(c) for c in range(n)]
            best = counts.index(max(counts))  # first maximum = smallest label
            winners = [v for v, lab in zip(collected, labels, strict=True) if lab == best]
            out[i, :, qy, qx] = np.mean(winners, 0)
    return out


def random_case(rng: np.random.Generator, f: int, n: int, h: int, w: int):
    maps = rng.integers(0, 4, (f, n, h, w)).astype(np.float64) + rng.random((f, n, h, w)) * 0.5
    tracks = np.stack([rng.integers(0, w, (f, f, h * w)), rng.integers(0, h, (f, f, h * w))], -1)
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 2)
    tracks[np.arange(f), np.arange(f)] = grid  # a query sits on its own grid point in its own frame
    vis = rng.random((f, f, h * w)) < 0.7
    vis[np.arange(f), np.arange(f)] = True
    return maps, tracks, vis


def test_reproduces_official_vectors_exactly():
    out = vote(*(torch.from_numpy(VECTORS[k]) for k in ("vote_was", "vote_tracks_xy", "vote_visible")))
    assert out.dtype == torch.float64
    assert torch.equal(out, torch.from_numpy(VECTORS["vote_out"]))


@pytest.mark.parametrize(
    ("f", "n", "h", "w", "window"),
    [(1, 2, 3, 3, 15), (3, 3, 4, 6, 15), (7, 4, 5, 3, 15), (20, 5, 4, 4, 15), (20, 2, 3, 5, 4),
     (7, 3, 2, 4, 1), (16, 3, 4, 4, 16)],
)
def test_matches_brute_force(f, n, h, w, window):
    maps, tracks, vis = random_case(np.random.default_rng(f * 100 + n * 10 + window), f, n, h, w)
    expected = brute_force_vote(maps, tracks, vis, window)
    out = vote(torch.from_numpy(maps), torch.from_numpy(tracks), torch.from_numpy(vis), window)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12, rtol=0)
    if min(window, f) > 1:
        assert not np.allclose(expected, maps)  # the case really votes
    else:
        np.testing.assert_array_equal(out.numpy(), maps)  # a one-frame window keeps every vector


def test_chunked_equals_unchunked(monkeypatch):
    maps, tracks, vis = (torch.from_numpy(a) for a in random_case(np.random.default_rng(1), 9, 3, 4, 5))
    whole = vote(maps, tracks, vis, 5)
    monkeypatch.setattr(voting, "_CHUNK_ELEMENTS", 1)  # one query frame per chunk
    assert torch.equal(vote(maps, tracks, vis, 5), whole)


def test_query_frame_counts_even_when_marked_invisible():
    maps, tracks, vis = random_case(np.random.default_rng(2), 3, 2, 2, 2)
    vis[:] = False  # nothing visible: every point keeps its own vector
    out = vote(torch.from_numpy(maps), torch.from_numpy(tracks), torch.from_numpy(vis))
    np.testing.assert_array_equal(out.numpy(), maps)


def test_window_bounds_follow_the_method():
    starts = window_bounds(16, 15).tolist()
    assert starts == [0] * 8 + [1] * 8  # i <= 7 -> [0, 15), i >= 8 -> [1, 16)
    assert window_bounds(30, 15).tolist()[7:23] == list(range(0, 16))
    assert window_bounds(4, 15).tolist() == [0, 0, 0, 0]


def test_tracks_to_grid_square_and_non_square():
    centres = (np.stack(np.meshgrid(np.arange(64), np.arange(64)), -1).reshape(1, -1, 2) + 0.5) * 8
    idx, vis = tracks_to_grid(centres, np.ones((1, 4096), bool), (512, 512), (64, 64))
    assert idx.dtype == torch.int64 and vis.all()
    np.testing.assert_array_equal(idx.numpy() * 8, centres.astype(np.int64) - 4)

    # 60x200 frame on a 6x20 grid: stride 10 on both axes.
    tracks = torch.tensor([[[104.0, 33.0], [-6.0, 5.0], [199.0, 59.0], [205.0, 20.0], [50.0, 61.0]]])
    visible = torch.tensor([[True, True, True, True, True]])
    idx, vis = tracks_to_grid(tracks, visible, (60, 200), (6, 20))
    assert vis.tolist() == [[True, False, True, False, False]]
    assert idx[0, 0].tolist() == [10, 3] and idx[0, 2].tolist() == [19, 5]
    assert ((idx[..., 0] >= 0) & (idx[..., 0] < 20) & (idx[..., 1] >= 0) & (idx[..., 1] < 6)).all()
    # Invisible input stays invisible; a non-square stride (frame 40x200 on 8x10 -> 5 x 20 px).
    idx, vis = tracks_to_grid(tracks[:, :1], torch.tensor([[False]]), (40, 200), (8, 10))
    assert vis.tolist() == [[False]] and idx[0, 0].tolist() == [5, 6]


def test_grid_queries_round_trip_through_a_still_tracker():
    """A tracker that sees no motion gives every query its own cell in every frame."""
    queries = grid_queries(3, (40, 60), (4, 6))
    assert queries.shape == (3 * 24, 3) and queries.dtype == np.float32
    np.testing.assert_allclose(queries[25], [1, 15.0, 5.0])  # frame 1, point 1 = cell (x 1, y 0)
    tracks = np.broadcast_to(queries[None, :, 1:], (3, 72, 2))  # every point stays where it was queried
    xy, vis = tracks_for_voting(tracks, np.ones((3, 72), bool), (40, 60), (4, 6))
    assert xy.shape == (3, 3, 24, 2) and vis.shape == (3, 3, 24) and vis.all()
    grid = torch.stack(torch.meshgrid(torch.arange(6), torch.arange(4), indexing="xy"), -1).reshape(24, 2)
    assert all(torch.equal(xy[i, j], grid) for i in range(3) for j in range(3))
    # Point k of query frame 2 seen in frame 0 comes from tracker column 2 * 24 + k.
    moved = tracks.copy()
    moved[0, 2 * 24 + 5] = [55.0, 35.0]
    xy, _ = tracks_for_voting(moved, np.ones((3, 72), bool), (40, 60), (4, 6))
    assert xy[2, 0, 5].tolist() == [5, 3] and xy[0, 2, 5].tolist() == grid[5].tolist()
