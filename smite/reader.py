"""Running the UNet and reading its attention maps, one frame at a time (method.md §3.2).

``AttentionReader`` owns the capture processors of a backbone. After ``run`` it hands out, per batch
element (frame), the cross-attention logits ``CA`` (n, S, S) and the intra-frame self-attention
``SA`` (P, P) with P = S*S. Only one frame's self-attention map exists at a time.
"""

from __future__ import annotations

import torch

from smite import maps
from smite.attention import AttentionStore, find_hooked_layers, install_capture
from smite.backbone import Backbone


class AttentionReader:
    """UNet calls with attention capture on a backbone's hooked layers."""

    def __init__(self, backbone: Backbone) -> None:
        self.backbone = backbone
        self.layers = find_hooked_layers(backbone.unet)
        self.store = AttentionStore()
        install_capture(backbone.unet, self.layers, self.store)

    def run(self, latents: torch.Tensor, timestep: torch.Tensor | int, cond: torch.Tensor) -> torch.Tensor:
        """One UNet call: latents (B, 4, S, S) fp32, cond (B, 77, D) -> epsilon prediction (B, 4, S, S) fp32."""
        self.store.clear()
        with self.backbone.autocast():
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
