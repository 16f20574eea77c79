"""Reading attention out of the UNet: which layers (method.md §1.2) and a processor that stashes Q/K.

Layers are found from the UNet's block layout, by resolution relative to the latent, so SD 2.1, SD 1.5 and
the tiny backbone all work: cross-attention of the decoder blocks at latent/4 (all of them) and latent/2
(all but the last), self-attention of the decoder block at full latent resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from smite.model.inflate import FrameContext, inflate_norms


@dataclass(frozen=True)
class HookedLayers:
    """Module names of the attention layers whose maps SMITE reads."""

    cross: tuple[str, ...]
    self_: tuple[str, ...]


def find_hooked_layers(unet: torch.nn.Module) -> HookedLayers:
    """Locate the hooked ``attn2``/``attn1`` modules of a diffusers ``UNet2DConditionModel`` by block layout."""
    ups = unet.up_blocks
    # up_blocks[i] works at latent / 2**(len(ups) - 1 - i): every block but the last upsamples.
    by_factor = {2 ** (len(ups) - 1 - i): (i, block) for i, block in enumerate(ups)}

    def attentions(factor: int) -> list[str]:
        i, block = by_factor.get(factor, (None, None))
        if block is None or not hasattr(block, "attentions"):
            raise ValueError(f"UNet has no cross-attention decoder block at latent/{factor}")
        return [f"up_blocks.{i}.attentions.{j}.transformer_blocks.0" for j in range(len(block.attentions))]

    cross = [f"{a}.attn2" for a in attentions(4)] + [f"{a}.attn2" for a in attentions(2)[:-1]]
    self_ = [f"{a}.attn1" for a in attentions(1)]
    return HookedLayers(cross=tuple(cross), self_=tuple(self_))


@dataclass
class CapturedQK:
    """Head-split query and key of one attention call: q (B*heads, N, d), k (B*heads, M, d)."""

    q: torch.Tensor
    k: torch.Tensor
    heads: int
    scale: float

    def batch_item(self, b: int) -> CapturedQK:
        """The heads of batch element ``b``: q (heads, N, d), k (heads, M, d)."""
        h = self.heads
        return CapturedQK(self.q[b * h : (b + 1) * h], self.k[b * h : (b + 1) * h], h, self.scale)


@dataclass
class AttentionStore:
    """What the hooked layers saw in the last UNet call, by module name."""

    captured: dict[str, CapturedQK] = field(default_factory=dict)
    enabled: bool = True

    def clear(self) -> None:
        self.captured.clear()


class SmiteAttnProcessor:
    """Scaled-dot-product attention (SDPA) that also stashes head-split Q/K in an ``AttentionStore``.

    Equivalent to diffusers' ``AttnProcessor2_0`` for the attention types SD uses (no spatial norm,
    no attention masks, no QK norms). With a ``FrameContext`` holding F > 1 frames, self-attention is
    cross-frame (method.md §2.1): the tokens of the F frames of a batch element form one sequence. The
    stashed Q/K stay per frame, so the maps read from them are intra-frame (§3.2).
    """

    def __init__(self, store: AttentionStore | None = None, name: str = "", context: FrameContext | None = None):
        self.store = store
        self.name = name
        self.context = context

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        residual = hidden_states
        batch, tokens, _ = hidden_states.shape
        source = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            source = attn.norm_encoder_hidden_states(source)
        heads = attn.heads
        q = _split_heads(attn.to_q(hidden_states), heads)
        k = _split_heads(attn.to_k(source), heads)
        v = _split_heads(attn.to_v(source), heads)
        if self.store is not None and self.store.enabled:
            d = q.shape[-1]
            self.store.captured[self.name] = CapturedQK(
                q.reshape(batch * heads, tokens, d), k.reshape(batch * heads, -1, d), heads, attn.scale
            )
        frames = self.context.frames if self.context is not None and encoder_hidden_states is None else 1
        if frames > 1:
            q, k, v = (_join_frames(x, frames) for x in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
        if frames > 1:
            out = _split_frames(out, frames)
        out = out.transpose(1, 2).reshape(batch, tokens, -1).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, heads*d) -> (B, heads, N, d)."""
    b, n, _ = x.shape
    return x.view(b, n, heads, -1).transpose(1, 2)


def _join_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(B*F, heads, N, d) -> (B, heads, F*N, d): one token sequence per batch element."""
    bf, heads, n, d = x.shape
    if bf % frames:
        raise ValueError(f"batch of {bf} is not a whole number of {frames}-frame windows")
    return x.view(bf // frames, frames, heads, n, d).transpose(1, 2).reshape(bf // frames, heads, frames * n, d)


def _split_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Inverse of :func:`_join_frames`."""
    b, heads, fn, d = x.shape
    return x.view(b, heads, frames, fn // frames, d).transpose(1, 2).reshape(b * frames, heads, fn // frames, d)


def install_capture(
    unet: torch.nn.Module, layers: HookedLayers, store: AttentionStore, context: FrameContext | None = None
) -> None:
    """Give every attention module our processor; the hooked ones capture into ``store``.

    With a ``context`` the UNet is inflated (§2): cross-frame self-attention and frame-pooled GroupNorms.
    """
    hooked = set(layers.cross) | set(layers.self_)
    processors = {}
    for name in unet.attn_processors:  # keys look like "<module>.processor"
        module = name.removesuffix(".processor")
        processors[name] = SmiteAttnProcessor(store if module in hooked else None, module, context)
    unet.set_attn_processor(processors)
    if context is not None:
        inflate_norms(unet, context)
