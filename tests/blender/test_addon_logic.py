"""The add-on's host-independent logic, in the main venv: names, frame mapping, plans, the job state
machine and the worker queue (against a real daemon), and the no-torch rule of plugins/blender."""

from __future__ import annotations

import ast
import threading

import pytest
from addon_modules import ADDON, load

from smite.client import Client, Inline
from smite.io.names import sanitize_part_names

naming, framemap, plan, jobs = (load(n) for n in ("naming", "framemap", "plan", "jobs"))

FORBIDDEN = {"torch", "numpy", "OpenImageIO", "cv2", "diffusers", "transformers", "smite", "smite_server"}


def test_no_file_under_plugins_blender_imports_torch_numpy_or_openimageio():
    files = sorted(ADDON.rglob("*.py"))
    assert len(files) >= 10
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


@pytest.mark.parametrize("names", [["Face", "Hair"], ["Left Eye!", "2nd", "mask", "a__b "], ["rgba", "x-y"]])
def test_part_names_follow_the_engine_rule(names):
    assert naming.sanitize_part_names(names) == sanitize_part_names(names)


def test_colliding_part_names_fail_in_one_sentence():
    with pytest.raises(naming.NamingError, match="both become 'face'"):
        naming.sanitize_part_names(["Face", "face!"])


@pytest.mark.parametrize(("path", "pattern", "frame_path"), [
    ("/s/plate.####.exr", "/s/plate.####.exr", "/s/plate.1001.exr"),
    ("/s/plate.%04d.exr", "/s/plate.####.exr", "/s/plate.1001.exr"),
    ("/s/v2/plate.1001.exr", "/s/v2/plate.####.exr", "/s/v2/plate.1001.exr"),
    ("/s/plate_01.exr", "/s/plate_##.exr", "/s/plate_1001.exr"),
])
def test_sequences_parse_hashes_printf_and_numbered_files(path, pattern, frame_path):
    seq = framemap.parse_sequence(path)
    assert seq.pattern == pattern and seq.path(1001) == frame_path


def test_sequence_lists_its_files(tmp_path):
    for f in (1001, 1002, 1005):
        (tmp_path / f"m.{f:04d}.exr").write_bytes(b"x")
    (tmp_path / "m.abcd.exr").write_bytes(b"x")
    (tmp_path / "other.1003.exr").write_bytes(b"x")
    assert framemap.parse_sequence(str(tmp_path / "m.####.exr")).frames() == [1001, 1002, 1005]
    with pytest.raises(framemap.SequenceError, match="no frame number"):
        framemap.parse_sequence("/s/plate.exr")


@pytest.mark.parametrize(("first", "last", "scene", "mode", "expect"), [
    (1001, 1010, (1, 100), "AUTO", {1: 1001, 10: 1010, 11: 1010}),  # first matte at the scene start
    (1001, 1010, (1001, 1100), "AUTO", {1001: 1001, 1010: 1010}),  # same numbers
    (1001, 1010, (1, 100), "SAME", {1001: 1001, 1005: 1005}),
    (1, 5, (1001, 1100), "SCENE_START", {1001: 1, 1005: 5}),
    (1001, 1010, (995, 1003), "AUTO", {1001: 1001, 1003: 1003}),  # overlapping ranges keep the numbers
])
def test_scene_frames_map_to_file_frames(first, last, scene, mode, expect):
    fmap = framemap.map_sequence(first, last, *scene, mode)
    assert fmap.frame_offset == first - 1 and fmap.frame_duration == last - first + 1
    for scene_frame, file_frame in expect.items():
        assert fmap.file_frame(scene_frame) == file_frame
        if first <= file_frame <= last and scene_frame - fmap.frame_start < fmap.frame_duration:
            assert fmap.scene_frame(file_frame) == scene_frame


def test_sub_mapping_lines_mattes_up_with_their_plate():
    plate = framemap.map_sequence(1001, 1100, 1, 100)
    mattes = plate.sub(1010, 1020)
    for f in range(1010, 1021):
        assert mattes.file_frame(plate.scene_frame(f)) == f


def test_frame_lists():
    assert framemap.parse_frames("1, 5,10-12,5") == [1, 5, 10, 11, 12]
    assert framemap.format_frames([12, 1, 5, 10, 11]) == "1,5,10-12"
    with pytest.raises(framemap.SequenceError, match="backwards"):
        framemap.parse_frames("10-2")


def test_reference_plan_groups_layers_by_frame(tmp_path):
    renders = plan.reference_renders(["Face", "Hair L"], ["Face", "Hair L"], [1, 5], str(tmp_path))
    assert [(r.scene_frame, r.part) for r in renders] == [(1, "face"), (1, "hair_l"), (5, "face"), (5, "hair_l")]
    learn = plan.learn_plan("Hero Shot/v1", renders, {1: "/p/plate.1001.exr", 5: "/p/plate.1005.exr"}, {})
    assert learn.name == "Hero_Shot_v1" and learn.parts == ["face", "hair_l"]
    assert learn.masks[1] == {"face": renders[2].path, "hair_l": renders[3].path}
    assert learn.reference_ids == ["plate.1001.exr", "plate.1005.exr"]
    with pytest.raises(ValueError, match="no plate file for reference frame 5"):
        plan.learn_plan("x", renders, {1: "/p/plate.1001.exr"}, {})
    with pytest.raises(ValueError, match="no reference frames"):
        plan.reference_renders(["a"], ["a"], [], str(tmp_path))


def test_paths_inside_roots(tmp_path):
    (tmp_path / "root" / "shot").mkdir(parents=True)
    assert plan.inside_roots([str(tmp_path / "root" / "shot" / "p.1.exr")], [str(tmp_path / "root")])
    assert not plan.inside_roots([str(tmp_path / "elsewhere.exr")], [str(tmp_path / "root")])
    assert not plan.inside_roots([str(tmp_path / "root" / "x.exr")], [])


def test_job_status_follows_a_job_to_the_end():
    s = jobs.JobStatus().apply({"kind": "submitting", "op": "segment"})
    assert s.active and s.state == "submitting"
    s = s.apply({"kind": "submitted", "op": "segment", "job": "j1"})
    s = s.apply({"kind": "progress", "fraction": 0.5, "eta_s": 3.0})
    assert (s.state, s.fraction, s.eta_s, s.job) == ("running", 0.5, 3.0, "j1")
    done = s.apply({"kind": "finished", "record": {"id": "j1", "op": "segment", "state": "done"}})
    assert (done.state, done.fraction, done.error, done.active) == ("done", 1.0, "", False)
    failed = s.apply({"kind": "finished", "record": {"id": "j1", "op": "segment", "state": "failed",
                                                     "error": {"code": "bad_input", "message": "bad plate"}}})
    assert (failed.state, failed.error) == ("failed", "bad plate")
    assert s.apply({"kind": "error", "text": "daemon gone"}).state == "failed"
    learned = jobs.JobStatus(op="learn", state="running").apply(
        {"kind": "finished", "record": {"id": "j2", "op": "learn", "state": "done", "result": {"model": "hero"}}})
    assert learned.model == "hero"


def test_runner_drains_in_order_on_the_calling_thread():
    runner = jobs.Runner()

    class Fake:  # the task's client; the real one is exercised against the daemon below
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    def task(client, post, cancelled):
        for i in range(3):
            post({"kind": "progress", "fraction": i / 2, "eta_s": None})
        raise ValueError("the daemon said no")

    runner.start(task, Fake)
    runner.join(10)
    seen, threads = [], set()
    assert runner.drain(lambda m: (seen.append(m), threads.add(threading.get_ident()))) == 5
    assert [m["kind"] for m in seen] == ["progress"] * 3 + ["error", "idle"]
    assert seen[3]["text"] == "the daemon said no" and threads == {threading.get_ident()}


@pytest.mark.parametrize("edges", ["refined", "bilinear"])
def test_segment_task_sends_the_edges_setting(tmp_path, edges):
    """The panel's Edges value rides in the segment request's settings (a recording client: no daemon)."""
    (tmp_path / "plate.1001.png").write_bytes(b"png")
    sent = []

    class Recording:
        def hello(self):
            return {"roots": [str(tmp_path)]}

        def segment(self, model, frames, output=None, **options):
            sent.append(options)
            return "j1"

        def events(self, job, cancel_if=None):
            return iter(())

    segment = plan.SegmentPlan("hero", {1001: str(tmp_path / "plate.1001.png")}, str(tmp_path / "m.####.exr"),
                               edges=edges)
    jobs.segment_task(segment, Inline)(Recording(), lambda m: None, lambda: False)
    assert sent == [{"cryptomatte": False, "settings": {"preset": "fast", "edges": edges}}]
    assert plan.SegmentPlan("hero", {}, "m.####.exr").edges == "refined"


def _run(task, address: str) -> list[dict]:
    """Run one worker task to its end and drain its messages."""
    runner, messages = jobs.Runner(), []
    runner.start(task, lambda: Client(address, timeout=60))
    runner.join(300)
    runner.drain(messages.append)
    return messages


def test_worker_learns_and_segments_inline_on_a_real_daemon(daemon, small_shot, tmp_path):
    """The worker tasks against the daemon: learn inline, segment inline (files outside the daemon's roots),
    mattes written by the worker, the status driven to done by the drained messages."""
    plates, labels = small_shot
    learn = plan.LearnPlan("blender_logic", ["disc", "bar"], [plates[1001]], [labels[1001]], ["plate.1001.png"],
                           {"steps": 2, "token_steps": 1, "eval_every": 1})
    status = jobs.JobStatus()
    for message in (messages := _run(jobs.learn_task(learn, Inline), daemon.address)):
        status = status.apply(message)
    assert status.state == "done" and status.model == "blender_logic", messages
    out = str(tmp_path / "mattes" / "m.####.exr")
    for message in (messages := _run(jobs.segment_task(plan.SegmentPlan("blender_logic", plates, out), Inline),
                                     daemon.address)):
        status = status.apply(message)
    assert (status.state, status.op, status.fraction) == ("done", "segment", 1.0), messages
    assert next(m for m in messages if m["kind"] == "submitted")["inline"] is True
    assert framemap.parse_sequence(out).frames() == sorted(plates)


def test_worker_cancels_a_running_job_and_reads_the_daemon_status(daemon, small_shot):
    plates, labels = small_shot
    slow = plan.LearnPlan("blender_cancel", ["disc", "bar"], [plates[1001]], [labels[1001]], ["plate.1001.png"],
                          {"steps": 500, "token_steps": 100, "eval_every": 500})
    runner, messages = jobs.Runner(), []
    runner.start(jobs.learn_task(slow, Inline), lambda: Client(daemon.address, timeout=60))
    while not any(m["kind"] == "submitted" for m in messages):
        runner.drain(messages.append)
        runner.join(0.05)
    runner.cancel()  # the Cancel button while the worker follows the job
    runner.join(300)
    runner.drain(messages.append)
    status = jobs.JobStatus()
    for message in messages:
        status = status.apply(message)
    assert status.state == "cancelled" and not status.active, messages
    (hello,) = [m for m in _run(jobs.hello_task, daemon.address) if m["kind"] == "hello"]
    assert jobs.describe_hello(hello["body"]).startswith("tiny (") and "on cpu" in jobs.describe_hello(hello["body"])
    (info,) = [m for m in _run(jobs.free_vram_task, daemon.address) if m["kind"] == "info"]
    assert info["text"] in ("backbone unloaded", "backbone was not loaded")
