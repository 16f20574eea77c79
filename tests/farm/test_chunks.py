"""Chunk planning: owned frames, context clipped to the shot, resume from what is written."""

import numpy as np
import pytest

from smite.errors import SmiteError
from smite.farm.chunks import frames_spec, matte_complete, owned_frames, plan_chunk, sweep_temps
from smite.io.images import write_mattes_exr

SHOT = list(range(1001, 1025))


def test_context_is_clipped_to_the_shot():
    first = plan_chunk(SHOT, range(1001, 1009), 4, set())
    assert first.span == tuple(range(1001, 1013)) and first.todo == tuple(range(1001, 1009))
    middle = plan_chunk(SHOT, range(1009, 1017), 4, set())
    assert middle.span == tuple(range(1005, 1021))
    last = plan_chunk(SHOT, range(1017, 1025), 4, set())
    assert last.span == tuple(range(1013, 1025))


def test_resume_segments_only_around_missing_frames():
    plan = plan_chunk(SHOT, range(1009, 1017), 4, done={1009, 1010, 1011, 1012})
    assert plan.todo == (1013, 1014, 1015, 1016) and plan.done == (1009, 1010, 1011, 1012)
    assert plan.span == tuple(range(1009, 1021))
    assert plan_chunk(SHOT, range(1009, 1017), 4, done=set(range(1009, 1017))).span == ()


def test_context_counts_frames_of_the_range():
    shot = list(range(1, 40, 2))  # 1-39x2
    plan = plan_chunk(shot, [11, 13], 2, set())
    assert plan.span == (7, 9, 11, 13, 15, 17)


def test_chunk_outside_the_range_is_refused():
    with pytest.raises(SmiteError, match="outside --range"):
        owned_frames(SHOT, "1020-1030")
    with pytest.raises(SmiteError, match="--context"):
        plan_chunk(SHOT, SHOT, -1, set())


def test_frames_spec_round_trips():
    assert frames_spec([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"


def test_complete_mattes_and_truncated_ones(tmp_path):
    alphas = np.full((2, 8, 8), 0.5, np.float32)
    labels = np.zeros((8, 8), np.int64)
    path = write_mattes_exr(tmp_path / "m.0001.exr", alphas, labels, ["background", "disc"], {"frame": 1})
    assert matte_complete(path, ["background", "disc"], 1)
    assert not matte_complete(path, ["background", "bar"], 1)  # another part model's mattes
    assert not matte_complete(path, ["background", "disc"], 2)  # another frame's file
    truncated = tmp_path / "m.0002.exr"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert not matte_complete(truncated, ["background", "disc"], 2)
    assert not matte_complete(tmp_path / "m.0003.exr", ["background", "disc"], 3)


def test_temp_files_of_a_killed_writer_are_swept(tmp_path):
    (tmp_path / ".m.0001.1a2b3c4d.tmp.exr").write_bytes(b"partial")
    (tmp_path / ".other.1a2b3c4d.tmp.exr").write_bytes(b"not ours")
    assert sweep_temps([tmp_path / "m.0001.exr"]) == 1
    assert (tmp_path / ".other.1a2b3c4d.tmp.exr").exists()
