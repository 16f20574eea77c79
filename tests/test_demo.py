"""The demo runs the whole data flow and reports a measured mIoU (short schedule here; full in `make demo`)."""

import json

from smite.demo import run_demo
from smite.io.images import read_mattes_exr


def test_demo_writes_mattes_sheet_and_measures_miou(tmp_path):
    lines = []
    summary = run_demo(tmp_path, num_frames=4, steps=4, log=lines.append, preset="fast")
    assert (tmp_path / "contact_sheet.png").stat().st_size > 1000
    assert len(summary["mattes"]) == 4 and all(read_mattes_exr(p).part_names[0] == "background"
                                                for p in summary["mattes"])
    assert 0.0 <= summary["miou"] <= 1.0
    text = "\n".join(lines)
    assert "mIoU on the 3 frames not used for learning" in text and "tiny CPU backbone" in text
    json.dumps(summary)
