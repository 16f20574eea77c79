"""Window planning over shots of any length (method.md §6.1, §6.2d)."""

import pytest

from smite.errors import SmiteError
from smite.video.windows import plan_windows, preset_windows, window_seed


def _spans(windows):
    return [(w.start, w.end) for w in windows]


def test_published_examples():
    assert _spans(plan_windows(288, 16, 8))[-2:] == [(264, 280), (272, 288)]
    assert _spans(plan_windows(100, 16, 8))[-3:] == [(72, 88), (80, 96), (84, 100)]
    assert _spans(plan_windows(100, 18, 0)) == [(0, 18), (18, 36), (36, 54), (54, 72), (72, 90), (82, 100)]


@pytest.mark.parametrize("frames", [1, 2, 5, 15, 16, 17, 24, 37, 100])
@pytest.mark.parametrize("window,overlap", [(1, 0), (4, 2), (5, 0), (16, 8), (16, 15), (18, 0)])
def test_every_frame_written_once_and_carry_matches_next_window(frames, window, overlap):
    windows = plan_windows(frames, window, overlap)
    written = [f for w in windows for f in range(w.start, w.start + w.write)]
    assert written == list(range(frames))
    for a, b in zip(windows, windows[1:]):
        assert a.carry == a.end - b.start and a.carry >= overlap  # the last window may overlap more
    assert windows[-1].carry == 0 and windows[-1].end == frames
    assert all(w.length == min(window, frames) for w in windows)


def test_short_shots_are_one_window():
    (only,) = plan_windows(5, 16, 8)
    assert (only.start, only.end, only.write, only.carry) == (0, 5, 5, 0)


@pytest.mark.parametrize("window,overlap,frames", [(0, 0, 5), (4, 4, 5), (4, -1, 5), (4, 2, 0)])
def test_bad_options_are_one_line_errors(window, overlap, frames):
    with pytest.raises(SmiteError) as err:
        plan_windows(frames, window, overlap)
    assert "\n" not in str(err.value)


def test_presets_and_overrides():
    assert preset_windows("quality") == (16, 8) and preset_windows("fast") == (16, 0)
    assert preset_windows("quality", 6) == (6, 3) and preset_windows("quality", 6, 0) == (6, 0)
    with pytest.raises(SmiteError, match="unknown preset"):
        preset_windows("draft")


def test_window_noise_is_keyed_by_seed_and_shot_position():
    assert window_seed(0, 16) == window_seed(0, 16)
    assert len({window_seed(seed, start) for seed in (0, 1) for start in (0, 8, 16)}) == 6
