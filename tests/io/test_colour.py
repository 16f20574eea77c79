"""Issue 14 item 2: plates reach the model through the OCIO display/view transform (no clip at 1.0), $OCIO
and its colour-space names are honoured, Cineon/log DPX scans are decoded, video DPX reads as it is."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from smite.errors import SmiteError
from smite.io import colour
from smite.io.images import read_image, write_image

CONFIG = textwrap.dedent("""\
    ocio_profile_version: 2
    roles: {default: raw, scene_linear: studio_linear, data: raw}
    file_rules:
      - !<Rule> {name: Default, colorspace: default}
    displays:
      studio_display:
        - !<View> {name: studio_view, colorspace: studio_display_space}
    active_displays: [studio_display]
    active_views: [studio_view]
    colorspaces:
      - !<ColorSpace> {name: studio_linear, family: Linear, encoding: scene-linear}
      - !<ColorSpace>
        name: studio_double
        family: Linear
        encoding: scene-linear
        to_scene_reference: !<MatrixTransform> {matrix: [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1]}
      - !<ColorSpace>
        name: studio_display_space
        family: Display
        from_scene_reference: !<ExponentTransform> {value: [2.2, 2.2, 2.2, 1], direction: inverse}
      - !<ColorSpace> {name: raw, isdata: true}
    """)


def test_highlights_are_not_clipped_before_the_model(tmp_path):
    stops = np.float32([0.18, 1.0, 2.0, 4.0, 16.0])
    plate = np.repeat(stops[None, :, None], 3, axis=2)
    converted = read_image(write_image(tmp_path / "hot.exr", plate))[0, :, 0]
    assert np.all(np.diff(converted) > 0)  # every stop above 1.0 stays distinguishable
    assert converted.max() < 1.0 and converted[1] < 0.9  # 1.0 is not white: there is room above it


def test_display_referred_sources_are_used_as_they_are(tmp_path):
    path = write_image(tmp_path / "d.exr", np.tile(np.float32([0.5, 0.1, 0.05]), (2, 2, 1)))
    assert read_image(path, colorspace="sRGB")[0, 0] == pytest.approx([0.5, 0.1, 0.05], abs=1e-3)
    assert colour.is_scene_referred("ACEScg") and colour.is_scene_referred("ACEScct")
    assert not colour.is_scene_referred("sRGB") and not colour.is_scene_referred("sRGB - Display")


def _dpx(path: Path, code: int, transfer: str | None) -> Path:
    spec = oiio.ImageSpec(4, 2, 3, oiio.UINT16)
    spec.attribute("oiio:BitsPerSample", 10)
    if transfer:
        spec.attribute("dpx:Transfer", transfer)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    out.write_image(np.full((2, 4, 3), code / 1023.0, np.float32))
    out.close()
    return path


def test_log_dpx_is_decoded_and_video_dpx_reads_as_is(tmp_path):
    white = read_image(_dpx(tmp_path / "white.dpx", 685, "Printing density"))[0, 0, 0]
    above = read_image(_dpx(tmp_path / "above.dpx", 900, "Printing density"))[0, 0, 0]
    linear_one = read_image(write_image(tmp_path / "one.exr", np.ones((2, 4, 3), np.float32)))[0, 0, 0]
    assert white == pytest.approx(linear_one, abs=2e-3)  # Cineon white (685) is scene-linear 1.0
    assert above > white  # above film white is not clipped
    video = read_image(_dpx(tmp_path / "video.dpx", 512, None))[0, 0, 0]
    assert video == pytest.approx(512 / 1023, abs=2e-3)
    assert colour.cineon_to_linear(np.float32([95 / 1023]))[0] == pytest.approx(0.0, abs=1e-6)


PROBE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from smite.io import colour
    from smite.io.images import read_image, write_image
    plate = write_image(sys.argv[1], np.full((2, 2, 3), 0.18, np.float32))
    print(json.dumps({"view": colour.display_view(), "linear": float(read_image(plate)[0, 0, 0]),
                      "double": float(read_image(plate, "studio_double")[0, 0, 0])}))
""")


def test_ocio_env_config_and_its_names_are_honoured(tmp_path):
    (tmp_path / "config.ocio").write_text(CONFIG)
    env = {"OCIO": str(tmp_path / "config.ocio"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "p.exr")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["view"] == ["studio_display", "studio_view"]
    assert got["linear"] == pytest.approx(0.18 ** (1 / 2.2), abs=2e-3)  # the studio's view, not the built-in
    assert got["double"] == pytest.approx(0.36 ** (1 / 2.2), abs=2e-3)  # a colour space of the studio config


def test_a_broken_ocio_config_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "bad.ocio").write_text("ocio_profile_version: 2\ncolorspaces: [nonsense\n")
    monkeypatch.setenv("OCIO", str(tmp_path / "bad.ocio"))
    with pytest.raises(SmiteError, match=r"\$OCIO config .*bad.ocio could not be loaded") as err:
        colour.colour_config()
    assert "\n" not in str(err.value)
