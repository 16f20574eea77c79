"""Fixtures of the Blender tests: one daemon on loopback (tiny backbone) for the whole session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from server_helpers import DaemonProcess  # noqa: E402


@pytest.fixture(scope="session")
def daemon(tmp_path_factory) -> DaemonProcess:
    """A daemon whose root holds the Blender tests' folders (so the add-on's path mode is used there)."""
    # Both cores: Blender waits on the daemon's jobs (the server tests' daemons keep one).
    proc = DaemonProcess(tmp_path_factory.mktemp("blender-daemon"), ["--threads", "2"],
                         env={"OMP_NUM_THREADS": "2"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def small_shot(tmp_path_factory) -> tuple[dict[int, str], dict[int, str]]:
    """Two 96x96 synthetic frames numbered 1001-1002 (PNG plates and label maps), outside the daemon's root."""
    from smite.synthetic.shots import make_shot, write_shot

    folder = tmp_path_factory.mktemp("small-shot")
    write_shot(make_shot(num_frames=2, size=(96, 96), num_parts=2, seed=1), folder)
    plates = sorted(folder.glob("plate.*.png"))
    labels = sorted((folder / "masks").glob("mask.*.png"))
    return ({1001 + i: str(p) for i, p in enumerate(plates)}, {1001 + i: str(p) for i, p in enumerate(labels)})
