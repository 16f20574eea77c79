"""Segmentation metrics on small hand-computed label maps."""

import numpy as np
import pytest

from smite.errors import SmiteError
from smite.evaluate.metrics import confusion, mean_iou
from smite.synthetic.shots import make_shot


def iou_per_part(pred: np.ndarray, gt: np.ndarray, num_parts: int) -> np.ndarray:
    """IoU of each label of one frame from its confusion matrix; NaN where a label is in neither map."""
    cm = confusion(pred, gt, num_parts).astype(np.float64)
    inter = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def halves(left: int, right: int) -> np.ndarray:
    """A 4x4 label map: columns 0-1 hold ``left``, columns 2-3 hold ``right``."""
    return np.array([[left, left, right, right]] * 4, np.uint8)


def test_perfect_prediction():
    gt = halves(1, 2)
    np.testing.assert_array_equal(iou_per_part(gt, gt, 3), [np.nan, 1.0, 1.0])


def test_disjoint_prediction():
    np.testing.assert_array_equal(iou_per_part(halves(0, 1), halves(1, 0), 2), [0.0, 0.0])


def test_half_overlap():
    gt = halves(1, 0)  # part 1 in columns 0-1
    pred = np.array([[0, 1, 1, 0]] * 4, np.uint8)  # part 1 in columns 1-2
    # Part 1: intersection column 1 (4 px), union columns 0-2 (12 px); background: column 3 over 0, 2, 3.
    np.testing.assert_allclose(iou_per_part(pred, gt, 2), [1 / 3, 1 / 3])


def test_part_absent_from_both_is_nan():
    iou = iou_per_part(halves(0, 1), halves(0, 1), 4)
    assert iou[0] == 1.0 and iou[1] == 1.0
    assert np.isnan(iou[2]) and np.isnan(iou[3])


def test_confusion_counts_rows_gt_columns_pred():
    gt = halves(1, 0)
    pred = np.array([[0, 1, 1, 0]] * 4, np.uint8)
    np.testing.assert_array_equal(confusion(pred, gt, 3), [[4, 4, 0], [4, 4, 0], [0, 0, 0]])


def test_mean_iou_averages_over_frames_whose_gt_has_the_part_and_skips_absent_parts():
    gts = [halves(1, 2), halves(1, 0)]
    preds = [halves(1, 2), np.array([[1, 0, 0, 2]] * 4, np.uint8)]
    result = mean_iou(preds, gts, num_parts=4)
    # Background: frame 1 only (frame 0 has none): IoU(col 1-2, col 2-3) = 4/12.
    # Part 1: frame 0 -> 1, frame 1 -> IoU(col 0, col 0-1) = 4/8; mean 0.75.
    # Part 2: only frame 0 has it in GT -> 1 (its false positive in frame 1 is not scored).
    # Part 3: in no GT frame -> NaN and excluded from the mean (not counted as 0).
    np.testing.assert_allclose(result.per_part[:3], [1 / 3, 0.75, 1.0])
    assert np.isnan(result.per_part[3])
    assert result.miou == pytest.approx((1 / 3 + 0.75 + 1.0) / 3)
    assert result.num_frames == 2


def test_mean_iou_accepts_stacked_arrays():
    s = make_shot(num_frames=3, size=(128, 160), num_parts=2, seed=1)
    result = mean_iou(s.labels, s.labels, s.num_labels)
    assert result.miou == 1.0 and result.per_part.shape == (3,)
    shifted = np.roll(s.labels, 6, axis=2)
    worse = mean_iou(shifted, s.labels, s.num_labels)
    assert 0.0 < worse.miou < 1.0 and np.all(worse.per_part[1:] < 1.0)


@pytest.mark.parametrize(
    ("pred", "gt", "n"),
    [
        (np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8), 2),  # shapes differ
        (halves(0, 3), halves(0, 1), 3),  # label 3 outside 0..2
        (halves(0, 1).astype(np.float32), halves(0, 1), 2),  # not integer labels
        (halves(0, 1), halves(0, 1), 0),  # no labels
    ],
)
def test_bad_inputs_raise_smite_error(pred, gt, n):
    with pytest.raises(SmiteError):
        iou_per_part(pred, gt, n)


def test_mean_iou_needs_matching_non_empty_sequences():
    with pytest.raises(SmiteError):
        mean_iou([halves(0, 1)], [halves(0, 1), halves(0, 1)], 2)
    with pytest.raises(SmiteError):
        mean_iou([], [], 2)
