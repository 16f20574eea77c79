"""Real Blender (bpy 4.5 LTS, 5.0 on cp311; 5.3 on cp313), each in its own venv made by `make bpy-venvs`:
build the extension zip, install and enable it, rasterise a Mask, learn + segment on a real daemon, drain
the queue, render the compositor and compare pixels with the matte files and the synthetic ground truth.

Learning happens once (in the first Blender, through the Learn operator); the others reuse the model.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import OpenImageIO as oiio
import pytest

from smite.evaluate.metrics import mean_iou
from smite.hosts.blender_extension import REPO, build_extension
from smite.synthetic.shots import make_shot

VERSIONS = ["4.5.15", "5.0.1", "5.3.0"]  # the first one learns
WHEELS = REPO / ".cache" / "blender-wheels"
MODEL = "blender_hero"
STEPS = 40  # 20 token + 20 K/V steps: the add-on's learn takes the tiny schedule's 20 token steps first
FIRST = 1001
SIZE = (128, 128)  # (height, width)
PART = "disc"
SCENARIO = Path(__file__).with_name("bpy_scenario.py")
RUN_TIMEOUT_S = 3600  # guard against a hang only


def bpy_python(version: str) -> Path:
    python = REPO / f".venv-bpy-{version}" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make bpy-venvs` (real bpy {version} in its own venv)")
    return python


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> Path:
    """The extension zip, built offline from the wheel cache with Blender's own builder."""
    if not any(WHEELS.glob("*.whl")):
        pytest.fail(f"no wheels in {WHEELS}: run `make blender-wheels`")
    (zip_path,) = build_extension(tmp_path_factory.mktemp("ext"), wheels=WHEELS)
    return zip_path


@pytest.fixture(scope="session")
def blender_shot(daemon) -> dict:
    """A 3-frame synthetic shot numbered 1001-1003 inside the daemon's root, and the outline of each part at
    the first frame as a polygon (what an artist would draw as a mask)."""
    shot = make_shot(num_frames=3, size=SIZE, num_parts=2, seed=5)
    folder = daemon.root / "blender_shot"
    folder.mkdir()
    for i, frame in enumerate(shot.frames):
        rgb = np.clip(np.round(frame * 255), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"plate.{FIRST + i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    polygons = {}
    for k, name in enumerate(shot.part_names, start=1):
        contours, _ = cv2.findContours((shot.labels[0] == k).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        outline = cv2.approxPolyDP(max(contours, key=cv2.contourArea), 0.75, True)[:, 0, :].astype(float) + 0.5
        polygons[name] = outline.tolist()
    return {"shot": shot, "folder": folder, "polygons": polygons}


def read_channel(path: str, channel: str) -> np.ndarray:
    buf = oiio.ImageBuf(path)
    index = buf.spec().channelindex(channel)
    assert index >= 0, f"{path} has no channel {channel}: {buf.spec().channelnames}"
    return buf.get_pixels(oiio.FLOAT)[:, :, index]


def run_scenario(version: str, config: dict, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {"BLENDER_USER_RESOURCES": str(work / "user"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(bpy_python(version)), str(SCENARIO), str(work / "config.json"),
                           str(work / "result.json")], env=env, cwd=work, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0 and (work / "result.json").exists(), \
        f"bpy {version} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return json.loads((work / "result.json").read_text())


@pytest.mark.parametrize("version", VERSIONS)
def test_real_blender_learns_segments_and_renders_part_mattes(version, daemon, extension_zip, blender_shot):
    shot, folder = blender_shot["shot"], blender_shot["folder"]
    learn = version == VERSIONS[0] or MODEL not in [m["name"] for m in daemon.client().models()["models"]]
    work = daemon.root / f"bpy-{version}"
    config = {"zip": str(extension_zip), "address": daemon.address, "work": str(work), "model": MODEL,
              "learn": learn, "steps": STEPS, "reopen": version == VERSIONS[-1],
              "plate_first": str(folder / f"plate.{FIRST}.png"),
              "plate_frames": list(range(FIRST, FIRST + len(shot.frames))), "scene_start": 1,
              "size": [SIZE[1], SIZE[0]], "polygons": blender_shot["polygons"], "render_part": PART}
    verify(version, run_scenario(version, config, work), shot, learn)


def verify(version: str, result: dict, shot, learn: bool) -> None:
    """What the Blender run saw, checked against the files and the ground truth."""
    assert result["blender"].startswith(version.rsplit(".", 1)[0]) and result["zmq"]
    assert result["parts"] == shot.part_names
    if learn:
        assert result["learn"]["state"] == "done" and result["learn"]["model"] == MODEL, result["learn"]

    # the rasterised mask layers are the parts at the reference frame (frame 1 shows plate 1001)
    for k, name in enumerate(shot.part_names, start=1):
        (ref,) = [p for p in result["refs"] if Path(p).name.startswith(f"{name}.")]
        raster = read_channel(ref, oiio.ImageBuf(ref).spec().channelnames[0]) > 0.5
        truth = shot.labels[0] == k
        assert (raster & truth).sum() / (raster | truth).sum() > 0.9, name

    seg = result["segment"]
    assert seg["state"] == "done" and not seg["error"] and seg["inline"] is False, seg
    mattes = seg["output"]
    files = [mattes.replace("####", f"{FIRST + i:04d}") for i in range(len(shot.frames))]
    names = [n for n, _ in result["sockets"]]
    assert {f"smite_{p}" for p in shot.part_names} <= set(names)
    assert all(t == "VALUE" for n, t in result["sockets"] if n.startswith("smite_"))
    assert result["segment_map"] == {"frame_start": 1, "frame_offset": FIRST - 1, "frame_duration": 3}
    assert result["cryptomatte"] == {"type": "CompositorNodeCryptomatteV2", "source": "IMAGE", "image": True}

    # the compositor renders the part socket exactly as the matte file holds it (scene frame f shows 1000 + f)
    for frame, path in zip(result["renders"]["frames"], result["renders"]["paths"]):
        expected = read_channel(files[frame - 1], f"smite_{PART}.A")
        assert np.array_equal(read_channel(path, "R"), expected), (version, frame)
        assert expected.max() > 0.5  # not black: the mapping found the file

    # and the segmentation matches the synthetic ground truth
    labels = [np.rint(read_channel(f, "smite_label.A")).astype(np.int64) for f in files]
    score = mean_iou(labels, list(shot.labels), shot.num_labels).miou
    print(f"\nbpy {version}: mIoU {score:.3f} over {len(files)} frames")
    assert score > 0.6

    # load_mattes: mattes from 1001 in a scene at 1, then in a scene at 1001; one Image node, updated
    for start, case in result["load_mattes"].items():
        assert case["image_nodes"] == 1
        assert case["map"] == {"frame_start": int(start), "frame_offset": FIRST - 1, "frame_duration": 3}
        for frame, path in zip(case["frames"], case["paths"]):
            file_frame = FIRST + frame - int(start)
            expected = read_channel(mattes.replace("####", f"{file_frame:04d}"), f"smite_{PART}.A")
            assert np.array_equal(read_channel(path, "R"), expected), (version, start, frame)

    if "reopen" in result:  # the job saved in the .blend is followed again after reopening, and its mattes load
        again = result["reopen"]
        assert again["following"] and again["job"] == again["saved"]["job"], again
        assert again["state"] == "done" and not again["error"] and again["node_frame_start"] == 1, again
