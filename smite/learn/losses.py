"""Learning losses of the few-shot training (method.md §4.3-4.4), with the Fourier-loss bug of §12.8 fixed.

Pure torch functions. Losses are computed in fp32 (fp16/bf16 inputs are upcast; fp64 stays fp64) with autocast
off, also when the caller runs under autocast (method.md §0.2), and returned as 0-dim tensors in that precision.
Masks are integer label maps with values 0..n-1 (0 = background).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from smite.errors import SmiteError
from smite.model.precision import full_precision
from smite.model.precision import work as _work

_REFERENCE_SIDE = 64  # the official Fourier cutoff (30) is defined on 64x64 maps


def _check_labels(target: Tensor, n: int) -> None:
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ValueError(f"a label mask must be an integer tensor, got {target.dtype}")
    lo, hi = int(target.min()), int(target.max())
    if lo < 0 or hi >= n:
        raise SmiteError(
            f"mask labels span {lo}..{hi} but there are {n} parts (labels 0..{n - 1}): "
            "fix the mask or name every part in the prompt"
        )


def class_weights(target: Tensor, n: int) -> Tensor:
    """Class weights of the cross-attention CE (§4.3): w_0 = 1, w_c = N_fg / N_c for present c >= 1, else 0.

    target: int (S, S) or (B, S, S) label mask (counts pool all its pixels).
    Returns float32 (n,) on the mask's device.
    """
    _check_labels(target, n)
    counts = torch.bincount(target.reshape(-1).long(), minlength=n).float()
    n_fg = counts[1:].sum()
    weights = torch.where(counts > 0, n_fg / counts.clamp_min(1.0), torch.zeros_like(counts))
    weights[0] = 1.0
    return weights


@full_precision
def weighted_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Class-weighted CE of cross-attention logits over the n classes (§4.3 L1), 0-dim.

    logits: (n, S, S) or (B, n, S, S); target: int (S, S) or (B, S, S). PyTorch's weighted-mean reduction
    ``sum(w_y * l) / sum(w_y)`` with :func:`class_weights`. With only background present the weights are
    (1, 0, ...) and this is the plain mean CE (the denominator is the pixel count, never 0).
    """
    if logits.dim() == 3:
        logits, target = logits[None], target[None]
    if logits.shape[:1] + logits.shape[2:] != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and mask {tuple(target.shape)} do not match")
    x = _work(logits)
    weights = class_weights(target, x.shape[1]).to(device=x.device, dtype=x.dtype)
    return F.cross_entropy(x, target.long(), weight=weights)


def one_hot(target: Tensor, n: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """int (..., S, S) labels -> (..., n, S, S) one-hot in ``dtype``."""
    _check_labels(target, n)
    return F.one_hot(target.long(), n).movedim(-1, -3).to(dtype)


@full_precision
def was_mse(was: Tensor, target: Tensor, n: int) -> Tensor:
    """WAS MSE (§4.3 L2): ``n * mean((was - onehot(target))^2)``, 0-dim.

    was: (n, S, S) or (B, n, S, S) training WAS; target: int (S, S) or (B, S, S).
    """
    x = _work(was)
    y = one_hot(target, n, x.dtype)
    if x.shape != y.shape:
        raise ValueError(f"WAS {tuple(was.shape)} and mask {tuple(target.shape)} (n={n}) do not match")
    return n * torch.mean((x - y) ** 2)


def fourier_masks(
    height: int, width: int, cutoff: int = 30, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """(low, high) 0/1 float32 masks (height, width) over an fftshifted spectrum.

    ``low`` keeps the centred (2*ky) x (2*kx) block, k = round(cutoff * side / 64) per axis (``cutoff`` is
    the official value for 64x64 maps), clamped to the spectrum; ``high`` is its complement. On 64x64 with
    cutoff 30 the block is indices 2..61, the block the official code zeroes for its high-pass.
    """
    ky = min(round(cutoff * height / _REFERENCE_SIDE), height // 2)
    kx = min(round(cutoff * width / _REFERENCE_SIDE), width // 2)
    cy, cx = height // 2, width // 2  # the zero frequency after fftshift
    low = torch.zeros(height, width, device=device)
    low[cy - ky : cy + ky, cx - kx : cx + kx] = 1.0
    return low, 1.0 - low


def _wrapped_angle(d: Tensor) -> Tensor:
    """Angle difference wrapped to [-pi, pi]: phases pi - e and -pi + e are 2e apart, not 2pi - 2e."""
    return torch.atan2(torch.sin(d), torch.cos(d))


def _spectral_terms(was: Tensor, onehot: Tensor, cutoff: int) -> tuple[Tensor, Tensor]:
    """(low-pass, high-pass) spectrum discrepancies per map, each (..., n): MSE of magnitudes + of phases."""
    x = torch.fft.fftshift(torch.fft.fft2(was), dim=(-2, -1))
    z = torch.fft.fftshift(torch.fft.fft2(onehot), dim=(-2, -1))
    low, high = fourier_masks(was.shape[-2], was.shape[-1], cutoff, was.device)
    mag_err = (x.abs() - z.abs()) ** 2
    phase_err = _wrapped_angle(torch.angle(x) - torch.angle(z)) ** 2
    # Masked entries are zero in both spectra, so they count as zero error in the full-grid mean (as in §4.3).
    terms = [((mag_err + phase_err) * m.to(was.dtype)).mean((-2, -1)) for m in (low, high)]
    return terms[0], terms[1]


@full_precision
def fourier_loss(was: Tensor, onehot: Tensor, cutoff: int = 30) -> Tensor:
    """Fourier term of the learning loss (§4.3 L_freq) with the §12.8 bug fixed, 0-dim.

    was, onehot: (n, H, W) or (B, n, H, W) float. Per class c, with X/Z the fftshifted unnormalised 2-D FFTs
    of was[c]/onehot[c]: ``Lf_c = MSE(|X_l|,|Z_l|) + MSE_phase(X_l,Z_l) + 10*(MSE(|X_h|,|Z_h|) +
    MSE_phase(X_h,Z_h))``, summed over classes (averaged over a leading batch). Choices, all deliberate:
    * X_l keeps only the centred low frequencies (the official "low-pass" mask was all ones); X_h zeroes them.
    * The low block is (2k)x(2k) with k = round(cutoff * side / 64) per axis, so maps of other sizes keep the
      same fraction of the spectrum as the official 64x64 maps (see :func:`fourier_masks`).
    * Phases are compared through the wrapped difference atan2(sin d, cos d) (no 2*pi jumps).
    * As in the official loss, phases of (near-)zero coefficients are compared too, although they are
      rounding noise there (a one-hot mask has exact spectral zeros): the term is not continuous at such bins.
    * Unnormalised FFT (torch's default), as the official code, so the 0.001 loss weight keeps its scale.
    """
    if was.shape != onehot.shape:
        raise ValueError(f"WAS {tuple(was.shape)} and one-hot {tuple(onehot.shape)} do not match")
    x = _work(was)
    low, high = _spectral_terms(x, onehot.to(x.dtype), cutoff)
    per_map = low + 10.0 * high
    return per_map.sum(-1).mean() if per_map.dim() > 1 else per_map.sum()


@dataclass(frozen=True)
class LossTerms:
    """The terms of the learning loss (0-dim tensors) and their weighted ``total`` (§4.3)."""

    ce: Tensor
    was_mse: Tensor
    sd: Tensor
    fourier: Tensor
    total: Tensor


@full_precision
def learning_loss(
    ca: Tensor,
    was_train_map: Tensor,
    target: Tensor,
    eps_pred: Tensor | None,
    eps: Tensor | None,
    fourier_weight: float,
    sd_weight: float = 0.005,
) -> LossTerms:
    """Learning loss of one sample (§4.3): ``L1 + L2 + 0.005*L_sd + fourier_weight*L_freq``.

    ca: (n, S, S) or (B, n, S, S) cross-attention logits; was_train_map: the same shape (§3.3 WAS);
    target: int (S, S) or (B, S, S) mask; eps_pred, eps: predicted / true noise of any equal shape
    (None for both skips the SD term). The Fourier term is only computed when ``fourier_weight != 0``
    (the schedule gives it weight 0 in the first epochs); otherwise it is reported as 0.
    """
    n = ca.shape[-3]
    ce = weighted_cross_entropy(ca, target)
    mse = was_mse(was_train_map, target, n)
    zero = ce.new_zeros(())
    sd = zero
    if eps_pred is not None and eps is not None:
        pred = _work(eps_pred)
        sd = F.mse_loss(pred, eps.to(pred.dtype))
    freq = zero
    if fourier_weight != 0:
        freq = fourier_loss(was_train_map, one_hot(target, n, _work(was_train_map).dtype))
    total = ce + mse + sd_weight * sd + fourier_weight * freq
    return LossTerms(ce=ce, was_mse=mse, sd=sd, fourier=freq, total=total)
