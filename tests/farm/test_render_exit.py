"""``smite render`` exit codes a farm manager acts on: 2 bad input, 75 retry, 0 done (nothing rewritten)."""

import numpy as np
import torch

from smite.cli import main
from smite.io.images import write_image, write_mattes_exr
from smite.model.backbone import TINY_MODEL_ID
from smite.model.partmodel import PartModel

PARTS = ["background", "disc"]


def _model(tmp_path):
    """A part model file (header and tokens only: these runs stop before segmenting)."""
    model = PartModel(part_names=PARTS, tokens=torch.zeros(1, 64), kv={}, base_model=TINY_MODEL_ID,
                      base_fingerprint="0" * 16, resolution=256)
    return str(model.save(tmp_path / "shot.smite"))


def _plates(tmp_path, frames):
    for f in frames:
        write_image(tmp_path / f"plate.{f:04d}.png", np.full((16, 16, 3), 0.5, np.float32))
    return str(tmp_path / "plate.####.png")


def _render(tmp_path, *extra):
    return ["render", _model(tmp_path), "--frames", _plates(tmp_path, range(1, 13)), "--range", "1-12",
            "--chunk", "5-8", "--context", "2", "-o", str(tmp_path / "out" / "m.####.exr"), "--backbone", "tiny",
            *extra]


def _last_line(capsys) -> str:
    captured = capsys.readouterr()
    return (captured.out + captured.err).strip().splitlines()[-1]


def test_missing_plate_is_bad_input(tmp_path, capsys):
    args = _render(tmp_path)
    (tmp_path / "plate.0009.png").unlink()  # a context frame of the chunk
    assert main(args) == 2
    line = _last_line(capsys)
    assert line.startswith("smite render: bad input, do not retry (exit 2)") and "plate.0009.png" in line


def test_unreachable_daemon_is_a_temporary_failure(tmp_path, capsys):
    address = f"ipc://{tmp_path}/nobody.ipc"
    assert main(_render(tmp_path, "--daemon", address, "--timeout", "0.5")) == 75
    line = _last_line(capsys)
    assert line.startswith("smite render: temporary failure, retry (exit 75)") and "nobody.ipc" in line
    assert not list((tmp_path / "out").glob("*.exr"))


def test_all_frames_present_is_done_and_rewrites_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    stats = {}
    for f in range(5, 9):
        path = write_mattes_exr(out / f"m.{f:04d}.exr", np.full((2, 16, 16), 0.5, np.float32),
                                np.zeros((16, 16), np.int64), PARTS, {"frame": f})
        stats[path] = path.stat()
    # No daemon listens here: a chunk with nothing to do must not even need one.
    assert main(_render(tmp_path, "--daemon", f"ipc://{tmp_path}/nobody.ipc")) == 0
    line = _last_line(capsys)
    assert line.startswith("smite render: done (exit 0): wrote 0 frame(s), skipped 4 complete")
    for path, before in stats.items():
        after = path.stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in out.iterdir()) == [f"m.{f:04d}.exr" for f in range(5, 9)]
