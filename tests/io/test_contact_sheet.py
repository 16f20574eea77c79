"""Contact sheet: colours, overlays and the grid layout."""

import numpy as np
import pytest

from smite.errors import SmiteError
from smite.io.contact_sheet import ERRORS, contact_sheet, error_kinds, overlay, part_colours


def grey_frames(t: int, h: int, w: int) -> np.ndarray:
    return np.full((t, h, w, 3), 0.5, np.float32)


def three_part_labels(t: int, h: int, w: int) -> np.ndarray:
    """Vertical bands: background, part 1, part 2, part 3 from left to right."""
    labels = np.zeros((t, h, w), np.uint8)
    for k in (1, 2, 3):
        labels[:, :, k * w // 4:(k + 1) * w // 4] = k
    return labels


def test_part_colours_are_distinct_and_background_dark():
    colours = part_colours(9)
    assert colours.shape == (9, 3) and colours.dtype == np.float32
    np.testing.assert_array_equal(colours[0], 0.0)
    parts = colours[1:]
    dist = np.linalg.norm(parts[:, None] - parts[None], axis=-1)
    assert dist[~np.eye(8, dtype=bool)].min() > 0.15
    assert parts.min() >= 0.0 and parts.max() <= 1.0
    with pytest.raises(SmiteError):
        part_colours(0)


def test_overlay_tints_parts_outlines_them_and_leaves_background():
    frame = grey_frames(1, 16, 32)[0]
    labels = three_part_labels(1, 16, 32)[0]
    colours = part_colours(4)
    out = overlay(frame, labels, alpha=0.5)
    assert out.shape == frame.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :8], frame[:, :8])  # background untouched
    inner = [out[8, 4 + 8 * k] for k in (1, 2, 3)]  # pixels inside each band
    for k, pixel in zip((1, 2, 3), inner, strict=True):
        np.testing.assert_allclose(pixel, 0.25 + 0.5 * colours[k], atol=1e-6)
    assert np.linalg.norm(inner[0] - inner[1]) > 0.05 and np.linalg.norm(inner[1] - inner[2]) > 0.05
    np.testing.assert_allclose(out[8, 8], colours[1])  # the first column of part 1 is its outline
    np.testing.assert_allclose(out[8, 15], colours[1])  # and so is its last column


def test_overlay_rejects_mismatched_shapes():
    with pytest.raises(SmiteError):
        overlay(grey_frames(1, 8, 8)[0], np.zeros((8, 9), np.uint8))


def test_grid_size_and_thumbnails():
    frames, labels = grey_frames(7, 48, 96), three_part_labels(7, 48, 96)
    sheet = contact_sheet(frames, labels, columns=3, thumb_width=64)
    # 3 columns x 3 rows of 64x32 thumbnails with 4 px gaps.
    assert sheet.dtype == np.uint8 and sheet.shape == (3 * 36 + 4, 3 * 68 + 4, 3)
    thumb = sheet[4:36, 4:68]
    assert len({tuple(thumb[20, x]) for x in (22, 38, 54)}) == 3, "each part needs its own colour"
    assert np.all(sheet[4 + 2 * 36:, 4 + 68:] == 24), "the grid cells after the last frame stay empty"


def swatches(strip: np.ndarray) -> list[tuple[tuple[int, int], tuple]]:
    """((y, x), RGB) of each solid 14x14 square in a legend strip, in reading order."""
    found = []
    for y in range(strip.shape[0] - 13):
        for x in range(strip.shape[1] - 13):
            block = strip[y:y + 14, x:x + 14].reshape(-1, 3)
            if (block == block[0]).all() and tuple(block[0]) != (24, 24, 24) and not any(
                    abs(x - fx) < 14 and abs(y - fy) < 14 for (fy, fx), _ in found):
                found.append(((y, x), tuple(int(c) for c in block[0])))
    return sorted(found)


def test_legend_swatch_of_each_name_is_the_overlay_colour_of_its_pixels():
    frames, labels = grey_frames(2, 48, 96), three_part_labels(2, 48, 96)
    names = ["background", "disc", "bar", "blob"]  # label order, background first, as a part model has them
    plain = contact_sheet(frames, labels, columns=2, thumb_width=64)
    sheet = contact_sheet(frames, labels, columns=2, thumb_width=64, part_names=names)
    assert sheet.shape[1] == plain.shape[1] and sheet.shape[0] > plain.shape[0]
    np.testing.assert_array_equal(sheet[: plain.shape[0]], plain)
    found = swatches(sheet[plain.shape[0]:])
    assert len(found) == 3, "one swatch per part, none for the background"
    thumb = sheet[4:36, 4:68]  # first frame, 96x48 -> 64x32 (nearest rows and columns of the labels)
    small = labels[0][(np.arange(32) * 48 // 32)][:, (np.arange(64) * 96 // 64)]
    for (_, colour), k in zip(found, (1, 2, 3), strict=True):
        outline = thumb[8:24, :][small[8:24] == k]  # rows away from the caption; edges hold the pure colour
        counts = {tuple(p) for p in outline}
        assert colour in counts, f"{names[k]}: swatch {colour} is not the colour of its part's outline"
        interior = outline.astype(float)
        nearest = [int(np.argmin([np.abs(p - np.array(c)).sum() for _, c in found])) + 1 for p in interior]
        assert np.mean(np.array(nearest) == k) > 0.9, f"{names[k]}'s pixels look like another part's swatch"


def test_error_row_outlines_missed_extra_and_wrong_part():
    frames, truth = grey_frames(2, 48, 96), three_part_labels(2, 48, 96)
    pred = truth.copy()
    pred[:, :, 24:30] = 0  # part 1 partly missed
    pred[:, :, 0:6] = 2  # background called part 2
    pred[:, :, 72:80] = 2  # part 3 called part 2
    np.testing.assert_array_equal(np.unique(error_kinds(pred[0], truth[0])), [0, 1, 2, 3])
    plain = contact_sheet(frames, pred, columns=2, thumb_width=96, part_names=["background", "a", "b", "c"])
    sheet = contact_sheet(frames, pred, columns=2, thumb_width=96, part_names=["background", "a", "b", "c"],
                          truth=truth)
    # the overlay row is unchanged, the error row follows it, then the legends (parts, then errors)
    np.testing.assert_array_equal(sheet[:52], plain[:52])
    errors = sheet[52:52 + 48]
    for kind, (lo, hi) in zip(ERRORS, ((24, 30), (0, 6), (72, 80)), strict=True):
        colour = np.round(np.array(ERRORS[kind]) * 255).astype(np.uint8)
        band = errors[20:40, 4 + lo:4 + hi].reshape(-1, 3)
        assert (band == colour).all(axis=1).any(), f"{kind} is not outlined in its colour"
    right = errors[20:40, 4 + 40:4 + 44]
    assert np.ptp(right.astype(int), axis=-1).max() == 0, "correct pixels stay grey"
    legend = swatches(sheet[plain.shape[0] + 48 + 4:])
    error_swatches = [c for _, c in legend if c in {tuple(int(v * 255) for v in e) for e in ERRORS.values()}]
    assert len(error_swatches) == 3


def test_titles_and_names_are_checked():
    frames, labels = grey_frames(2, 16, 16), three_part_labels(2, 16, 16)
    with pytest.raises(SmiteError):
        contact_sheet(frames, labels, titles=["only one"])
    with pytest.raises(SmiteError):
        contact_sheet(frames, labels, part_names=["background", "a", "b"])  # labels go up to 3
    with pytest.raises(SmiteError):
        contact_sheet(frames, labels, part_names=["a", "b", "c"])  # background first, as in a part model
    with pytest.raises(SmiteError):
        contact_sheet(frames, labels, truth=labels[:1])
    with pytest.raises(SmiteError):
        contact_sheet(frames, labels[:, :8])


def test_titles_are_drawn():
    frames, labels = grey_frames(1, 48, 96), np.zeros((1, 48, 96), np.uint8)
    blank = np.full((32, 64, 3), 128, np.uint8)
    sheet = contact_sheet(frames, labels, thumb_width=64)
    assert not np.array_equal(sheet[4:36, 4:68], blank), "the frame number is missing"
    assert np.array_equal(sheet[30:36, 40:68], blank[26:, 36:]), "text only in the top-left corner"
