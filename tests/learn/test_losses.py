"""Learning losses (smite/learn/losses.py): class weights, weighted CE, WAS MSE, fixed Fourier loss, total."""

import math

import pytest
import torch
import torch.nn.functional as F

from smite.errors import SmiteError
from smite.learn.losses import (
    LossTerms,
    _spectral_terms,
    class_weights,
    fourier_loss,
    fourier_masks,
    learning_loss,
    one_hot,
    was_mse,
    weighted_cross_entropy,
)


def test_class_weights_hand_computed():
    # counts: class 0 -> 8, class 1 -> 6, class 2 -> 2, class 3 -> 0; N_fg = 6 + 2 = 8
    target = torch.tensor([[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 2, 2]])
    expected = torch.tensor([1.0, 8 / 6, 8 / 2, 0.0])
    torch.testing.assert_close(class_weights(target, 4), expected)
    # background absent still weighs 1; only background present -> (1, 0, 0)
    torch.testing.assert_close(class_weights(torch.ones(2, 2, dtype=torch.long), 2), torch.tensor([1.0, 1.0]))
    only_bg = class_weights(torch.zeros(3, 3, dtype=torch.long), 3)
    torch.testing.assert_close(only_bg, torch.tensor([1.0, 0, 0]))


def test_class_weights_rejects_out_of_range_labels():
    with pytest.raises(SmiteError, match="3 parts"):
        class_weights(torch.tensor([[0, 3]]), 3)


def test_weighted_cross_entropy_hand_computed():
    # target [[0, 1], [1, 2]], n = 3: counts (1, 2, 1), N_fg = 3 -> weights (1, 1.5, 3).
    target = torch.tensor([[0, 1], [1, 2]])
    logits = torch.zeros(3, 2, 2, dtype=torch.float64)
    logits[1, 0, 1] = math.log(2.0)  # pixel (0,1), label 1: p = 2/(1+2+1) = 1/2 -> CE ln 2
    logits[2, 1, 1] = math.log(2.0)  # pixel (1,1), label 2: p = 1/2 -> CE ln 2
    # pixels (0,0) label 0 and (1,0) label 1 have uniform logits -> CE ln 3
    # weighted mean = (1*ln3 + 1.5*ln2 + 1.5*ln3 + 3*ln2) / (1 + 1.5 + 1.5 + 3) = (2.5 ln3 + 4.5 ln2) / 7
    expected = (2.5 * math.log(3.0) + 4.5 * math.log(2.0)) / 7.0
    assert weighted_cross_entropy(logits, target).item() == pytest.approx(expected, rel=1e-12)


def test_weighted_cross_entropy_matches_torch_batched():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 8, 8, generator=gen)
    target = torch.randint(0, 4, (2, 8, 8), generator=gen)  # class 4 absent -> weight 0
    weights = class_weights(target, 5)
    assert weights[4] == 0 and weights[0] == 1
    expected = F.cross_entropy(logits, target, weight=weights)
    torch.testing.assert_close(weighted_cross_entropy(logits, target), expected)
    # half-precision logits are upcast: a float32 loss
    assert weighted_cross_entropy(logits.half(), target).dtype == torch.float32


def test_weighted_cross_entropy_background_only():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 4, 4, generator=gen, requires_grad=True)
    target = torch.zeros(4, 4, dtype=torch.long)
    loss = weighted_cross_entropy(logits, target)
    torch.testing.assert_close(loss, F.cross_entropy(logits[None], target[None]))
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_was_mse():
    target = torch.tensor([[0, 1], [2, 2]])
    y = one_hot(target, 3)
    assert y.shape == (3, 2, 2) and y.sum() == 4 and y[2, 1, 1] == 1
    assert was_mse(y, target, 3).item() == 0.0
    # all-zero WAS: n * (4 ones / 12 elements) = 1 for any mask
    assert was_mse(torch.zeros(3, 2, 2), target, 3).item() == pytest.approx(1.0)
    assert was_mse(torch.zeros(2, 3, 2, 2), torch.stack([target, target]), 3).item() == pytest.approx(1.0)


def _square_onehot(side: int = 64, n: int = 3) -> torch.Tensor:
    target = torch.zeros(side, side, dtype=torch.long)
    target[16:40, 20:44] = 1
    target[40:52, 10:30] = 2
    return one_hot(target, n, torch.float64)


def _dot_onehot() -> torch.Tensor:
    """Two classes, class 1 = the pixel (32, 32) of a 64x64 map. No spectral zeros (every phase is defined):
    class 1's spectrum is (-1)^(ky+kx), class 0's is 4096*delta(k) - (-1)^(ky+kx); phases are 0 or +-pi."""
    target = torch.zeros(64, 64, dtype=torch.long)
    target[32, 32] = 1
    return one_hot(target, 2, torch.float64)


def test_fourier_mask_is_a_real_low_pass():
    # Regression for method.md §12.8: the official "low-pass" mask was all ones.
    low, high = fourier_masks(64, 64, 30)
    assert low.sum() == 60 * 60 and not bool((low == 1).all())
    assert low[2:62, 2:62].eq(1).all() and low[:2].eq(0).all() and low[:, 62:].eq(0).all()
    torch.testing.assert_close(low + high, torch.ones(64, 64))
    # cutoff scales with the map size: round(30 * 32 / 64) = 15 -> block 1..30; non-square per axis
    low32, _ = fourier_masks(32, 32)
    assert low32.sum() == 30 * 30 and low32[1:31, 1:31].eq(1).all()
    low_rect, _ = fourier_masks(32, 64)
    assert low_rect.sum() == 30 * 60


def test_fourier_loss_zero_for_identical_inputs():
    y = _square_onehot()
    assert fourier_loss(y, y).item() == 0.0
    assert fourier_loss(y[None].repeat(2, 1, 1, 1), y[None].repeat(2, 1, 1, 1)).item() == 0.0


def test_fourier_loss_penalises_high_frequencies_more():
    y = _dot_onehot()
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    smooth = torch.cos(2 * math.pi * xx / 64).double()  # frequency (0, +-1): inside the low-pass block
    checker = ((-1.0) ** (xx + yy)).double()  # Nyquist frequency (32, 32): outside it
    low_diff, high_diff = y.clone(), y.clone()
    low_diff[1] += 0.05 * smooth
    high_diff[1] += 0.05 * checker
    low_terms = _spectral_terms(low_diff, y, 30)
    high_terms = _spectral_terms(high_diff, y, 30)
    # The smooth change shows only in the low-pass terms, the checkerboard only in the high-pass terms.
    assert low_terms[0][1] > 0 and low_terms[1][1] < 1e-9
    assert high_terms[1][1] > 0 and high_terms[0][1] < 1e-9
    assert fourier_loss(high_diff, y) > 5 * fourier_loss(low_diff, y) > 0


def test_fourier_phase_wraps_around():
    # Half the bins of the dot's spectra sit at phase +-pi; tiny noise flips some between +pi and -pi. With
    # wrapped differences the loss stays tiny.
    y = _dot_onehot()
    noisy = y + 1e-7 * torch.randn(y.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert fourier_loss(noisy, y).item() < 1e-9
    # the naive (unwrapped) phase difference sees 2*pi jumps here: proof the case is exercised
    x = torch.fft.fftshift(torch.fft.fft2(noisy[1]))
    z = torch.fft.fftshift(torch.fft.fft2(y[1]))
    assert ((torch.angle(x) - torch.angle(z)).abs() > 6.0).any()


def test_fourier_loss_gradient_finite():
    y = _square_onehot()
    was = (y * 0.8 + 0.1).requires_grad_()
    fourier_loss(was, y).backward()
    assert torch.isfinite(was.grad).all() and was.grad.abs().sum() > 0


def test_learning_loss_total_and_gradients():
    gen = torch.Generator().manual_seed(3)
    n, side = 3, 16
    ca = torch.randn(n, side, side, generator=gen, requires_grad=True)
    was = torch.rand(n, side, side, generator=gen, requires_grad=True)
    target = torch.randint(0, n, (side, side), generator=gen)
    eps_pred, eps = torch.randn(4, 8, 8, generator=gen), torch.randn(4, 8, 8, generator=gen)
    terms = learning_loss(ca, was, target, eps_pred, eps, fourier_weight=0.001)
    assert isinstance(terms, LossTerms)
    torch.testing.assert_close(terms.ce, weighted_cross_entropy(ca, target))
    torch.testing.assert_close(terms.was_mse, was_mse(was, target, n))
    torch.testing.assert_close(terms.sd, ((eps_pred - eps) ** 2).mean())
    torch.testing.assert_close(terms.fourier, fourier_loss(was, one_hot(target, n)))
    expected = terms.ce + terms.was_mse + 0.005 * terms.sd + 0.001 * terms.fourier
    torch.testing.assert_close(terms.total, expected)
    terms.total.backward()
    assert ca.grad.abs().sum() > 0 and was.grad.abs().sum() > 0
    # weight 0: the Fourier term is skipped and reported as 0
    off = learning_loss(ca, was, target, eps_pred, eps, fourier_weight=0.0)
    assert off.fourier.item() == 0.0
    torch.testing.assert_close(off.total, off.ce + off.was_mse + 0.005 * off.sd)
