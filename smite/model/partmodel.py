"""The part model: what learning produces and segmentation uses, stored as one ``.smite`` file.

A ``.smite`` file is a safetensors file (nothing is unpickled): tensor ``tokens`` (n-1, D) holds the learned
part vectors, tensors ``kv/<unet parameter name>`` the fine-tuned cross-attention K/V weights. The header's
``smite`` metadata entry is JSON: format version, ordered part names (background first), base model id and
weights fingerprint, model resolution, map mode, training settings, seed, reference ids, validation mIoU.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from smite.errors import SmiteError
from smite.io.images import atomic_path
from smite.model.backbone import Backbone

FORMAT_VERSION = 1
SUFFIX = ".smite"


@dataclass
class PartModel:
    """Learned parts for one backbone. ``part_names[0]`` is always ``"background"``."""

    part_names: list[str]
    tokens: torch.Tensor
    kv: dict[str, torch.Tensor]
    base_model: str
    base_fingerprint: str
    resolution: int
    map_mode: str = "was"
    training: dict = field(default_factory=dict)
    seed: int = 0
    reference_ids: list[str] = field(default_factory=list)
    validation_miou: float | None = None

    @property
    def num_parts(self) -> int:
        return len(self.part_names)

    def metadata(self) -> dict:
        """The JSON header (everything but the tensors)."""
        return {
            "format_version": FORMAT_VERSION,
            "part_names": self.part_names,
            "base_model": self.base_model,
            "base_fingerprint": self.base_fingerprint,
            "resolution": self.resolution,
            "map_mode": self.map_mode,
            "training": self.training,
            "seed": self.seed,
            "reference_ids": self.reference_ids,
            "validation_miou": self.validation_miou,
        }

    def save(self, path: str | Path) -> Path:
        """Write atomically to ``path`` (``.smite`` appended if missing); returns the final path."""
        path = Path(path)
        if path.suffix != SUFFIX:
            path = path.with_name(path.name + SUFFIX)
        tensors = {"tokens": self.tokens.detach().float().cpu().contiguous()}
        tensors |= {f"kv/{k}": v.detach().float().cpu().contiguous() for k, v in self.kv.items()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"smite": json.dumps(self.metadata())})
        return path

    @classmethod
    def load(cls, path: str | Path) -> PartModel:
        """Read a ``.smite`` file; one-line errors for missing, corrupt or foreign files."""
        path = Path(path)
        if not path.is_file():
            raise SmiteError(f"part model {path} does not exist")
        try:
            with safe_open(str(path), "pt") as f:
                header = (f.metadata() or {}).get("smite")
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise SmiteError(f"{path} is not a readable .smite part model ({_first_line(exc)})") from exc
        if header is None or "tokens" not in tensors:
            raise SmiteError(f"{path} is a safetensors file but not a SMITE part model")
        meta = json.loads(header)
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise SmiteError(f"{path} has format version {meta['format_version']}; upgrade smite-vfx to read it")
        kv = {k.removeprefix("kv/"): v for k, v in tensors.items() if k.startswith("kv/")}
        meta.pop("format_version", None)
        return cls(tokens=tensors["tokens"], kv=kv, **meta)

    def check_backbone(self, backbone: Backbone) -> None:
        """Fail clearly when this model was learned on another backbone."""
        if self.base_fingerprint != backbone.fingerprint:
            raise SmiteError(
                f"part model was learned on {self.base_model} (weights {self.base_fingerprint}) but the loaded "
                f"backbone is {backbone.model_id} (weights {backbone.fingerprint}); load the same base model",
                code="backbone_mismatch",
            )

    @contextmanager
    def applied(self, backbone: Backbone) -> Iterator[torch.Tensor]:
        """Install the learned K/V weights into the backbone; yields the tokens on its device; restores after."""
        self.check_backbone(backbone)
        params = dict(backbone.unet.named_parameters())
        try:
            with torch.no_grad():
                for name, value in self.kv.items():
                    params[name].copy_(value)
            yield self.tokens.to(backbone.device, torch.float32)
        finally:
            backbone.restore_base_kv()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
