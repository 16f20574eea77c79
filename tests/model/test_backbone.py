"""Backbone loading: the tiny model through the real diffusers loaders, offline errors, device/precision."""

import pytest
import torch

from smite.errors import SmiteError
from smite.model.backbone import load_backbone, resolve_precision, tiny_backbone_dir


def test_tiny_by_name_and_by_folder_load_the_same_weights(tiny_backbone_256):
    by_folder = load_backbone(str(tiny_backbone_dir()), device="cpu")
    assert by_folder.fingerprint == tiny_backbone_256.fingerprint
    assert by_folder.resolution == tiny_backbone_256.resolution == 256 and tiny_backbone_256.latent_size == 64
    assert tiny_backbone_256.vae_factor == 4
    assert not any(p.requires_grad for p in tiny_backbone_256.unet.parameters())


def test_the_tiny_backbone_works_at_the_resolution_the_environment_asks(monkeypatch):
    monkeypatch.setenv("SMITE_TINY_RESOLUTION", "96")
    small = load_backbone("tiny", device="cpu")
    assert (small.resolution, small.latent_size) == (96, 24)  # the UNet halves 24 three times: 12, 6, 3
    assert load_backbone("tiny", device="cpu", resolution=256).latent_size == 64  # an explicit size wins
    for bad, message in (("100", "multiple of 32"), ("big", "not a number")):
        monkeypatch.setenv("SMITE_TINY_RESOLUTION", bad)
        with pytest.raises(SmiteError, match=message):
            load_backbone("tiny", device="cpu")


def test_saved_copy_round_trips_through_diffusers_layout(tiny_backbone, tmp_path):
    for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        getattr(tiny_backbone, name).save_pretrained(tmp_path / name)
    copy = load_backbone(str(tmp_path), device="cpu")
    assert copy.fingerprint == tiny_backbone.fingerprint
    ids = copy.tokenizer("background face", return_tensors="pt").input_ids
    torch.testing.assert_close(copy.text_encoder(ids)[0], tiny_backbone.text_encoder(ids)[0])


def test_missing_hf_model_offline_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(SmiteError, match="smite fetch-model") as err:
        load_backbone("someone/not-in-cache", device="cpu")
    assert "\n" not in str(err.value)


def test_bad_specs_are_clear(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"pickle")
    with pytest.raises(SmiteError, match="safetensors"):
        load_backbone(str(ckpt), device="cpu")
    with pytest.raises(SmiteError, match="not a diffusers model folder"):
        load_backbone(str(tmp_path), device="cpu")


def test_precision_defaults_and_overrides():
    assert resolve_precision(None, torch.device("cpu")) is None
    assert resolve_precision("bf16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(SmiteError):
        resolve_precision("fp8", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(SmiteError, match="CUDA"):
            load_backbone("tiny", device="cuda")
