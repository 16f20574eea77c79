"""What made a matte EXR: the ``smite:`` attributes naming the part model, the backbone and the settings.

Written on every matte (CLI, daemon, farm) so a compositor or a pipeline query can tell which part model (name
and content hash) and which settings produced a file, and redo it:

* ``smite:part_model`` (its name: the file stem or the daemon's store name), ``smite:part_model_hash`` (a hash
  of its tensors and header: the same for copies of one model, different after any re-learning);
* ``smite:backbone`` (the backbone id the part model was learned on) and ``smite:backbone_fingerprint``;
* ``smite:settings`` (JSON: preset, window, overlap, temperature, seed, tracker, coarse_to_fine, map_mode,
  colorspace, and edges where the engine has them);
* ``smite:reference_ids`` and, per file, ``smite:frame``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields


def part_model_hash(model) -> str:
    """16 hex digits of SHA-256 over the part model's header and tensors (independent of its file name)."""
    digest = hashlib.sha256(json.dumps(model.metadata(), sort_keys=True).encode())
    digest.update(model.tokens.detach().cpu().float().numpy().tobytes())
    for name in sorted(model.kv):
        digest.update(name.encode())
        digest.update(model.kv[name].detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def settings_record(settings, model, colorspace: str | None) -> dict:
    """The segmentation settings that shaped the mattes, with the preset's defaults filled in."""
    from smite.video.settings import SegmentSettings

    settings = settings or SegmentSettings()
    window, overlap = settings.window_and_overlap()
    record = {"preset": settings.preset, "window": window, "overlap": overlap,
              "temperature": settings.matte_temperature, "seed": settings.seed, "tracker": settings.tracker,
              "coarse_to_fine": settings.coarse_to_fine, "map_mode": settings.map_mode or model.map_mode,
              "colorspace": colorspace or "auto (by file type)"}
    known = {f.name for f in fields(settings)}
    if "edges" in known:  # the edge refinement of issue 13, when the engine has it
        record["edges"] = settings.edges
    return record


def matte_metadata(model, settings=None, colorspace: str | None = None, name: str | None = None) -> dict:
    """The ``smite:`` attributes of one shot's mattes (add ``frame`` per file)."""
    return {
        "part_model": name or "unnamed",
        "part_model_hash": part_model_hash(model),
        "backbone": model.base_model,
        "backbone_fingerprint": model.base_fingerprint,
        "reference_ids": model.reference_ids,
        "settings": settings_record(settings, model, colorspace),
    }
