"""Helpers of the Nuke plug-in tests: a synthetic shot as a Read + roto layers in the fake Nuke, pressing
buttons, pumping the main thread until the node is idle, and reading the node's output."""

from __future__ import annotations

from pathlib import Path

import fake_nuke
import numpy as np
import smite_nuke

SIZE = (256, 256)  # the tiny backbone's frame: no resampling
FRAMES = 12
REFS = (1, 8)


def make_plate(folder: Path, frames: int = FRAMES, seed: int = 3) -> dict:
    """A 2-part synthetic shot (a head: face and hair) written as PNG plates ``plate.%04d.png`` (frames 1..N)."""
    from smite.synthetic.shots import make_shot, write_shot

    shot = make_shot(num_frames=frames, size=SIZE, num_parts=2, touching=True, seed=seed)
    info = write_shot(shot, folder)
    return {"shot": shot, "pattern": str(folder / "plate.####.png"), "parts": shot.part_names} | info


def build_script(nuke, plate: dict, script: Path, refs=REFS, through_grade: bool = False):
    """Root set to the shot, a Read of the plate, one Roto per part keyed on ``refs`` (the GT labels as the
    artist's roto), and a SMITE node with plate and roto connected. Returns the SMITE node."""
    shot = plate["shot"]
    nuke.root()["name"].setValue(str(script))
    nuke.root()["first_frame"].setValue(1)
    nuke.root()["last_frame"].setValue(len(shot.frames))
    read = nuke.nodes.Read(file=plate["pattern"], first=1, last=len(shot.frames), origfirst=1,
                           origlast=len(shot.frames))
    source = read
    if through_grade:
        source = nuke.nodes.Grade()
        source.setInput(0, read)
    upstream = source
    for k, part in enumerate(plate["parts"], start=1):
        nuke.Layer(f"smite_{part}", [f"smite_{part}.alpha"])
        roto = nuke.nodes.Roto(output=f"smite_{part}")
        roto.setInput(0, upstream)
        roto.mattes = {f: (shot.labels[f - 1] == k).astype(np.float32) for f in refs}
        roto["curves"].rootLayer.append(fake_nuke.Shape(f"{part}_shape", [float(f) for f in refs]))
        upstream = roto
    node = smite_nuke.create_node()
    node.setInput(0, source)
    node.setInput(1, upstream)
    return node


def press(node, button: str) -> None:
    node[button].execute()


def run(node, button: str, timeout: float = 3600.0) -> str:
    """Press a button and pump the main thread until its worker is done; returns the status line."""
    press(node, button)
    ctl = smite_nuke.controller_for(node)
    fake_nuke.pump(until=lambda: not ctl.busy, timeout=timeout)
    fake_nuke.pump()
    return node["status"].value()


def output_labels(node, parts: list[str], frames) -> list[np.ndarray]:
    """Label maps from the node's output stream: argmax over smite_background + smite_<part> alphas."""
    labels = []
    for frame in frames:
        image = fake_nuke._evaluate(node, frame)
        stack = np.stack([image[f"smite_{p}.alpha"] for p in ["background", *parts]])
        labels.append(stack.argmax(0))
    return labels
