"""Fixtures of the daemon tests: one shared daemon subprocess on loopback, a small synthetic shot inside its
root, and one part model learned once per session."""

from __future__ import annotations

import pytest
from server_helpers import TINY_LEARN, DaemonProcess


@pytest.fixture(scope="session")
def daemon(tmp_path_factory) -> DaemonProcess:
    """The shared daemon (8 MiB message limit so oversize tests stay cheap)."""
    proc = DaemonProcess(tmp_path_factory.mktemp("daemon"), ["--max-message-mb", "8"]).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def shot(daemon) -> dict:
    """A 6-frame 128x128 synthetic shot with 2 parts, written as PNGs inside the daemon's root."""
    from smite.synthetic.shots import make_shot, write_shot

    info = write_shot(make_shot(num_frames=6, size=(128, 128), num_parts=2, seed=3), daemon.root / "shot")
    folder = daemon.root / "shot"
    info["plate_files"] = sorted(folder.glob("plate.*.png"))
    info["mask_files"] = sorted((folder / "masks").glob("mask.*.png"))
    return info


@pytest.fixture(scope="session")
def learned(daemon, shot) -> dict:
    """A part model ``hero`` learned by path from frames 1 and 4; returns the finished job record."""
    with daemon.client() as client:
        job = client.learn([str(shot["plate_files"][0]), str(shot["plate_files"][3])],
                           [str(shot["mask_files"][0]), str(shot["mask_files"][3])], shot["part_names"],
                           name="hero", settings=TINY_LEARN)
        events = list(client.events(job, timeout=600))
    return {"job": job, "events": events, "record": events[-1].body["job"]}
