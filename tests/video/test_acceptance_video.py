"""Acceptance of engine part 2: on a shot made to flicker (per-frame noise on the plates), the ``quality`` preset
(guidance along point tracks + low-pass regulariser) flickers less than ``fast`` without losing accuracy.

The part model is the one the learning acceptance learns from the clean frame 0 of the same shot (the session
shares it: one learn for both tests), so the grain is new to it; the first 6 noisy frames are segmented with
the presets' defaults (one 6-frame window), at the tiny backbone's own 256 px.
Measured on 6 frames (fast flicker / mIoU -> quality): seed 0, 0.0222 / 0.886 -> 0.0196 / 0.899; on shots not
tuned on, seed 1, 0.0127 / 0.923 -> 0.0104 / 0.930, and seed 2, 0.0250 / 0.744 -> 0.0239 / 0.749 (8 frames:
seed 0 0.0233 -> 0.0217, seed 2 0.0252 -> 0.0240). At 128 px guidance did not hold on seed 2 (0.0284 -> 0.0305),
so this test stays at 256 px, where a quality window of 6 frames costs about 110 s of CPU (8 frames: 3 minutes).
"""

import numpy as np

from smite.evaluate.metrics import mean_iou
from smite.evaluate.scores import flicker
from smite.synthetic.shots import make_shot
from smite.video.settings import SegmentSettings
from smite.video.shot import ShotSegmenter


def test_quality_preset_flickers_less_than_fast(tiny_backbone_256, learned_part_model):
    clean = make_shot(num_frames=16, num_parts=3, seed=0)  # tests/learn/test_acceptance.py's three-part shot
    model = learned_part_model(clean)  # LearnSettings.for_backbone: the tiny backbone's defaults
    noisy = make_shot(num_frames=16, num_parts=3, seed=0, noise=0.08)  # same motion, grain on every plate
    frames, truth = noisy.frames[:6], noisy.labels[:6]
    scores = {}
    for preset in ("fast", "quality"):
        out = ShotSegmenter(tiny_backbone_256, model, SegmentSettings(preset=preset)).segment(frames)
        labels = np.stack([m.labels for m in out]).astype(np.int64)
        miou = mean_iou(list(labels[1:]), list(truth[1:]), model.num_parts).miou
        scores[preset] = (flicker(labels, frames), miou)
    print(f"\nflicker / mIoU: fast {scores['fast'][0]:.4f} / {scores['fast'][1]:.3f}, "
          f"quality {scores['quality'][0]:.4f} / {scores['quality'][1]:.3f}")
    assert scores["quality"][0] < scores["fast"][0]
    assert scores["quality"][1] >= scores["fast"][1] - 0.02
