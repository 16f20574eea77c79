"""Contact sheet: colours, overlays and the grid layout."""

import numpy as np
import pytest

from smite.errors import SmiteError
from smite.io.contact_sheet import contact_sheet, overlay, part_colours


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


def test_legend_row_shows_every_part_colour():
    frames, labels = grey_frames(2, 48, 96), three_part_labels(2, 48, 96)
    names = ["disc", "bar", "blob"]
    plain = contact_sheet(frames, labels, columns=2, thumb_width=64)
    sheet = contact_sheet(frames, labels, columns=2, thumb_width=64, part_names=names)
    assert sheet.shape[1] == plain.shape[1] and sheet.shape[0] > plain.shape[0]
    np.testing.assert_array_equal(sheet[: plain.shape[0]], plain)
    legend = sheet[plain.shape[0]:].reshape(-1, 3)
    for colour in np.round(part_colours(4)[1:] * 255).astype(np.uint8):
        assert (legend == colour).all(axis=1).sum() >= 100, "a swatch is missing from the legend"


def test_titles_and_names_are_checked():
    frames, labels = grey_frames(2, 16, 16), three_part_labels(2, 16, 16)
    with pytest.raises(SmiteError):
        contact_sheet(frames, labels, titles=["only one"])
    with pytest.raises(SmiteError):
        contact_sheet(frames, labels, part_names=["a", "b"])  # labels go up to 3
    with pytest.raises(SmiteError):
        contact_sheet(frames, labels[:, :8])


def test_titles_are_drawn():
    frames, labels = grey_frames(1, 48, 96), np.zeros((1, 48, 96), np.uint8)
    blank = np.full((32, 64, 3), 128, np.uint8)
    sheet = contact_sheet(frames, labels, thumb_width=64)
    assert not np.array_equal(sheet[4:36, 4:68], blank), "the frame number is missing"
    assert np.array_equal(sheet[30:36, 40:68], blank[26:, 36:]), "text only in the top-left corner"
