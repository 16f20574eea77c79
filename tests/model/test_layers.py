"""Hooked layers are found from the block layout: SD 2.1-base (meta device, no weights) and the tiny backbone."""

import json
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0

from smite.model.attention import AttentionStore, find_hooked_layers, install_capture

DATA = Path(__file__).parents[1] / "data"


def _sd21_unet_on_meta() -> UNet2DConditionModel:
    config = json.loads((DATA / "sd21_base_unet_config.json").read_text())  # published SD 2.1-base config
    with torch.device("meta"):
        return UNet2DConditionModel.from_config(config)


def test_sd21_hooked_layers_match_method_section_1_2():
    layers = find_hooked_layers(_sd21_unet_on_meta())
    assert layers.cross == (
        "up_blocks.1.attentions.0.transformer_blocks.0.attn2",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn2",
        "up_blocks.1.attentions.2.transformer_blocks.0.attn2",
        "up_blocks.2.attentions.0.transformer_blocks.0.attn2",
        "up_blocks.2.attentions.1.transformer_blocks.0.attn2",
    )
    assert layers.self_ == tuple(f"up_blocks.3.attentions.{i}.transformer_blocks.0.attn1" for i in range(3))


def test_sd21_captured_map_shapes_match_method():
    unet = _sd21_unet_on_meta()
    layers = find_hooked_layers(unet)
    store = AttentionStore()
    install_capture(unet, layers, store)
    with torch.no_grad():
        unet(torch.zeros(1, 4, 64, 64, device="meta"), 100, torch.zeros(1, 77, 1024, device="meta"))
    expected = {"up_blocks.1": (20, 256), "up_blocks.2": (10, 1024), "up_blocks.3": (5, 4096)}
    assert set(store.captured) == set(layers.cross) | set(layers.self_)
    for name, qk in store.captured.items():
        heads, tokens = expected[name[: len("up_blocks.1")]]
        assert qk.heads == heads and qk.scale == 0.125  # 64-d heads everywhere, scale 1/8
        assert tuple(qk.q.shape) == (heads, tokens, 64)
        keys = 77 if name.endswith("attn2") else tokens
        assert tuple(qk.k.shape) == (heads, keys, 64)


def test_capture_processor_computes_the_same_as_diffusers_sdpa(tiny_backbone):
    unet = tiny_backbone.unet
    z, cond = torch.randn(1, 4, 64, 64), torch.randn(1, 77, unet.config.cross_attention_dim)
    store = AttentionStore()
    install_capture(unet, find_hooked_layers(unet), store)
    with torch.no_grad():
        ours = unet(z, 50, cond).sample
        unet.set_attn_processor(AttnProcessor2_0())
        reference = unet(z, 50, cond).sample
        install_capture(unet, find_hooked_layers(unet), store)
    assert len(store.captured) == 5  # tiny: 2 + 1 cross layers, 2 self layers
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
