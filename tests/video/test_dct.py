"""Orthonormal DCT on torch and the low-pass DCT energy of method.md §6.4."""

from pathlib import Path

import numpy as np
import pytest
import torch

from smite.video.dct import dct, dct3, dct_basis, idct, idct3, lowpass, lowpass_dct_energy

VECTORS = np.load(Path(__file__).parents[1] / "data" / "official_vectors.npz")


def dct_via_fft(x: np.ndarray) -> np.ndarray:
    """Orthonormal DCT-II of 1-D ``x`` by Makhoul's FFT algorithm (independent of the matrix form)."""
    n = len(x)
    v = np.concatenate([x[::2], x[1::2][::-1]])
    k = np.arange(n)
    y = 2 * np.real(np.exp(-1j * np.pi * k / (2 * n)) * np.fft.fft(v))
    return y * np.where(k == 0, np.sqrt(1 / (4 * n)), np.sqrt(1 / (2 * n)))


@pytest.mark.parametrize("n", [1, 2, 4, 7, 16, 64])
def test_basis_is_orthonormal(n):
    c = dct_basis(n)
    torch.testing.assert_close(c @ c.T, torch.eye(n, dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("n", [1, 3, 8, 13, 64])
def test_dct_matches_fft_formula(n):
    x = np.random.default_rng(n).standard_normal(n)
    np.testing.assert_allclose(dct(torch.from_numpy(x)).numpy(), dct_via_fft(x), atol=1e-12)


def test_constant_has_only_dc():
    out = dct(torch.ones(9, dtype=torch.float64))
    torch.testing.assert_close(out, torch.tensor([3.0] + [0.0] * 8, dtype=torch.float64), atol=1e-12, rtol=0)


def test_round_trips_and_axes():
    x = torch.randn(3, 5, 6, 7, dtype=torch.float64)
    for dim in range(4):
        torch.testing.assert_close(idct(dct(x, dim), dim), x, atol=1e-12, rtol=0)
    torch.testing.assert_close(dct(x, 1), dct(x.transpose(1, 3), 3).transpose(1, 3))
    torch.testing.assert_close(idct3(dct3(x)), x, atol=1e-12, rtol=0)
    # Parseval: an orthonormal transform keeps energy.
    torch.testing.assert_close(dct3(x).square().sum(), x.square().sum())
    x32 = x.float()
    assert dct3(x32).dtype == torch.float32


@pytest.mark.parametrize("threshold", ["0.4", "0.999"])
def test_reproduces_official_vectors(threshold):
    pred, ref = torch.from_numpy(VECTORS["dct_pred"]), torch.from_numpy(VECTORS["dct_ref"])
    energy = lowpass_dct_energy(pred, ref, float(threshold))
    assert abs(energy.item() - float(VECTORS[f"dct_loss_{threshold}"])) < 1e-9
    smoothed = lowpass(pred, float(threshold)).numpy()
    np.testing.assert_allclose(smoothed, VECTORS[f"dct_lowpassed_pred_{threshold}"], atol=1e-9, rtol=0)


def spatial_wave(shape, fy: int, fx: int) -> torch.Tensor:
    """A map sequence (F, n, S, S) that is one 3-D DCT basis function at spatial frequency (fy, fx)."""
    f, n, s, _ = shape
    coeffs = torch.zeros(n, f, s, s, dtype=torch.float64)
    coeffs[:, 0, fy, fx] = 1.0
    return idct3(coeffs).transpose(0, 1)


def test_energy_zero_for_identical_and_grows_with_high_frequencies():
    ref = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    assert lowpass_dct_energy(ref, ref, 0.4).item() == 0.0
    wave = spatial_wave(ref.shape, 12, 13)  # kept at p = 0.999 (cut 15), removed at p = 0.4 (cut 6)
    energies = [lowpass_dct_energy(ref + a * wave, ref, 0.999).item() for a in (0.0, 0.5, 1.0, 2.0)]
    assert energies[0] == 0.0 and all(b > a for a, b in zip(energies, energies[1:], strict=False))
    assert energies[2] == pytest.approx(3 / (3 * 4 * 16 * 16))  # one unit coefficient per part
    assert lowpass_dct_energy(ref + 2 * wave, ref, 0.4).item() < 1e-15
    low = spatial_wave(ref.shape, 2, 3)  # inside both masks
    assert lowpass_dct_energy(ref + low, ref, 0.4).item() == pytest.approx(3 / (3 * 4 * 16 * 16))
    torch.testing.assert_close(lowpass(ref + wave, 0.4), lowpass(ref, 0.4))


def test_energy_and_lowpass_are_differentiable():
    pred = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    ref = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: lowpass_dct_energy(p, ref, 0.6), (pred,))
    assert torch.autograd.gradcheck(lambda p: lowpass(p, 0.6), (pred,))
    lowpass_dct_energy(pred.float(), ref.float(), 0.4).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
