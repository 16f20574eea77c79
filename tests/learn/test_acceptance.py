"""Acceptance of engine part 1: learn from the first frame of a synthetic shot on the tiny backbone (CPU) and
segment the other frames through the engine's prediction path (the part model's map mode, WAS by default).

The held-out mIoU is printed (run with -s to see it). The README's comparison with the cross-attention-only path
was measured here with ``map_mode="cross"`` on the same frames; the test scores the default path only.
"""

import numpy as np
import pytest

from smite.evaluate.metrics import mean_iou
from smite.synthetic.shots import make_shot
from smite.video.settings import SegmentSettings
from smite.video.shot import ShotSegmenter

GATE = 0.65


def _held_out_miou(backbone, model, shot, map_mode=None) -> float:
    # One frame per window: the per-frame accuracy of the learned parts, without temporal help.
    segmenter = ShotSegmenter(backbone, model, SegmentSettings(map_mode=map_mode, preset="fast", window=1))
    labels = [m.labels for m in segmenter.segment(list(shot.frames[1:]))]
    return mean_iou(labels, list(shot.labels[1:]), shot.num_labels).miou


@pytest.mark.parametrize(
    ("num_parts", "touching"), [(3, False), (2, True)], ids=["three-separate-parts", "two-touching-parts"]
)
def test_learning_from_one_frame_generalises_to_the_shot(tiny_backbone_256, learned_part_model, num_parts, touching):
    shot = make_shot(num_frames=16, num_parts=num_parts, touching=touching, seed=0)
    # every part at least 1/8 of the frame wide in every frame, moving and deforming (checked in test_synthetic)
    model = learned_part_model(shot)  # LearnSettings.for_backbone: the tiny backbone's defaults
    default = _held_out_miou(tiny_backbone_256, model, shot)  # the engine's default path: the model's map mode
    print(f"\n{num_parts} parts, touching={touching}: held-out mIoU ({model.map_mode}) {default:.3f}")
    assert np.isfinite(default)
    assert default >= GATE
