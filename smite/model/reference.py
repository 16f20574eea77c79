"""Segmentation settings and the per-frame pieces that the shot segmenter (``smite.video.shot``) and learning use.

The reference pass (method.md §6.2a, with §0's decisions): fit the plate into the model frame, VAE posterior
sample, noise to t ~ U{95..104}, one UNet call conditioned on the part prompt with the learned tokens (the
frames of a window together), read the maps per frame, then

* ``map_mode="was"``: prediction WAS (§3.4): cross-attention logits propagated by self-attention;
* ``map_mode="cross"``: the cross-attention logits alone;

crop the plate's region of the latent grid, resize to the plate's size and turn the per-part logits into
soft mattes with a softmax over parts at ``matte_temperature`` (logit units); labels are the argmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from smite.model.backbone import Backbone
from smite.errors import SmiteError
from smite.model.framing import Framing
from smite.video.guidance import GuidanceSettings
from smite.model.reader import AttentionReader
from smite.video.windows import check_window

MAP_MODES = ("was", "cross")
REFERENCE_TIMESTEPS = (95, 104)  # inclusive range of the reference pass (§1.3)


class Cancelled(SmiteError):
    """Raised when a cancel hook asks a long operation to stop."""

    def __init__(self, what: str = "operation") -> None:
        super().__init__(f"{what} cancelled", code="cancelled")


PRESETS = ("fast", "quality")
PRESET_WINDOWS = {"fast": (16, 0), "quality": (16, 8)}  # (window, overlap) of each preset


@dataclass(frozen=True)
class SegmentSettings:
    """Options of shot segmentation (see ``smite.video.shot``).

    ``preset``: ``quality`` (guided denoising, the default) or ``fast`` (the reference pass alone).
    ``window``/``overlap``: frames per window and frames shared by consecutive windows (None: the preset's,
    16/8 for quality, 16/0 for fast, where an overlap would only recompute frames).
    ``tracker``: ``flow`` or ``cotracker`` (with ``tracker_checkpoint``, default $SMITE_COTRACKER_CHECKPOINT).
    ``coarse_to_fine``: refine the foreground of plates larger than the model frame.
    ``guidance``: constants of the guided path (None: the backbone's defaults).
    ``map_mode=None`` uses the part model's own mode.
    """

    seed: int = 0
    matte_temperature: float = 1.0
    map_mode: str | None = None
    preset: str = "quality"
    window: int | None = None
    overlap: int | None = None
    tracker: str = "flow"
    tracker_checkpoint: str | None = None
    coarse_to_fine: bool = True
    guidance: GuidanceSettings | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise SmiteError(f"unknown preset {self.preset!r}: use one of {', '.join(PRESETS)}")
        if isinstance(self.guidance, dict):
            object.__setattr__(self, "guidance", GuidanceSettings(**self.guidance))
        check_window(*self.window_and_overlap())

    def window_and_overlap(self) -> tuple[int, int]:
        """(window, overlap) with the preset's defaults filled in; a window shorter than the preset's
        overlap gets the largest overlap it can hold."""
        window, overlap = PRESET_WINDOWS[self.preset]
        window = self.window if self.window is not None else window
        if self.overlap is not None:
            return window, self.overlap
        return window, min(overlap, window // 2)


@dataclass
class FrameMattes:
    """Result for one frame: ``alphas`` float32 (n, H, W) summing to 1 over parts, ``labels`` uint16 (H, W)."""

    alphas: np.ndarray
    labels: np.ndarray


def check_frame(frame: np.ndarray, index: int | str = 0) -> None:
    """A plate must be float (H, W, 3) with finite values."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 8:
        shape = getattr(frame, "shape", type(frame).__name__)
        raise SmiteError(f"frame {index} must be an (H, W, 3) image of at least 8x8 pixels, got {shape}")
    if not np.isfinite(frame).all():
        raise SmiteError(f"frame {index} has NaN/Inf pixels; fix or clamp the plate first")


def to_latents(backbone: Backbone, images: np.ndarray, generator: torch.Generator) -> torch.Tensor:
    """Model-frame images (B, R, R, 3) in [0, 1] -> scaled VAE posterior samples (B, 4, S, S) fp32."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(backbone.device) * 2 - 1
    with torch.no_grad():
        dist = backbone.vae.encode(x.float()).latent_dist
        noise = torch.randn(dist.mean.shape, generator=generator).to(backbone.device)
        return (dist.mean + dist.std * noise) * backbone.latent_scale


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


def maps_to_plate(maps: torch.Tensor, framing: Framing) -> torch.Tensor:
    """Latent-grid maps (n, S, S) -> plate-sized maps (n, H, W): crop the plate's box, resize bilinearly."""
    r = framing.resolution
    full = F.interpolate(maps[None].float(), size=(r, r), mode="bilinear", align_corners=False)
    top, left, h, w = framing.box
    box = full[..., top : top + h, left : left + w]
    return F.interpolate(box, size=framing.plate_size, mode="bilinear", align_corners=False)[0]


def mattes_from_logits(logits: torch.Tensor, temperature: float) -> FrameMattes:
    """Soft mattes = softmax over parts of logits / temperature; labels = argmax."""
    alphas = torch.softmax(logits / max(temperature, 1e-6), dim=0)
    labels = logits.argmax(0).to(torch.int32)
    return FrameMattes(alphas.cpu().numpy().astype(np.float32), labels.cpu().numpy().astype(np.uint16))


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
