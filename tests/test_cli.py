"""The `smite` CLI end to end on the tiny backbone: learn, segment, errors as one line with their exit code."""

import numpy as np
import pytest

from smite.cli import main
from smite.io.images import read_mattes_exr
from smite.synthetic.shots import make_shot, write_shot


@pytest.fixture(scope="module")
def shot_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shot")
    shot = make_shot(num_frames=3, num_parts=2, seed=2)
    return shot, write_shot(shot, folder), folder


def test_learn_then_segment_writes_matte_exrs(shot_files, tmp_path, capsys):
    shot, paths, _ = shot_files
    model = tmp_path / "shot.smite"
    rc = main(["learn", "--frames", paths["plates"], "--refs", "1", "--masks", paths["masks"],
               "--names", ",".join(shot.part_names), "-o", str(model), "--backbone", "tiny", "--steps", "4"])
    assert rc == 0 and model.exists()
    assert "selection mIoU" in capsys.readouterr().out
    out = tmp_path / "mattes" / "m.####.exr"
    sheet = tmp_path / "sheet.png"
    # fast: the CLI plumbing is under test here; the quality path has its own tests in tests/video
    rc = main(["segment", str(model), "--frames", paths["plates"], "-o", str(out), "--contact-sheet", str(sheet),
               "--preset", "fast"])
    assert rc == 0 and sheet.exists()
    written = sorted((tmp_path / "mattes").glob("m.*.exr"))
    assert [p.name for p in written] == ["m.0001.exr", "m.0002.exr", "m.0003.exr"]
    matte = read_mattes_exr(written[1])
    assert matte.part_names == ["background", *shot.part_names]
    assert matte.alphas.shape == (3, *shot.frames.shape[1:3])
    np.testing.assert_allclose(matte.alphas.sum(0), 1.0, atol=5e-3)  # half precision
    assert matte.metadata["frame"] == 2


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["learn", "--frames", "nope.####.png", "--refs", "1", "--masks", "m.####.png", "--names", "a",
          "-o", "x.smite", "--backbone", "tiny"], "nope", 3),
        (["learn", "--frames", "PLATES", "--refs", "1", "--masks", "MASKS", "--names", "a", "-o", "x.smite",
          "--backbone", "tiny"], "has label 2 but only 1 parts", 2),
        (["segment", "missing.smite", "--frames", "PLATES", "-o", "o.####.exr"], "does not exist", 3),
    ],
)
def test_user_mistakes_print_one_line_and_exit_with_their_code(shot_files, tmp_path, capsys, argv, message, code):
    _, paths, _ = shot_files
    argv = [a.replace("PLATES", paths["plates"]).replace("MASKS", paths["masks"]) for a in argv]
    argv = [str(tmp_path / a) if a.endswith(".smite") else a for a in argv]
    assert main(argv) == code  # 2 bad input, 3 not found (smite.exit_codes)
    err = capsys.readouterr().err.strip().splitlines()[-1]  # earlier lines: progress bars
    assert err.startswith("smite: error:") and message in err and "Traceback" not in err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "smite learn --frames plate.####.exr" in capsys.readouterr().out
