"""The anti-aliased shots of the edge and thin-part benches: exact mattes, and a thin part as wide as asked."""

import cv2
import numpy as np
import pytest

from smite.errors import SmiteError
from smite.synthetic.edges import EDGE_PARTS, PUPPET_PARTS, make_edge_shot, make_puppet_shot


@pytest.mark.parametrize("make", [make_edge_shot, make_puppet_shot])
def test_mattes_sum_to_one_and_labels_are_their_argmax(make):
    shot = make(2, (96, 128), seed=1)
    assert shot.frames.shape == (2, 96, 128, 3) and shot.mattes.shape == (2, 4, 96, 128)
    np.testing.assert_allclose(shot.mattes.sum(1), 1.0, atol=1e-5)
    assert np.array_equal(shot.labels, shot.mattes.argmax(1))
    assert shot.part_names == list(EDGE_PARTS if make is make_edge_shot else PUPPET_PARTS)


@pytest.mark.parametrize("arm_px", [8.0, 16.0, 32.0])
def test_the_puppet_arm_is_as_wide_as_asked_and_joins_the_body(arm_px):
    shot = make_puppet_shot(3, (256, 256), seed=0, arm_px=arm_px)
    arm = PUPPET_PARTS.index("arm") + 1
    for labels in shot.labels:
        mask = (labels == arm).astype(np.uint8)
        # The widest inscribed disc of a capsule is its width: distance to the outside, at the centre line.
        width = 2 * cv2.distanceTransform(mask, cv2.DIST_L2, 5).max()
        assert abs(width - arm_px) <= 1.5, (width, arm_px)
        grown = cv2.dilate(mask, np.ones((3, 3), np.uint8))
        assert (labels[grown > 0] == PUPPET_PARTS.index("body") + 1).any()  # attached at the shoulder


def test_the_arm_moves_and_the_shot_is_a_pure_function_of_its_arguments():
    a, b = make_puppet_shot(4, (128, 128), seed=2), make_puppet_shot(4, (128, 128), seed=2)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.mattes, b.mattes)
    assert not np.array_equal(a.labels[0] == 3, a.labels[3] == 3)


@pytest.mark.parametrize("kwargs", [{"num_frames": 0}, {"size": (16, 64)}, {"arm_px": 0.0}])
def test_bad_arguments_raise_smite_error(kwargs):
    with pytest.raises(SmiteError, match="make_puppet_shot"):
        make_puppet_shot(**kwargs)
