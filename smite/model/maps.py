"""Attention-map maths: cross/self-attention maps from hooked Q/K, and the WAS maps (method.md §3.2-3.4).

Pure torch functions, no model code. Every function is differentiable (the guidance backpropagates
through them) and computes in full precision even under autocast (method.md §0.2): fp16/bf16 inputs are
upcast and the result is fp32 (softmax, min-max remap, bilinear resizes and the energies built on the maps
are fragile in half precision); fp32 and fp64 inputs are computed and returned in their own precision.

Layouts: head-split tensors are ``(B*heads, tokens, d)`` in diffusers' batch-major order (index
``b*heads + h``); image tokens are pixels of a square grid in row-major order; a self-attention map
``sa[q, k]`` is the probability that query pixel ``q`` attends key pixel ``k`` (rows sum to 1).
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from smite.model.precision import full_precision, work_dtype

_FLAT_ULPS = 64  # spans below this many ulps of the map's magnitude count as a constant map


def _grid_side(num_pixels: int) -> int:
    side = int(round(num_pixels**0.5))
    if side * side != num_pixels:
        raise ValueError(f"{num_pixels} image tokens do not form a square grid")
    return side


def _resize(maps: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bilinear resize (align_corners=False, no antialias) of (..., h, w) maps to ``size``."""
    hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if tuple(maps.shape[-2:]) == hw:
        return maps  # align_corners=False at scale 1 is the identity
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:])
    out = F.interpolate(flat, size=hw, mode="bilinear", align_corners=False)
    return out.reshape(*lead, *hw)


@full_precision
def cross_attention_logits(
    q: Tensor, k: Tensor, heads: int, num_tokens: int, size: int, scale: float
) -> Tensor:
    """Cross-attention logits of the first ``num_tokens`` text tokens, per frame, on a ``size`` grid (§3.2).

    q: (B*heads, N, d) image queries, N a square number; k: (B*heads, T, d) text keys (T = 77 on SD).
    Returns (B, num_tokens, size, size): raw scaled dot products ``(q k^T) * scale`` (no softmax),
    reshaped to the sqrt(N) grid, bilinearly resized (align_corners=False) and averaged over heads.
    The head mean is taken before the resize: bilinear resizing is linear, so this equals the method's
    resize-then-average at ``heads`` times less memory.
    """
    if q.shape[0] != k.shape[0] or q.shape[0] % heads:
        raise ValueError(f"q {tuple(q.shape)} / k {tuple(k.shape)} do not split into {heads} heads")
    if not 0 < num_tokens <= k.shape[1]:
        raise ValueError(f"num_tokens {num_tokens} not in 1..{k.shape[1]}")
    work = work_dtype(q, k)
    batch, n_pix = q.shape[0] // heads, q.shape[1]
    side = _grid_side(n_pix)
    logits = torch.bmm(q.to(work), k[:, :num_tokens].to(work).transpose(1, 2)) * scale  # (B*h, N, n)
    per_frame = logits.reshape(batch, heads, n_pix, num_tokens).mean(1)  # (B, N, n)
    grid = per_frame.transpose(1, 2).reshape(batch, num_tokens, side, side)
    return _resize(grid, size)


def _mean_maps(per_layer: Sequence[Tensor]) -> Tensor:
    if len(per_layer) == 0:
        raise ValueError("no attention maps to average (no hooked layer fired?)")
    total = per_layer[0]
    for m in per_layer[1:]:
        total = total + m
    return total / len(per_layer)


def mean_cross_attention(per_layer: Sequence[Tensor]) -> Tensor:
    """Arithmetic mean over layers of (B, n, S, S) cross-attention maps -> (B, n, S, S)."""
    return _mean_maps(per_layer)


@full_precision
def self_attention_probs(q: Tensor, k: Tensor, heads: int, scale: float, chunk: int | None = 1024) -> Tensor:
    """Intra-frame self-attention probabilities of one frame, averaged over heads (§3.2).

    q, k: (heads, N, d) for ONE frame. Returns (N, N), ``[q, k]`` = softmax over keys of
    ``(q k^T) * scale``, averaged over heads (rows sum to 1). Queries are processed ``chunk`` at a time so
    the transient ``heads x chunk x N`` block stays bounded (N = 4096 on SD); ``None`` = all at once.
    Under autograd each chunk's softmax is kept for backward, so chunking bounds memory only without grad.
    """
    if q.shape[0] != heads or k.shape[0] != heads or q.shape[2] != k.shape[2]:
        raise ValueError(f"q {tuple(q.shape)} / k {tuple(k.shape)} are not one frame of {heads} heads")
    work = work_dtype(q, k)
    n_q = q.shape[1]
    step = n_q if chunk is None else max(1, int(chunk))
    kt = k.to(work).transpose(1, 2)
    out = torch.empty(n_q, k.shape[1], dtype=work, device=q.device)
    for start in range(0, n_q, step):
        scores = torch.bmm(q[:, start : start + step].to(work), kt) * scale  # (heads, c, N)
        out[start : start + step] = scores.softmax(-1).mean(0)
    return out


def _check_pair(ca: Tensor, sa: Tensor) -> None:
    n_pix = ca.shape[-1] * ca.shape[-2]
    if sa.shape[-2:] != (n_pix, n_pix) or ca.shape[:-3] != sa.shape[:-2]:
        raise ValueError(f"cross-attention {tuple(ca.shape)} and self-attention {tuple(sa.shape)} mismatch")


@full_precision
def was_train(ca: Tensor, sa: Tensor) -> Tensor:
    """Probabilistic WAS of the learning loss (§3.3): class softmax of ``ca`` propagated by ``sa``.

    ca: (n, S, S) or (F, n, S, S) cross-attention logits; sa: (P, P) or (F, P, P), P = S*S.
    Returns ``softmax_over_classes(ca).reshape(n, P) @ sa.T`` as (n, S, S) / (F, n, S, S), values in [0, 1].
    """
    _check_pair(ca, sa)
    work = work_dtype(ca, sa)
    probs = ca.to(work).softmax(-3).flatten(-2)  # (..., n, P)
    was = probs @ sa.to(work).transpose(-1, -2)
    return was.reshape(ca.shape)


@full_precision
def was_train_attention(ca: Tensor, self_qk: Sequence[tuple[Tensor, Tensor, float]]) -> Tensor:
    """:func:`was_train` of one frame with SA given as the hooked layers' (q, k, scale), q/k (heads, P, d).

    ca: (n, S, S). The class probabilities are propagated by :func:`propagate` per layer and averaged, so the
    learning loss never builds (or keeps for backward) a P x P map. (n, S, S), fp32 for half inputs.
    """
    work = work_dtype(ca, *(q for q, _, _ in self_qk))
    probs = ca.to(work).softmax(-3).flatten(-2)  # (n, P)
    total = sum(propagate(probs, q, k, scale) for q, k, scale in self_qk)
    return (total / len(self_qk)).reshape(ca.shape)


@full_precision
def was_predict(ca: Tensor, sa: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Prediction ("logit") WAS of §3.4, resized to ``size`` and remapped to each class's logit range.

    ca: (F, n, S, S) raw cross-attention logits (class 0 = background); sa: (F, P, P), P = S*S
    (unbatched (n, S, S) / (P, P) also accepted). ``size``: an int (square) or (h, w).
    Returns (F, n, h, w) (or (n, h, w)). Steps per frame: record each class's max/min logit; zero the
    background row's entries <= its mean; W = CA' @ SA^T; bilinear resize (align_corners=False); affine
    min-max remap of each W_c onto [min_c, max_c]. A constant W_c (zero span, where the method divides by
    zero, or a span within 64 ulps of its magnitude, i.e. rounding noise) is mapped to the class's minimum
    logit: a map without spatial evidence should not win an argmax.
    """
    if ca.dim() == 3:
        return was_predict(ca[None], sa[None], size)[0]
    _check_pair(ca, sa)
    work = work_dtype(ca, sa)
    values = was_values(ca.to(work))
    return _was_remap(values @ sa.to(work).transpose(-1, -2), ca.to(work), size)


def was_values(ca: Tensor) -> Tensor:
    """The maps WAS propagates (§3.4): ``ca`` (F, n, S, S) flattened to (F, n, P), background row zeroed
    where it is not above its mean."""
    logits = ca.flatten(-2)
    bg = logits[:, :1]
    bg = torch.where(bg > bg.mean(-1, keepdim=True), bg, torch.zeros_like(bg))
    return torch.cat([bg, logits[:, 1:]], 1)


@full_precision
def propagate(values: Tensor, q: Tensor, k: Tensor, scale: float) -> Tensor:
    """``values @ SA^T`` for one frame's head-mean self-attention SA, without materialising SA.

    values: (n, P); q, k: (heads, P, d) of one frame. ``values @ SA^T = mean_h softmax(q_h k_h^T s) @ values^T``
    transposed, which is scaled-dot-product attention with the maps as values. The values are cut into
    blocks of d columns, zero-padded to d, so the fused (flash) kernels apply: nothing of size P x P is
    built or kept for backward. Returns (n, P) in the working dtype of ``values`` and q (fp32 for halves).
    """
    heads, num_pixels, d = q.shape
    n = values.shape[0]
    work = work_dtype(values, q, k)
    values, q, k = values.to(work), q.to(work), k.to(work)
    outs = []
    for start in range(0, n, d):
        block = values[start : start + d].transpose(0, 1).to(q.dtype)  # (P, <= d)
        v = F.pad(block, (0, d - block.shape[1])).expand(heads, num_pixels, d)
        out = F.scaled_dot_product_attention(q[None], k[None], v[None], scale=scale)[0]  # (heads, P, d)
        outs.append(out[..., : block.shape[1]].mean(0))
    return torch.cat(outs, 1).transpose(0, 1)


@full_precision
def was_predict_attention(
    ca: Tensor, self_qk: Sequence[tuple[Tensor, Tensor, float]], size: int | tuple[int, int]
) -> Tensor:
    """:func:`was_predict` of one frame with SA given as the hooked layers' (q, k, scale), q/k (heads, P, d).

    ca: (n, S, S). SA is the mean over layers and heads of softmax(q k^T scale); it is applied by
    :func:`propagate` per layer, so this equals ``was_predict(ca, SA, size)`` up to rounding. (n, h, w) fp32
    for half inputs, else the dtype of ``ca``.
    """
    work = work_dtype(ca, *(q for q, _, _ in self_qk))
    values = was_values(ca.to(work)[None])[0]
    total = sum(propagate(values, q.to(work), k.to(work), scale) for q, k, scale in self_qk)
    return _was_remap((total / len(self_qk))[None], ca.to(work)[None], size)[0]


def _was_remap(was: Tensor, ca: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Propagated maps (F, n, P) -> resized to ``size`` and min-max remapped onto ``ca``'s (F, n) logit ranges."""
    logits = ca.flatten(-2)
    hi, lo = logits.amax(-1), logits.amin(-1)
    was = _resize(was.reshape(ca.shape), size)
    w_min, w_max = was.amin((-2, -1)), was.amax((-2, -1))
    span = w_max - w_min
    # A span of a few ulps is rounding noise of a constant map (e.g. from the resize): treat it as constant
    # rather than stretch the noise over the whole logit range.
    flat = span <= _FLAT_ULPS * torch.finfo(was.dtype).eps * torch.maximum(w_max.abs(), w_min.abs())
    safe_span = torch.where(flat, torch.ones_like(span), span)
    gain = torch.where(flat, torch.zeros_like(span), (hi - lo) / safe_span)
    return (was - w_min[..., None, None]) * gain[..., None, None] + lo[..., None, None]
