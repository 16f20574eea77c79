"""Part model file: round trip, backbone mismatch, corrupt files, K/V applied and restored."""

import json

import pytest
import torch

from smite.errors import SmiteError
from smite.model.partmodel import PartModel


def _model(backbone, **changes) -> PartModel:
    kv = {name: value + 0.5 for name, value in backbone.base_kv.items()}
    fields = dict(
        part_names=["background", "face", "hair"], tokens=torch.randn(2, 64), kv=kv, base_model=backbone.model_id,
        base_fingerprint=backbone.fingerprint, resolution=backbone.resolution, training={"steps": 3}, seed=7,
        reference_ids=["plate.0001.exr"], validation_miou=0.8,
    )
    return PartModel(**(fields | changes))


def test_round_trip_keeps_tensors_and_metadata(tiny_backbone, tmp_path):
    model = _model(tiny_backbone)
    path = model.save(tmp_path / "shot")
    assert path.name == "shot.smite" and path.exists()
    loaded = PartModel.load(path)
    assert loaded.metadata() == model.metadata()
    torch.testing.assert_close(loaded.tokens, model.tokens)
    assert loaded.kv.keys() == model.kv.keys()
    for name in model.kv:
        torch.testing.assert_close(loaded.kv[name], model.kv[name])
    assert not list(tmp_path.glob("*.tmp*"))  # atomic write leaves nothing behind


def test_backbone_mismatch_names_both_models(tiny_backbone):
    other = _model(tiny_backbone, base_model="stabilityai/stable-diffusion-2-1-base", base_fingerprint="0123abcd")
    with pytest.raises(SmiteError) as err:
        other.check_backbone(tiny_backbone)
    assert "stable-diffusion-2-1-base" in str(err.value) and tiny_backbone.model_id in str(err.value)
    assert err.value.code == "backbone_mismatch"


def test_applied_installs_kv_and_restores_the_base(tiny_backbone):
    model = _model(tiny_backbone)
    name = next(iter(model.kv))
    param = dict(tiny_backbone.unet.named_parameters())[name]
    base = param.detach().clone()
    with model.applied(tiny_backbone) as tokens:
        torch.testing.assert_close(param.detach(), model.kv[name])
        assert tokens.shape == (2, 64)
    torch.testing.assert_close(param.detach(), base)


@pytest.mark.parametrize("content", [b"", b"not a safetensors file at all", b"\xff" * 64])
def test_corrupt_files_give_one_line_errors(tmp_path, content):
    path = tmp_path / "bad.smite"
    path.write_bytes(content)
    with pytest.raises(SmiteError) as err:
        PartModel.load(path)
    assert "bad.smite" in str(err.value) and "\n" not in str(err.value)


def test_truncated_file_and_missing_file(tiny_backbone, tmp_path):
    path = _model(tiny_backbone).save(tmp_path / "m.smite")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SmiteError):
        PartModel.load(path)
    with pytest.raises(SmiteError, match="does not exist"):
        PartModel.load(tmp_path / "nope.smite")


def test_header_is_json_with_format_version(tiny_backbone, tmp_path):
    from safetensors import safe_open

    path = _model(tiny_backbone).save(tmp_path / "m.smite")
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["smite"])
    assert meta["format_version"] == 1 and meta["part_names"][0] == "background"
    assert meta["base_fingerprint"] == tiny_backbone.fingerprint
