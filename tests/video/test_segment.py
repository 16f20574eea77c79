"""Frame segmentation: any plate size and aspect in, mattes at the plate's resolution out."""

import numpy as np
import pytest
import torch

from smite.errors import SmiteError
from smite.model.framing import Framing, fit_image
from smite.model.partmodel import PartModel
from smite.video.mattes import maps_to_plate
from smite.video.settings import SegmentSettings
from smite.video.shot import ShotSegmenter


def _untrained_model(backbone, n=3) -> PartModel:
    tokens = torch.randn(n - 1, backbone.unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(0))
    return PartModel(["background"] + [f"p{i}" for i in range(1, n)], tokens, dict(backbone.base_kv),
                     backbone.model_id, backbone.fingerprint, backbone.resolution)


@pytest.mark.parametrize("size", [(256, 256), (192, 256), (300, 170), (1080, 1920)])
def test_mattes_come_back_at_plate_size(tiny_backbone, size):
    plate = np.random.default_rng(0).random((*size, 3), dtype=np.float32)
    for mode in ("was", "cross"):
        # A 2K plate of noise around an untrained model is all edge: refined edges cost ~20 s there (tested
        # elsewhere); the size is what this checks.
        settings = SegmentSettings(map_mode=mode, preset="fast", edges="bilinear" if max(size) > 1000 else "refined")
        seg = ShotSegmenter(tiny_backbone, _untrained_model(tiny_backbone), settings)
        (out,) = list(seg.segment([plate]))
        assert out.alphas.shape == (3, *size) and out.labels.shape == size and out.labels.dtype == np.uint16
        np.testing.assert_allclose(out.alphas.sum(0), 1.0, atol=1e-5)
        np.testing.assert_array_equal(out.labels, out.alphas.argmax(0))


def test_framing_preserves_aspect_and_maps_back():
    framing = Framing((100, 200), 256)
    assert framing.box == (64, 0, 128, 256)
    fitted = fit_image(np.ones((100, 200, 3), np.float32), framing)
    assert fitted.shape == (256, 256, 3)
    # a map that is 1 inside the plate's box and 0 in the padding comes back as all ones
    maps = torch.zeros(1, 64, 64)
    maps[:, 16:48, :] = 1
    back = maps_to_plate(maps, framing)
    assert back.shape == (1, 100, 200) and back[:, 2:-2].min() > 0.99


def test_bad_frames_are_rejected(tiny_backbone):
    seg = ShotSegmenter(tiny_backbone, _untrained_model(tiny_backbone), SegmentSettings(preset="fast"))
    nan = np.zeros((64, 64, 3), np.float32)
    nan[3, 3] = np.inf
    for bad, message in [(nan, "NaN/Inf"), (np.zeros((64, 64), np.float32), "(H, W, 3)")]:
        with pytest.raises(SmiteError, match=message.replace("(", r"\(").replace(")", r"\)")):
            list(seg.segment([bad]))


def test_same_seed_same_mattes(tiny_backbone):
    plate = np.random.default_rng(1).random((128, 128, 3), dtype=np.float32)
    model = _untrained_model(tiny_backbone)
    a = next(ShotSegmenter(tiny_backbone, model, SegmentSettings(seed=5, preset="fast")).segment([plate]))
    b = next(ShotSegmenter(tiny_backbone, model, SegmentSettings(seed=5, preset="fast")).segment([plate]))
    np.testing.assert_array_equal(a.alphas, b.alphas)
