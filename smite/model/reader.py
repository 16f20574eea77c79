"""Running the (inflated) UNet and reading its attention maps, one frame at a time (method.md §2, §3.2).

``AttentionReader`` owns the capture processors of a backbone and inflates its UNet (cross-frame
self-attention and GroupNorm, with no new weights). ``run`` takes ``frames`` consecutive batch elements
as one window; after it, the reader hands out, per batch element (frame), the cross-attention logits
``CA`` (n, S, S) and the intra-frame self-attention ``SA`` (P, P) with P = S*S. Only one frame's
self-attention map exists at a time.
"""

from __future__ import annotations

import torch

from smite.model import maps
from smite.model.attention import AttentionStore, find_hooked_layers, install_capture
from smite.model.backbone import Backbone
from smite.model.inflate import FrameContext


class AttentionReader:
    """UNet calls with attention capture on a backbone's hooked layers."""

    def __init__(self, backbone: Backbone) -> None:
        self.backbone = backbone
        self.layers = find_hooked_layers(backbone.unet)
        self.store = AttentionStore()
        self.context = FrameContext()
        install_capture(backbone.unet, self.layers, self.store, self.context)

    def run(
        self, latents: torch.Tensor, timestep: torch.Tensor | int, cond: torch.Tensor, frames: int = 1
    ) -> torch.Tensor:
        """One UNet call: latents (B*F, 4, S, S) fp32, cond (B*F, 77, D) -> epsilon (B*F, 4, S, S) fp32.

        ``frames`` = F: consecutive groups of F batch elements are windows whose frames attend to each
        other and share GroupNorm statistics; F = 1 is the plain per-image UNet.
        """
        self.store.clear()
        with self.context.window(frames), self.backbone.autocast():
            eps = self.backbone.unet(latents, timestep, encoder_hidden_states=cond).sample
        return eps.float()

    def cross_maps(self, item: int, num_tokens: int) -> torch.Tensor:
        """Cross-attention logits of batch element ``item``: mean over the hooked layers, (n, S, S) fp32."""
        size = self.backbone.latent_size
        per_layer = []
        for name in self.layers.cross:
            qk = self.store.captured[name].batch_item(item)
            per_layer.append(maps.cross_attention_logits(qk.q, qk.k, qk.heads, num_tokens, size, qk.scale)[0])
        return maps.mean_cross_attention(per_layer)

    def self_maps(self, item: int) -> torch.Tensor:
        """Intra-frame self-attention probabilities of batch element ``item``: (P, P) fp32, rows sum to 1."""
        total = None
        for name in self.layers.self_:
            qk = self.store.captured[name].batch_item(item)
            probs = maps.self_attention_probs(qk.q, qk.k, qk.heads, qk.scale)
            total = probs if total is None else total + probs
        return total / len(self.layers.self_)

    def self_qk(self, item: int) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
        """Per hooked self-attention layer, batch element ``item``'s (q (heads, P, d), k (heads, P, d), scale)."""
        return [(c.q, c.k, c.scale) for c in (self.store.captured[n].batch_item(item) for n in self.layers.self_)]

    def was_maps(self, item: int, num_tokens: int, size: int | tuple[int, int]) -> torch.Tensor:
        """Prediction WAS (§3.4) of batch element ``item`` at ``size``: (n, h, w) fp32, differentiable.

        Self-attention is applied as attention with the maps as values (``maps.propagate``), so no P x P
        map is built or kept for backward.
        """
        return maps.was_predict_attention(self.cross_maps(item, num_tokens), self.self_qk(item), size)
