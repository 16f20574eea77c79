"""Orthonormal DCT-II and its inverse on torch, and the low-pass DCT energy of method.md §6.4.

The transform is a matrix product with a cached orthonormal basis: for the sizes used here (a few frames,
64x64 latent maps) that is exact to rounding, differentiable, device-agnostic and fast, with no FFT or
DCT package involved. Everything runs in full precision even under autocast (half inputs are upcast to fp32,
the result is fp32): the energy's gradient is a sign pattern of small coefficient differences that bf16
rounding scrambles (method.md §0.2).
"""

import functools
import math

import torch
from torch import Tensor

from smite.model.precision import full_precision, work


@functools.lru_cache(maxsize=32)
def _basis_cached(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    c = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c.to(dtype=dtype, device=device)


def dct_basis(n: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> Tensor:
    """Orthonormal DCT-II matrix C, shape (n, n): ``X[k] = sum_i C[k, i] x[i]``; ``C @ C.T = I``."""
    return _basis_cached(int(n), dtype, torch.device(device))


@full_precision
def dct(x: Tensor, dim: int = -1) -> Tensor:
    """Orthonormal DCT-II of ``x`` along ``dim`` (any shape, floating dtype; fp32 for halves); same shape."""
    x = work(x)
    c = dct_basis(x.shape[dim], x.dtype, x.device)
    return (x.movedim(dim, -1) @ c.T).movedim(-1, dim)


@full_precision
def idct(x: Tensor, dim: int = -1) -> Tensor:
    """Inverse of :func:`dct` (orthonormal DCT-III) along ``dim``; same shape as ``x``."""
    x = work(x)
    c = dct_basis(x.shape[dim], x.dtype, x.device)
    return (x.movedim(dim, -1) @ c).movedim(-1, dim)


def dct3(x: Tensor) -> Tensor:
    """Orthonormal 3-D DCT-II over the last three axes of ``x`` (..., D, H, W)."""
    return dct(dct(dct(x, -1), -2), -3)


def idct3(x: Tensor) -> Tensor:
    """Inverse of :func:`dct3` over the last three axes of ``x`` (..., D, H, W)."""
    return idct(idct(idct(x, -1), -2), -3)


def _spatial_mask(x: Tensor, threshold: float) -> Tensor:
    """Mask (H, W) keeping spatial frequencies [0, floor(H*p)) x [0, floor(W*p)), dtype of ``x``."""
    h, w = x.shape[-2:]
    mask = torch.zeros(h, w, dtype=x.dtype, device=x.device)
    mask[: math.floor(h * threshold), : math.floor(w * threshold)] = 1
    return mask


def _coefficients(x: Tensor) -> Tensor:
    """(F, n, H, W) maps -> (n, F, H, W) 3-D DCT coefficients over (time, y, x)."""
    if x.ndim != 4:
        raise ValueError(f"expected maps of shape (F, n, H, W), got {tuple(x.shape)}")
    return dct3(x.transpose(0, 1))


@full_precision
def lowpass_dct_energy(pred: Tensor, ref: Tensor, threshold: float) -> Tensor:
    """Low-pass DCT L1 energy of §6.4 between two map sequences (differentiable in both).

    pred, ref: (F, n, H, W) floating tensors. Both are arranged as (n, F, H, W) and transformed by an
    orthonormal 3-D DCT-II over (time, y, x); spatial frequencies below ``floor(S * threshold)`` on both
    axes are kept for every temporal frequency. Returns the scalar mean |M*D_pred - M*D_ref| over all
    n*F*H*W entries (zeros included), in the working dtype (fp32 for half inputs).
    """
    if pred.shape != ref.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and ref {tuple(ref.shape)} differ in shape")
    diff = _coefficients(pred) - _coefficients(ref)  # the DCT is linear; masking commutes with the difference
    return (diff * _spatial_mask(diff, threshold)).abs().mean()


@full_precision
def lowpass(x: Tensor, threshold: float) -> Tensor:
    """The maps ``x`` (F, n, H, W) with the §6.4 mask applied in the 3-D DCT domain; same shape (fp32 for halves)."""
    coeffs = _coefficients(x) * _spatial_mask(x, threshold)
    return idct3(coeffs).transpose(0, 1)
