"""Text conditioning with learned part tokens (method.md §3.1).

The part prompt is ``"background <part 1> <part 2> ..."``; its CLIP encoding (77 positions) has positions
1..n-1 replaced by the n-1 learned part vectors. Position 0 (BOS) stands for the background and is never
learned. One conditioning is used everywhere: learning, reference and guided passes (method.md §0.2).
"""

from __future__ import annotations

import torch

from smite.model.backbone import Backbone


def part_prompt(part_names: list[str]) -> str:
    """``["background", "left_eye", ...]`` -> ``"background left eye ..."``."""
    return " ".join(name.replace("_", " ") for name in part_names)


@torch.no_grad()
def encode_text(backbone: Backbone, text: str) -> torch.Tensor:
    """CLIP encoding padded/truncated to the tokenizer's length: (1, 77, D) float32."""
    tok = backbone.tokenizer
    ids = tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
    return backbone.text_encoder(ids.input_ids.to(backbone.device))[0].float()


def initial_tokens(backbone: Backbone, part_names: list[str]) -> torch.Tensor:
    """Initial part vectors: the contextual encoding of the prompt at positions 1..n-1, shape (n-1, D)."""
    n = len(part_names)
    return encode_text(backbone, part_prompt(part_names))[0, 1:n].clone()


def conditioning(prompt_embedding: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Splice learned tokens (n-1, D) into positions 1..n-1 of a prompt encoding (1, 77, D); differentiable."""
    n1 = tokens.shape[0]
    spliced = tokens[None].to(prompt_embedding.dtype)
    return torch.cat([prompt_embedding[:, :1], spliced, prompt_embedding[:, 1 + n1 :]], 1)
