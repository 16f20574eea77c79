"""Issue 14 item 5: one-line failures with documented exit codes, --debug tracebacks, --quiet/--verbose,
`Progress: N%` lines off a terminal, and outputs never overwritten silently. No model runs: a recording engine
stands in for it."""

import errno
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import smite.cli
import smite.engine
import smite.model.partmodel
from smite import exit_codes
from smite.cli import main
from smite.client import DaemonError, DaemonTimeout
from smite.errors import Cancelled, SmiteError
from smite.progress import Progress


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (SmiteError("bad"), 2),
        (SmiteError("gone", code="not_found"), 3),
        (SmiteError("no weights", code="model_missing"), 3),
        (SmiteError("other backbone", code="backbone_mismatch"), 2),
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), 75),
        (RuntimeError("CUDA error: out of memory"), 75),
        (MemoryError(), 75),
        (DaemonTimeout("no reply from tcp://127.0.0.1:7461"), 75),
        (DaemonError("busy", "a job is running"), 75),
        (SmiteError("daemon: queue full (queue_full)", code="queue_full"), 75),
        (OSError(errno.ENOSPC, "No space left on device"), 75),
        (FileNotFoundError(errno.ENOENT, "No such file", "x.exr"), 3),
        (PermissionError(errno.EACCES, "Permission denied"), 2),
        (Cancelled("segmentation"), 130),
        (KeyboardInterrupt(), 130),
        (ZeroDivisionError("division by zero"), 1),
    ],
)
def test_every_failure_is_one_line_with_its_documented_code(monkeypatch, capsys, exc, code):
    def failing(args):
        raise exc

    monkeypatch.setattr(smite.cli, "cmd_info", failing)
    assert main(["info"]) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("smite: ")
    if code == 1:
        assert "--debug" in err  # a bug says how to get the traceback


def test_debug_adds_the_traceback(monkeypatch, capsys):
    def failing(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(smite.cli, "cmd_info", failing)
    for argv in (["--debug", "info"], ["info", "--debug"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and "ZeroDivisionError" in err
        assert err.strip().splitlines()[-1].startswith("smite: error: internal error")


def test_documented_codes():
    assert (exit_codes.BAD_INPUT, exit_codes.NOT_FOUND, exit_codes.TEMPORARY, exit_codes.CANCELLED) == (2, 3, 75, 130)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert exit_codes.exit_code_table() in readme


def test_progress_lines_when_not_a_terminal():
    stream = io.StringIO()  # not a tty, like a farm log
    with Progress(8, "segmenting", "frame", stream=stream) as bar:
        for done in range(1, 9):
            bar.update(done, "window 1/1")
    lines = stream.getvalue().splitlines()
    assert lines == [f"Progress: {p}%" for p in (12, 25, 37, 50, 62, 75, 87, 100)]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_and_quiet_gets_nothing():
    tty = Terminal()
    with Progress(4, "learning", "step", stream=tty) as bar:
        bar.update(4)
    assert "Progress:" not in tty.getvalue() and "4/4" in tty.getvalue()
    silent = io.StringIO()
    with Progress(4, "learning", "step", quiet=True, stream=silent) as bar:
        bar.update(4)
    assert silent.getvalue() == ""


class Recorder:
    """Stands in for the engine: records the frames, reports progress, writes empty outputs."""

    frames: list[int] = []

    def __init__(self, *args, **kwargs) -> None:
        pass

    def backbone_for(self, part_model=None):
        return SimpleNamespace(is_tiny=True)

    def segment_files(self, model, frames, output, settings, colorspace, progress=None, name=None,
                      cryptomatte_ranks=None):
        from smite.io.sequences import expand_frames

        Recorder.frames = [n for n, _ in frames]
        outputs = [p for _, p in expand_frames(output, ",".join(str(n) for n, _ in frames))]
        for i, path in enumerate(outputs):
            progress(SimpleNamespace(done=i + 1, window=0, windows=1, stage="guidance"))
            path.write_bytes(b"new")
        return outputs

    def learn_files(self, frames, masks, names, progress=None, **kwargs):
        for step in (1, 2):
            progress(SimpleNamespace(step=step, total=2, loss=0.5, miou=None, phase="kv"))
        return SimpleNamespace(save=lambda path: Path(path).write_bytes(b"new") and Path(path),
                               part_names=["background", "a"], validation_miou=0.5)


@pytest.fixture
def shot(monkeypatch, tmp_path):
    monkeypatch.setattr(smite.engine, "Engine", Recorder)
    monkeypatch.setattr(smite.model.partmodel.PartModel, "load", staticmethod(lambda path: object()))
    out = tmp_path / "mattes"
    out.mkdir()
    Recorder.frames = []
    return SimpleNamespace(plates=str(tmp_path / "p.####.exr"), out=out, pattern=str(out / "m.####.exr"),
                           model=str(tmp_path / "shot.smite"))


def _segment(shot, *flags: str) -> list[str]:
    return ["segment", shot.model, "--frames", shot.plates, "--range", "1-4", "-o", shot.pattern, *flags]


def test_segment_refuses_to_overwrite_without_a_flag(shot, capsys):
    (shot.out / "m.0002.exr").write_bytes(b"old")
    assert main(_segment(shot)) == 2
    err = capsys.readouterr().err
    assert "exist" in err and "--overwrite" in err and "--skip-existing" in err
    assert (shot.out / "m.0002.exr").read_bytes() == b"old" and Recorder.frames == []
    assert main(_segment(shot, "--skip-existing")) == 0
    assert Recorder.frames == [1, 3, 4] and (shot.out / "m.0002.exr").read_bytes() == b"old"
    assert main(_segment(shot, "--skip-existing")) == 0 and "nothing to do" in capsys.readouterr().out
    assert main(_segment(shot, "--overwrite")) == 0
    assert Recorder.frames == [1, 2, 3, 4] and (shot.out / "m.0002.exr").read_bytes() == b"new"
    with pytest.raises(SystemExit):  # the two flags exclude each other
        main(_segment(shot, "--overwrite", "--skip-existing"))


def test_learn_refuses_to_overwrite_a_part_model(shot, tmp_path, capsys):
    Path(shot.model).write_bytes(b"old")
    argv = ["learn", "--frames", shot.plates, "--refs", "1", "--masks", str(tmp_path / "m.####.png"),
            "--names", "a", "-o", shot.model]
    assert main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert Path(shot.model).read_bytes() == b"old"
    assert main([*argv, "--overwrite"]) == 0 and Path(shot.model).read_bytes() == b"new"


def test_segment_progress_lines_quiet_and_verbose(shot, monkeypatch, capsys):
    assert main(_segment(shot)) == 0
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if line.startswith("Progress:")] == [
        "Progress: 25%", "Progress: 50%", "Progress: 75%", "Progress: 100%"]
    assert "wrote 4 matte EXRs" in captured.out
    assert main(_segment(shot, "--overwrite", "--quiet")) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "Progress:" not in captured.err
    seen = []
    monkeypatch.setattr(smite.cli, "quiet_third_party", lambda verbose: seen.append(verbose))
    main(_segment(shot, "--overwrite", "-v"))
    main(["-q", *_segment(shot, "--overwrite")])
    assert seen == [True, False]


def test_common_flags_work_before_and_after_nested_commands():
    from smite.cli import build_parser

    parser = build_parser()
    nested = parser.parse_args(["submit", "segment", "--model", "hero", "--frames", "p.####.exr", "--debug"])
    assert nested.debug and not nested.quiet
    before = parser.parse_args(["--quiet", "submit", "segment", "--model", "hero", "--frames", "p.####.exr"])
    assert before.quiet and not before.debug
