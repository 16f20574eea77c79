"""From per-part logits on the latent grid to mattes at the plate's resolution.

Maps come back by cropping the plate's region of the latent grid and resizing it to the plate's size; soft
mattes are a softmax over parts at ``matte_temperature`` (logit units), labels the argmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from smite.model.framing import Framing


@dataclass
class FrameMattes:
    """Result for one frame: ``alphas`` float32 (n, H, W) summing to 1 over parts, ``labels`` uint16 (H, W)."""

    alphas: np.ndarray
    labels: np.ndarray


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

