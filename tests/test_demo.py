"""The demo runs the whole data flow through the CLI, prints its own lines only, reports measured scores and
stage costs, and reuses its part model when re-run with the same settings (short schedule here; full in
`make demo`)."""

import json
import subprocess
import sys

from smite.demo import run_demo
from smite.io.images import read_mattes_exr

THIRD_PARTY = ("accelerate", "float32", "tokeniz", "Loading weights", "Warning", "warn(")


def test_demo_learns_segments_compares_presets_and_prints_its_own_lines(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "smite.cli", "demo", "--out", str(tmp_path), "--frames", "4",
                           "--steps", "4", "--quality-frames", "3"], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    assert not [line for line in text.splitlines() if any(w in line for w in THIRD_PARTY)], text
    assert "learning from frame 1 (4 steps" in text
    assert "mIoU on the 3 frames not used for learning" in text and "tiny CPU backbone" in text
    assert "frames 1-3: fast mIoU" in text and "| quality mIoU" in text
    assert "stage costs (s): synthetic shot" in text and "learning" in text and "quality preset" in text
    assert (tmp_path / "contact_sheet.png").stat().st_size > 1000
    mattes = sorted((tmp_path / "mattes").glob("demo.*.exr"))
    assert len(mattes) == 4 and all(read_mattes_exr(p).part_names[0] == "background" for p in mattes)
    assert len(list((tmp_path / "mattes_quality").glob("demo.*.exr"))) == 3
    assert len(list((tmp_path / "cache").glob("demo-*.smite"))) == 1

    lines = []  # the same settings again: the cached part model, no learning
    summary = run_demo(tmp_path, num_frames=4, steps=4, log=lines.append, quality_frames=0)
    assert not summary["learned"] and any("reusing the part model" in line for line in lines)
    assert 0.0 <= summary["miou"] <= 1.0 and set(summary["stages"]) >= {"learning", "fast preset"}
    json.dumps(summary)
