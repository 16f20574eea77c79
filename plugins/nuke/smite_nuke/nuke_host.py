"""The Nuke side of the SMITE node: builds the Group (knobs, internal Writes, matte Read, Copy chain) and
implements the controller's host interface with the real ``nuke`` API.

Every method except ``progress``, ``call_in_main`` and ``post`` runs on Nuke's main thread.
"""

from __future__ import annotations

import os
from typing import Any

import nuke

from smite_nuke.settings import (
    EDGES,
    LABEL_LAYER,
    LAYER_PREFIX,
    PRESETS,
    TRACKERS,
    NodeSettings,
    parse_frames,
    parse_options,
    parse_parts,
    parts_from_channels,
)

MARKER = "smite_node"  # hidden knob that identifies a SMITE node
PLATE, ROTO = 0, 1  # input numbers
WRITES = {"plate": "smite_write_plate", "roto": "smite_write_roto"}
READ = "smite_mattes"
COPY_PREFIX = "smite_copy_"
STATUS_KNOBS = ("status", "error", "connection")


def _button(name: str, label: str, action: str) -> Any:
    return nuke.PyScript_Knob(name, label, f"import smite_nuke; smite_nuke.press({action!r})")


def build_node() -> Any:
    """Create a SMITE Group in the current graph: inputs plate and roto, knobs, internal nodes."""
    group = nuke.createNode("Group", inpanel=False)
    group.setName("SMITE", uncollide=True)
    knobs = [
        nuke.Tab_Knob("smite", "SMITE"),
        nuke.String_Knob("address", "daemon address", os.environ.get("SMITE_ADDRESS", "tcp://127.0.0.1:7461")),
        _button("connect", "Connect", "connect"),
        nuke.Text_Knob("connection", "daemon", "not connected"),
        nuke.String_Knob("model", "part model", ""),
        nuke.String_Knob("parts", "parts", ""),
        _button("read_roto", "Read roto", "read_roto"),
        _button("add_part", "Add part", "add_part"),
        nuke.String_Knob("ref_frames", "reference frames", ""),
        nuke.Enumeration_Knob("preset", "preset", list(PRESETS)),
        nuke.Enumeration_Knob("tracker", "tracker", list(TRACKERS)),
        nuke.Enumeration_Knob("edges", "edges", list(EDGES)),
        nuke.Boolean_Knob("cryptomatte", "Cryptomatte", False),
        nuke.File_Knob("output_folder", "output folder"),
        nuke.Int_Knob("frame_first", "first frame"),
        nuke.Int_Knob("frame_last", "last frame"),
        _button("learn", "Learn", "learn"),
        _button("segment", "Segment", "segment"),
        _button("cancel", "Cancel", "cancel"),
        _button("free_vram", "Free VRAM", "free_vram"),
        nuke.Text_Knob("status", "status", "idle"),
        nuke.Text_Knob("error", "last error", ""),
        nuke.Tab_Knob("smite_advanced", "Advanced"),
        nuke.Int_Knob("learn_steps", "learning steps (0: daemon default)"),
        nuke.Int_Knob("window", "window (0: preset default)"),
        nuke.String_Knob("learn_options", "learning settings (JSON)", ""),
        nuke.File_Knob("server_key", "daemon public key (CURVE)"),
        nuke.File_Knob("client_key", "my secret key (CURVE)"),
    ]
    for name in (MARKER, "smite_job", "smite_job_op", "smite_job_output", "smite_job_range", "smite_job_mode"):
        hidden = nuke.String_Knob(name, name, "1" if name == MARKER else "")
        hidden.setFlag(nuke.INVISIBLE)
        knobs.append(hidden)
    for knob in knobs:
        group.addKnob(knob)
    with group:
        plate = nuke.nodes.Input(name="plate")
        roto = nuke.nodes.Input(name="roto")
        nuke.nodes.Write(name=WRITES["plate"], channels="rgb", file_type="exr", disable=True).setInput(0, plate)
        nuke.nodes.Write(name=WRITES["roto"], channels="all", file_type="exr", disable=True).setInput(0, roto)
        nuke.nodes.Read(name=READ, on_error="black").setInput(0, plate)  # black until mattes exist
        nuke.nodes.Output(name="Output1").setInput(0, plate)
    host = NukeHost(group)
    first, last = host.plate_range()
    group["frame_first"].setValue(first)
    group["frame_last"].setValue(last)
    return group


class _Progress:
    def __init__(self, title: str) -> None:
        self._task = nuke.ProgressTask(title)

    def update(self, fraction: float, message: str) -> None:
        if self._task is not None:
            self._task.setProgress(int(max(0.0, min(1.0, fraction)) * 100))
            self._task.setMessage(message)

    def cancelled(self) -> bool:
        return self._task is not None and bool(self._task.isCancelled())

    def close(self) -> None:
        self._task = None  # Nuke closes the bar when the task object goes away


class NukeHost:
    """The host interface for one SMITE Group node."""

    def __init__(self, node: Any) -> None:
        self.node = node

    # -- threads (any thread) --------------------------------------------------------------------------------

    def progress(self, title: str) -> _Progress:
        return _Progress(title)

    def call_in_main(self, fn, *args) -> Any:
        return nuke.executeInMainThreadWithResult(fn, args)

    def post(self, fn, *args) -> None:
        nuke.executeInMainThread(fn, args)

    # -- knobs (main thread) ---------------------------------------------------------------------------------

    def knob_value(self, name: str) -> Any:
        return self.node[name].value()

    def set_knobs(self, values: dict[str, Any]) -> None:
        try:
            for name, value in values.items():
                self.node[name].setValue(value)
        except ValueError:  # the node was deleted while a job ran: the job goes on, the values have no home
            pass

    def log(self, message: str, error: bool = False) -> None:
        (nuke.error if error else nuke.tprint)(message)

    def script_path(self) -> str:
        return nuke.root()["name"].value() or ""

    def plate_range(self) -> tuple[int, int]:
        plate = self.node.input(PLATE)
        if plate is None:
            return nuke.root()["first_frame"].value(), nuke.root()["last_frame"].value()
        return plate.firstFrame(), plate.lastFrame()

    def read_settings(self) -> NodeSettings:
        n = self.node
        return NodeSettings(
            node=n.name(), address=n["address"].value().strip(), model=n["model"].value(),
            parts=parse_parts(n["parts"].value()), ref_frames=parse_frames(n["ref_frames"].value()),
            preset=n["preset"].value(), tracker=n["tracker"].value(), edges=n["edges"].value(),
            cryptomatte=bool(n["cryptomatte"].value()),
            output_folder=n["output_folder"].value(), first=int(n["frame_first"].value()),
            last=int(n["frame_last"].value()), learn_steps=int(n["learn_steps"].value()),
            window=int(n["window"].value()), learn_options=parse_options(n["learn_options"].value()),
            server_key=n["server_key"].value(), client_key=n["client_key"].value(),
            script=self.script_path())

    # -- inputs (main thread) --------------------------------------------------------------------------------

    def _input(self, index: int, label: str) -> Any:
        node = self.node.input(index)
        if node is None:
            from smite_nuke.settings import NodeError

            raise NodeError(f"connect the {label} input of {self.node.name()}")
        return node

    def roto_parts(self) -> list[str]:
        return parts_from_channels(self._input(ROTO, "roto").channels())

    def roto_key_frames(self) -> list[int]:
        """Frames where any shape upstream of the roto input has a key (Roto and RotoPaint nodes)."""
        frames: set[int] = set()
        seen, todo = set(), [self._input(ROTO, "roto")]
        while todo:
            node = todo.pop()
            if node.fullName() in seen:
                continue
            seen.add(node.fullName())
            if node.Class() in ("Roto", "RotoPaint"):
                frames |= _key_times(node["curves"].rootLayer)
            todo += [node.input(i) for i in range(node.inputs()) if node.input(i) is not None]
        return sorted(frames)

    def plate_files(self, frames: list[int]) -> dict[int, str] | None:
        """The Read's files when the plate input is a Read used as it is (no offset, no reformat)."""
        read = self.node.input(PLATE)
        if read is None or read.Class() != "Read" or str(read["frame"].value()).strip():
            return None
        file_knob = read["file"]
        return {f: file_knob.evaluate(f) for f in frames}

    # -- graph edits (main thread; never from knobChanged) -------------------------------------------------------

    def render(self, source: str, frames: list[int], pattern: str) -> list[str]:
        self._input(PLATE if source == "plate" else ROTO, source)
        os.makedirs(os.path.dirname(pattern), exist_ok=True)
        write = self.node.node(WRITES[source])
        write["file"].setValue(pattern.replace(os.sep, "/"))
        write["disable"].setValue(False)  # disabled otherwise: "render all" must not render our Writes
        try:
            for frame in frames:
                nuke.execute(write, frame, frame)
        finally:
            write["disable"].setValue(True)
        from smite_nuke.settings import frame_path

        return [frame_path(pattern, f) for f in frames]

    def show_mattes(self, pattern: str, parts: list[str], first: int, last: int) -> None:
        """Point the matte Read at the sequence and copy each part's layer into the plate stream."""
        layers = [f"{LAYER_PREFIX}{p}" for p in parts] + [LABEL_LAYER]
        known = set(nuke.layers())
        for layer in layers:
            if layer not in known:
                nuke.Layer(layer, [f"{layer}.alpha"])
        with self.node:
            read = self.node.node(READ)
            for name in ("first", "origfirst"):
                read[name].setValue(first)
            for name in ("last", "origlast"):
                read[name].setValue(last)
            read["file"].setValue(pattern.replace(os.sep, "/"))
            for old in [n for n in self.node.nodes() if n.name().startswith(COPY_PREFIX)]:
                nuke.delete(old)
            stream = self.node.node("plate")
            for layer in layers:
                copy = nuke.nodes.Copy(name=f"{COPY_PREFIX}{layer[len(LAYER_PREFIX):]}")
                copy["from0"].setValue(f"{layer}.alpha")
                copy["to0"].setValue(f"{layer}.alpha")
                copy.setInput(0, stream)
                copy.setInput(1, read)
                stream = copy
            self.node.node("Output1").setInput(0, stream)

    def add_roto_part(self, part: str) -> None:
        """A Roto node drawing into ``smite_<part>``, chained in front of the current roto input."""
        layer = f"{LAYER_PREFIX}{part}"
        if layer not in nuke.layers():
            nuke.Layer(layer, [f"{layer}.alpha"])
        roto = nuke.nodes.Roto(name=f"Roto_{part}", output=layer)
        upstream = self.node.input(ROTO) or self.node.input(PLATE)
        if upstream is not None:
            roto.setInput(0, upstream)
        self.node.setInput(ROTO, roto)


def _key_times(element: Any) -> set[int]:
    """Key frames of a roto curve element: a layer (recurse), a shape (its points) or a stroke."""
    frames: set[int] = set()
    for item in element:
        point = getattr(item, "center", item)
        if hasattr(point, "getControlPointKeyTimes"):
            frames |= {int(round(t)) for t in point.getControlPointKeyTimes()}
        else:
            frames |= _key_times(item)
    return frames
