"""The inflated ("video") UNet of method.md §2, made from the stock diffusers UNet with no new weights.

A UNet call on a window feeds ``(B*F, 4, S, S)`` latents, frame-major inside each batch element. Two
things then see the whole window instead of one frame:

* every self-attention (``attn1``, all blocks) attends over the keys/values of all F frames: the
  attention processor reshapes Q/K/V ``(B*F, heads, N, d) -> (B, heads, F*N, d)`` around SDPA
  (see ``smite.model.attention.SmiteAttnProcessor``);
* the ResNet GroupNorms (``norm1``, ``norm2``) and the UNet's ``conv_norm_out`` pool their statistics over
  the F frames: ``(B*F, C, h, w)`` is normalised as ``(B, C, F*h, w)``, which equals a GroupNorm on the
  5-D ``(B, C, F, h, w)`` tensor.

Everything else stays per frame. ``FrameContext.frames`` says how many frames the current call holds;
with 1 frame the UNet is exactly the plain 2-D UNet.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class FrameContext:
    """How many frames of one batch element the running UNet call holds (1 = plain per-frame UNet)."""

    frames: int = 1

    @contextmanager
    def window(self, frames: int) -> Iterator[None]:
        """Run the enclosed UNet calls as windows of ``frames`` frames."""
        if frames < 1:
            raise ValueError(f"a window holds at least one frame, got {frames}")
        previous, self.frames = self.frames, int(frames)
        try:
            yield
        finally:
            self.frames = previous


class FrameGroupNorm(nn.GroupNorm):
    """A ``nn.GroupNorm`` whose statistics are pooled over the frames of a window (same parameters)."""

    context: FrameContext

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = self.context.frames
        if frames == 1 or x.ndim != 4:
            return super().forward(x)
        bf, c, h, w = x.shape
        if bf % frames:
            raise ValueError(f"batch of {bf} is not a whole number of {frames}-frame windows")
        # (B*F, C, h, w) -> (B, C, F*h, w): the groups then span all frames of a batch element.
        video = x.view(bf // frames, frames, c, h, w).transpose(1, 2).reshape(bf // frames, c, frames * h, w)
        out = F.group_norm(video, self.num_groups, self.weight, self.bias, self.eps)
        return out.view(bf // frames, c, frames, h, w).transpose(1, 2).reshape(bf, c, h, w)


def _frame_norm(norm: nn.GroupNorm, context: FrameContext) -> FrameGroupNorm:
    """``norm`` as a FrameGroupNorm sharing its weight and bias (parameter names stay the same)."""
    if isinstance(norm, FrameGroupNorm):
        norm.context = context
        return norm
    out = FrameGroupNorm(norm.num_groups, norm.num_channels, norm.eps, norm.affine)
    out.weight, out.bias = norm.weight, norm.bias
    out.context = context
    return out


def inflate_norms(unet: nn.Module, context: FrameContext) -> int:
    """Make the ResNet ``norm1``/``norm2`` and ``conv_norm_out`` GroupNorms pool over ``context.frames``.

    Transformer-input GroupNorms stay per frame (§2.2). Returns the number of norms inflated.
    """
    targets = [(unet, "conv_norm_out")] if isinstance(getattr(unet, "conv_norm_out", None), nn.GroupNorm) else []
    for module in unet.modules():
        if type(module).__name__ == "ResnetBlock2D":
            targets += [(module, n) for n in ("norm1", "norm2") if isinstance(getattr(module, n), nn.GroupNorm)]
    for parent, name in targets:
        setattr(parent, name, _frame_norm(getattr(parent, name), context))
    return len(targets)
