"""The inflated UNet (method.md §2): cross-frame self-attention and frame-pooled GroupNorm, no new weights."""

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from smite.model.attention import SmiteAttnProcessor
from smite.model.inflate import FrameContext, FrameGroupNorm, inflate_norms
from smite.model.reader import AttentionReader


def _attention(seed=0) -> Attention:
    torch.manual_seed(seed)
    return Attention(query_dim=16, heads=2, dim_head=8).eval()


def test_one_frame_window_is_plain_attention():
    attn, x = _attention(), torch.randn(3, 10, 16)
    attn.set_processor(AttnProcessor2_0())
    plain = attn(x)
    attn.set_processor(SmiteAttnProcessor(context=FrameContext(frames=1)))
    torch.testing.assert_close(attn(x), plain, rtol=1e-5, atol=1e-6)


def test_cross_frame_attention_is_attention_over_the_joined_sequence():
    attn, frames, batch, tokens = _attention(1), 4, 2, 9
    x = torch.randn(batch * frames, tokens, 16)
    attn.set_processor(SmiteAttnProcessor(context=FrameContext(frames=frames)))
    inflated = attn(x)
    attn.set_processor(AttnProcessor2_0())
    joined = attn(x.view(batch, frames * tokens, 16)).view(batch * frames, tokens, 16)
    torch.testing.assert_close(inflated, joined, rtol=1e-5, atol=1e-6)
    # and it really mixes frames: per-frame attention gives something else
    assert (inflated - attn(x)).abs().max() > 1e-3


def test_cross_attention_stays_per_frame():
    torch.manual_seed(2)
    attn = Attention(query_dim=16, cross_attention_dim=12, heads=2, dim_head=8).eval()
    x, text = torch.randn(6, 9, 16), torch.randn(6, 5, 12)
    attn.set_processor(AttnProcessor2_0())
    plain = attn(x, encoder_hidden_states=text)
    attn.set_processor(SmiteAttnProcessor(context=FrameContext(frames=3)))
    torch.testing.assert_close(attn(x, encoder_hidden_states=text), plain, rtol=1e-5, atol=1e-6)


def test_frame_group_norm_equals_5d_group_norm():
    torch.manual_seed(3)
    plain = torch.nn.GroupNorm(4, 8)
    torch.nn.init.normal_(plain.weight), torch.nn.init.normal_(plain.bias)
    context = FrameContext()
    holder = torch.nn.Module()
    holder.conv_norm_out = plain
    assert inflate_norms(holder, context) == 1
    norm = holder.conv_norm_out
    assert isinstance(norm, FrameGroupNorm) and norm.weight is plain.weight  # same parameters, same names
    x = torch.randn(2 * 3, 8, 5, 7)
    torch.testing.assert_close(norm(x), plain(x))  # one frame per window: unchanged
    with context.window(3):
        pooled = norm(x)
    video = x.view(2, 3, 8, 5, 7).transpose(1, 2)  # (B, C, F, h, w)
    expected = plain(video).transpose(1, 2).reshape(6, 8, 5, 7)
    torch.testing.assert_close(pooled, expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def reader(tiny_backbone):
    return AttentionReader(tiny_backbone)


def test_unet_window_of_identical_frames_equals_one_frame(reader, tiny_backbone):
    """Attention over F copies of a frame and GroupNorm over F copies reproduce the single-frame call."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1, 4, 64, 64, generator=g)
    cond = torch.randn(1, 77, tiny_backbone.unet.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        single = reader.run(z, 100, cond)
        ca_single = reader.cross_maps(0, 3)
        window = reader.run(z.expand(3, -1, -1, -1), 100, cond.expand(3, -1, -1), frames=3)
        ca_window = reader.cross_maps(2, 3)
    torch.testing.assert_close(window, single.expand(3, -1, -1, -1), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ca_window, ca_single, rtol=1e-4, atol=1e-4)


def test_unet_window_mixes_frames_and_keeps_per_frame_capture(reader, tiny_backbone):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 4, 64, 64, generator=g)
    cond = torch.randn(1, 77, tiny_backbone.unet.config.cross_attention_dim, generator=g).expand(2, -1, -1)
    with torch.no_grad():
        apart = reader.run(z, 100, cond, frames=1)
        together = reader.run(z, 100, cond, frames=2)
        q = reader.store.captured[reader.layers.self_[0]].q
    assert (apart - together).abs().max() > 1e-3
    heads = reader.store.captured[reader.layers.self_[0]].heads
    assert q.shape[:2] == (2 * heads, 64 * 64)  # intra-frame queries: one frame's pixels per row block
