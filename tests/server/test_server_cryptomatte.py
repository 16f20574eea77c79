"""Cryptomatte layers: ids, manifest, ranking and the written EXR."""

from __future__ import annotations

import json

import numpy as np
import OpenImageIO as oiio
import pytest

from smite.errors import SmiteError
from smite.io import cryptomatte
from smite.io.images import read_mattes_exr


def coverage_of(pixels: np.ndarray, name: str) -> np.ndarray:
    """Decode one name's coverage (H, W) from rank pixels (H, W, 2 * ranks), as a keyer does."""
    ids, cov = pixels[..., 0::2], pixels[..., 1::2]
    return np.where(ids.view(np.uint32) == np.uint32(cryptomatte.name_hash(name)), cov, 0).sum(axis=-1)


def test_the_spec_test_vector_and_id_bits():
    assert cryptomatte.name_hash("torus") == 4053562365
    value = cryptomatte.name_id("torus")
    assert value.dtype == np.float32 and np.array([value]).view(np.uint32)[0] == 4053562365
    for name in ("background", "head", "a", "x" * 50, "émile"):
        exponent = (cryptomatte.name_hash(name) >> 23) & 0xFF
        assert 0 < exponent < 255 and np.isfinite(cryptomatte.name_id(name))
    assert cryptomatte.manifest(["torus"]) == {"torus": f"{4053562365:08x}"}
    assert len(cryptomatte.layer_key("CryptoSmite")) == 7


def _mattes(n: int = 4, h: int = 6, w: int = 5) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(1)
    alphas = rng.random((n, h, w)).astype(np.float32) ** 3
    alphas[:, 0, 0] = [1.0] + [0.0] * (n - 1)  # one pixel fully background
    return alphas / alphas.sum(0), ["background"] + [f"p{i}" for i in range(1, n)]


def test_rank_pixels_decode_back_to_the_coverage():
    alphas, names = _mattes()
    pixels = cryptomatte.rank_pixels(alphas, names, ranks=6)
    assert pixels.shape == (6, 5, 12) and pixels.dtype == np.float32
    for k, name in enumerate(names):
        np.testing.assert_allclose(coverage_of(pixels, name), alphas[k], atol=1e-7)
    coverage = pixels[..., 1::2]
    assert (np.diff(coverage, axis=-1) <= 0).all()  # ranked by coverage
    assert (pixels[0, 0, 2:] == 0).all()  # ranks beyond the parts present are empty
    two = cryptomatte.rank_pixels(alphas, names, ranks=2)  # only the top two parts survive
    np.testing.assert_allclose(two[..., 1] + two[..., 3], np.sort(alphas, 0)[-2:].sum(0), atol=1e-6)
    with pytest.raises(SmiteError):
        cryptomatte.rank_pixels(alphas, names, ranks=3)


def test_written_exr_has_float_ids_zip_and_a_manifest(tmp_path):
    alphas, names = _mattes()
    labels = alphas.argmax(0).astype(np.uint16)
    path = cryptomatte.write_mattes_exr(tmp_path / "m.exr", alphas, labels, names, {"frame": 12}, ranks=4)
    spec = oiio.ImageInput.open(str(path)).spec()
    formats = dict(zip(spec.channelnames, (str(f) for f in spec.channelformats)))
    assert formats["CryptoSmite00.R"] == formats["CryptoSmite01.A"] == "float"
    assert formats["smite_p1.A"] == formats["smite_label.A"] == "half"
    assert spec.get_string_attribute("compression") == "zip"
    key = cryptomatte.layer_key("CryptoSmite")
    assert spec.get_string_attribute(f"cryptomatte/{key}/name") == "CryptoSmite"
    assert spec.get_string_attribute(f"cryptomatte/{key}/hash") == "MurmurHash3_32"
    manifest = json.loads(spec.get_string_attribute(f"cryptomatte/{key}/manifest"))
    assert manifest == cryptomatte.manifest(names)
    buf = oiio.ImageBuf(str(path))
    pixels = buf.get_pixels(oiio.FLOAT)
    ids = pixels[..., [spec.channelindex(c) for c in cryptomatte.channel_names("CryptoSmite", 4)]]
    np.testing.assert_allclose(coverage_of(np.ascontiguousarray(ids), "p2"), alphas[2], atol=1e-7)
    back = read_mattes_exr(path)  # the plain matte reader still reads the file
    assert back.part_names == names and back.metadata["frame"] == 12
    assert (back.labels == labels).all()
    assert len(cryptomatte.encode_mattes_exr(alphas, labels, names)) > 100
