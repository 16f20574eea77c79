"""Farm fixtures: one short synthetic shot written as PNG plates (what a farm reads), shared by the farm tests."""

import os
import sys
from pathlib import Path

import pytest

from smite.synthetic.shots import make_shot, write_shot

SHOT_FRAMES = 24
SHOT_SIZE = (96, 96)  # small plates: cheap to read, write and score
FARM_RESOLUTION = 96  # the tiny backbone at the plates' own size (a 24-cell latent): quality windows stay cheap


@pytest.fixture(scope="session")
def farm_shot(tmp_path_factory):
    """24 frames, a head (face and hair, touching: a quarter of the frame, so the tiny backbone's learning finds
    them in a small frame), light noise; plates ``plate.####.png``, label masks ``masks/mask.####.png``."""
    shot = make_shot(num_frames=SHOT_FRAMES, size=SHOT_SIZE, num_parts=2, touching=True, seed=3, noise=0.03)
    root = tmp_path_factory.mktemp("farm-shot")
    info = write_shot(shot, root)
    return {"root": root, "shot": shot, "plates": str(root / "plate.####.png"),
            "masks": str(root / "masks" / "mask.####.png"), "parts": ",".join(info["part_names"])}


@pytest.fixture(scope="session")
def farm_env():
    """The environment farm commands run in: this venv's ``smite`` and ``openjd`` first on PATH, offline, the tiny
    backbone at ``FARM_RESOLUTION``."""
    bin_dir = str(Path(sys.executable).parent)
    return os.environ | {"PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "HF_HUB_OFFLINE": "1",
                         "SMITE_TINY_RESOLUTION": str(FARM_RESOLUTION)}


@pytest.fixture(scope="session")
def farm_backbone():
    """The tiny backbone as the farm commands load it (``FARM_RESOLUTION``), for whole-shot comparisons."""
    from smite.model.backbone import load_backbone

    return load_backbone("tiny", device="cpu", resolution=FARM_RESOLUTION)
