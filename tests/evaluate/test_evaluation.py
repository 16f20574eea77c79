"""Shot evaluation: boundary F, flow-warped flicker, per-part IoU and the printed table."""

import json
import math

import cv2
import numpy as np
import pytest

from smite.errors import SmiteError
from smite.evaluate.scores import boundary_f, boundary_map, evaluate_shot, flicker, flicker_counts, format_table

SIZE, FRAMES, STEP = 96, 6, (2, 1)  # integer plate motion per frame (x, y)


def part_flicker(labels: np.ndarray, frames: np.ndarray, num_parts: int) -> list[float]:
    """Per-part flicker from the pooled counts; NaN for a part never seen in a compared pixel."""
    return [changed / total if total else math.nan for changed, total in flicker_counts(labels, frames, num_parts)[:-1]]


def square(top: int, left: int, side: int = 40, size: int = 100) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_boundary_map_is_the_inner_contour():
    contour = boundary_map(square(20, 20))
    assert contour.sum() == 4 * 40 - 4
    assert contour[20, 30] and contour[59, 59] and not contour[30, 30] and not contour[19, 30]
    assert not boundary_map(np.ones((10, 10), bool)).any()  # the image border is no contour


def test_boundary_f_hand_examples():
    gt = square(20, 20)
    assert boundary_f(gt, gt) == 1.0
    # 100x100: radius ceil(0.008 * 141.4) = 2 px; a 1-px shift is within tolerance.
    assert boundary_f(square(21, 20), gt) == 1.0
    # Shifted 5 px right: top and bottom rows match for x <= 61 (37 px each) and the left column for
    # y within 2 px of the rows (4 px): 78 of 156 contour pixels both ways -> P = R = F = 0.5.
    assert boundary_f(square(20, 25), gt) == pytest.approx(0.5)
    assert boundary_f(square(20, 70, side=20), gt) == 0.0
    empty = np.zeros_like(gt)
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(empty, gt) == 0.0 and boundary_f(gt, empty) == 0.0
    assert boundary_f(square(20, 25), gt, bound_th=5) == 1.0  # a radius in pixels


def band_noise_rgb(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.float32)
    for sigma in (1.0, 2.5, 6.0):
        blurred = cv2.GaussianBlur(rng.standard_normal((h, w, 3)).astype(np.float32), (0, 0), sigma)
        img += blurred / blurred.std() / 3
    return np.clip(0.5 + 0.18 * img, 0, 1)


@pytest.fixture(scope="module")
def moving_plate():
    """Frames (T, S, S, 3) of a textured plate panning by an integer step, and labels painted on the plate."""
    rng = np.random.default_rng(5)
    big = SIZE + 40
    plate = band_noise_rgb(rng, big, big)
    plate_labels = np.zeros((big, big), np.int32)
    cv2.circle(plate_labels, (50, 60), 25, 1, -1)
    cv2.rectangle(plate_labels, (80, 20), (120, 50), 2, -1)
    frames, labels = [], []
    for t in range(FRAMES):
        x, y = 30 - STEP[0] * t, 20 - STEP[1] * t  # the window moves over the plate
        frames.append(plate[y:y + SIZE, x:x + SIZE])
        labels.append(plate_labels[y:y + SIZE, x:x + SIZE])
    return np.stack(frames).astype(np.float32), np.stack(labels)


def test_flicker_zero_when_labels_move_with_the_plate(moving_plate):
    frames, labels = moving_plate
    assert len(np.unique(labels[0])) == 3 and not np.array_equal(labels[0], labels[1])
    assert flicker(labels, frames) == 0.0
    assert part_flicker(labels, frames, 4)[:3] == [0.0, 0.0, 0.0]
    assert math.isnan(part_flicker(labels, frames, 4)[3])  # a part never seen
    # Unwarped, the same labels would flicker: the flow warping is what makes them consistent.
    static = np.repeat(frames[:1], FRAMES, axis=0)
    assert flicker(labels, static) > 0.01
    assert flicker(labels[:1], frames[:1]) == 0.0


def test_flicker_positive_for_flickering_labels(moving_plate):
    frames, labels = moving_plate
    flickering = labels.copy()
    flickering[1::2][flickering[1::2] == 1] = 2  # part 1 becomes part 2 on odd frames
    value = flicker(flickering, frames)
    share = (labels == 1).mean()
    assert value == pytest.approx(share, rel=0.15)
    per_part = part_flicker(flickering, frames, 3)
    assert per_part[1] == pytest.approx(1.0, abs=0.02) and per_part[0] == 0.0 and 0 < per_part[2] < 1


def test_evaluate_shot_values_and_json(moving_plate):
    gt = [np.zeros((10, 10), np.int64) for _ in range(2)]
    gt[0][:5] = 1  # part 1 only in frame 0; part 2 never
    pred = [g.copy() for g in gt]
    pred[0][5] = 1  # part 1: IoU 50 / 60; background: 40 / 50 in frame 0, 100 in frame 1
    pred[1][0, 0] = 2  # background 99 / 100 in frame 1
    res = evaluate_shot(pred, gt, ["background", "arm", "tail"])
    assert res["frames"] == 2 and res["parts"] == ["background", "arm", "tail"]
    assert res["iou"]["arm"] == pytest.approx(100 * 50 / 60)
    assert res["iou"]["background"] == pytest.approx(100 * (40 / 50 + 99 / 100) / 2)
    assert res["iou"]["tail"] is None
    assert res["miou"] == pytest.approx((res["iou"]["background"] + res["iou"]["arm"]) / 2)
    assert 0 < res["boundary_f"]["arm"] <= 1 and res["boundary_f"]["tail"] is None
    assert res["boundary_f_mean"] == res["boundary_f"]["arm"]
    assert "flicker" not in res
    json.dumps(res, allow_nan=False)
    text = format_table(res)
    assert "arm" in text and "83.3" in text and "-" in text.splitlines()[-3]

    frames, labels = moving_plate
    res = evaluate_shot(list(labels), list(labels), ["bg", "disc", "box"], frames=frames)
    assert res["miou"] == 100.0 and res["boundary_f_mean"] == 1.0
    assert res["flicker"] == 0.0 and res["flicker_per_part"] == {"bg": 0.0, "disc": 0.0, "box": 0.0}
    assert "flicker" in format_table(res)


def test_evaluate_shot_rejects_mismatched_inputs():
    with pytest.raises(SmiteError, match="as many"):
        evaluate_shot([np.zeros((4, 4), int)], [], ["bg"])
    with pytest.raises(SmiteError, match="differ in size"):
        evaluate_shot([np.zeros((4, 4), int)], [np.zeros((4, 5), int)], ["bg"])
