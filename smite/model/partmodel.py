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
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from smite.errors import SmiteError
from smite.io.images import atomic_path
from smite.io.names import sanitize_part_names
from smite.model.backbone import Backbone, is_kv_parameter

FORMAT_VERSION = 1
SUFFIX = ".smite"
# Header keys and the JSON types they may hold (a crafted header must fail as bad_input, not as a TypeError).
HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,), "part_names": (list,), "base_model": (str,), "base_fingerprint": (str,),
    "resolution": (int,), "map_mode": (str,), "training": (dict,), "seed": (int,), "reference_ids": (list,),
    "validation_miou": (int, float, type(None)),
}
REQUIRED_KEYS = ("part_names", "base_model", "base_fingerprint", "resolution")


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
        """Read a ``.smite`` file; one-line errors (naming the file) for missing, corrupt, foreign or crafted
        files. Only ``tokens`` and cross-attention K/V tensors with finite values are accepted, so a part model
        can change nothing in the backbone but what :meth:`applied` restores."""
        path = Path(path)
        if not path.is_file():
            raise SmiteError(f"part model {path} does not exist", code="not_found")
        try:
            with safe_open(str(path), "pt") as f:
                header = (f.metadata() or {}).get("smite")
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise SmiteError(f"{path} is not a readable .smite part model ({_first_line(exc)})") from exc
        if header is None or "tokens" not in tensors:
            raise SmiteError(f"{path} is a safetensors file but not a SMITE part model")
        meta = parse_header(header, path.name)
        kv = _checked_tensors(tensors, path.name)
        part_names = meta.pop("part_names")
        meta.pop("format_version", None)
        return cls(tokens=tensors["tokens"], kv=kv, part_names=part_names, **meta)

    def check_backbone(self, backbone: Backbone) -> None:
        """Fail clearly when this model was learned on another backbone, or when its K/V tensors are not
        exactly the backbone's cross-attention K/V weights (names and shapes) or its tokens do not fit."""
        if self.base_fingerprint != backbone.fingerprint:
            raise SmiteError(
                f"part model was learned on {self.base_model} (weights {self.base_fingerprint}) but the loaded "
                f"backbone is {backbone.model_id} (weights {backbone.fingerprint}); load the same base model",
                code="backbone_mismatch",
            )
        for name, value in self.kv.items():
            base = backbone.base_kv.get(name)
            if base is None:
                raise SmiteError(f"part model tensor kv/{name[:120]} is not a cross-attention K/V weight of "
                                 f"{backbone.model_id}; refusing the model")
            if tuple(value.shape) != tuple(base.shape):
                raise SmiteError(f"part model tensor kv/{name[:120]} has shape {tuple(value.shape)}, the backbone's "
                                 f"has {tuple(base.shape)}; refusing the model")
        width = next(iter(backbone.base_kv.values())).shape[1] if backbone.base_kv else self.tokens.shape[1]
        if self.tokens.ndim != 2 or tuple(self.tokens.shape) != (self.num_parts - 1, width):
            raise SmiteError(f"part model tokens have shape {tuple(self.tokens.shape)}, expected "
                             f"({self.num_parts - 1}, {width}) for {self.num_parts} parts; refusing the model")

    @contextmanager
    def applied(self, backbone: Backbone) -> Iterator[torch.Tensor]:
        """Install the learned K/V weights into the backbone; yields the tokens on its device; restores after."""
        self.check_backbone(backbone)  # only cross-attention K/V of the right shapes: what the finally restores
        params = dict(backbone.unet.named_parameters())
        try:
            with torch.no_grad():
                for name, value in self.kv.items():
                    params[name].copy_(value)
            yield self.tokens.to(backbone.device, torch.float32)
        finally:
            backbone.restore_base_kv()


def parse_header(text: str, label: str) -> dict:
    """The checked ``smite`` JSON header of a part model named ``label``: known keys of the right types only,
    nesting bounded, part names sanitised for EXR layers; ``SmiteError`` (bad_input) naming the file."""
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # RecursionError: a crafted header nested thousands of levels deep (ours nest 3 levels).
        raise SmiteError(f"{label}: its JSON header is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise SmiteError(f"{label}: its JSON header is not an object; not a part model")
    allowed = {f.name for f in fields(PartModel)} - {"tokens", "kv"} | {"format_version"}
    unknown = sorted(k for k in meta if k not in allowed)
    if unknown:
        raise SmiteError(f"{label}: unknown header key(s) {', '.join(repr(k[:40]) for k in unknown[:5])}")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise SmiteError(f"{label}: header lacks {', '.join(missing)}; not a part model")
    for key, value in meta.items():
        if key in HEADER_TYPES and (type(value) is bool or not isinstance(value, HEADER_TYPES[key])):
            raise SmiteError(f"{label}: header key {key!r} has the wrong type ({type(value).__name__})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise SmiteError(f"{label} has format version {meta['format_version']}; upgrade smite-vfx to read it")
    for key in ("part_names", "reference_ids"):
        if not all(isinstance(v, str) for v in meta.get(key, [])):
            raise SmiteError(f"{label}: header {key} must be a list of strings")
    names = meta["part_names"]
    if len(names) < 2 or names[0] != "background":
        raise SmiteError(f"{label}: part names must start with 'background' and name at least one part")
    try:
        meta["part_names"] = ["background", *sanitize_part_names(names[1:])]
    except SmiteError as exc:
        raise SmiteError(f"{label}: {exc}") from None
    if "background" in meta["part_names"][1:]:
        raise SmiteError(f"{label}: part 'background' appears twice")
    return meta


def _checked_tensors(tensors: dict[str, torch.Tensor], label: str) -> dict[str, torch.Tensor]:
    """The ``kv/`` tensors of a part model after refusing any other tensor, any non-cross-attention K/V name
    and any non-finite value (a crafted file could otherwise overwrite arbitrary backbone weights)."""
    kv = {}
    for key, value in tensors.items():
        if key != "tokens" and not (key.startswith("kv/") and is_kv_parameter(key.removeprefix("kv/"))):
            raise SmiteError(f"{label}: tensor {key[:120]!r} is not a cross-attention K/V weight; refusing the model")
        if not value.is_floating_point() or not bool(torch.isfinite(value).all()):
            raise SmiteError(f"{label}: tensor {key[:120]!r} is not finite floating point; refusing the model")
        if key != "tokens":
            if value.ndim != 2:
                raise SmiteError(f"{label}: tensor {key[:120]!r} is not a 2-D weight; refusing the model")
            kv[key.removeprefix("kv/")] = value
    return kv


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
