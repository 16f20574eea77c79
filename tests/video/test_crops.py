"""Coarse-to-fine crop geometry: window boxes, squaring, refine decision, crop and feathered paste-back."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from smite.errors import SmiteError
from smite.video.crops import (
    CropBox,
    crop_frames,
    foreground_box,
    paste_logits,
    paste_weight,
    square_up,
    worth_refining,
)


def _labels(shape: tuple[int, int, int], rects: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """(F, H, W) int32 zeros with rect (frame, top, left, bottom, right) set to 1."""
    out = np.zeros(shape, np.int32)
    for f, t, left, b, r in rects:
        out[f, t:b, left:r] = 1
    return out


# ---------------------------------------------------------------- CropBox


def test_cropbox_slices_area_and_validation() -> None:
    box = CropBox(2, 3, 4, 5)
    assert box.slices == (slice(2, 6), slice(3, 8))
    assert box.area == 20
    assert np.zeros((10, 10))[box.slices].shape == (4, 5)
    with pytest.raises(ValueError):
        CropBox(0, 0, 0, 5)
    with pytest.raises(ValueError):
        CropBox(-1, 0, 3, 5)


# ---------------------------------------------------------------- foreground_box


def test_box_is_union_over_frames_without_margin() -> None:
    labels = _labels((3, 100, 200), [(0, 10, 20, 30, 40), (2, 50, 100, 60, 150)])
    assert foreground_box(labels, margin=0.0) == CropBox(10, 20, 50, 130)


def test_box_accepts_single_frame_and_any_nonzero_label() -> None:
    labels = np.zeros((40, 60), np.int64)
    labels[5:9, 7:12] = 3
    labels[20, 30] = 1
    assert foreground_box(labels, margin=0.0) == CropBox(5, 7, 16, 24)


def test_margin_grows_each_side_by_fraction_of_own_size() -> None:
    # fg box 25 rows x 50 cols -> 4 % = 1 row, 2 cols on each side.
    labels = _labels((1, 100, 100), [(0, 40, 20, 65, 70)])
    assert foreground_box(labels) == CropBox(39, 18, 27, 54)
    # a fractional margin rounds up: 10 rows * 4 % = 0.4 -> 1
    labels = _labels((1, 100, 100), [(0, 40, 40, 50, 50)])
    assert foreground_box(labels) == CropBox(39, 39, 12, 12)


def test_margin_is_clipped_to_plate() -> None:
    labels = _labels((2, 50, 80), [(0, 0, 0, 10, 10), (1, 40, 70, 50, 80)])
    assert foreground_box(labels, margin=0.25) == CropBox(0, 0, 50, 80)


def test_empty_or_tiny_foreground_gives_none() -> None:
    assert foreground_box(np.zeros((4, 30, 30), np.int32)) is None
    tiny = _labels((2, 30, 30), [(0, 5, 5, 6, 6), (1, 9, 9, 10, 10)])  # 2 pixels in the union
    assert foreground_box(tiny) is None
    assert foreground_box(tiny, margin=0.0, min_pixels=2) == CropBox(5, 5, 5, 5)


def test_box_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        foreground_box(np.zeros((1, 2, 3, 4), np.int32))
    with pytest.raises(SmiteError):
        foreground_box(np.ones((5, 5), np.int32), margin=-0.1)


# ---------------------------------------------------------------- square_up


def test_square_up_centred_inside_plate() -> None:
    sq = square_up(CropBox(40, 50, 20, 60), (200, 300))
    assert sq == CropBox(20, 50, 60, 60)
    assert (sq.top + sq.height / 2, sq.left + sq.width / 2) == (50, 80)


def test_square_up_shifts_into_plate_and_keeps_box() -> None:
    box = CropBox(0, 280, 10, 20)  # top-right corner of a 200x300 plate
    sq = square_up(box, (200, 300), min_side=64)
    assert sq == CropBox(0, 236, 64, 64)
    assert sq.top <= box.top and sq.left <= box.left and sq.bottom >= box.bottom and sq.right >= box.right


def test_square_up_odd_growth_contains_box() -> None:
    box = CropBox(10, 10, 5, 8)
    sq = square_up(box, (100, 100))
    assert (sq.height, sq.width) == (8, 8)
    assert sq.top <= box.top and sq.bottom >= box.bottom


def test_square_up_narrow_plate_takes_whole_axis() -> None:
    # A 60-row letterbox strip: the 120-px side does not fit vertically, so rows take the whole plate.
    box = CropBox(10, 400, 40, 120)
    sq = square_up(box, (60, 1000))
    assert sq == CropBox(0, 400, 60, 120)
    # min_side larger than the whole plate -> the whole plate.
    assert square_up(box, (60, 1000), min_side=5000) == CropBox(0, 0, 60, 1000)


def test_square_up_rejects_box_outside_plate() -> None:
    with pytest.raises(ValueError):
        square_up(CropBox(0, 0, 10, 10), (5, 20))


# ---------------------------------------------------------------- worth_refining


def test_worth_refining_small_object_true() -> None:
    assert worth_refining(CropBox(0, 0, 200, 200), (1080, 1920), 512)  # 9.6x larger


def test_worth_refining_large_object_false() -> None:
    assert not worth_refining(CropBox(0, 0, 1080, 1600), (1080, 1920), 512)  # 1920 / 1600 = 1.2x
    assert not worth_refining(CropBox(0, 0, 1080, 1920), (1080, 1920), 512)  # the whole plate: 1x


def test_worth_refining_threshold_and_none() -> None:
    # gain exactly 1.25 (1000 / 800) passes, just below fails.
    assert worth_refining(CropBox(0, 0, 800, 800), (1000, 1000), 512)
    assert not worth_refining(CropBox(0, 0, 801, 801), (1000, 1000), 512)
    assert worth_refining(CropBox(0, 0, 801, 801), (1000, 1000), 512, min_gain=1.2)
    assert not worth_refining(None, (1000, 1000), 512)


# ---------------------------------------------------------------- crop / paste


def test_crop_frames_selects_box() -> None:
    frames = np.arange(2 * 20 * 30 * 3, dtype=np.float32).reshape(2, 20, 30, 3)
    box = CropBox(4, 6, 10, 12)
    crop = crop_frames(frames, box)
    assert crop.shape == (2, 10, 12, 3)
    np.testing.assert_array_equal(crop, frames[:, 4:14, 6:18])
    with pytest.raises(ValueError):
        crop_frames(frames, CropBox(15, 0, 10, 10))


def test_paste_identity_when_fine_equals_coarse_crop() -> None:
    rng = np.random.default_rng(0)
    coarse = rng.normal(size=(4, 50, 70)).astype(np.float32)
    box = CropBox(10, 15, 25, 30)
    out = paste_logits(coarse, coarse[:, 10:35, 15:45].copy(), box)
    np.testing.assert_allclose(out, coarse, atol=1e-6)
    assert out.dtype == np.float32 and out is not coarse


def test_paste_replaces_interior_and_keeps_outside() -> None:
    coarse = np.zeros((2, 60, 60), np.float32)
    fine = np.ones((2, 30, 30), np.float32)
    box = CropBox(15, 15, 30, 30)
    out = paste_logits(coarse, fine, box, feather=4)
    outside = np.ones((60, 60), bool)
    outside[box.slices] = False
    assert np.all(out[:, outside] == 0)
    np.testing.assert_allclose(out[:, 19:41, 19:41], 1.0)  # >= feather px inside: fine only
    assert np.all(coarse == 0)  # input untouched


def test_feather_ramp_values_edge_and_centre() -> None:
    box = CropBox(20, 20, 40, 40)
    w = paste_weight(box, (100, 100), feather=8)
    assert w.shape == (40, 40) and w.dtype == np.float32
    np.testing.assert_allclose(w[20, :9], np.arange(1, 10) / 9, rtol=1e-6)  # left ramp 1/9 .. 1
    np.testing.assert_allclose(w[20, 31:], np.arange(9, 0, -1) / 9, rtol=1e-6)  # right ramp back down
    assert w[0, 0] == pytest.approx(1 / 9)
    assert w[20, 20] == 1.0
    # paste_logits applies exactly this weight: coarse 0, fine 1 -> the weight.
    out = paste_logits(np.zeros((1, 100, 100), np.float32), np.ones((1, 40, 40), np.float32), box, feather=8)
    np.testing.assert_allclose(out[0, 20:60, 20:60], w)


def test_no_feather_on_plate_border_edges() -> None:
    box = CropBox(0, 0, 30, 50)  # touches top and left border; bottom and right edges are interior
    w = paste_weight(box, (60, 50), feather=5)  # the right edge lies on the plate border too
    assert np.all(w[:24, :] == 1.0)  # top rows and both sides: no ramp
    np.testing.assert_allclose(w[-6:, 10], np.arange(6, 0, -1) / 6, rtol=1e-6)  # only the bottom ramps
    assert np.all(paste_weight(CropBox(0, 0, 60, 50), (60, 50)) == 1.0)  # whole plate: plain replace


def test_feather_shrinks_for_small_boxes_and_zero_disables() -> None:
    w = paste_weight(CropBox(10, 10, 9, 9), (40, 40), feather=8)
    assert w[4, 4] == 1.0  # centre of a small box still fully fine
    assert w[0, 4] == pytest.approx(1 / 5)  # feather shrunk to (9 - 1) // 2 = 4
    assert np.all(paste_weight(CropBox(10, 10, 9, 9), (40, 40), feather=0) == 1.0)
    with pytest.raises(SmiteError):
        paste_weight(CropBox(10, 10, 9, 9), (40, 40), feather=-1)


def test_crop_paste_round_trip_shapes() -> None:
    labels = _labels((3, 72, 128), [(0, 30, 50, 40, 60), (1, 32, 55, 44, 66), (2, 35, 58, 45, 70)])
    frames = np.random.default_rng(1).random((3, 72, 128, 3), dtype=np.float32)
    box = square_up(foreground_box(labels), (72, 128), min_side=32)
    assert worth_refining(box, (72, 128), 64)
    crops = crop_frames(frames, box)
    assert crops.shape == (3, box.height, box.width, 3)
    coarse = np.zeros((3, 5, 72, 128), np.float32)  # (F, n, H, W)
    fine = np.ones((3, 5, box.height, box.width), np.float32)
    out = paste_logits(coarse, fine, box)
    assert out.shape == coarse.shape
    assert out[:, :, box.slices[0], box.slices[1]].min() > 0 and out.sum() < fine.sum()
    with pytest.raises(ValueError):
        paste_logits(coarse[0], fine[0, :, :-1], box)


def test_module_does_not_import_torch() -> None:
    code = "import sys, smite.video.crops; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
