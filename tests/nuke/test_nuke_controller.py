"""The controller's wiring without a daemon: a stand-in client (the real one is tested in tests/server) shows
that the progress bar's Cancel reaches the job and that a plate that is not a bare Read is rendered in chunks."""

from __future__ import annotations

import threading
import time

import fake_nuke
import pytest
import smite_nuke
from nuke_helpers import build_script, make_plate
from smite_nuke.controller import Controller
from smite_nuke.nuke_host import NukeHost

from smite.client import DaemonError, Event, Reply


class StandInClient:
    """Answers hello, accepts a segment job and reports progress until ``cancel_if`` says stop."""

    def __init__(self, root: str) -> None:
        self.root, self.cancelled, self.submitted = root, threading.Event(), []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def call(self, op, args=None, blobs=(), timeout=None, retries=None) -> Reply:
        assert op == "hello"
        return Reply({"protocol": "1.0", "protocol_major": 1, "backbone": "tiny", "device": "cpu",
                      "features": ["path_io", "inline_io"], "roots": [self.root], "limits": {}})

    def submit(self, op, args, blobs=()) -> str:
        self.submitted.append((op, args))
        return "j-1"

    def wait(self, job, progress=None, timeout=None, raise_on_error=True, cancel_if=None) -> dict:
        for step in range(1, 10000):
            progress(Event(job, step, "progress", {"done": step, "total": 10000, "fraction": step / 10000}))
            if cancel_if():
                self.cancelled.set()
                raise DaemonError("cancelled", f"job {job} cancelled")
            time.sleep(0.01)
        raise AssertionError("never cancelled")


def test_progress_bar_cancel_cancels_the_job_and_plates_render_in_chunks(tmp_path):
    plate = make_plate(tmp_path / "plates", frames=10)
    node = build_script(fake_nuke, plate, tmp_path / "shot.nk", through_grade=True)
    client = StandInClient(str(tmp_path))
    smite_nuke._controllers[node.fullName()] = ctl = Controller(NukeHost(node), client_factory=lambda s: client)
    node["model"].setValue("hero")
    node["frame_first"].setValue(1)
    node["frame_last"].setValue(10)
    node["segment"].execute()
    fake_nuke.pump(until=lambda: node["smite_job"].value() == "j-1", timeout=120)
    task = next(t for t in fake_nuke.tasks() if t.title == "SMITE: Segmenting")
    task.cancelled = True  # the artist presses Cancel on Nuke's progress bar
    fake_nuke.pump(until=lambda: not ctl.busy, timeout=120)
    fake_nuke.pump()
    assert client.cancelled.is_set()
    assert node["status"].value() == "Cancelled." and node["smite_job"].value() == ""
    write = node.node("smite_write_plate")
    assert write.rendered == 10 and write["disable"].value() is True  # 8 + 2 frames, disabled again after
    op, args = client.submitted[0]
    assert op == "segment" and args["model"] == "hero" and args["settings"]["preset"] == "fast"
    assert args["settings"]["edges"] == "refined"  # the knob's default
    assert [f["frame"] for f in args["frames"]] == list(range(1, 11))
    assert args["frames"][0]["path"].endswith("smite/shot/plates/SMITE/plate.0001.exr")  # by path: in a root
    assert args["output"].endswith("smite/shot/mattes/SMITE_hero/hero.####.exr")


@pytest.mark.parametrize("edges", ["refined", "bilinear"])
def test_the_edges_knob_reaches_the_segment_settings(tmp_path, edges):
    plate = make_plate(tmp_path / "plates", frames=2)
    node = build_script(fake_nuke, plate, tmp_path / "shot.nk", refs=(1,))
    assert node["edges"].values() == ["refined", "bilinear"] and node["edges"].value() == "refined"
    client = StandInClient(str(tmp_path))
    smite_nuke._controllers[node.fullName()] = ctl = Controller(NukeHost(node), client_factory=lambda s: client)
    node["model"].setValue("hero")
    node["edges"].setValue(edges)
    node["segment"].execute()
    fake_nuke.pump(until=lambda: node["smite_job"].value() == "j-1", timeout=120)
    next(t for t in fake_nuke.tasks() if t.title == "SMITE: Segmenting").cancelled = True
    fake_nuke.pump(until=lambda: not ctl.busy, timeout=120)
    fake_nuke.pump()
    (op, args), = client.submitted
    assert op == "segment" and args["settings"]["edges"] == edges


def test_add_part_chains_a_roto_node_into_a_new_layer(tmp_path):
    plate = make_plate(tmp_path / "plates", frames=2)
    node = build_script(fake_nuke, plate, tmp_path / "shot.nk", refs=(1,))
    before = node.input(1)
    fake_nuke.answer("eyes")  # what the artist types in the dialog
    node["add_part"].execute()
    roto = node.input(1)
    assert roto.Class() == "Roto" and roto["output"].value() == "smite_eyes" and roto.input(0) is before
    assert "smite_eyes" in fake_nuke.layers()
    assert node["parts"].value().split() == sorted([*plate["parts"], "eyes"])
    fake_nuke.answer("Not A Name")
    node["add_part"].execute()
    assert node.input(1) is roto and "Part name 'Not A Name'" in node["error"].value()
