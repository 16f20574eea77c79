"""Files shipped with the package: the tiny test backbone (``tiny-sd/``, diffusers layout)."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
TINY_BACKBONE_DIR = ASSETS_DIR / "tiny-sd"
