"""Cryptomatte (Psyop spec 1.2) layers for part mattes, written next to the ``smite_<part>.A`` layers.

Each part's id is MurmurHash3_x86_32 (the ``mmh3`` package, seed 0) of its UTF-8 name, bit-cast to float32
with bit 23 flipped when the exponent would be 0 or 255 (no denormals, Inf or NaN). Per pixel the parts are
ranked by coverage; layer ``<type>NN`` holds ranks 2N and 2N+1 as R = id, G = coverage, B = id, A = coverage.
Id channels are float32 with ZIP compression (lossy DWA/PXR24 would corrupt the id bits, hosts.md).
The header carries ``cryptomatte/<key>/name|hash|conversion|manifest``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import mmh3
import numpy as np

from smite.errors import SmiteError
from smite.io import images
from smite.io.images import ExtraChannels

DEFAULT_TYPE = "CryptoSmite"
DEFAULT_RANKS = 6


def name_hash(name: str) -> int:
    """The id bits of ``name``: MurmurHash3_x86_32 (seed 0) with the float exponent kept in [1, 254]."""
    bits = mmh3.hash(name.encode("utf-8"), 0, signed=False)
    exponent = (bits >> 23) & 0xFF
    if exponent in (0, 255):
        bits ^= 1 << 23
    return bits


def name_id(name: str) -> np.float32:
    """The float32 id of ``name`` (its hash bits reinterpreted)."""
    return np.array([name_hash(name)], np.uint32).view(np.float32)[0]


def layer_key(type_name: str) -> str:
    """The 7-hex-digit metadata key of a Cryptomatte layer type."""
    return f"{mmh3.hash(type_name.encode('utf-8'), 0, signed=False):08x}"[:7]


def manifest(names: list[str]) -> dict[str, str]:
    """{name: 8-digit hex of its id bits}, the Cryptomatte manifest."""
    return {name: f"{name_hash(name):08x}" for name in names}


def channel_names(type_name: str, ranks: int) -> list[str]:
    """``<type>00.R, <type>00.G, ...``: ranks / 2 RGBA layers."""
    return [f"{type_name}{layer:02d}.{c}" for layer in range(ranks // 2) for c in "RGBA"]


def header_attributes(type_name: str, names: list[str]) -> dict[str, str]:
    """The ``cryptomatte/<key>/...`` header entries for layer ``type_name`` holding ``names``."""
    prefix = f"cryptomatte/{layer_key(type_name)}/"
    return {
        prefix + "name": type_name,
        prefix + "hash": "MurmurHash3_32",
        prefix + "conversion": "uint32_to_float32",
        prefix + "manifest": json.dumps(manifest(names), sort_keys=True),
    }


def rank_pixels(alphas: np.ndarray, names: list[str], ranks: int = DEFAULT_RANKS) -> np.ndarray:
    """Id/coverage pairs of the ``ranks`` largest parts per pixel: float32 (H, W, 2 * ranks).

    ``alphas`` float (n, H, W) coverage per part; channel 2r is the id of rank r, 2r + 1 its coverage.
    Ranks beyond the parts present (coverage 0) have id 0 and coverage 0.
    """
    if ranks < 2 or ranks % 2:
        raise SmiteError(f"Cryptomatte ranks must be an even number of at least 2, got {ranks}")
    alphas = np.asarray(alphas, np.float32)
    n, h, w = alphas.shape
    ids = np.array([name_id(p) for p in names], np.float32)
    keep = min(n, ranks)
    order = np.argsort(-alphas, axis=0, kind="stable")[:keep]
    coverage = np.take_along_axis(alphas, order, axis=0)
    id_planes = np.where(coverage > 0, ids[order], np.float32(0))
    out = np.zeros((h, w, 2 * ranks), np.float32)
    out[..., 0 : 2 * keep : 2] = id_planes.transpose(1, 2, 0)
    out[..., 1 : 2 * keep : 2] = np.where(coverage > 0, coverage, 0).transpose(1, 2, 0)
    return out


def write_mattes_exr(
    path: str | Path, alphas: np.ndarray, labels: np.ndarray, part_names: list[str], metadata: dict | None = None,
    ranks: int = DEFAULT_RANKS, type_name: str = DEFAULT_TYPE, plate: Iterable[tuple[str, str, object]] = (),
) -> Path:
    """``smite.io.images.write_mattes_exr`` (same layers and attributes) plus Cryptomatte layers.

    ``alphas`` float (n, H, W) in [0, 1], background first; ``labels`` integer (H, W) in 0..n-1;
    ``part_names`` n names; ``plate``: the plate's carried header attributes. Writes atomically; returns ``path``.
    """
    alphas, part_names = np.asarray(alphas, np.float32), list(part_names)
    if alphas.ndim != 3 or alphas.shape[0] != len(part_names):
        raise SmiteError(f"mattes {alphas.shape} and {len(part_names)} names disagree")
    extra = ExtraChannels(tuple(channel_names(type_name, ranks)), rank_pixels(alphas, part_names, ranks),
                          header_attributes(type_name, part_names))
    return images.write_mattes_exr(path, alphas, labels, part_names, metadata, extra, plate)


def matte_writer(ranks: int | None = None) -> Callable[..., Path]:
    """The matte EXR writer of ``smite segment`` and the daemon: ``(path, alphas, labels, part_names, metadata,
    plate=())``, plain (``ranks`` None) or with ``ranks`` Cryptomatte ranks."""
    return images.write_mattes_exr if ranks is None else partial(write_mattes_exr, ranks=ranks)


def encode_mattes_exr(
    alphas: np.ndarray, labels: np.ndarray, part_names: list[str], metadata: dict | None = None,
    ranks: int = DEFAULT_RANKS, type_name: str = DEFAULT_TYPE,
) -> bytes:
    """The bytes of the EXR :func:`write_mattes_exr` would write."""
    with tempfile.TemporaryDirectory(prefix="smite-crypto-") as folder:
        path = Path(folder) / "mattes.exr"
        return write_mattes_exr(path, alphas, labels, part_names, metadata, ranks, type_name).read_bytes()
