"""Daemon settings (``smite serve`` options) and their defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from smite.io.images import PixelLimits
from smite_server.protocol import Limits

DEFAULT_PORT = 7461
DEFAULT_ADDRESS = f"tcp://127.0.0.1:{DEFAULT_PORT}"


def smite_home() -> Path:
    """``$SMITE_HOME`` or ``~/.smite``: default parent of the model store and the daemon state."""
    return Path(os.environ.get("SMITE_HOME") or Path.home() / ".smite").expanduser()


def default_address() -> str:
    """``$SMITE_ADDRESS`` or tcp://127.0.0.1:7461 (clients and daemon agree without options)."""
    return os.environ.get("SMITE_ADDRESS") or DEFAULT_ADDRESS


@dataclass
class DaemonConfig:
    """Everything ``smite serve`` can set. ``retention_s`` bounds how long finished jobs (records and inline
    results) are kept; ``idle_unload_s`` (None = never) frees the backbone after that long without jobs."""

    address: str = field(default_factory=default_address)
    roots: list[str] = field(default_factory=list)
    model_store: Path = field(default_factory=lambda: smite_home() / "models")
    state_dir: Path = field(default_factory=lambda: smite_home() / "daemon")
    backbone: str | None = None
    device: str | None = None
    precision: str | None = None
    idle_unload_s: float | None = 1800.0
    keys_dir: Path | None = None
    limits: Limits = field(default_factory=Limits)
    max_queued_jobs: int = 64
    segment_preset: str = "quality"  # for segment requests that do not name one
    max_queued_bytes: int = 2 * 1024**3  # inline images held in memory by unfinished jobs
    retention_s: float = 24 * 3600.0
    send_hwm: int = 1000
    pixel_limits: PixelLimits = field(default_factory=PixelLimits)  # checked on image headers before decoding
