"""Shot segmentation: any shot length, each frame written once, carried overlaps, seeds, coarse-to-fine."""

import numpy as np
import pytest
import torch
from test_segment import _untrained_model

from smite.errors import SmiteError
from smite.video.crops import CropBox
from smite.video.guidance import GuidanceSettings
from smite.video.settings import SegmentSettings
from smite.video.shot import ShotSegmenter, View, reframe

# The guided path with one latent iteration and one guided step: the structure, at CPU test cost.
SHORT_GUIDANCE = GuidanceSettings(iterations=1, guided_steps=1)


def _plates(n, size=(96, 128), seed=0):
    return np.random.default_rng(seed).random((n, *size, 3), dtype=np.float32)


def test_default_windows_are_the_presets():
    fast, quality = SegmentSettings(preset="fast"), SegmentSettings(preset="quality")
    assert fast.window_and_overlap() == (16, 0) and quality.window_and_overlap() == (16, 8)


@pytest.mark.parametrize("frames", [1, 5, 16, 37])
def test_shots_of_any_length(tiny_backbone, frames):
    # Windows of 4 (16 x 4096 latent cells attend to each other in a window of 16: minutes on CPU per window).
    seg = ShotSegmenter(tiny_backbone, _untrained_model(tiny_backbone), SegmentSettings(preset="fast", window=4))
    plates = _plates(frames)
    out = list(seg.segment(iter(plates), num_frames=frames))  # a generator: frames stream
    assert len(out) == frames
    assert all(m.alphas.shape == (3, 96, 128) and m.labels.shape == (96, 128) for m in out)


def test_overlap_frames_are_written_once_and_carried(tiny_backbone, tmp_path):
    settings = SegmentSettings(preset="quality", window=4, overlap=2, guidance=SHORT_GUIDANCE)
    seg = ShotSegmenter(tiny_backbone, _untrained_model(tiny_backbone), settings)
    assert [(w.start, w.end, w.write, w.carry) for w in seg.windows(6)] == [(0, 4, 2, 2), (2, 6, 4, 0)]
    references, finals = [], []
    guided = seg._guided

    def spy(images, ref, generator):
        # The reference the guided steps start from: the carried maps must already be in it.
        references.append(ref.clone())
        finals.append(guided(images, ref, generator))
        return finals[-1]

    seg._guided = spy
    events = []
    out = list(seg.segment(_plates(6), progress=events.append))
    assert len(out) == 6 and len(references) == 2
    torch.testing.assert_close(references[1][:2], finals[0][2:])  # the next window starts with the carried maps
    assert not torch.allclose(references[0][2:], finals[0][2:])  # guidance changed them: the carry is visible
    written = [e.done for e in events if e.stage == "written"]
    assert written == [2, 6]


def test_same_seed_same_mattes_and_seed_matters(tiny_backbone):
    model = _untrained_model(tiny_backbone)
    plates = _plates(2, seed=3)

    def run(seed):
        settings = SegmentSettings(seed=seed, preset="quality", guidance=SHORT_GUIDANCE)
        return np.stack([m.alphas for m in ShotSegmenter(tiny_backbone, model, settings).segment(plates)])

    a, b, c = run(7), run(7), run(8)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_a_span_with_its_shot_offset_segments_like_the_whole_shot(tiny_backbone):
    """A farm chunk runs some of the shot's windows: keyed by shot position, their noise (hence their mattes)
    is the whole-shot run's. Windows of 4 over 10 frames: [0,4) [4,8) [6,10); the span is frames 4-9."""
    model = _untrained_model(tiny_backbone)
    plates = _plates(10, size=(64, 64), seed=5)
    whole = list(ShotSegmenter(tiny_backbone, model, SegmentSettings(preset="fast", window=4)).segment(plates))
    settings = SegmentSettings(preset="fast", window=4, shot_offset=4)
    span = list(ShotSegmenter(tiny_backbone, model, settings).segment(plates[4:]))
    for w, s in zip(whole[4:], span):
        np.testing.assert_allclose(s.alphas, w.alphas, atol=1e-5)
    shifted = SegmentSettings(preset="fast", window=4, shot_offset=3)  # another position: other noise
    other = next(iter(ShotSegmenter(tiny_backbone, model, shifted).segment(plates[4:])))
    assert np.abs(other.alphas - whole[4].alphas).max() > 1e-3


def test_a_suspended_shot_leaves_the_backbone_weights_alone(tiny_backbone):
    """A daemon's backbone is shared by jobs: between two frames a shot must not hold its K/V in it (a generator
    left suspended and closed later by the garbage collector would restore them in the middle of another job)."""
    model = _untrained_model(tiny_backbone)
    model.kv = {k: v + 0.5 for k, v in model.kv.items()}
    settings = SegmentSettings(preset="fast", window=1, edges="bilinear")
    frames = ShotSegmenter(tiny_backbone, model, settings).segment(_plates(2, size=(64, 64)))
    next(frames)  # one frame out, the shot suspended
    params = dict(tiny_backbone.unet.named_parameters())
    assert all(torch.equal(params[k], v) for k, v in tiny_backbone.base_kv.items())
    frames.close()


def test_mixed_plate_sizes_are_rejected(tiny_backbone):
    seg = ShotSegmenter(tiny_backbone, _untrained_model(tiny_backbone), SegmentSettings(preset="fast", window=2))
    plates = [np.zeros((64, 64, 3), np.float32), np.zeros((64, 80, 3), np.float32)]
    with pytest.raises(SmiteError, match="all plates of a shot must have one size"):
        list(seg.segment(plates))


def test_large_plates_are_refined_around_the_foreground(tiny_backbone, monkeypatch):
    """A 600x800 plate is larger than the 256 px model frame: coarse pass, crop, refine, paste back."""
    import smite.video.shot as shot

    monkeypatch.setattr(shot, "foreground_box", lambda labels: CropBox(200, 300, 120, 160))
    # Bilinear edges: refining random plates around an untrained model's mattes would solve the whole frame.
    settings = SegmentSettings(preset="fast", window=2, edges="bilinear")
    seg = ShotSegmenter(tiny_backbone, _untrained_model(tiny_backbone), settings)
    views = []
    original = seg._maps
    seg._maps = lambda view, *a: views.append(view) or original(view, *a)
    (m1, m2) = list(seg.segment(_plates(2, size=(600, 800))))
    assert m1.alphas.shape == (3, 600, 800)
    assert views and views[0].box.height == views[0].box.width == 160  # squared crop around the box
    plain = SegmentSettings(preset="fast", window=2, coarse_to_fine=False, edges="bilinear")
    views.clear()
    seg = ShotSegmenter(tiny_backbone, _untrained_model(tiny_backbone), plain)
    original = seg._maps
    seg._maps = lambda view, *a: views.append(view) or original(view, *a)
    list(seg.segment(_plates(2, size=(600, 800))))
    assert views[0].box == CropBox(0, 0, 600, 800)


def test_reframe_moves_maps_with_the_view():
    whole = View.of(CropBox(0, 0, 256, 256), 256)
    half = View.of(CropBox(0, 0, 128, 128), 256)  # top-left quarter of the plate, seen at 2x
    maps = torch.zeros(1, 1, 64, 64)
    maps[..., :32, :32] = 1.0  # the top-left quarter is "on" in the whole view
    assert torch.equal(reframe(maps, whole, whole), maps)
    np.testing.assert_allclose(reframe(maps, whole, half).numpy()[..., 2:-2, 2:-2], 1.0, atol=1e-6)
