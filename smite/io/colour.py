"""Plate colour to the model's input, the OCIO way.

Stable Diffusion saw display-referred sRGB images, so every plate is turned into what a viewer would show:

* **scene-referred plates** (scene-linear EXRs, ACES, log camera spaces, Cineon/DPX film scans) go through the
  OCIO config's default **display/view transform** (the built-in config: "sRGB - Display" with the ACES 2.0
  SDR view): highlights above 1.0 roll off into the image instead of being clipped;
* **display-referred plates** (8/16-bit PNG, JPEG, TIFF, video DPX, or any file given an encoded space such
  as `sRGB`) are converted to sRGB and used as they are.

The config is ``$OCIO`` when set (a studio config: its colour-space names work in ``--colorspace``), else
OpenImageIO's built-in default config. Cineon printing-density log (``.cin``, DPX marked "printing density"
or "logarithmic") is decoded here with the Kodak constants (black 95, white 685, 0.002 density per code value,
film gamma 0.6), because the built-in config has no film log space.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from smite.errors import SmiteError

CINEON = "cineon"
DISPLAY_SPACE = "sRGB"
LOG_FAMILIES = ("aces", "camera", "input", "log")  # OCIO families of scene-referred encodings
CINEON_BLACK, CINEON_WHITE, CINEON_DENSITY, CINEON_GAMMA = 95.0, 685.0, 0.002, 0.6
LOG_DPX_TRANSFERS = ("printing density", "logarithmic")


@lru_cache(maxsize=4)
def _config(ocio: str) -> oiio.ColorConfig:
    config = oiio.ColorConfig(ocio)
    error = config.geterror()
    if ocio and error:  # OpenImageIO would silently fall back to its built-in config
        raise SmiteError(f"$OCIO config {ocio} could not be loaded: {error.strip().splitlines()[0]}")
    return config


def colour_config() -> oiio.ColorConfig:
    """``$OCIO`` or OpenImageIO's built-in config (cached per ``$OCIO`` value)."""
    return _config(os.environ.get("OCIO", ""))


def display_view() -> tuple[str, str]:
    """The config's default display and its default view: the transform plates go through."""
    config = colour_config()
    display = config.getDefaultDisplayName()
    return display, config.getDefaultViewName(display)


def file_space(spec: oiio.ImageSpec, path: Path) -> str | None:
    """The source space a file declares by its type: Cineon for film scans, else None (decide by pixel type)."""
    transfer = spec.get_string_attribute("dpx:Transfer").strip().lower()
    if path.suffix.lower() == ".cin" or transfer in LOG_DPX_TRANSFERS:
        return CINEON
    return None


def is_scene_referred(space: str) -> bool:
    """Linear, log and camera spaces get the view transform; encoded display/texture spaces do not."""
    if space == CINEON:
        return True
    config = colour_config()
    if config.getColorSpaceIndex(space) < 0:
        return False  # unknown: the conversion reports it
    family = (config.getColorSpaceFamilyByName(space) or "").lower()
    name = (config.resolve(space) or space).lower()
    return bool(config.isColorSpaceLinear(space) or family.startswith(LOG_FAMILIES) or "log" in name)


def cineon_to_linear(code: np.ndarray) -> np.ndarray:
    """Cineon printing-density code values (0-1 for 0-1023) to scene-linear; above white stays above 1."""
    black = 10.0 ** ((CINEON_BLACK - CINEON_WHITE) * CINEON_DENSITY / CINEON_GAMMA)
    density = (code * 1023.0 - CINEON_WHITE) * CINEON_DENSITY / CINEON_GAMMA
    return ((10.0 ** density - black) / (1.0 - black)).astype(np.float32)


def _fail(label: str, source: str, target: str, buf: oiio.ImageBuf) -> SmiteError:
    reason = (buf.geterror() or oiio.geterror() or "unknown error").strip().splitlines()[0]
    return SmiteError(f"cannot convert {label} from colour space {source!r} to {target}: {reason}")


def to_model_input(rgb: np.ndarray, source: str, label: str, linear_space: str) -> np.ndarray:
    """Float32 (H, W, 3) in ``source`` -> display-referred sRGB in [0, 1] for the model (see module doc).
    ``linear_space`` names scene-linear Rec.709 in the config (what Cineon decodes to)."""
    if source == CINEON:
        rgb, source = cineon_to_linear(rgb), linear_space
    out, src = oiio.ImageBuf(), oiio.ImageBuf(np.ascontiguousarray(rgb, dtype=np.float32))
    if is_scene_referred(source):
        display, view = display_view()
        if not oiio.ImageBufAlgo.ociodisplay(out, src, display, view, source, colorconfig=colour_config_name()):
            raise _fail(label, source, f"{display} / {view}", out)
    elif not oiio.ImageBufAlgo.colorconvert(out, src, source, DISPLAY_SPACE, colorconfig=colour_config_name()):
        raise _fail(label, source, DISPLAY_SPACE, out)
    return np.clip(out.get_pixels(oiio.FLOAT).reshape(rgb.shape), 0.0, 1.0)


def colour_config_name() -> str:
    """The config ImageBufAlgo should use ("" = OpenImageIO's default, which is $OCIO or the built-in one)."""
    return os.environ.get("OCIO", "")
