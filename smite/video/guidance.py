"""Spatio-temporal guidance: few-step denoising whose latents are optimised between steps (method.md §6.2c-§6.5).

Between DDIM steps the window's latents are moved, chunk by chunk, down the gradient of

    E = lambda_reg * E_reg + lambda_track * E_track

* ``E_track``: class-weighted cross-entropy of the chunk's WAS maps towards the labels voted along point
  tracks (§6.5), so a point keeps its label as it moves;
* ``E_reg``: L1 distance between low-pass 3-D DCT coefficients of the chunk's WAS maps and of the window's
  un-guided reference maps (§6.4), so guidance does not drift away from what the model sees.

The update is Adam-like with step ``eta_t = lr_scale * beta_t / (1 - beta_t)``, in fp32 (§0.2: latents,
gradients and moments stay fp32; only the UNet forward runs under autocast).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from smite.learn.losses import weighted_cross_entropy
from smite.model.precision import full_precision, work
from smite.model.reference import to_epsilon_x0
from smite.video.dct import lowpass_dct_energy
from smite.video.voting import vote

# The tiny backbone runs on CPU in tests and demos: a fwd+bwd chunk costs seconds there, so the quality preset
# does 3 latent iterations per guided step instead of 15 (measured in bench/video.py).
TINY_GUIDANCE = {"iterations": 3}


@dataclass(frozen=True)
class GuidanceSettings:
    """Constants of the guided path (defaults: method.md §6 with the §0 decisions).

    ``timesteps``: the DDIM timesteps run on each window, one step each; ``guided_steps``: after how many of
    them the latents are optimised; ``iterations``: latent updates per guided step; ``chunk``: frames per
    gradient chunk; ``dct_thresholds``: low-pass fraction at the first guided step and at later ones;
    ``vote_window``: frames a point's track votes over.
    """

    timesteps: tuple[int, ...] = (104, 103, 102, 101)
    guided_steps: int = 3
    iterations: int = 15
    chunk: int = 4
    lambda_track: float = 0.1
    lambda_reg: float = 8.0
    dct_thresholds: tuple[float, float] = (0.999, 0.4)
    lr_scale: float = 10.0
    vote_window: int = 15
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-5

    def __post_init__(self) -> None:
        if not self.timesteps or any(not 0 < t < 1000 for t in self.timesteps):
            raise ValueError(f"guidance timesteps must lie in 1..999, got {self.timesteps}")
        if not 0 <= self.guided_steps <= len(self.timesteps) or self.iterations < 0 or self.chunk < 1:
            raise ValueError("guided_steps must be in [0, len(timesteps)], iterations >= 0 and chunk >= 1")

    @classmethod
    def for_backbone(cls, backbone, **overrides) -> GuidanceSettings:
        """The method's constants; on the tiny CPU backbone fewer latent iterations (see TINY_GUIDANCE)."""
        base = TINY_GUIDANCE if backbone.is_tiny else {}
        return cls(**(base | overrides))

    def dct_threshold(self, step: int) -> float:
        return self.dct_thresholds[0] if step == 0 else self.dct_thresholds[1]


def step_size(alphas_cumprod: Tensor, t: int, lr_scale: float) -> float:
    """``eta_t = lr_scale * beta_t / (1 - beta_t)`` with beta_t = 1 - abar_t / abar_{t-1} (§6.3)."""
    beta = 1.0 - float(alphas_cumprod[t] / alphas_cumprod[t - 1])
    return lr_scale * beta / (1.0 - beta)


@full_precision
def ddim_step(z: Tensor, output: Tensor, alphas_cumprod: Tensor, t: int, t_prev: int,
              prediction: str = "epsilon") -> Tensor:
    """Deterministic DDIM update (eta = 0) of latents ``z`` from timestep ``t`` to ``t_prev`` given the UNet
    ``output`` of prediction type ``prediction`` (epsilon or v_prediction, see ``reference.to_epsilon_x0``)."""
    a_t, a_prev = (alphas_cumprod[i].to(z.device, torch.float32) for i in (t, t_prev))
    eps, x0 = to_epsilon_x0(z.float(), output.float(), a_t, prediction)
    return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps


@dataclass
class AdamState:
    """First and second moments of the latent update of one chunk (fp32, zero at each guided step)."""

    m: Tensor
    v: Tensor
    step: int = 0

    @classmethod
    def zeros_like(cls, z: Tensor) -> AdamState:
        return cls(torch.zeros_like(z, dtype=torch.float32), torch.zeros_like(z, dtype=torch.float32))

    def update(self, g: Tensor, lr: float, betas: tuple[float, float], eps: float) -> Tensor:
        """The step to subtract from the latents for gradient ``g``, with bias correction."""
        b1, b2 = betas
        self.m.mul_(b1).add_(g, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        self.step += 1
        m_hat = self.m / (1 - b1**self.step)
        v_hat = self.v / (1 - b2**self.step)
        return lr * m_hat / (v_hat.sqrt() + eps)


@full_precision
def guidance_energy(maps: Tensor, reference: Tensor, target: Tensor, threshold: float,
                    settings: GuidanceSettings) -> Tensor:
    """E of one chunk: maps, reference (Fc, n, S, S) WAS logits; target int64 (Fc, S, S) voted labels.

    Computed in fp32 (fp64 for fp64 maps) with autocast off."""
    maps, reference = work(maps), work(reference)
    energy = maps.new_zeros(())
    if settings.lambda_reg:
        energy = energy + settings.lambda_reg * lowpass_dct_energy(maps, reference, threshold)
    if settings.lambda_track:
        energy = energy + settings.lambda_track * weighted_cross_entropy(maps, target)
    return energy


@dataclass
class LatentOptimizer:
    """Runs the latent optimisation of one guided step on a window (§6.3).

    ``chunk_maps(z_chunk, t)`` is the differentiable map function: latents (Fc, 4, S, S) fp32 -> WAS logits
    (Fc, n, S, S) of a UNet call on those frames alone (the chunk is its own window). ``energies`` records
    the summed chunk energy of every iteration (before that iteration's update).
    """

    chunk_maps: Callable[[Tensor, int], Tensor]
    settings: GuidanceSettings
    alphas_cumprod: Tensor
    energies: list[float] = field(default_factory=list)

    def optimise(self, z: Tensor, t: int, step: int, current: Tensor, reference: Tensor,
                 tracks_xy: Tensor | None, visible: Tensor | None,
                 cancel: Callable[[], None] | None = None) -> Tensor:
        """Latents z (F, 4, S, S) after ``iterations`` updates at timestep t (guided step index ``step``).

        current, reference: (F, n, S, S) WAS logits of the last full-window call and of the reference pass;
        tracks_xy (F, F, P, 2) / visible (F, F, P): grid tracks for voting (None when tracking is off).
        """
        s = self.settings
        target = self._target(current, tracks_xy, visible)
        threshold = s.dct_threshold(step)
        lr = step_size(self.alphas_cumprod, t, s.lr_scale)
        z = z.detach().float().clone()
        chunks = [slice(a, min(a + s.chunk, len(z))) for a in range(0, len(z), s.chunk)]
        states = [AdamState.zeros_like(z[c]) for c in chunks]
        self.energies = []
        for _ in range(s.iterations):
            total = 0.0
            for c, state in zip(chunks, states):
                if cancel is not None:
                    cancel()
                zc = z[c].clone().requires_grad_(True)
                energy = guidance_energy(self.chunk_maps(zc, t), reference[c], target[c], threshold, s)
                (grad,) = torch.autograd.grad(energy, zc)
                z[c] -= state.update(grad.float(), lr, s.adam_betas, s.adam_eps)
                total += energy.item()
            self.energies.append(total)
        return z

    def _target(self, current: Tensor, tracks_xy: Tensor | None, visible: Tensor | None) -> Tensor:
        """Voted labels (F, S, S) int64: the tracking target, fixed for the whole guided step."""
        if tracks_xy is None or not self.settings.lambda_track:
            return current.argmax(1)
        return vote(current.detach(), tracks_xy, visible, self.settings.vote_window).argmax(1)
