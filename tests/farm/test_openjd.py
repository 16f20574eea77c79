"""The OpenJD templates: ``openjd check``, and the learn + segment template run end to end with ``openjd run``.

The run (tiny backbone, ChunkSize 8, Context 4, a 24-frame shot) must write every frame exactly once; at each
chunk boundary the owned frames must agree with a whole-shot run with the same preset on >= 98 % of pixels'
labels and the flicker across the seam must be no higher than the whole-shot run's on the same pair + 0.005.
A chunk killed half way and re-run writes only the frames it had not written; SIGTERM cancels with 130.

The run uses the ``quality`` preset (overlapping windows, guidance) with the tiny backbone's settings, in windows
of 6 frames, which do not line up with the chunks of 8 (each chunk runs two or three of the shot's windows, and
the carry between overlapping windows is cut at its first one: the seam risk). The tiny backbone works at the
96-px plates' own size (``FARM_RESOLUTION``; a 24-cell latent): what is tested is how chunks join, which does not
depend on the frame size, and a quality window at 256 px costs minutes of CPU. Windows of 16 and larger chunks
are measured by bench/farm.py.
"""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from smite.evaluate.scores import flicker
from smite.io.images import read_image, read_mattes_exr
from smite.model.partmodel import PartModel
from smite.video.settings import SegmentSettings
from smite.video.shot import ShotSegmenter

pytest.importorskip("openjd.cli", reason="the farm extra (openjd-cli) is installed by `make test`")

TEMPLATES = Path(__file__).resolve().parents[2] / "farm" / "openjd"
OPENJD = str(Path(sys.executable).parent / "openjd")
SMITE = str(Path(sys.executable).parent / "smite")
CHUNK, CONTEXT, WINDOW, LEARN_STEPS = 8, 4, 6, 40  # 40 epochs: enough for both parts to show up


def test_templates_pass_openjd_check(farm_env):
    templates = sorted(TEMPLATES.glob("*/template.yaml"))
    assert len(templates) == 2
    for template in templates:
        result = subprocess.run([OPENJD, "check", str(template)], env=farm_env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_both_templates_segment_the_same_way():
    """The existing-model template is the learn template without Learn: its Segment step must not drift."""
    learn, model = (yaml.safe_load((TEMPLATES / name / "template.yaml").read_text())
                    for name in ("smite-mattes", "smite-mattes-model"))
    segment = {s["name"]: s for s in learn["steps"]}["Segment"]
    assert segment.pop("dependencies") == [{"dependsOn": "Learn"}]
    assert [s["name"] for s in model["steps"]] == ["Segment"] and model["steps"][0] == segment
    params = {p["name"]: p for p in learn["parameterDefinitions"]}
    for p in model["parameterDefinitions"]:
        assert {k: v for k, v in p.items() if k != "description"} == \
               {k: v for k, v in params[p["name"]].items() if k != "description"}


def _openjd_run(farm_shot, farm_env, out: Path, preset: str) -> dict:
    """``openjd run --step Segment --run-dependencies`` of the learn + segment template on the shot."""
    params = {"Plates": farm_shot["plates"], "Frames": "1-24", "RefFrames": "1", "Masks": farm_shot["masks"],
              "Parts": farm_shot["parts"], "PartModel": str(out / "shot.smite"), "Output": str(out / "m.####.exr"),
              "ChunkSize": CHUNK, "Context": CONTEXT, "Preset": preset, "Window": WINDOW, "Backbone": "tiny",
              "Device": "cpu",
              "LearnSteps": LEARN_STEPS}
    command = [OPENJD, "run", str(TEMPLATES / "smite-mattes" / "template.yaml"), "--step", "Segment",
               "--run-dependencies"] + [w for k, v in params.items() for w in ("-p", f"{k}={v}")]
    result = subprocess.run(command, env=farm_env, capture_output=True, text=True, timeout=3600)
    return {"result": result, "out": out, "model": out / "shot.smite", "log": result.stdout + result.stderr,
            "preset": preset}


@pytest.fixture(scope="module")
def farm_run(farm_shot, farm_env, tmp_path_factory):
    return _openjd_run(farm_shot, farm_env, tmp_path_factory.mktemp("farm-quality"), "quality")


def check_every_frame_written_once(run: dict) -> None:
    assert run["result"].returncode == 0, run["log"][-3000:]
    log = run["log"]
    for frame in range(1, 25):
        assert len(re.findall(rf"Progress: \d+% frame {frame} \(", log)) == 1, f"frame {frame}"
        assert (run["out"] / f"m.{frame:04d}.exr").is_file()
    assert len(re.findall(r"smite render: done \(exit 0\): wrote 8 frame", log)) == 3
    assert log.count("listening on ipc://") == 1  # one daemon for the session, stopped on exit
    assert re.search(r"daemon \d+ at ipc://\S+ stopped", log)  # asked to shut down, not waited out and killed
    assert not [p for p in run["out"].iterdir() if ".tmp" in p.name]


def check_seams(run: dict, farm_shot: dict, backbone) -> None:
    """Seam frames agree with a whole-shot run (same preset) on >= 98 % of labels; seam flicker <= whole + 0.005."""
    model = PartModel.load(run["model"])
    root = farm_shot["root"]
    plates = np.stack([read_image(root / f"plate.{f:04d}.png") for f in range(1, 25)])  # as the daemon reads them
    settings = SegmentSettings(preset=run["preset"], window=WINDOW)
    whole = np.stack([m.labels for m in ShotSegmenter(backbone, model, settings).segment(plates)])
    chunked = np.stack([read_mattes_exr(run["out"] / f"m.{f:04d}.exr").labels for f in range(1, 25)])
    for part in range(1, model.num_parts):  # a model that finds nothing would agree everywhere: not a test
        assert (whole == part).mean() > 0.01 and (chunked == part).mean() > 0.01, f"part {part} not found"
    figures = []
    for boundary in range(CHUNK, 24, CHUNK):  # 0-based index of a chunk's first frame
        pair = slice(boundary - 1, boundary + 1)
        agree = [float((chunked[i] == whole[i]).mean()) for i in (boundary - 1, boundary)]
        seam, reference = flicker(chunked[pair], plates[pair]), flicker(whole[pair], plates[pair])
        figures.append((boundary, agree, seam, reference))
        print(f"\n{run['preset']} seam {boundary}|{boundary + 1}: label agreement {agree[0]:.4f} {agree[1]:.4f}, "
              f"flicker chunked {seam:.4f} vs whole {reference:.4f}")
    for boundary, agree, seam, reference in figures:
        assert min(agree) >= 0.98, (boundary, agree)
        assert seam <= reference + 0.005, (boundary, seam, reference)


def test_openjd_run_writes_every_frame_once(farm_run):
    check_every_frame_written_once(farm_run)


def test_seams_match_a_whole_shot_run(farm_run, farm_shot, farm_backbone):
    assert farm_run["result"].returncode == 0, farm_run["log"][-3000:]
    check_seams(farm_run, farm_shot, farm_backbone)


def test_killed_chunk_rerun_writes_only_missing_frames(farm_run, farm_shot, farm_env, tmp_path):
    assert farm_run["model"].is_file(), farm_run["log"][-3000:]
    out = tmp_path / "m.####.exr"
    command = [SMITE, "render", str(farm_run["model"]), "--frames", farm_shot["plates"], "--range", "1-24",
               "--chunk", "9-16", "--context", str(CONTEXT), "-o", str(out), "--preset", "fast", "--window", "4",
               "--backbone", "tiny", "--device", "cpu"]
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, env=farm_env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 1200
        while not list(tmp_path.glob("m.*.exr")) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)  # windows of 4 frames: the chunk is between two windows' writes
        first.wait()
    before = {p.name: p.stat() for p in tmp_path.glob("m.*.exr")}
    assert 0 < len(before) < 8, (tmp_path / "first.log").read_text()[-2000:]
    rerun = subprocess.run(command, env=farm_env, capture_output=True, text=True, timeout=1200)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    written = {int(f) for f in re.findall(r"Progress: \d+% frame (\d+) \(", rerun.stdout)}
    missing = {f for f in range(9, 17) if f"m.{f:04d}.exr" not in before}
    assert written == missing
    assert f"skipping {len(before)} complete frame(s)" in rerun.stdout
    for name, stat in before.items():
        now = (tmp_path / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert sorted(p.name for p in tmp_path.glob("*.exr")) == [f"m.{f:04d}.exr" for f in range(9, 17)]
    assert not list(tmp_path.glob(".*.tmp*"))


def test_sigterm_cancels_the_chunk_with_130(farm_run, farm_shot, farm_env, tmp_path):
    """Farms cancel a task with SIGTERM (then SIGKILL): the chunk stops, says so, exits 130."""
    assert farm_run["model"].is_file(), farm_run["log"][-3000:]
    command = [SMITE, "render", str(farm_run["model"]), "--frames", farm_shot["plates"], "--range", "1-24",
               "--chunk", "1-8", "--context", "0", "-o", str(tmp_path / "m.####.exr"), "--preset", "fast",
               "--window", "2", "--backbone", "tiny", "--device", "cpu"]
    with open(tmp_path / "log", "w") as log:
        render = subprocess.Popen(command, env=farm_env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while "writing 1-8" not in (tmp_path / "log").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        render.send_signal(signal.SIGTERM)
        assert render.wait(timeout=600) == 130
    lines = (tmp_path / "log").read_text().strip().splitlines()
    assert lines[-1].startswith("smite render: cancelled (exit 130)")
    assert len(list(tmp_path.glob("m.*.exr"))) < 8
