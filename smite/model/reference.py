"""The reference pass that learning and shot segmentation share: a plate's per-part logits on the latent grid.

Fit the plate into the model frame, take a VAE posterior sample, noise it to t ~ U{95..104}, make one UNet
call conditioned on the part prompt with the learned tokens (the frames of a window together), and read the
maps per frame:

* ``map_mode="was"``: prediction WAS: cross-attention logits propagated by self-attention;
* ``map_mode="cross"``: the cross-attention logits alone.

It also knows what the UNet predicts (``prediction_type`` of the scheduler config): epsilon (SD 2.1-base,
SD 1.5) or v (SD 2.1 at 768 px); the DDIM step and the SD loss convert through :func:`to_epsilon_x0` and
:func:`prediction_target`. Any other type is refused: running it as epsilon would be wrong silently.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from smite.errors import SmiteError
from smite.model.backbone import Backbone
from smite.model.reader import AttentionReader

MAP_MODES = ("was", "cross")
REFERENCE_TIMESTEPS = (95, 104)  # inclusive range of the reference pass (§1.3)
PREDICTION_TYPES = ("epsilon", "v_prediction")


def prediction_type(backbone: Backbone) -> str:
    """The backbone's ``prediction_type`` (epsilon or v_prediction); SmiteError for any other."""
    kind = getattr(backbone.scheduler.config, "prediction_type", "epsilon") or "epsilon"
    if kind not in PREDICTION_TYPES:
        raise SmiteError(f"the backbone's scheduler predicts {kind!r}; SMITE supports {' and '.join(PREDICTION_TYPES)}")
    return kind


def to_epsilon_x0(z: torch.Tensor, output: torch.Tensor, abar: torch.Tensor, kind: str
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(eps, x0) from latents ``z`` at noise level ``abar`` and the UNet ``output`` of prediction ``kind``.

    epsilon: x0 = (z - sqrt(1-abar) eps) / sqrt(abar); v: x0 = sqrt(abar) z - sqrt(1-abar) v,
    eps = sqrt(1-abar) z + sqrt(abar) v.
    """
    a, s = abar.sqrt(), (1 - abar).sqrt()
    if kind == "v_prediction":
        return s * z + a * output, a * z - s * output
    if kind == "epsilon":
        return output, (z - s * output) / a
    raise SmiteError(f"unsupported prediction type {kind!r}")


def prediction_target(z0: torch.Tensor, eps: torch.Tensor, abar: torch.Tensor, kind: str) -> torch.Tensor:
    """What the UNet should output for clean latents ``z0`` noised with ``eps`` at ``abar`` (the SD loss target):
    ``eps`` for epsilon, ``v = sqrt(abar) eps - sqrt(1-abar) z0`` for v_prediction."""
    if kind == "v_prediction":
        return abar.sqrt() * eps - (1 - abar).sqrt() * z0
    if kind == "epsilon":
        return eps
    raise SmiteError(f"unsupported prediction type {kind!r}")


class Posterior(NamedTuple):
    """A VAE posterior: ``mean`` and ``std``, each (B, 4, S, S), unscaled."""

    mean: torch.Tensor
    std: torch.Tensor


def encode_posterior(backbone: Backbone, images: np.ndarray) -> Posterior:
    """Model-frame images (B, R, R, 3) in [0, 1] -> their VAE posterior (the costly part of :func:`to_latents`)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(backbone.device) * 2 - 1
    with torch.no_grad():
        dist = backbone.vae.encode(x.float()).latent_dist
    return Posterior(dist.mean, dist.std)


def sample_posterior(backbone: Backbone, posterior: Posterior, generator: torch.Generator) -> torch.Tensor:
    """A scaled posterior sample (B, 4, S, S) fp32, its noise drawn from ``generator``."""
    noise = torch.randn(posterior.mean.shape, generator=generator).to(backbone.device)
    return (posterior.mean + posterior.std * noise) * backbone.latent_scale


def to_latents(backbone: Backbone, images: np.ndarray, generator: torch.Generator) -> torch.Tensor:
    """Model-frame images (B, R, R, 3) in [0, 1] -> scaled VAE posterior samples (B, 4, S, S) fp32."""
    return sample_posterior(backbone, encode_posterior(backbone, images), generator)


def add_noise(backbone: Backbone, z0: torch.Tensor, t: int, generator: torch.Generator) -> torch.Tensor:
    """q_sample: sqrt(abar_t) z0 + sqrt(1 - abar_t) eps, eps ~ N(0, I) from ``generator``."""
    eps = torch.randn(z0.shape, generator=generator).to(z0.device)
    abar = backbone.scheduler.alphas_cumprod[t].to(z0.device, torch.float32)
    return abar.sqrt() * z0 + (1 - abar).sqrt() * eps


def part_maps(reader: AttentionReader, item: int, num_parts: int, map_mode: str) -> torch.Tensor:
    """Per-part logit maps (n, S, S) of batch element ``item`` of the last UNet call."""
    if map_mode == "cross":
        return reader.cross_maps(item, num_parts)
    return reader.was_maps(item, num_parts, reader.backbone.latent_size)


def reference_logits(
    backbone: Backbone, reader: AttentionReader, images: np.ndarray, cond: torch.Tensor,
    generator: torch.Generator, num_parts: int, map_mode: str, frames: int = 1,
) -> torch.Tensor:
    """The reference pass on model-frame images (B, R, R, 3): per-part logits (B, n, S, S), no gradients.

    ``frames``: consecutive images that form one window of the inflated UNet (1 = independent images).
    """
    low, high = REFERENCE_TIMESTEPS
    t = int(torch.randint(low, high + 1, (1,), generator=generator))
    with torch.no_grad():
        z = add_noise(backbone, to_latents(backbone, images, generator), t, generator)
        reader.run(z, t, cond.expand(len(images), -1, -1), frames=frames)
        return torch.stack([part_maps(reader, i, num_parts, map_mode) for i in range(len(images))])
