"""Chunk planning: owned frames, the shot's windows around them, resume from what is written."""

import numpy as np
import pytest

from smite.errors import SmiteError
from smite.farm.chunks import frames_spec, matte_complete, owned_frames, plan_chunk, sweep_temps
from smite.io.images import write_mattes_exr
from smite.video.windows import plan_windows

SHOT = list(range(1001, 1025))


QUALITY, FAST = (16, 8), (16, 0)  # (window, overlap) of the presets


def test_a_chunk_runs_the_shot_windows_that_hold_its_frames_and_context():
    # 24 frames, quality windows [0,16) [8,24): every frame but the first 8 lies in two windows.
    first = plan_chunk(SHOT, range(1001, 1009), 4, set(), *QUALITY)
    assert first.span == tuple(range(1001, 1017)) and first.offset == 0 and first.todo == tuple(range(1001, 1009))
    last = plan_chunk(SHOT, range(1017, 1025), 0, set(), *QUALITY)
    assert last.span == tuple(range(1009, 1025)) and last.offset == 8
    # Context reaching back into [0,16) brings that window, whose maps carry into [8,24).
    assert plan_chunk(SHOT, range(1017, 1025), 4, set(), *QUALITY).span == tuple(SHOT)
    # fast windows do not overlap and carry nothing (but for the last, shifted one): context costs nothing.
    long_shot = list(range(1, 65))
    for context in (0, 8):
        assert plan_chunk(long_shot, range(17, 33), context, set(), *FAST).span == tuple(range(17, 33))


@pytest.mark.parametrize("frames,window,overlap", [(24, 16, 8), (100, 16, 8), (100, 16, 0), (37, 4, 2), (9, 5, 0)])
def test_a_span_segmented_alone_is_planned_into_the_shot_windows(frames, window, overlap):
    """What makes seams exact: the segmenter, given only the span, plans the very windows of the whole shot."""
    shot = list(range(frames))
    every = [(w.start, w.end) for w in plan_windows(frames, window, overlap)]
    for size in (1, 3, 8, 16):
        for first in range(0, frames, size):
            for context in (0, 4, 8):
                plan = plan_chunk(shot, range(first, min(first + size, frames)), context, set(), window, overlap)
                alone = [(plan.offset + w.start, plan.offset + w.end)
                         for w in plan_windows(len(plan.span), window, overlap)]
                assert alone == [s for s in every if plan.span[0] <= s[0] and s[1] <= plan.span[-1] + 1]
                assert plan.span[0] == plan.offset and set(plan.todo) <= set(plan.span)


def test_resume_segments_only_the_windows_of_missing_frames():
    long_shot = list(range(1, 65))
    plan = plan_chunk(long_shot, range(17, 49), 0, done=set(range(17, 33)), window=16, overlap=0)
    assert plan.todo == tuple(range(33, 49)) and plan.done == tuple(range(17, 33))
    assert plan.span == tuple(range(33, 49)) and plan.offset == 32
    assert plan_chunk(SHOT, range(1009, 1017), 4, set(range(1009, 1017)), *QUALITY).span == ()


def test_context_counts_frames_of_the_range():
    shot = list(range(1, 40, 2))  # 1-39x2; windows of 4 overlapping by 2: [1..7] [5..11] [9..15] [13..19] ...
    assert plan_chunk(shot, [11, 13], 0, set(), 4, 2).span == tuple(range(5, 20, 2))
    assert plan_chunk(shot, [11, 13], 2, set(), 4, 2).span == tuple(range(1, 20, 2))


def test_chunk_outside_the_range_is_refused():
    with pytest.raises(SmiteError, match="outside --range"):
        owned_frames(SHOT, "1020-1030")
    with pytest.raises(SmiteError, match="--context"):
        plan_chunk(SHOT, SHOT, -1, set(), *QUALITY)


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
