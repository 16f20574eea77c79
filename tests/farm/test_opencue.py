"""The OpenCue job spec, built with PyOutline and no Cuebot: layers, commands, ranges, chunk size, dependency."""

import shlex
import xml.etree.ElementTree as ET

import pytest

from smite.cli import main
from smite.errors import SmiteError
from smite.farm.opencue import ShotJob, job_spec

pytest.importorskip("outline", reason="the farm extra (opencue-pyoutline) is installed by `make test`")


def _job(**overrides) -> ShotJob:
    values = dict(name="shot010_mattes", plates="/show/s010/plate.####.exr", frames="1001-1100",
                  ref_frames="1001,1060", masks="/show/s010/roto.####.png", parts="face,hair",
                  part_model="/show/s010/s010.smite", output="/show/s010/mattes/s010.####.exr", chunk_size=20,
                  context=8, preset="quality", backbone="tiny", device="cuda", show="show", shot="s010", user="td")
    return ShotJob(**(values | overrides))


def _layers(spec: str) -> dict:
    root = ET.fromstring(spec.split("?>", 1)[1].split(">", 1)[1])  # drop the XML declaration and DOCTYPE
    return root, {layer.get("name"): layer for layer in root.iter("layer")}


def test_learn_then_chunked_segment_with_layer_dependency(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # nothing may be written outside the test's folder
    root, layers = _layers(job_spec(_job()))
    assert list(layers) == ["learn", "segment"]
    learn, segment = layers["learn"], layers["segment"]
    assert learn.findtext("range") == "1001" and learn.findtext("chunk") == "1"
    assert segment.findtext("range") == "1001-1100" and segment.findtext("chunk") == "20"
    learn_words = shlex.split(learn.findtext("cmd"))
    assert learn_words[:2] == ["smite", "learn"]
    assert learn_words[learn_words.index("--refs") + 1] == "1001,1060"
    assert learn_words[learn_words.index("-o") + 1] == "/show/s010/s010.smite"
    render = segment.findtext("cmd")
    assert render.endswith("--chunk #FRAME_START#-#FRAME_END#")  # raw command, OpenCue fills in the chunk
    assert "pycuerun" not in render
    words = shlex.split(render)
    assert words[:3] == ["smite", "render", "/show/s010/s010.smite"]
    for flag, value in (("--range", "1001-1100"), ("--context", "8"), ("-o", "/show/s010/mattes/s010.####.exr"),
                        ("--preset", "quality"), ("--backbone", "tiny"), ("--frames", "/show/s010/plate.####.exr")):
        assert words[words.index(flag) + 1] == value
    (depend,) = root.iter("depend")
    assert depend.get("type") == "LAYER_ON_LAYER"
    assert depend.findtext("deplayer") == "segment" and depend.findtext("onlayer") == "learn"
    assert not list(tmp_path.iterdir())


def test_existing_part_model_has_no_learn_layer(tmp_path):
    model = tmp_path / "shot.smite"
    model.write_bytes(b"x")
    root, layers = _layers(job_spec(_job(ref_frames=None, masks=None, parts=None, part_model=str(model))))
    assert list(layers) == ["segment"] and not list(root.iter("depend"))


def test_bad_parameters_are_one_line_errors(tmp_path):
    with pytest.raises(SmiteError, match="RefFrames, Masks and Parts"):
        job_spec(_job(masks=None))
    with pytest.raises(SmiteError, match="ChunkSize"):
        job_spec(_job(chunk_size=0))
    with pytest.raises(SmiteError, match="no RefFrames"):
        job_spec(_job(ref_frames=None, part_model=str(tmp_path / "missing.smite")))


def test_cli_writes_the_spec_and_needs_a_cuebot_to_submit(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CUEBOT_HOSTS", raising=False)
    monkeypatch.delenv("OPENCUE_CONFIG_FILE", raising=False)
    args = ["farm", "opencue", "--name", "s010", "--plates", "/p/plate.####.exr", "--frames", "1-48",
            "--ref-frames", "1", "--masks", "/p/roto.####.png", "--parts", "face", "--part-model", "/p/s.smite",
            "--output", "/p/m.####.exr", "--chunk-size", "16", "-o", str(tmp_path / "job.xml")]
    assert main(args) == 0
    _, layers = _layers((tmp_path / "job.xml").read_text())
    assert layers["segment"].findtext("chunk") == "16"
    assert main(args + ["--submit"]) == 2
    assert "no Cuebot configured" in capsys.readouterr().err
