"""Frame segmentation: part model + frames -> per-part soft mattes and a label map at plate resolution.

Per frame (method.md §6.2a, with §0's decisions): fit the plate into the model frame, VAE posterior sample,
noise to t ~ U{95..104}, one UNet call conditioned on the part prompt with the learned tokens, read the
maps, then

* ``map_mode="was"``: prediction WAS (§3.4): cross-attention logits propagated by self-attention;
* ``map_mode="cross"``: the cross-attention logits alone;

crop the plate's region of the latent grid, resize to the plate's size and turn the per-part logits into
soft mattes with a softmax over parts at ``matte_temperature`` (logit units); labels are the argmax.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from smite.backbone import Backbone
from smite.conditioning import conditioning, encode_text, part_prompt
from smite.errors import SmiteError
from smite.framing import Framing, fit_image
from smite.maps import was_predict
from smite.partmodel import PartModel
from smite.reader import AttentionReader

MAP_MODES = ("was", "cross")
REFERENCE_TIMESTEPS = (95, 104)  # inclusive range of the reference pass (§1.3)


class Cancelled(SmiteError):
    """Raised when a cancel hook asks a long operation to stop."""

    def __init__(self, what: str = "operation") -> None:
        super().__init__(f"{what} cancelled", code="cancelled")


@dataclass(frozen=True)
class SegmentSettings:
    """Options of frame segmentation. ``map_mode=None`` uses the part model's own mode."""

    seed: int = 0
    matte_temperature: float = 1.0
    map_mode: str | None = None


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
    ca = reader.cross_maps(item, num_parts)
    if map_mode == "cross":
        return ca
    return was_predict(ca, reader.self_maps(item), ca.shape[-1])


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


class FrameSegmenter:
    """Segments frames one by one with a part model (the temporal path builds on the same pieces)."""

    def __init__(
        self, backbone: Backbone, part_model: PartModel, settings: SegmentSettings | None = None,
        reader: AttentionReader | None = None,
    ) -> None:
        self.backbone, self.part_model = backbone, part_model
        self.settings = settings or SegmentSettings()
        self.map_mode = self.settings.map_mode or part_model.map_mode
        if self.map_mode not in MAP_MODES:
            raise SmiteError(f"unknown map mode {self.map_mode!r}; use one of {', '.join(MAP_MODES)}")
        part_model.check_backbone(backbone)
        self.reader = reader or AttentionReader(backbone)
        self.prompt = encode_text(backbone, part_prompt(part_model.part_names))

    def segment(
        self, frames: Iterable[np.ndarray], cancel: Callable[[], bool] | None = None
    ) -> Iterator[FrameMattes]:
        """Yield ``FrameMattes`` for each plate (H, W, 3) float32 in [0, 1]; frames stream in and out."""
        generator = torch.Generator().manual_seed(self.settings.seed)
        with self.part_model.applied(self.backbone) as tokens, torch.no_grad():
            cond = conditioning(self.prompt, tokens)
            for index, frame in enumerate(frames):
                if cancel is not None and cancel():
                    raise Cancelled("segmentation")
                yield self._segment_one(frame, index, cond, generator)

    def _segment_one(self, frame: np.ndarray, index: int, cond: torch.Tensor, gen: torch.Generator) -> FrameMattes:
        check_frame(frame, index)
        framing = Framing(frame.shape[:2], self.backbone.resolution)
        logits = reference_logits(self.backbone, self.reader, fit_image(frame, framing)[None], cond, gen,
                                  self.part_model.num_parts, self.map_mode)[0]
        return mattes_from_logits(maps_to_plate(logits, framing), self.settings.matte_temperature)


def reference_logits(
    backbone: Backbone, reader: AttentionReader, images: np.ndarray, cond: torch.Tensor,
    generator: torch.Generator, num_parts: int, map_mode: str,
) -> torch.Tensor:
    """The reference pass on model-frame images (B, R, R, 3): per-part logits (B, n, S, S), no gradients."""
    low, high = REFERENCE_TIMESTEPS
    t = int(torch.randint(low, high + 1, (1,), generator=generator))
    with torch.no_grad():
        z = add_noise(backbone, to_latents(backbone, images, generator), t, generator)
        reader.run(z, t, cond.expand(len(images), -1, -1))
        return torch.stack([part_maps(reader, i, num_parts, map_mode) for i in range(len(images))])
