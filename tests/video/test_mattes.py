"""upsample_mattes (issue 13): shapes and sums, today's bilinear path, edges pulled onto the plate's edges, thin parts
kept, and exact ground truth reduced to the latent grid brought back closer to the truth than bilinear."""

import numpy as np
import pytest
import torch

from smite.errors import SmiteError
from smite.evaluate.edges import edge_scores
from smite.mattes import upsample_mattes
from smite.model.framing import Framing
from smite.synthetic.edges import make_edge_shot, to_grid
from smite.video.mattes import maps_to_plate, refine_mattes

A, B, C = np.array([0.9, 0.2, 0.1]), np.array([0.1, 0.3, 0.8]), np.array([0.2, 0.8, 0.2])


def _random_probs(rng: np.random.Generator, parts: int, h: int, w: int) -> np.ndarray:
    logits = rng.normal(0, 3, (parts, h, w))
    e = np.exp(logits - logits.max(0))
    return (e / e.sum(0)).astype(np.float32)


def _step_plate(size: int, edge: float) -> np.ndarray:
    """Colour A left of x = ``edge``, B right of it, the edge pixel anti-aliased."""
    cover = np.clip(edge - np.arange(size), 0, 1)  # fraction of each pixel left of the edge
    row = cover[:, None] * A + (1 - cover[:, None]) * B
    return np.broadcast_to(row, (size, size, 3)).astype(np.float32).copy()


@pytest.mark.parametrize("method", [None, "refined", "bilinear", "guided"])
def test_shape_dtype_and_sum(method):
    rng = np.random.default_rng(0)
    probs = _random_probs(rng, 3, 6, 8)
    plate = rng.uniform(0, 1, (48, 64, 3)).astype(np.float32)
    out = upsample_mattes(probs, plate, method)
    assert out.shape == (3, 48, 64) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-5)
    assert out.min() >= 0 and out.max() <= 1 + 1e-6


def test_bilinear_is_todays_output():
    rng = np.random.default_rng(1)
    probs = _random_probs(rng, 4, 8, 8)
    plate = rng.uniform(0, 1, (64, 64, 3)).astype(np.float32)
    today = maps_to_plate(torch.from_numpy(probs), Framing((64, 64), 64)).numpy()
    assert np.array_equal(upsample_mattes(probs, plate, "bilinear"), today)


def test_bad_input_is_one_clear_error():
    plate = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(SmiteError, match="unknown edges"):
        upsample_mattes(np.ones((1, 2, 2), np.float32), plate, "bicubic")
    with pytest.raises(SmiteError, match="probs"):
        upsample_mattes(np.ones((2, 2), np.float32), plate)


def test_step_edge_pulls_the_blurred_matte_onto_it():
    """The grid says the edge is at x = 35 (blurred over cells); the plate's edge is at 37.4: the refined matte's
    edge (its area per row) lands within 1 px of the plate's at 8x upsampling, the bilinear one does not."""
    size, plate_edge = 64, 37.4
    truth = np.clip(35.0 - np.arange(size), 0, 1).astype(np.float32)  # what the grid saw
    left = np.broadcast_to(truth, (size, size))
    grid = to_grid(np.stack([left, 1 - left]).astype(np.float32), (8, 8))
    plate = _step_plate(size, plate_edge)
    refined, bilinear = (upsample_mattes(grid, plate, m) for m in (None, "bilinear"))
    position = refined[0].sum(1)  # pixels of the left part per row = where its edge is
    assert np.abs(position - plate_edge).max() < 1.0
    assert np.abs(bilinear[0].sum(1) - plate_edge).max() > 1.5


def test_thin_part_is_not_erased():
    """A 3-px line (8x upsampling) the model put in one cell column: refined keeps it, on the plate's line."""
    size = 64
    plate = np.broadcast_to(A, (size, size, 3)).astype(np.float32).copy()
    plate[:, 27:30] = C
    line = np.zeros((size, size), bool)
    line[:, 27:30] = True
    grid = np.zeros((2, 8, 8), np.float32)
    grid[1, :, 3] = 0.85  # the cell column 24..32 holding the line
    grid[0] = 1 - grid[1]
    refined = upsample_mattes(grid, plate)
    labels = refined.argmax(0) == 1
    iou = (labels & line).sum() / (labels | line).sum()
    assert iou > 0.8
    assert refined[1][line].mean() > 0.8
    # Seen only by its area on the grid (peak 3/8, never the most likely part): it keeps its weight on the line
    # and leaves the background around it, instead of vanishing.
    faint = to_grid(np.stack([~line, line]).astype(np.float32), (8, 8))
    kept, spread = upsample_mattes(faint, plate)[1], upsample_mattes(faint, plate, "bilinear")[1]
    assert kept[line].mean() > 0.9 * spread[line].mean()
    assert kept[~line].mean() < 0.1 * spread[~line].mean()


def test_exact_ground_truth_on_the_grid_comes_back_closer():
    """Exact mattes of an anti-aliased synthetic plate, area-reduced to a 32-cell grid and upsampled 8x: the error
    within 4 px of the true edges drops by at least 25 % against bilinear, IoU and boundary F (2 px) no lower."""
    shot = make_edge_shot(1, (256, 256), seed=3)
    grid = to_grid(shot.mattes[0], (32, 32))
    scores = {m: edge_scores(upsample_mattes(grid, shot.frames[0], m), shot.mattes[0], shot.labels[0])
              for m in ("bilinear", None)}
    base, refined = scores["bilinear"], scores[None]
    assert refined.edge_error <= 0.75 * base.edge_error, (base, refined)
    assert refined.miou >= base.miou - 0.01 and refined.boundary_f >= base.boundary_f - 0.01, (base, refined)


def test_shot_segmenter_refines_on_each_frames_plate(tiny_backbone_256):
    """The shot path: bilinear mattes are today's; refined = those refined on the frame's own plate at the view's
    cell size (128 px over 64 cells: 2 px), labels their argmax. An untrained model is unsure everywhere (its
    mattes would stay bilinear): a low temperature makes its mattes confident away from its edges (at 256 px: at
    128 px this plate gets no uncertain band)."""
    from test_segment import _untrained_model

    from smite.video.settings import SegmentSettings
    from smite.video.shot import ShotSegmenter

    plates = make_edge_shot(2, (96, 128), seed=4).frames
    model = _untrained_model(tiny_backbone_256)

    def run(edges):
        return list(ShotSegmenter(tiny_backbone_256, model, SegmentSettings(preset="fast", edges=edges,
                                                                                 matte_temperature=0.02)).segment(plates))

    bilinear, refined = run("bilinear"), run("refined")
    for plate, b, r in zip(plates, bilinear, refined):
        assert 0 < (b.alphas.max(0) < 0.7).mean() < 0.25  # an uncertain band, not the whole frame
        np.testing.assert_array_equal(r.alphas, refine_mattes(b.alphas, plate, 2.0))
        np.testing.assert_array_equal(r.labels, r.alphas.argmax(0))
        assert not np.array_equal(r.alphas, b.alphas)
    with pytest.raises(SmiteError, match="unknown edges"):
        SegmentSettings(edges="soft")


def test_a_model_unsure_almost_everywhere_keeps_its_bilinear_mattes():
    """No part above 0.7 on most pixels: nothing to sharpen, and matting the whole frame costs seconds a frame."""
    rng = np.random.default_rng(0)
    soft = rng.uniform(0.3, 0.6, (2, 64, 64)).astype(np.float32)
    soft /= soft.sum(0, keepdims=True)
    plate = rng.random((64, 64, 3), dtype=np.float32)
    for scale in (2.0, 32.0):  # a plate matted at its own size, and one matted at the work size first
        np.testing.assert_array_equal(refine_mattes(soft, plate, scale), soft)
