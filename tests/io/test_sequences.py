"""Frame ranges and sequence patterns (smite/io/sequences.py)."""

from pathlib import Path

import pytest

from smite.errors import SmiteError
from smite.io.sequences import count_frames, expand_frames, format_frame_range, has_frame_token, parse_frame_range


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1-5", [1, 2, 3, 4, 5]),
        ("1-9x2", [1, 3, 5, 7, 9]),
        ("1-10x4", [1, 5, 9]),
        ("1,5,9", [1, 5, 9]),
        ("1-3,20", [1, 2, 3, 20]),
        (" 20, 1-2 ,2 ", [1, 2, 20]),
        ("7", [7]),
        ("0-2", [0, 1, 2]),
        ("1001-1100x2", list(range(1001, 1101, 2))),
        ("1001 1005 1010-1020", [1001, 1005, *range(1010, 1021)]),
        ("1001,1005,1010-1020", [1001, 1005, *range(1010, 1021)]),
        ("1001, 1005  1010-1020\t", [1001, 1005, *range(1010, 1021)]),
        ("-4", [-4]),
        ("-3--1", [-3, -2, -1]),
        ("-2-2", [-2, -1, 0, 1, 2]),
        ("-10--1x3", [-10, -7, -4, -1]),
    ],
)
def test_parse_frame_range(spec, expected):
    assert parse_frame_range(spec) == expected


@pytest.mark.parametrize("spec", ["", "  ", "a", "5-1", "1-10x0", "1--3", "1-3x", "1,,2", "--4", "1-2000000",
                                  "1-5x-1", "1.5", "1-3 x2", "1_000"])
def test_parse_frame_range_errors(spec):
    with pytest.raises(SmiteError) as err:
        parse_frame_range(spec)
    assert "\n" not in str(err.value)
    assert "frame range" in str(err.value)


@pytest.mark.parametrize(
    ("pattern", "name_of_7"),
    [
        ("plate.%04d.exr", "plate.0007.exr"),
        ("plate.####.exr", "plate.0007.exr"),
        ("plate.%d.exr", "plate.7.exr"),
        ("plate.@@@@.exr", "plate.0007.exr"),
        ("plate.$F4.exr", "plate.0007.exr"),
        ("plate.${F4}.exr", "plate.0007.exr"),
        ("plate.$F.exr", "plate.7.exr"),
        ("plate_#.exr", "plate_7.exr"),
    ],
)
def test_expand_with_frames_formats_padding(tmp_path, pattern, name_of_7):
    result = expand_frames(str(tmp_path / pattern), "5-9x2")
    assert [f for f, _ in result] == [5, 7, 9]
    assert result[1][1] == tmp_path / name_of_7


def test_expand_with_frames_does_not_need_existing_files(tmp_path):
    # Output patterns are expanded too: nothing exists yet.
    assert expand_frames(str(tmp_path / "out" / "m.##.exr"), "9-10") == [
        (9, tmp_path / "out" / "m.09.exr"),
        (10, tmp_path / "out" / "m.10.exr"),
    ]


def test_hash_padding_is_a_minimum(tmp_path):
    assert expand_frames(str(tmp_path / "p.##.png"), "123")[0][1].name == "p.123.png"


def test_placeholder_only_in_file_name(tmp_path):
    folder = tmp_path / "take#2"
    assert expand_frames(str(folder / "p.####.exr"), "3") == [(3, folder / "p.0003.exr")]


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(b"x")


def test_glob_finds_existing_frames_sorted(tmp_path):
    _touch(tmp_path, "plate.0010.exr", "plate.0002.exr", "plate.0001.exr", "plate.12345.exr")
    # Decoys: wrong padding, wrong extension, other prefix, 5 digits with a leading zero.
    _touch(tmp_path, "plate.003.exr", "plate.0004.png", "other.0005.exr", "plate.01234.exr")
    (tmp_path / "plate.0006.exr").mkdir()
    for pattern in ("plate.####.exr", "plate.%04d.exr"):
        result = expand_frames(str(tmp_path / pattern))
        assert result == [(f, tmp_path / f"plate.{f:04d}.exr") for f in (1, 2, 10, 12345)]


def test_glob_unpadded(tmp_path):
    _touch(tmp_path, "s.7.png", "s.12.png", "s.007.png")
    assert expand_frames(str(tmp_path / "s.%d.png")) == [
        (7, tmp_path / "s.7.png"),
        (12, tmp_path / "s.12.png"),
    ]


def test_glob_nothing_matches(tmp_path):
    _touch(tmp_path, "plate.001.exr")
    with pytest.raises(SmiteError, match="no files match .*plate.####.exr"):
        expand_frames(str(tmp_path / "plate.####.exr"))


def test_glob_missing_folder(tmp_path):
    with pytest.raises(SmiteError, match="does not exist"):
        expand_frames(str(tmp_path / "nope" / "plate.####.exr"))


def test_two_placeholders_rejected(tmp_path):
    with pytest.raises(SmiteError, match="2 frame tokens"):
        expand_frames(str(tmp_path / "p.##.%04d.exr"), "1")


def test_plain_path_frame_from_name(tmp_path):
    assert expand_frames(str(tmp_path / "ref.0042.png")) == [(42, tmp_path / "ref.0042.png")]
    assert expand_frames(str(tmp_path / "ref.png")) == [(0, tmp_path / "ref.png")]
    assert expand_frames(str(tmp_path / "ref_v2.png"))[0][0] == 2


def test_plain_path_with_frames_rejected(tmp_path):
    with pytest.raises(SmiteError, match="no frame token"):
        expand_frames(str(tmp_path / "ref.png"), "1-3")


def test_negative_frames_format_like_printf_and_glob_back(tmp_path):
    result = expand_frames(str(tmp_path / "p.####.exr"), "-2-1")
    assert [p.name for _, p in result] == ["p.-002.exr", "p.-001.exr", "p.0000.exr", "p.0001.exr"]
    _touch(tmp_path, *(p.name for _, p in result))
    for pattern in ("p.####.exr", "p.%04d.exr", "p.@@@@.exr", "p.$F4.exr"):
        assert expand_frames(str(tmp_path / pattern)) == result


def test_plain_path_negative_frame_only_after_a_separator(tmp_path):
    assert expand_frames(str(tmp_path / "ref.-005.png"))[0][0] == -5
    assert expand_frames(str(tmp_path / "ref_-5.png"))[0][0] == -5
    assert expand_frames(str(tmp_path / "plate-0042.png"))[0][0] == 42


def test_count_frames_does_not_expand_and_counts_repeats():
    assert count_frames("1-10 5 -3--1 1-10x5") == 10 + 1 + 3 + 2
    with pytest.raises(SmiteError, match="more than"):
        count_frames("1-99999999")


def test_format_frame_range_round_trips():
    frames = [-3, -2, 1, 5, 6, 7, 1001]
    assert format_frame_range(frames) == "-3--2 1 5-7 1001"
    assert parse_frame_range(format_frame_range(frames)) == frames


def test_has_frame_token():
    assert all(has_frame_token(p) for p in ("a.####.exr", "a.%04d.exr", "a.@.exr", "a.$F4.exr", "a.%d.exr"))
    assert not any(has_frame_token(p) for p in ("a.exr", "take#2/a.exr", "a.100.exr"))
