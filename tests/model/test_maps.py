"""Attention-map maths and WAS (smite/model/maps.py) against the official vectors and hand computations."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from smite.model.maps import (
    cross_attention_logits,
    mean_cross_attention,
    self_attention_probs,
    was_predict,
    was_predict_attention,
    was_train,
    was_train_attention,
)

VECTORS = Path(__file__).parents[1] / "data" / "official_vectors.npz"

# Hand example: n = 2 classes on a 2x2 grid (P = 4 pixels, row-major), explicit self-attention rows.
SA = torch.tensor(
    [
        [1.0, 0.0, 0.0, 0.0],
        [0.5, 0.5, 0.0, 0.0],
        [0.0, 0.0, 0.5, 0.5],
        [0.25, 0.25, 0.25, 0.25],
    ],
    dtype=torch.float64,
)


@pytest.fixture(scope="module")
def vectors() -> dict[str, np.ndarray]:
    with np.load(VECTORS) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("size", [16, 40])
def test_was_predict_matches_official_vectors(vectors, size):
    ca, sa = torch.from_numpy(vectors["was_ca"]), torch.from_numpy(vectors["was_sa_qk"])
    expected = torch.from_numpy(vectors[f"was_pred_S{size}"]).double()
    out = was_predict(ca, sa, size)
    assert out.shape == (2, 4, size, size) and out.dtype == torch.float64
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=7e-5)
    # fp32 inputs: same numbers at float32 accuracy
    out32 = was_predict(ca.float(), sa.float(), size)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), expected, rtol=1e-5, atol=7e-5)


@pytest.mark.parametrize("size", [16, 40])
def test_production_was_matches_official_vectors(vectors, size):
    """``was_predict_attention`` (propagate through SDPA) is what production calls: pinned at fp32 accuracy.

    SA enters as attention: with q = log SA (one head, d = P), k = I and scale 1, softmax(q k^T) = SA.
    """
    ca, sa = torch.from_numpy(vectors["was_ca"]), torch.from_numpy(vectors["was_sa_qk"])
    expected = torch.from_numpy(vectors[f"was_pred_S{size}"])
    eye = torch.eye(sa.shape[-1], dtype=torch.float64)
    for dtype, atol in ((torch.float64, 2e-6), (torch.float32, 1.5e-5)):  # values up to 7; fp32 eps 1.2e-7
        for f in range(len(ca)):
            q = sa[f].clamp_min(1e-300).log()[None].to(dtype)
            out = was_predict_attention(ca[f].to(dtype), [(q, eye[None].to(dtype), 1.0)], size)
            assert out.dtype == dtype and out.shape == (4, size, size)
            torch.testing.assert_close(out.float(), expected[f], rtol=0, atol=atol)
            # two layers with the same SA average to it
            twice = was_predict_attention(ca[f].to(dtype), [(q, eye[None].to(dtype), 1.0)] * 2, size)
            torch.testing.assert_close(twice, out, rtol=0, atol=1e-6)


def test_learning_was_without_the_map_equals_was_train():
    """Learning propagates by attention too (no P x P map): same values and gradients as the explicit form."""
    gen = torch.Generator().manual_seed(6)
    heads, side, d, n = 2, 8, 4, 3
    layers = [(torch.randn(heads, side * side, d, generator=gen, dtype=torch.float64, requires_grad=True),
               torch.randn(heads, side * side, d, generator=gen, dtype=torch.float64), 0.5) for _ in range(2)]
    ca = torch.randn(n, side, side, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(n, side, side, generator=gen, dtype=torch.float64)
    sa = sum(self_attention_probs(q, k, heads, s, chunk=None) for q, k, s in layers) / 2
    explicit = was_train(ca, sa)
    fused = was_train_attention(ca, layers)
    torch.testing.assert_close(fused, explicit)
    grads = [torch.autograd.grad((m * weights).sum(), [ca, layers[0][0]]) for m in (explicit, fused)]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_was_train_hand_example():
    # Class-0 logits ln3, 0, 0, -ln3 against class-1 logits 0: softmax over classes gives
    # P0 = [3/4, 1/2, 1/2, 1/4], P1 = 1 - P0 = [1/4, 1/2, 1/2, 3/4].
    ln3 = math.log(3.0)
    ca = torch.tensor([[[ln3, 0.0], [0.0, -ln3]], [[0.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    # WAS[c, q] = sum_k SA[q, k] P_c[k]:
    #   q0: P0[0] = .75;  q1: .5*.75 + .5*.5 = .625;  q2: .5*.5 + .5*.25 = .375;  q3: (.75+.5+.5+.25)/4 = .5
    expected = torch.tensor(
        [[[0.75, 0.625], [0.375, 0.5]], [[0.25, 0.375], [0.625, 0.5]]], dtype=torch.float64
    )
    torch.testing.assert_close(was_train(ca, SA), expected)
    # batched over frames
    batched = was_train(ca[None].repeat(3, 1, 1, 1), SA[None].repeat(3, 1, 1))
    torch.testing.assert_close(batched, expected.expand(3, -1, -1, -1))


# Prediction example. Class 0 (background) logits [4, 2, 0, -2]: max 4, min -2, mean 1; entries <= 1 are
# zeroed -> [4, 2, 0, 0]. Class 1 logits [0, 1, 3, 2]: max 3, min 0, untouched.
# W0 = SA @ [4,2,0,0] = [4, .5*4+.5*2, 0, (4+2)/4] = [4, 3, 0, 1.5]   (min 0, max 4)
# W1 = SA @ [0,1,3,2] = [0, .5, .5*3+.5*2, (0+1+3+2)/4] = [0, .5, 2.5, 1.5]   (min 0, max 2.5)
# Remap onto the logit ranges: W0 * 6/4 - 2 = [4, 2.5, -2, .25];  W1 * 3/2.5 = [0, .6, 3, 1.8].
CA_PRED = torch.tensor([[[4.0, 2.0], [0.0, -2.0]], [[0.0, 1.0], [3.0, 2.0]]], dtype=torch.float64)


def test_was_predict_hand_example_same_size():
    expected = torch.tensor([[[4.0, 2.5], [-2.0, 0.25]], [[0.0, 0.6], [3.0, 1.8]]], dtype=torch.float64)
    torch.testing.assert_close(was_predict(CA_PRED[None], SA[None], 2), expected[None])
    torch.testing.assert_close(was_predict(CA_PRED, SA, 2), expected)  # unbatched form


def test_was_predict_hand_example_resized():
    # Bilinear 2 -> 4 (align_corners=False) samples source positions -.25 (clamped to 0), .25, .75, 1.25
    # (clamped to 1): a row [a, b] becomes [a, .75a + .25b, .25a + .75b, b].
    # W0 grid [[4, 3], [0, 1.5]]: rows -> [4, 3.75, 3.25, 3] and [0, .375, 1.125, 1.5]; columns likewise:
    #   [4, 3.75, 3.25, 3], [3, 2.90625, 2.71875, 2.625], [1, 1.21875, 1.65625, 1.875], [0, .375, 1.125, 1.5]
    # Still min 0 / max 4, so remap x * 1.5 - 2:
    expected0 = torch.tensor(
        [
            [4.0, 3.625, 2.875, 2.5],
            [2.5, 2.359375, 2.078125, 1.9375],
            [-0.5, -0.171875, 0.484375, 0.8125],
            [-2.0, -1.4375, -0.3125, 0.25],
        ],
        dtype=torch.float64,
    )
    out = was_predict(CA_PRED[None], SA[None], 4)
    assert out.shape == (1, 2, 4, 4)
    torch.testing.assert_close(out[0, 0], expected0)
    # Non-square target (h, w) = (2, 4): only the horizontal resize, rows 0 and 3 of the grid above.
    wide = was_predict(CA_PRED[None], SA[None], (2, 4))
    assert wide.shape == (1, 2, 2, 4)
    torch.testing.assert_close(wide[0, 0], expected0[[0, 3]])


def test_was_predict_constant_map_goes_to_class_min():
    uniform = torch.full((4, 4), 0.25, dtype=torch.float64)  # every W_c is constant
    ca = CA_PRED.clone().requires_grad_()
    out = was_predict(ca[None], uniform[None], 3)
    torch.testing.assert_close(out[0, 0], torch.full((3, 3), -2.0, dtype=torch.float64))
    torch.testing.assert_close(out[0, 1], torch.full((3, 3), 0.0, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(ca.grad).all()


def test_was_predict_gradients_flow():
    gen = torch.Generator().manual_seed(0)
    ca = torch.randn(2, 3, 4, 4, generator=gen, requires_grad=True)
    sa = torch.randn(2, 16, 16, generator=gen).softmax(-1).requires_grad_()
    weights = torch.randn(2, 3, 6, 6, generator=gen)
    (was_predict(ca, sa, 6) * weights).sum().backward()
    for grad in (ca.grad, sa.grad):
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_was_predict_half_precision_upcasts_to_fp32():
    gen = torch.Generator().manual_seed(1)
    ca = torch.randn(1, 3, 4, 4, generator=gen) * 4
    sa = torch.randn(1, 16, 16, generator=gen).softmax(-1)
    ref = was_predict(ca, sa, 8)
    for dt in (torch.float16, torch.bfloat16):
        out = was_predict(ca.to(dt), sa.to(dt), 8)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.1)


def test_cross_attention_logits_matches_explicit_loop():
    gen = torch.Generator().manual_seed(2)
    batch, heads, side, d, tokens, n, size, scale = 2, 3, 3, 5, 7, 4, 5, 0.37
    q = torch.randn(batch * heads, side * side, d, generator=gen, dtype=torch.float64)
    k = torch.randn(batch * heads, tokens, d, generator=gen, dtype=torch.float64)
    out = cross_attention_logits(q, k, heads, n, size, scale)
    assert out.shape == (batch, n, size, size)
    expected = torch.zeros(batch, n, size, size, dtype=torch.float64)
    for b in range(batch):
        for t in range(n):
            for h in range(heads):
                row = b * heads + h  # diffusers' batch-major head split
                grid = torch.zeros(side, side, dtype=torch.float64)
                for y in range(side):
                    for x in range(side):
                        grid[y, x] = scale * torch.dot(q[row, y * side + x], k[row, t])
                up = F.interpolate(grid[None, None], size=(size, size), mode="bilinear", align_corners=False)
                expected[b, t] += up[0, 0] / heads
    torch.testing.assert_close(out, expected)
    # half inputs are computed and returned in fp32
    half = cross_attention_logits(q.half(), k.half(), heads, n, size, scale)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half.double(), expected, rtol=0.02, atol=0.02)


def test_cross_attention_rejects_non_square_grid():
    with pytest.raises(ValueError, match="square"):
        cross_attention_logits(torch.zeros(2, 6, 4), torch.zeros(2, 77, 4), 2, 3, 4, 0.5)


def test_self_attention_probs_rows_chunks_and_formula():
    gen = torch.Generator().manual_seed(3)
    heads, n_pix, d, scale = 4, 16, 8, 8**-0.5
    q = torch.randn(heads, n_pix, d, generator=gen, dtype=torch.float64)
    k = torch.randn(heads, n_pix, d, generator=gen, dtype=torch.float64)
    full = self_attention_probs(q, k, heads, scale, chunk=None)
    assert full.shape == (n_pix, n_pix)
    torch.testing.assert_close(full.sum(-1), torch.ones(n_pix, dtype=torch.float64))
    # softmax per head, then head mean (not softmax of the mean logits)
    expected = torch.stack([torch.softmax(q[h] @ k[h].T * scale, -1) for h in range(heads)]).mean(0)
    torch.testing.assert_close(full, expected)
    for chunk in (1, 3, 5, 16, 100):
        torch.testing.assert_close(self_attention_probs(q, k, heads, scale, chunk=chunk), full)
    half = self_attention_probs(q.bfloat16(), k.bfloat16(), heads, scale, chunk=5)
    assert half.dtype == torch.float32


def test_self_attention_chunked_gradients_match_unchunked():
    gen = torch.Generator().manual_seed(4)
    q = torch.randn(2, 9, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 9, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(9, 9, generator=gen, dtype=torch.float64)
    grads = []
    for chunk in (None, 4):
        (self_attention_probs(q, k, 2, 0.5, chunk=chunk) * w).sum().backward()
        grads.append((q.grad.clone(), k.grad.clone()))
        q.grad, k.grad = None, None
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])
    assert grads[0][0].abs().sum() > 0


def test_layer_means():
    a, b = torch.ones(1, 2, 3, 3), torch.full((1, 2, 3, 3), 3.0)
    torch.testing.assert_close(mean_cross_attention([a, b]), torch.full((1, 2, 3, 3), 2.0))
    torch.testing.assert_close(mean_cross_attention([a, b, b]), torch.full((1, 2, 3, 3), 7.0 / 3))
    with pytest.raises(ValueError):
        mean_cross_attention([])


def test_end_to_end_gradient_reaches_queries():
    # q/k -> CA and SA -> prediction WAS -> scalar: the guidance path of a later stage.
    gen = torch.Generator().manual_seed(5)
    heads, side, n = 2, 4, 3
    q_img = torch.randn(heads, side * side, 8, generator=gen, requires_grad=True)
    k_txt = torch.randn(heads, 77, 8, generator=gen)
    ca = cross_attention_logits(q_img, k_txt, heads, n, side, 8**-0.5)
    sa = self_attention_probs(q_img, q_img, heads, 8**-0.5, chunk=5)[None]
    was_predict(ca, sa, 8)[:, 1].sum().backward()
    assert torch.isfinite(q_img.grad).all() and q_img.grad.abs().sum() > 0
