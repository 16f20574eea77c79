"""Image I/O (smite/io/images.py): plates, label maps, reference masks and matte EXRs through OpenImageIO."""

import json
import os
import re
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from smite import __version__
from smite.errors import SmiteError
from smite.io import images as imageio
from smite.io.images import (
    atomic_path,
    encode_mattes_exr,
    read_image,
    read_image_bytes,
    read_label_map,
    read_mattes_exr,
    read_reference_mask,
    write_image,
    write_mattes_exr,
    write_png,
)

PARTS = ["background", "face", "hair"]
HALF_EPS = 2.0**-11  # half-float rounding error bound for values in [0, 1]
OIIO_TYPES = {np.uint8: oiio.UINT8, np.uint16: oiio.UINT16, np.float16: oiio.HALF, np.float32: oiio.FLOAT}


def write_raw(path: Path, pixels: np.ndarray, channels=None, fmt=None, **window) -> Path:
    """Write (H, W, C) pixels with OIIO as they are (named channels, pixel type, data/display window)."""
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, fmt or OIIO_TYPES[pixels.dtype.type])
    if channels:
        spec.channelnames = tuple(channels)
    for key, value in window.items():
        setattr(spec, key, value)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(pixels) and out.close(), oiio.geterror()
    return path


def spec_of(path: Path, subimage: int = 0) -> oiio.ImageSpec:
    inp = oiio.ImageInput.open(str(path))
    assert inp.seek_subimage(subimage, 0)
    spec = inp.spec().copy()
    inp.close()
    return spec


def sample_mattes(h: int = 6, w: int = 9, seed: int = 0):
    rng = np.random.default_rng(seed)
    alphas = rng.random((len(PARTS), h, w)).astype(np.float32)
    return alphas, alphas.argmax(0)


def one_line_error(func, *args, **kwargs) -> str:
    with pytest.raises(SmiteError) as err:
        func(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message and message
    return message


# ---------------------------------------------------------------------------------------------------------
# Matte EXRs


def test_matte_exr_layout(tmp_path):
    alphas, labels = sample_mattes()
    path = write_mattes_exr(tmp_path / "m.exr", alphas, labels, PARTS, {"shot": "sh010", "frame": 3})
    spec = spec_of(path)
    assert sorted(spec.channelnames) == sorted(
        ["smite_background.A", "smite_face.A", "smite_hair.A", "smite_label.A"]
    )
    assert spec.format == oiio.HALF and all(f == oiio.HALF for f in spec.channelformats)
    assert spec.getattribute("compression") == "zip"
    window = (spec.x, spec.y, spec.width, spec.height)
    assert window == (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, 9, 6)
    assert json.loads(spec.getattribute("smite:parts")) == PARTS
    assert spec.getattribute("smite:version") == __version__
    assert spec.getattribute("smite:shot") == "sh010"
    assert spec.getattribute("smite:frame") == "3"


def test_matte_exr_round_trip(tmp_path):
    alphas, labels = sample_mattes()
    metadata = {"shot": "sh010", "frame": 3, "scores": [0.5, 1.0], "options": {"a": True}}
    matte = read_mattes_exr(write_mattes_exr(tmp_path / "m.exr", alphas, labels, PARTS, metadata))
    assert matte.part_names == PARTS
    assert matte.alphas.dtype == np.float32 and matte.alphas.shape == alphas.shape
    np.testing.assert_allclose(matte.alphas, alphas, atol=HALF_EPS)
    assert matte.labels.dtype == np.int64
    np.testing.assert_array_equal(matte.labels, labels)
    assert matte.metadata == {**metadata, "parts": PARTS, "version": __version__}


def test_matte_channels_addressed_by_name(tmp_path):
    # OIIO sorts channels on read; a part named "zeta" before "alpha_part" must keep its own pixels.
    names = ["background", "zeta", "alpha_part"]
    alphas = np.stack([np.full((2, 3), v, np.float32) for v in (0.25, 0.5, 0.75)])
    matte = read_mattes_exr(write_mattes_exr(tmp_path / "m.exr", alphas, np.zeros((2, 3), int), names))
    assert matte.part_names == names
    np.testing.assert_array_equal(matte.alphas[:, 0, 0], [0.25, 0.5, 0.75])


def test_single_pixel_positions_survive(tmp_path):
    # hosts.md: (H, W) arrays scramble pixels in OIIO; one lit pixel must stay where it was.
    alphas = np.zeros((2, 5, 8), np.float32)
    alphas[1, 2, 5] = 1.0
    labels = np.zeros((5, 8), np.int64)
    labels[2, 5] = 1
    matte = read_mattes_exr(write_mattes_exr(tmp_path / "m.exr", alphas, labels, ["background", "dot"]))
    assert np.argwhere(matte.alphas[1]).tolist() == [[2, 5]]
    assert np.argwhere(matte.labels).tolist() == [[2, 5]]


def test_most_parts_and_labels_exact(tmp_path):
    n = imageio.MAX_PARTS
    names = ["background"] + [f"p{i}" for i in range(1, n)]
    labels = np.arange(n).reshape(1, n)
    alphas = np.zeros((n, 1, n), np.float32)
    matte = read_mattes_exr(write_mattes_exr(tmp_path / "m.exr", alphas, labels, names))
    np.testing.assert_array_equal(matte.labels, labels)
    too_many = np.zeros((n + 1, 1, 1), np.float32)
    message = one_line_error(
        write_mattes_exr, tmp_path / "n.exr", too_many, np.zeros((1, 1), int), names + ["x"]
    )
    assert f"at most {n} parts" in message


def test_encode_mattes_exr_bytes(tmp_path):
    alphas, labels = sample_mattes()
    data = encode_mattes_exr(alphas, labels, PARTS, {"frame": 7})
    assert data[:4] == b"\x76\x2f\x31\x01"  # OpenEXR magic number
    (tmp_path / "m.exr").write_bytes(data)
    matte = read_mattes_exr(tmp_path / "m.exr")
    np.testing.assert_array_equal(matte.labels, labels)
    assert matte.metadata["frame"] == 7


@pytest.mark.parametrize(
    ("alphas", "labels", "names", "match"),
    [
        (np.zeros((6, 9)), np.zeros((6, 9), int), PARTS, "parts, height, width"),
        (np.zeros((3, 6, 9)), np.zeros((6, 8), int), PARTS, "does not match"),
        (np.zeros((3, 6, 9)), np.zeros((6, 9), int), PARTS[:2], "2 part names for 3 mattes"),
        (
            np.zeros((3, 6, 9)),
            np.zeros((6, 9), int),
            ["face", "hair", "background"],
            "start with 'background'",
        ),
        (np.zeros((3, 6, 9)), np.zeros((6, 9), int), ["background", "face", "face"], "unique"),
        (np.zeros((3, 6, 9)), np.full((6, 9), 3), PARTS, r"integers in 0\.\.2"),
        (np.zeros((3, 6, 9)), np.zeros((6, 9), float), PARTS, r"integers in 0\.\.2"),
        (np.full((3, 6, 9), np.nan), np.zeros((6, 9), int), PARTS, "NaN"),
    ],
)
def test_write_mattes_validation(tmp_path, alphas, labels, names, match):
    message = one_line_error(write_mattes_exr, tmp_path / "m.exr", alphas, labels, names)
    assert re.search(match, message)
    assert list(tmp_path.iterdir()) == []


def test_reserved_metadata_key(tmp_path):
    alphas, labels = sample_mattes()
    assert "reserved" in one_line_error(
        write_mattes_exr, tmp_path / "m.exr", alphas, labels, PARTS, {"parts": 1}
    )


# ---------------------------------------------------------------------------------------------------------
# Atomic writes and write failures


def test_write_into_nonexistent_folder(tmp_path):
    alphas, labels = sample_mattes()
    target = tmp_path / "missing" / "m.exr"
    message = one_line_error(write_mattes_exr, target, alphas, labels, PARTS)
    assert message.startswith(f"could not write {target}:") and "does not exist" in message
    assert list(tmp_path.iterdir()) == []


def test_write_into_read_only_folder(tmp_path, monkeypatch):
    # Root ignores permission bits, so the read-only folder is simulated where the OS would refuse.
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if Path(path).parent == tmp_path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    alphas, labels = sample_mattes()
    message = one_line_error(write_mattes_exr, tmp_path / "m.exr", alphas, labels, PARTS)
    assert message == f"could not write {tmp_path / 'm.exr'}: Permission denied"
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "m.exr"
    target.write_bytes(b"old")

    def full_disk(path, spec, pixels):
        path.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imageio, "_write_pixels", full_disk)
    alphas, labels = sample_mattes()
    message = one_line_error(write_mattes_exr, target, alphas, labels, PARTS)
    assert message == f"could not write {target}: No space left on device"
    assert list(tmp_path.iterdir()) == [target] and target.read_bytes() == b"old"


def test_write_over_a_folder_fails_cleanly(tmp_path):
    (tmp_path / "m.exr").mkdir()
    alphas, labels = sample_mattes()
    assert "could not write" in one_line_error(write_mattes_exr, tmp_path / "m.exr", alphas, labels, PARTS)
    assert [p.name for p in tmp_path.iterdir()] == ["m.exr"] and (tmp_path / "m.exr").is_dir()


def test_atomic_path(tmp_path):
    target = tmp_path / "a.json"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and tmp != target
        tmp.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"
    with pytest.raises(KeyError), atomic_path(target) as tmp:
        tmp.write_text("broken")
        raise KeyError("bug")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]


# ---------------------------------------------------------------------------------------------------------
# Plates


def test_read_png_8_and_16_bit(tmp_path):
    rgb8 = np.random.default_rng(1).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    rgb16 = np.random.default_rng(2).integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    out8 = read_image(write_raw(tmp_path / "a.png", rgb8))
    out16 = read_image(write_raw(tmp_path / "b.png", rgb16))
    assert out8.dtype == np.float32 and out8.shape == (4, 5, 3)
    np.testing.assert_allclose(out8, rgb8 / 255.0, atol=1e-6)
    np.testing.assert_allclose(out16, rgb16 / 65535.0, atol=1e-6)


def test_read_grey_and_alpha(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4, 1) * 20
    out = read_image(write_raw(tmp_path / "g.png", grey))
    assert out.shape == (3, 4, 3)
    np.testing.assert_allclose(out, np.repeat(grey, 3, axis=2) / 255.0, atol=1e-6)
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 10
    out = read_image(write_raw(tmp_path / "c.png", rgba))
    np.testing.assert_allclose(out[0, 0], [1.0, 0.0, 0.0], atol=1e-6)


def test_scene_linear_exr_to_srgb(tmp_path):
    plate = np.zeros((2, 4, 3), np.float32)
    plate[0, 0], plate[0, 1], plate[0, 2], plate[0, 3] = 0.18, 1.0, 4.0, -0.5
    path = write_image(tmp_path / "p.exr", plate)
    out = read_image(path)
    assert out.dtype == np.float32 and out.shape == (2, 4, 3)
    # The built-in OCIO config's default display/view (sRGB, ACES 2.0 SDR) tone-maps: 0.18 is mid grey and
    # highlights above 1.0 roll off instead of clipping (issue 14; smite/io/colour.py, tests/io/test_colour.py).
    assert out[0, 0] == pytest.approx([0.349] * 3, abs=3e-3)
    assert 0.6 < out[0, 1, 0] < out[0, 2, 0] < 1.0
    assert out[0, 3].tolist() == [0.0] * 3  # negative values end at black


def test_colorspace_argument(tmp_path):
    path = write_image(tmp_path / "p.exr", np.tile(np.float32([0.5, 0.1, 0.05]), (2, 2, 1)))
    assert read_image(path, colorspace="sRGB")[0, 0] == pytest.approx([0.5, 0.1, 0.05], abs=1e-3)
    default, acescg = read_image(path)[0, 0], read_image(path, colorspace="ACEScg")[0, 0]
    assert default == pytest.approx(read_image(path, colorspace="lin_rec709")[0, 0])
    assert np.abs(default - acescg).max() > 0.05  # a wider-gamut source really changes the colour
    assert "colour space 'nope'" in one_line_error(read_image, path, colorspace="nope")


def test_exr_channels_by_name(tmp_path):
    # Channels stored B, A, G, R: values must land in R, G, B by name.
    pixels = np.tile(np.array([0.8, 1.0, 0.5, 0.2], np.float32), (2, 3, 1))
    path = write_raw(tmp_path / "p.exr", pixels, ["B", "A", "G", "R"])
    assert read_image(path, colorspace="sRGB")[1, 2] == pytest.approx([0.2, 0.5, 0.8], abs=1e-6)


def test_exr_layered_rgb(tmp_path):
    pixels = np.tile(np.array([0.1, 0.2, 0.3, 0.9], np.float32), (2, 2, 1))
    names = ["ViewLayer.Combined.R", "ViewLayer.Combined.G", "ViewLayer.Combined.B", "ViewLayer.Depth.Z"]
    assert read_image(write_raw(tmp_path / "p.exr", pixels, names), "sRGB")[0, 0] == pytest.approx(
        [0.1, 0.2, 0.3]
    )


def write_multipart(path: Path, parts: list[tuple[np.ndarray, list[str]]]) -> Path:
    specs = []
    for pixels, names in parts:
        spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], oiio.FLOAT)
        spec.channelnames = tuple(names)
        specs.append(spec)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), specs)
    for i, (pixels, _) in enumerate(parts):
        assert i == 0 or out.open(str(path), specs[i], "AppendSubimage")
        assert out.write_image(pixels)
    assert out.close()
    return path


def test_multipart_exr_first_subimage_with_rgb(tmp_path):
    depth = np.full((2, 3, 1), 7.0, np.float32)
    rgb = np.full((2, 3, 3), 0.25, np.float32)
    other = np.full((2, 3, 3), 0.75, np.float32)
    path = write_multipart(
        tmp_path / "m.exr", [(depth, ["Z"]), (rgb, ["R", "G", "B"]), (other, ["R", "G", "B"])]
    )
    assert spec_of(path, 1).channelnames == ("R", "G", "B")
    assert read_image(path, "sRGB")[0, 0] == pytest.approx([0.25] * 3)
    path = write_multipart(tmp_path / "n.exr", [(other, ["R", "G", "B"]), (rgb, ["R", "G", "B"])])
    assert read_image(path, "sRGB")[0, 0] == pytest.approx([0.75] * 3)


def test_data_window_padded_to_display_window(tmp_path):
    pixels = np.full((3, 4, 3), 0.5, np.float32)
    window = {"x": 2, "y": 1, "full_x": 0, "full_y": 0, "full_width": 8, "full_height": 6}
    out = read_image(write_raw(tmp_path / "dw.exr", pixels, **window), colorspace="sRGB")
    assert out.shape == (6, 8, 3)
    expected = np.zeros((6, 8), np.float32)
    expected[1:4, 2:6] = 0.5
    np.testing.assert_allclose(out[..., 1], expected)


def test_read_image_bytes(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    data = write_raw(tmp_path / "a.png", rgb).read_bytes()
    np.testing.assert_array_equal(read_image_bytes(data, "shot/a.png"), read_image(tmp_path / "a.png"))
    exr = write_image(tmp_path / "p.exr", np.full((2, 2, 3), 0.18, np.float32)).read_bytes()
    assert read_image_bytes(exr, "p.exr")[0, 0] == pytest.approx([0.349] * 3, abs=3e-3)  # display/view transform
    message = one_line_error(read_image_bytes, exr[: len(exr) // 2], "plate.0003.exr")
    assert "plate.0003.exr" in message and "smite-" not in message  # names the file, not the temp copy
    assert "extension" in one_line_error(read_image_bytes, data, "noext")


def test_write_png_and_image_round_trip(tmp_path):
    rgb = np.random.default_rng(4).random((5, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(read_image(write_png(tmp_path / "a.png", rgb)), rgb, atol=0.5 / 255 + 1e-6)
    as_u8 = (rgb * 255).astype(np.uint8)
    np.testing.assert_allclose(read_image(write_png(tmp_path / "b.png", as_u8)), as_u8 / 255.0, atol=1e-6)
    np.testing.assert_allclose(read_image(write_image(tmp_path / "c.png", rgb)), rgb, atol=0.5 / 255 + 1e-6)
    spec = spec_of(write_image(tmp_path / "d.exr", rgb))
    assert spec.format == oiio.HALF and spec.channelnames == ("R", "G", "B")
    np.testing.assert_allclose(read_image(tmp_path / "d.exr", "sRGB"), rgb, atol=HALF_EPS)  # no conversion
    assert ".exr or .png" in one_line_error(write_image, tmp_path / "e.jpg", rgb)
    assert "(height, width, 3)" in one_line_error(write_png, tmp_path / "f.png", rgb[..., 0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.png", "d.exr"]


# ---------------------------------------------------------------------------------------------------------
# Bad plates


def test_missing_file(tmp_path):
    message = one_line_error(read_image, tmp_path / "plate.0001.exr")
    assert message == f"{tmp_path / 'plate.0001.exr'} does not exist"


def test_truncated_exr(tmp_path):
    rgb = np.random.default_rng(5).random((64, 64, 3)).astype(np.float32)
    data = write_image(tmp_path / "good.exr", rgb).read_bytes()
    (tmp_path / "cut.exr").write_bytes(data[: len(data) // 2])
    message = one_line_error(read_image, tmp_path / "cut.exr")
    assert message.startswith(f"could not read {tmp_path / 'cut.exr'}:")


def test_random_bytes_named_exr(tmp_path):
    (tmp_path / "junk.exr").write_bytes(np.random.default_rng(6).bytes(4000))
    assert "junk.exr" in one_line_error(read_image, tmp_path / "junk.exr")


def test_nan_inf_pixels(tmp_path):
    rgb = np.full((4, 4, 3), 0.5, np.float32)
    rgb[0, 0, 1], rgb[2, 3, :] = np.nan, np.inf
    path = write_raw(tmp_path / "plate.0003.exr", rgb)
    assert one_line_error(read_image, path) == f"{path} has 2 NaN/Inf pixels; fix the render or clamp it"


def test_no_colour_channels(tmp_path):
    path = write_raw(tmp_path / "uv.exr", np.zeros((2, 2, 2), np.float32), ["U", "V"])
    assert "no RGB or grey channels (channels: U, V)" in one_line_error(read_image, path)


# ---------------------------------------------------------------------------------------------------------
# Label maps and reference masks


def test_read_label_map_integer_and_float(tmp_path):
    labels = np.array([[0, 1, 2], [3, 0, 1]])
    out = read_label_map(write_raw(tmp_path / "m8.png", labels[..., None].astype(np.uint8)))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, labels)
    big = labels[..., None].astype(np.uint16) * 300
    np.testing.assert_array_equal(read_label_map(write_raw(tmp_path / "m16.png", big)), labels * 300)
    rgb = np.repeat(labels[..., None], 3, axis=2).astype(np.uint8)
    np.testing.assert_array_equal(read_label_map(write_raw(tmp_path / "rgb.png", rgb)), labels)
    floats = labels[..., None].astype(np.float32) + 1e-4
    np.testing.assert_array_equal(read_label_map(write_raw(tmp_path / "m.exr", floats, ["Y"])), labels)


def test_read_label_map_errors(tmp_path):
    floats = np.full((2, 2, 1), 1.5, np.float32)
    assert "non-integer" in one_line_error(read_label_map, write_raw(tmp_path / "f.exr", floats, ["Y"]))
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[0, 0] = (1, 2, 3)
    assert "colour image" in one_line_error(read_label_map, write_raw(tmp_path / "c.png", colour))


def test_reference_label_map(tmp_path):
    labels = np.array([[0, 1, 2, 3]], np.uint8)[..., None]
    path = write_raw(tmp_path / "mask.png", labels)
    np.testing.assert_array_equal(read_reference_mask(path, ["face", "hair", "eyes"]), [[0, 1, 2, 3]])
    labels[0, 1] = 7
    write_raw(path, labels)
    message = one_line_error(read_reference_mask, path, ["face", "hair", "eyes"])
    assert message == f"{path} has label 7 but only 3 parts: face, hair, eyes"


def test_reference_label_map_255_hint(tmp_path):
    path = write_raw(tmp_path / "bw.png", np.array([[[0], [255]]], np.uint8))
    assert "{part: file}" in one_line_error(read_reference_mask, path, ["face"])


def test_reference_mattes_dict_with_overlap(tmp_path):
    face = np.zeros((6, 8, 1), np.uint8)
    face[1:5, 1:7] = 255  # 24 pixels
    eyes = np.zeros((6, 8, 1), np.uint8)
    eyes[2:3, 2:6] = 200  # 4 pixels, inside the face
    hair = np.zeros((6, 8, 4), np.float32)  # RGBA: the alpha is the matte
    hair[0, :, 3] = 1.0
    hair[4:6, :, 0] = 1.0  # colour ignored when there is a real alpha
    mattes = {
        "face": write_raw(tmp_path / "face.png", face),
        "eyes": write_raw(tmp_path / "eyes.png", eyes),
        "hair": write_raw(tmp_path / "hair.exr", hair, ["R", "G", "B", "A"]),
    }
    out = read_reference_mask(mattes, ["hair", "face", "eyes", "ears"])
    expected = np.zeros((6, 8), np.int64)
    expected[0] = 1
    expected[1:5, 1:7] = 2
    expected[2:3, 2:6] = 3  # the smaller part wins the overlap
    np.testing.assert_array_equal(out, expected)


def test_reference_matte_opaque_alpha_uses_colour(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, :3] = 255
    out = read_reference_mask({"face": write_raw(tmp_path / "f.png", rgba)}, ["face"])
    np.testing.assert_array_equal(out, [[1, 0], [0, 0]])


def test_reference_overlap_tie_goes_to_earlier_part(tmp_path):
    a = write_raw(tmp_path / "a.png", np.array([[[255], [255], [0]]], np.uint8))
    b = write_raw(tmp_path / "b.png", np.array([[[0], [255], [255]]], np.uint8))
    np.testing.assert_array_equal(read_reference_mask({"b": b, "a": a}, ["a", "b"]), [[1, 1, 2]])


def test_reference_mattes_errors(tmp_path):
    small = write_raw(tmp_path / "s.png", np.zeros((2, 2, 1), np.uint8))
    big = write_raw(tmp_path / "b.png", np.zeros((3, 2, 1), np.uint8))
    message = one_line_error(read_reference_mask, {"face": small, "nose": big}, ["face", "hair"])
    assert message == "unknown part(s) nose in reference mattes; parts are: face, hair"
    assert "same size" in one_line_error(read_reference_mask, {"face": small, "hair": big}, ["face", "hair"])
    missing = tmp_path / "gone.png"
    assert one_line_error(read_reference_mask, {"face": missing}, ["face"]) == f"{missing} does not exist"
    assert "duplicates" in one_line_error(read_reference_mask, small, ["face", "face"])


def test_reference_from_matte_exr(tmp_path):
    alphas = np.zeros((3, 4, 4), np.float32)
    alphas[0] = 1.0
    alphas[1, :2], alphas[0, :2] = 0.9, 0.1  # face: top half
    alphas[2, 3, 3], alphas[0, 3, 3] = 0.6, 0.4  # hair: one pixel
    labels = alphas.argmax(0)
    path = write_mattes_exr(tmp_path / "ref.exr", alphas, labels, PARTS)
    out = read_reference_mask(path, ["hair", "face"])  # order of the caller, not of the file
    expected = np.zeros((4, 4), np.int64)
    expected[:2] = 2
    expected[3, 3] = 1
    np.testing.assert_array_equal(out, expected)
    message = one_line_error(read_reference_mask, path, ["face", "nose"])
    assert message == f"{path} has no layer for part(s) nose; its layers are: background, face, hair"


def test_reference_missing_and_corrupt(tmp_path):
    assert "does not exist" in one_line_error(read_reference_mask, tmp_path / "none.png", ["face"])
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    assert "could not read" in one_line_error(read_reference_mask, tmp_path / "bad.png", ["face"])
