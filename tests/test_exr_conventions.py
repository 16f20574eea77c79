"""Issue 14 item 3: matte EXRs keep the plate's pixel aspect, timecode, frame rate and camera attributes,
cover its display window (overscan cropped), and name the part model (name + hash) and settings under `smite:`.
The segmentation itself is replaced by constant mattes: only the file conventions are under test."""

import numpy as np
import OpenImageIO as oiio
import pytest
import torch

from smite.engine import Engine
from smite.io.images import read_image, read_mattes_exr
from smite.io.plate_header import plate_attributes
from smite.model.partmodel import PartModel
from smite.provenance import part_model_hash
from smite.video.mattes import FrameMattes
from smite.video.settings import SegmentSettings

W, H = 12, 6  # display window; the data window has 2 px of overscan on every side
TIMECODES = {1001: 0x01000000, 1002: 0x01000001}  # 01:00:00:00 and 01:00:00:01 (BCD)


def _plate(path, frame: int) -> None:
    spec = oiio.ImageSpec(W + 4, H + 4, 3, oiio.HALF)
    spec.x, spec.y = -2, -2
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, W, H
    spec.attribute("PixelAspectRatio", 2.0)
    spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), [TIMECODES[frame], 0])
    spec.attribute("FramesPerSecond", oiio.TypeDesc("rational2i"), [24000, 1001])
    spec.attribute("cameraModel", "ALEXA 35")
    spec.attribute("lensModel", "Cooke S4/i 32mm")
    spec.attribute("nominalFocalLength", 32.0)
    spec.attribute("worldToCamera", oiio.TypeDesc("matrix"), [float(v) for v in np.arange(16)])
    spec.attribute("nuke/node_hash", "not for the mattes")
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    out.write_image(np.full((H + 4, W + 4, 3), 0.18, np.float16))
    out.close()


@pytest.fixture(scope="module")
def part_model(tiny_backbone):
    kv = {name: value + 0.25 for name, value in tiny_backbone.base_kv.items()}
    return PartModel(part_names=["background", "face"], tokens=torch.ones(1, 64), kv=kv,
                     base_model=tiny_backbone.model_id, base_fingerprint=tiny_backbone.fingerprint,
                     resolution=tiny_backbone.resolution, reference_ids=["plate.1001.exr"])


def _constant_mattes(self, part_model, frames, settings=None, cancel=None, num_frames=None, progress=None):
    for plate in frames:
        h, w = plate.shape[:2]
        alphas = np.stack([np.full((h, w), 0.75, np.float32), np.full((h, w), 0.25, np.float32)])
        yield FrameMattes(alphas=alphas, labels=np.zeros((h, w), np.uint16))


def test_plate_attributes_are_the_carried_ones(tmp_path):
    _plate(tmp_path / "p.1001.exr", 1001)
    names = {name for name, _, _ in plate_attributes(tmp_path / "p.1001.exr")}
    assert {"PixelAspectRatio", "smpte:TimeCode", "FramesPerSecond", "cameraModel", "lensModel",
            "nominalFocalLength", "worldToCamera"} <= names
    assert "nuke/node_hash" not in names and "compression" not in names
    assert plate_attributes(tmp_path / "missing.exr") == []


def test_mattes_carry_the_plate_header_and_provenance(tmp_path, part_model, monkeypatch):
    for frame in TIMECODES:
        _plate(tmp_path / f"plate.{frame}.exr", frame)
    assert read_image(tmp_path / "plate.1001.exr").shape == (H, W, 3)  # the display window: overscan cropped
    monkeypatch.setattr(Engine, "segment", _constant_mattes)
    settings = SegmentSettings(preset="fast", window=8, matte_temperature=0.5, seed=3)
    frames = [(f, tmp_path / f"plate.{f}.exr") for f in TIMECODES]
    written = Engine("tiny").segment_files(part_model, frames, str(tmp_path / "m" / "hero.####.exr"), settings,
                                           "lin_rec709", name="hero")
    for (frame, _), path in zip(frames, written):
        spec = oiio.ImageInput.open(str(path)).spec()
        assert (spec.width, spec.height, spec.x, spec.y) == (W, H, 0, 0)  # data window = display window
        assert (spec.full_width, spec.full_height) == (W, H)
        assert spec.get_float_attribute("PixelAspectRatio") == 2.0  # anamorphic stays anamorphic
        assert tuple(spec.getattribute("smpte:TimeCode")) == (TIMECODES[frame], 0)
        assert tuple(spec.getattribute("FramesPerSecond")) == (24000, 1001)
        assert spec.get_string_attribute("cameraModel") == "ALEXA 35"
        assert spec.get_float_attribute("nominalFocalLength") == 32.0
        assert tuple(spec.getattribute("worldToCamera")) == tuple(float(v) for v in range(16))
        assert spec.getattribute("nuke/node_hash") is None
        meta = read_mattes_exr(path).metadata
        assert meta["frame"] == frame and meta["part_model"] == "hero"
        assert meta["part_model_hash"] == part_model_hash(part_model)
        assert meta["backbone"] == part_model.base_model and "model" not in meta
        assert meta["backbone_fingerprint"] == part_model.base_fingerprint
        assert meta["settings"] == {"preset": "fast", "window": 8, "overlap": 0, "temperature": 0.5, "seed": 3,
                                    "tracker": "flow", "coarse_to_fine": True, "map_mode": "was",
                                    "colorspace": "lin_rec709", "edges": "refined"}


def test_part_model_hash_follows_content_not_file(part_model, tmp_path):
    copy = PartModel.load(part_model.save(tmp_path / "copy.smite"))
    assert part_model_hash(copy) == part_model_hash(part_model)
    changed = PartModel.load(part_model.save(tmp_path / "other.smite"))
    changed.tokens = changed.tokens + 1e-3
    assert part_model_hash(changed) != part_model_hash(part_model)
