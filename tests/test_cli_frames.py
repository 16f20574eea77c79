"""Issue 14 item 4: every frame-list form and padding token means the same frames in every command
(`smite learn --refs`, `smite segment --range`, `smite eval --range`, the daemon's `args.sequence`)."""

from pathlib import Path

import pytest

import smite.engine
import smite.evaluate.files as eval_files
import smite.model.partmodel
from smite.cli import main
from smite.errors import SmiteError

FORMS = {
    "1001-1005": [1001, 1002, 1003, 1004, 1005],
    "1001-1005x2": [1001, 1003, 1005],
    "1001 1003 1004-1005": [1001, 1003, 1004, 1005],
    "1001,1003,1004-1005": [1001, 1003, 1004, 1005],
    "1005, 1001  1003": [1001, 1003, 1005],
    "-2-1": [-2, -1, 0, 1],
    "-3--1x2": [-3, -1],
}
TOKENS = ["p.####.png", "p.%04d.png", "p.@@@@.png", "p.$F4.png"]
ALL_FRAMES = sorted({f for frames in FORMS.values() for f in frames})


class Recorder:
    """Stands in for the engine: records which frames a command hands it (nothing is learned or segmented)."""

    frames: list[int] = []

    def __init__(self, *args, **kwargs) -> None:
        pass

    def backbone_for(self, part_model=None):
        return Backbone()

    def learn_files(self, frame_paths, masks, names, **kwargs):
        Recorder.frames = [_number(p) for p in frame_paths]
        assert [_number(m) for m in masks] == Recorder.frames  # masks follow the same frames
        raise SmiteError("recorded")

    def segment_files(self, model, frames, output, *args, **kwargs):
        Recorder.frames = [n for n, _ in frames]
        raise SmiteError("recorded")


class Backbone:
    is_tiny = True


def _number(path) -> int:
    from smite.io.sequences import expand_frames

    return expand_frames(str(path))[0][0]


@pytest.fixture
def recorder(monkeypatch):
    monkeypatch.setattr(smite.engine, "Engine", Recorder)
    monkeypatch.setattr(smite.model.partmodel.PartModel, "load", staticmethod(lambda path: object()))
    Recorder.frames = []
    return Recorder


@pytest.fixture(scope="module")
def predictions(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mattes")
    for f in ALL_FRAMES:
        (folder / f"m.{f:04d}.exr").write_bytes(b"")
    return folder


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("form", FORMS)
def test_learn_and_segment_take_the_same_frames(recorder, tmp_path, form, token):
    plates, masks = str(tmp_path / token), str(tmp_path / token.replace("p.", "m."))
    assert main(["learn", "--frames", plates, f"--refs={form}", "--masks", masks, "--names", "a",
                 "-o", str(tmp_path / "x.smite")]) == 2
    assert recorder.frames == FORMS[form]
    recorder.frames = []
    # "--range=LIST": a list starting with '-' would read as an option
    assert main(["segment", str(tmp_path / "x.smite"), "--frames", plates, f"--range={form}",
                 "-o", str(tmp_path / "out" / token.replace("p.", "o."))]) == 2
    assert recorder.frames == FORMS[form]


@pytest.mark.parametrize("form", FORMS)
def test_eval_takes_the_same_frames(monkeypatch, predictions, form):
    seen = []

    def recording(source, frame_range=None):
        seen.extend(n for n, _ in original(source, frame_range))
        raise SmiteError("recorded")

    original = eval_files.find_predictions
    monkeypatch.setattr(eval_files, "find_predictions", recording)
    assert main(["eval", str(predictions / "m.####.exr"), "--gt", str(predictions), f"--range={form}"]) == 2
    assert seen == FORMS[form]


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("form", FORMS)
def test_daemon_sequence_takes_the_same_frames(tmp_path, form, token):
    from smite_server.requests import parse_segment
    from smite_server.security import Roots
    from smite_server.submit import _frames, count_frames

    req = parse_segment({"model": "hero", "sequence": {"pattern": str(tmp_path / token), "frames": form}}, 0)
    frames = _frames(req, [], Roots([tmp_path]))
    assert [n for n, _ in frames] == FORMS[form]
    assert count_frames(form) == len(FORMS[form])  # the daemon's size check counts the same list
    assert all(Path(p).name == f"p.{n:04d}.png" for n, p in frames)
