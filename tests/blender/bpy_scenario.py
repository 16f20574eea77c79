"""Runs INSIDE a bpy venv (real Blender as a Python module), driven by test_blender_hosts.py.

Installs the extension zip, builds a Mask on a synthetic plate, learns (or reuses a model), segments against
the daemon, drains the worker queue by hand (timers never fire headless), renders the compositor and tests
``bpy.ops.smite.load_mattes``. Writes what it saw to a JSON file; the pixel comparisons happen in the test.

    python bpy_scenario.py config.json result.json
"""

import json
import os
import sys
import time
from pathlib import Path

import bpy

DRAIN_TIMEOUT_S = 3600  # a guard against a hung daemon (a 2-core machine shared by many runs), not a timing test


def install(zip_path: str) -> object:
    """Install and enable the extension as an artist would (Install from Disk); returns the add-on module."""
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}, result
    name = "bl_ext.user_default.smite"
    assert name in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
    return sys.modules[name]


def wait(addon) -> None:
    """Drain the worker's queue on this (main) thread until the job ends."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while addon.runtime.busy():
        addon.runtime.drain()
        assert time.monotonic() < deadline, "the SMITE job did not end"
        time.sleep(0.1)
    addon.runtime.drain()


def build_mask(polygons: dict, width: int, height: int):
    """A Mask with one layer per part (layer name = part name): straight-edged polygons, pixels -> normalised
    coordinates with the origin bottom-left."""
    mask = bpy.data.masks.new("hero")
    for part, points in polygons.items():
        layer = mask.layers.new(name=part)
        spline = layer.splines.new()
        spline.points.add(len(points) - 1)
        for point, (x, y) in zip(spline.points, points):
            point.co = (x / width, 1.0 - y / height)
            point.handle_left_type = point.handle_right_type = "VECTOR"
        spline.use_cyclic = True
    return mask


def render_part(addon, scene, socket: str, frames: list[int], folder: Path) -> list[str]:
    """Render the compositor with one matte socket as its output, one 32-bit EXR per scene frame."""
    tree = addon.tree.compositor_tree(scene)
    for node in [n for n in tree.nodes if n.bl_idname == "CompositorNodeRLayers"]:
        tree.nodes.remove(node)  # EEVEE rendering hangs headless; nothing 3-D is needed
    node = tree.nodes[addon.tree.MATTE_NODE]
    tree.links.new(node.outputs[socket], addon.tree.output_socket(tree))
    r = scene.render
    r.engine, r.use_compositing = "BLENDER_WORKBENCH", True
    if hasattr(r, "compositor_device"):
        r.compositor_device = "CPU"
    if hasattr(r.image_settings, "media_type"):
        r.image_settings.media_type = "IMAGE"
    r.image_settings.file_format, r.image_settings.color_depth = "OPEN_EXR", "32"
    r.image_settings.color_mode = "RGB"
    paths = []
    for frame in frames:
        scene.frame_set(frame)
        r.filepath = str(folder / f"render_{socket}_{frame}.exr")
        assert bpy.ops.render.render(write_still=True) == {"FINISHED"}
        paths.append(r.filepath)
    return paths


def reopen(addon, work: Path) -> dict:
    """Segment, save the file while the job is followed, open it again: the add-on follows the job again."""
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 3
    s, before = scene.smite, scene.smite.job_id
    assert bpy.ops.smite.segment() == {"FINISHED"}, s.last_error
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while s.job_id in ("", before):  # until the worker says which job the daemon queued
        addon.runtime.drain()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    saved = {"job": s.job_id, "state": s.job_state}
    blend = str(work / "shot.blend")
    assert bpy.ops.wm.save_mainfile(filepath=blend) == {"FINISHED"}
    assert bpy.ops.wm.open_mainfile(filepath=blend) == {"FINISHED"}
    s = bpy.context.scene.smite
    following = addon.runtime.busy()
    wait(addon)
    node = addon.tree.compositor_tree(bpy.context.scene).nodes.get(addon.tree.MATTE_NODE)
    return {"saved": saved, "following": following, "job": s.job_id, "state": s.job_state, "error": s.last_error,
            "node_frame_start": node.frame_start if node else None}


def node_map(node) -> dict:
    return {"frame_start": node.frame_start, "frame_offset": node.frame_offset, "frame_duration": node.frame_duration}


def main(config_path: str, result_path: str) -> None:
    cfg = json.loads(Path(config_path).read_text())
    out: dict = {"blender": bpy.app.version_string}
    work = Path(cfg["work"])
    addon = install(cfg["zip"])
    import zmq  # the bundled wheel, installed by Blender for this Python

    out["zmq"] = zmq.__version__
    prefs = bpy.context.preferences.addons["bl_ext.user_default.smite"].preferences
    prefs.address = cfg["address"]

    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = cfg["scene_start"], cfg["scene_start"] + len(cfg["plate_frames"]) - 1
    width, height = cfg["size"]
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = width, height, 100
    plate = bpy.data.images.load(cfg["plate_first"])
    plate.source = "SEQUENCE"
    s = scene.smite
    s.plate_source, s.plate_image, s.reference_source = "IMAGE", plate, "MASK"
    s.mask = build_mask(cfg["polygons"], width, height)
    s.output_dir = str(work / "smite")
    s.cryptomatte = True
    assert bpy.ops.smite.parts_from_mask() == {"FINISHED"}
    out["parts"] = [p.name for p in s.parts]
    s.ref_frames = str(cfg["scene_start"])  # the mask is static: reference at the first scene frame

    if cfg["learn"]:
        assert bpy.ops.smite.learn(name=cfg["model"], steps=cfg["steps"]) == {"FINISHED"}, s.last_error
        wait(addon)
        out["learn"] = {"state": s.job_state, "error": s.last_error, "model": s.model_name, "job": s.job_id}
    else:  # rasterise only (the shared model was learned once): the same code path as Learn, no submission
        addon.sources.make_learn_plan(scene, s, cfg["model"])
        s.model_name = cfg["model"]
    out["refs"] = sorted(str(p) for p in (work / "smite" / cfg["model"] / "refs").glob("*.exr"))

    assert bpy.ops.smite.segment() == {"FINISHED"}, s.last_error
    wait(addon)
    out["segment"] = {"state": s.job_state, "error": s.last_error, "output": s.job_output, "job": s.job_id,
                      "inline": s.job_inline, "progress": s.progress}
    node = addon.tree.compositor_tree(scene).nodes[addon.tree.MATTE_NODE]
    out["sockets"] = [(o.name, o.type) for o in node.outputs]
    out["segment_map"] = node_map(node)
    crypto = addon.tree.compositor_tree(scene).nodes.get(addon.tree.CRYPTO_NODE)
    out["cryptomatte"] = crypto and {"type": crypto.bl_idname, "source": crypto.source,
                                     "image": crypto.image == node.image}
    part = cfg["render_part"]
    frames = [scene.frame_start + 1, scene.frame_start + 2]
    out["renders"] = {"frames": frames, "paths": render_part(addon, scene, f"smite_{part}", frames, work)}

    # load_mattes: the same sequence (1001...) in a scene at 1, then in a scene at 1001
    loaded = {}
    for start in (1, 1001):
        scene.frame_start, scene.frame_end = start, start + len(cfg["plate_frames"]) - 1
        assert bpy.ops.smite.load_mattes(filepath=s.job_output) == {"FINISHED"}
        node = addon.tree.compositor_tree(scene).nodes[addon.tree.MATTE_NODE]
        frames = [start, start + 2]
        images = [n for n in addon.tree.compositor_tree(scene).nodes if n.bl_idname == "CompositorNodeImage"]
        loaded[start] = {"map": node_map(node), "frames": frames, "image_nodes": len(images),
                         "paths": render_part(addon, scene, f"smite_{part}", frames, work / f"load_{start}")}
    out["load_mattes"] = loaded
    if cfg["reopen"]:
        out["reopen"] = reopen(addon, work)
    bpy.ops.preferences.addon_disable(module="bl_ext.user_default.smite")  # 4.5 hangs at exit otherwise
    Path(result_path).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
    sys.stdout.flush()
    os._exit(0)  # bpy's own atexit work is not what is tested here
