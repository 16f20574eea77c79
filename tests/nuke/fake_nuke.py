"""A fake ``nuke`` module for the plugin tests: an in-memory node graph with knobs, channels and a tiny
image evaluator, Write rendering to EXR with OpenImageIO, and Nuke's threading rules.

Rules kept as real Nuke needs them: nodes, knobs, ``execute`` and graph edits raise ``ThreadError`` when
called from any thread but the main one; ``executeInMainThread`` queues a call that the test runs with
``pump``; ``executeInMainThreadWithResult`` from the main thread raises (real Nuke hangs).

Only what the plugin uses is here, with the names and signatures of the ``types-nuke`` stubs (checked in
``test_fake_api.py``). numpy and OpenImageIO are imported lazily (only to evaluate pixels) so that the
isolated-interpreter check of an installed folder can load this module without them.
"""

from __future__ import annotations

import os
import queue
import re
import sys
import threading
import time

INVISIBLE = 0x400
STARTLINE = 0x1000
REPLACE = 0x2

_CHANNEL_SUFFIX = {"R": "red", "G": "green", "B": "blue", "A": "alpha"}
_FILE_SUFFIX = {v: k for k, v in _CHANNEL_SUFFIX.items()}


class ThreadError(RuntimeError):
    """A node, knob or graph call from a thread that is not Nuke's main thread."""


class _State:
    def __init__(self) -> None:
        self.main = threading.get_ident()
        self.calls: queue.Queue = queue.Queue()
        self.root: Root | None = None
        self.context: list[Group] = []
        self.this: list[Node] = []
        self.layers: dict[str, list[str]] = {}
        self.log: list[tuple[str, str]] = []
        self.tasks: list[ProgressTask] = []
        self.menus: dict[str, Menu] = {}
        self.plugin_paths: list[str] = []
        self.on_create: list[tuple] = []
        self.used: set[str] = set()  # nuke.<name>s the plugin called (checked against the stubs)


_state = _State()


def reset() -> None:
    """A new empty session owned by the calling thread (the test's main thread)."""
    global _state
    _state = _State()
    _state.root = Root()
    for layer, channels in (("rgba", ["red", "green", "blue", "alpha"]), ("rgb", ["red", "green", "blue"]),
                            ("alpha", ["alpha"])):
        _state.layers[layer] = [f"rgba.{c}" for c in channels]


def _main(what: str) -> None:
    if threading.get_ident() != _state.main:
        raise ThreadError(f"{what} used from thread {threading.current_thread().name}; Nuke allows it only on "
                          "the main thread (use nuke.executeInMainThread)")


def _api(name: str) -> None:
    _state.used.add(name)


# -------------------------------------------------------------------------------------------------------
# Threads


def executeInMainThread(call, args=(), kwargs=None) -> None:  # noqa: N802 (Nuke's names)
    _api("executeInMainThread")
    _state.calls.put((call, tuple(args), dict(kwargs or {}), None))


def executeInMainThreadWithResult(call, args=(), kwargs=None):  # noqa: N802
    _api("executeInMainThreadWithResult")
    if threading.get_ident() == _state.main:
        raise ThreadError("executeInMainThreadWithResult called on the main thread: real Nuke hangs")
    box: dict = {"done": threading.Event()}
    _state.calls.put((call, tuple(args), dict(kwargs or {}), box))
    box["done"].wait()
    if "error" in box:
        raise box["error"]
    return box["value"]


def pump(until=None, timeout: float = 120.0) -> None:
    """Run queued main-thread calls (as Nuke's event loop does) until ``until()`` is true, or the queue is
    empty when ``until`` is None; raise TimeoutError after ``timeout`` seconds."""
    _main("pump")
    deadline = time.monotonic() + timeout
    while True:
        try:
            call, args, kwargs, box = _state.calls.get(timeout=0.02)
        except queue.Empty:
            if until is None or until():
                return
        else:
            try:
                value = call(*args, **kwargs)
                if box is not None:
                    box["value"] = value
            except Exception as exc:  # handed to the waiting thread, or raised here like Nuke's log would show
                if box is None:
                    raise
                box["error"] = exc
            finally:
                if box is not None:
                    box["done"].set()
        if time.monotonic() > deadline:
            raise TimeoutError("pump: condition not reached")


class ProgressTask:
    """Nuke's progress bar with a Cancel button (usable from worker threads, as Nuke documents)."""

    def __init__(self, title: str = "") -> None:
        _api("ProgressTask")
        self.title, self.progress, self.message, self.cancelled = title, 0, "", False
        self.closed = False
        _state.tasks.append(self)

    def setProgress(self, value: int) -> None:  # noqa: N802
        self.progress = int(value)

    def setMessage(self, message: str) -> None:  # noqa: N802
        self.message = str(message)

    def isCancelled(self) -> bool:  # noqa: N802
        return self.cancelled

    def __del__(self) -> None:
        self.closed = True


def tasks() -> list[ProgressTask]:
    return list(_state.tasks)


# -------------------------------------------------------------------------------------------------------
# Messages, menus, callbacks, paths


def error(message: str) -> None:
    _api("error")
    _main("nuke.error")
    _state.log.append(("error", message))


def warning(message: str) -> None:
    _api("warning")
    _main("nuke.warning")
    _state.log.append(("warning", message))


def tprint(*args, sep: str = " ", end: str = "\n", file=None) -> None:
    _api("tprint")
    _state.log.append(("info", sep.join(map(str, args))))


def log() -> list[tuple[str, str]]:
    return list(_state.log)


def pluginAddPath(path: str, addToSysPath: bool = True) -> None:  # noqa: N802, N803
    _api("pluginAddPath")
    _state.plugin_paths.append(path)
    if addToSysPath and path not in sys.path:
        sys.path.insert(0, path)


class Menu:
    def __init__(self, name: str) -> None:
        self._name, self.items = name, {}

    def addMenu(self, name: str, icon: str = "", **kwargs) -> Menu:  # noqa: N802
        return self.items.setdefault(name, Menu(name))

    def addCommand(self, name: str, command="", shortcut: str = "", icon: str = "", **kwargs) -> None:  # noqa: N802
        self.items[name] = command

    def findItem(self, name: str):  # noqa: N802
        item = self
        for part in name.split("/"):
            item = item.items.get(part) if isinstance(item, Menu) else None
        return item


def menu(name: str) -> Menu:
    _api("menu")
    return _state.menus.setdefault(name, Menu(name))


def addOnCreate(call, args=(), kwargs=None, nodeClass: str = "*") -> None:  # noqa: N802, N803
    _api("addOnCreate")
    _state.on_create.append((call, tuple(args), dict(kwargs or {}), nodeClass))


def _created(node: Node) -> None:
    for call, args, kwargs, node_class in _state.on_create:
        if node_class in ("*", node.Class()):
            _state.this.append(node)
            try:
                call(*args, **kwargs)
            finally:
                _state.this.pop()


def getInput(prompt: str, default: str = "") -> str:  # noqa: N802
    _api("getInput")
    _main("nuke.getInput")
    return _state.answers.pop(0) if getattr(_state, "answers", None) else default


def answer(*texts: str) -> None:
    """Queue what the artist types into the next ``getInput`` dialogs."""
    _state.answers = list(texts)


# -------------------------------------------------------------------------------------------------------
# Knobs


class Knob:
    def __init__(self, name: str, label: str | None = None, value=None) -> None:
        self._name, self._label, self._value, self._flags = name, label or name, value, 0
        self._node: Node | None = None

    def name(self) -> str:
        _main("Knob.name")
        return self._name

    def label(self) -> str:
        _main("Knob.label")
        return self._label

    def value(self):
        _main("Knob.value")
        return self._value

    def getValue(self):  # noqa: N802
        return self.value()

    def setValue(self, value) -> bool:  # noqa: N802
        _main("Knob.setValue")
        self._value = value
        return True

    def setFlag(self, flag: int) -> None:  # noqa: N802
        _main("Knob.setFlag")
        self._flags |= flag

    def getFlag(self, flag: int) -> bool:  # noqa: N802
        _main("Knob.getFlag")
        return bool(self._flags & flag)

    def setEnabled(self, enabled: bool) -> None:  # noqa: N802
        _main("Knob.setEnabled")
        self._enabled = bool(enabled)

    def setTooltip(self, tooltip: str) -> None:  # noqa: N802
        _main("Knob.setTooltip")

    def node(self) -> Node:
        _main("Knob.node")
        return self._node


class Tab_Knob(Knob):  # noqa: N801
    pass


class Text_Knob(Knob):  # noqa: N801
    def __init__(self, name: str, label: str | None = None, value: str = "") -> None:
        super().__init__(name, label, value)


class String_Knob(Knob):  # noqa: N801
    def __init__(self, name: str, label: str | None = None, value: str = "") -> None:
        super().__init__(name, label, value)


class EvalString_Knob(String_Knob):  # noqa: N801
    def evaluate(self, time: float | None = None) -> str:
        _main("Knob.evaluate")
        return _frame_path(str(self._value or ""), int(time if time is not None else _state.root.frame))


class File_Knob(EvalString_Knob):  # noqa: N801
    pass


class Int_Knob(Knob):  # noqa: N801
    def __init__(self, name: str, label: str | None = None, value: int = 0) -> None:
        super().__init__(name, label, int(value))

    def setValue(self, value) -> bool:  # noqa: N802
        return super().setValue(int(value))


class Boolean_Knob(Knob):  # noqa: N801
    def __init__(self, name: str, label: str | None = None, value: bool = False) -> None:
        super().__init__(name, label, bool(value))

    def setValue(self, value) -> bool:  # noqa: N802
        return super().setValue(bool(value))


class Enumeration_Knob(Knob):  # noqa: N801
    def __init__(self, name: str, label: str | None = None, items=()) -> None:
        super().__init__(name, label, list(items)[0] if items else "")
        self._items = list(items)

    def values(self) -> list[str]:
        _main("Knob.values")
        return list(self._items)

    def setValue(self, value) -> bool:  # noqa: N802
        value = self._items[value] if isinstance(value, int) else value
        if value not in self._items:
            raise ValueError(f"{value!r} is not one of {self._items}")
        return super().setValue(value)


class Script_Knob(String_Knob):  # noqa: N801
    def __init__(self, name: str, label: str | None = None, command: str = "") -> None:
        super().__init__(name, label, command)

    def command(self) -> str:
        return self.value()

    def execute(self) -> None:
        """Press the button: run its command with ``nuke.thisNode()`` = the knob's node."""
        _main("Script_Knob.execute")
        _state.this.append(self._node)
        try:
            exec(self._value, {"nuke": sys.modules[__name__]})
        finally:
            _state.this.pop()


class PyScript_Knob(Script_Knob):  # noqa: N801
    pass


class Channel_Knob(String_Knob):  # noqa: N801
    pass


def _knob_for(name: str, value) -> Knob:
    if isinstance(value, bool):
        return Boolean_Knob(name, name, value)
    if isinstance(value, int):
        return Int_Knob(name, name, value)
    if name == "file":
        return File_Knob(name, name, value)
    return String_Knob(name, name, value)


# -------------------------------------------------------------------------------------------------------
# Nodes


_DEFAULT_KNOBS = {
    "Read": {"file": "", "first": 1, "last": 1, "origfirst": 1, "origlast": 1, "frame": "", "on_error": "error",
             "raw": False, "colorspace": "default"},
    "Write": {"file": "", "file_type": "exr", "channels": "rgb", "datatype": "16 bit half", "disable": False,
              "compression": "Zip (1 scanline)"},
    "Copy": {"from0": "none", "to0": "none"},
    "Roto": {"output": "alpha"},
    "RotoPaint": {"output": "alpha"},
    "Input": {"number": 0},
}


class Node:
    def __init__(self, node_class: str, name: str) -> None:
        self._class, self._name, self._inputs, self._knobs = node_class, name, {}, {}
        self._parent: Group | None = None
        self.deleted = False
        for knob, value in _DEFAULT_KNOBS.get(node_class, {}).items():
            self._add(_knob_for(knob, value))
        self._add(String_Knob("label", "label", ""))

    def _add(self, knob: Knob) -> None:
        knob._node = self
        self._knobs[knob._name] = knob

    def _live(self, what: str) -> None:
        _main(f"Node.{what}")
        if self.deleted:
            raise ValueError(f"PythonObject not attached to a node ({self._name} was deleted)")

    def Class(self) -> str:  # noqa: N802
        self._live("Class")
        return self._class

    def name(self) -> str:
        self._live("name")
        return self._name

    def fullName(self) -> str:  # noqa: N802
        self._live("fullName")
        if self._parent is None or self._parent is _state.root:
            return self._name
        return f"{self._parent.fullName()}.{self._name}"

    def setName(self, name: str, uncollide: bool = False, updateExpressions: bool = False) -> None:  # noqa: N802, N803
        self._live("setName")
        siblings = {n._name for n in (self._parent.nodes() if self._parent else []) if n is not self}
        base, i = name, 1
        while uncollide and name in siblings:
            name, i = f"{base}{i}", i + 1
        if name in siblings:
            raise ValueError(f"name {name} is taken")
        self._name = name

    def knob(self, name: str):
        self._live("knob")
        return self._knobs.get(name)

    def knobs(self) -> dict:
        self._live("knobs")
        return dict(self._knobs)

    def __getitem__(self, name: str) -> Knob:
        self._live("__getitem__")
        if name not in self._knobs:
            raise NameError(f"knob {name} does not exist")
        return self._knobs[name]

    def addKnob(self, knob: Knob) -> None:  # noqa: N802
        self._live("addKnob")
        self._add(knob)

    def setInput(self, i: int, node: Node | None) -> bool:  # noqa: N802
        self._live("setInput")
        if node is None:
            self._inputs.pop(i, None)
        else:
            self._inputs[i] = node
        return True

    def input(self, i: int) -> Node | None:
        self._live("input")
        node = self._inputs.get(i)
        return None if node is None or node.deleted else node

    def inputs(self) -> int:
        self._live("inputs")
        return max(self._inputs, default=-1) + 1

    def parent(self) -> Group | None:
        self._live("parent")
        return self._parent

    def channels(self) -> list[str]:
        self._live("channels")
        return sorted(_evaluate(self, _state.root.frame))

    def firstFrame(self) -> int:  # noqa: N802
        self._live("firstFrame")
        return _frame_range(self)[0]

    def lastFrame(self) -> int:  # noqa: N802
        self._live("lastFrame")
        return _frame_range(self)[1]

    def width(self) -> int:
        self._live("width")
        return next(iter(_evaluate(self, self.firstFrame()).values())).shape[1]

    def height(self) -> int:
        self._live("height")
        return next(iter(_evaluate(self, self.firstFrame()).values())).shape[0]

    def setXYpos(self, x: int, y: int) -> None:  # noqa: N802
        self._live("setXYpos")

    def __repr__(self) -> str:
        return f"<fake {self._class} {self._name}>"


class Group(Node):
    def __init__(self, node_class: str = "Group", name: str = "Group1") -> None:
        super().__init__(node_class, name)
        self._children: list[Node] = []

    def begin(self) -> Group:
        self._live("begin")
        _state.context.append(self)
        return self

    def end(self) -> None:
        _main("Group.end")
        _state.context.remove(self)

    def __enter__(self) -> Group:
        return self.begin()

    def __exit__(self, *exc) -> None:
        self.end()

    def nodes(self) -> list[Node]:
        self._live("nodes")
        return [n for n in self._children if not n.deleted]

    def node(self, name: str) -> Node | None:
        self._live("node")
        return next((n for n in self.nodes() if n._name == name), None)


class Root(Group):
    def __init__(self) -> None:
        super().__init__("Root", "root")
        self._parent = None
        self.frame = 1
        self._add(File_Knob("name", "name", ""))
        self._add(Int_Knob("first_frame", "first_frame", 1))
        self._add(Int_Knob("last_frame", "last_frame", 100))


class _NodeFactory:
    """``nuke.nodes.<Class>(**knobs)``: create a node in the current group without connecting it."""

    def __getattr__(self, node_class: str):
        def create(**knobs) -> Node:
            _api("nodes")
            return _create(node_class, knobs)

        return create


nodes = _NodeFactory()


def _create(node_class: str, knobs: dict) -> Node:
    _main(f"creating a {node_class} node")
    parent = _state.context[-1] if _state.context else _state.root
    node = Group(node_class, node_class) if node_class in ("Group", "Gizmo") else Node(node_class, node_class)
    node._parent = parent
    taken = {n._name for n in parent.nodes()}
    name, i = knobs.pop("name", None), 1
    while name is None or name in taken:
        name, i = f"{node_class}{i}", i + 1
    node._name = name
    for knob, value in knobs.items():
        if knob in node._knobs:
            node._knobs[knob].setValue(value)
        else:
            node._add(_knob_for(knob, value))
    if node_class == "Input":
        node._knobs["number"].setValue(sum(1 for n in parent.nodes() if n._class == "Input"))
    if node_class in ("Roto", "RotoPaint"):
        node._add(_CurveKnob("curves"))
        node.mattes = {}
    parent._children.append(node)
    _created(node)
    return node


def createNode(node: str, args: str = "", inpanel: bool = True) -> Node:  # noqa: N802
    _api("createNode")
    return _create(node, {})


def delete(node: Node) -> None:
    _api("delete")
    _main("nuke.delete")
    node.deleted = True


def toNode(name: str) -> Node | None:  # noqa: N802
    _api("toNode")
    _main("nuke.toNode")
    group: Group = _state.root
    for part in name.split("."):
        found = group.node(part) if isinstance(group, Group) else None
        if found is None:
            return None
        group = found
    return group


def thisNode() -> Node:  # noqa: N802
    _api("thisNode")
    _main("nuke.thisNode")
    return _state.this[-1] if _state.this else _state.root


def root() -> Root:
    _api("root")
    _main("nuke.root")
    return _state.root


def allNodes(filter: str | None = None, group: Group | None = None) -> list[Node]:  # noqa: N802, A002
    _api("allNodes")
    group = group or _state.root
    return [n for n in group.nodes() if filter is None or n._class == filter]


class Layer:
    """``nuke.Layer(name, [channels])`` declares a layer and its channels for the script."""

    def __init__(self, name: str, channels: list[str]) -> None:
        _api("Layer")
        _main("nuke.Layer")
        self._name = name
        _state.layers[name] = list(channels)

    def name(self) -> str:
        return self._name


def layers(node: Node | None = None) -> list[str]:
    _api("layers")
    _main("nuke.layers")
    if node is None:
        return list(_state.layers)
    return sorted({c.split(".")[0] for c in node.channels()})


# -------------------------------------------------------------------------------------------------------
# Roto curves (what the plugin reads to find the key frames)


class _ControlPoint:
    def __init__(self, keys: list[float]) -> None:
        self._keys = keys

    def getControlPointKeyTimes(self, view: str = "main") -> list[float]:  # noqa: N802
        _main("AnimControlPoint.getControlPointKeyTimes")
        return list(self._keys)


class ShapeControlPoint:
    def __init__(self, keys: list[float]) -> None:
        self.center = _ControlPoint(keys)


class Shape(list):
    """A closed shape: its control points (each with key times)."""

    def __init__(self, name: str, keys: list[float], points: int = 4) -> None:
        super().__init__(ShapeControlPoint(keys) for _ in range(points))
        self.name = name


class CurveLayer(list):
    def __init__(self, name: str = "Root") -> None:
        super().__init__()
        self.name = name


class _CurveKnob(Knob):
    def __init__(self, name: str) -> None:
        super().__init__(name, name, None)
        self.rootLayer = CurveLayer()


# -------------------------------------------------------------------------------------------------------
# Pixels: a tiny evaluator of the graph and Write rendering


def _frame_path(pattern: str, frame: int) -> str:
    pattern = re.sub(r"%0(\d)d", lambda m: f"{frame:0{int(m.group(1))}d}", pattern)
    return re.sub(r"#+", lambda m: f"{frame:0{len(m.group(0))}d}", pattern)


def _frame_range(node: Node) -> tuple[int, int]:
    if node._class == "Read":
        return node._knobs["first"]._value, node._knobs["last"]._value
    if node._class == "Input":
        group = node._parent
        source = group.input(node._knobs["number"]._value) if group else None
        return _frame_range(source) if source else (_state.root._knobs["first_frame"]._value,
                                                     _state.root._knobs["last_frame"]._value)
    if isinstance(node, Group) and node._class != "Root":
        out = next((n for n in node.nodes() if n._class == "Output"), None)
        return _frame_range(out) if out else (1, 1)
    source = node.input(0)
    if source is not None:
        return _frame_range(source)
    return _state.root._knobs["first_frame"]._value, _state.root._knobs["last_frame"]._value


def _read_file(path: str) -> dict:
    import numpy as np
    import OpenImageIO as oiio

    image = oiio.ImageInput.open(path)
    if image is None:
        raise RuntimeError(f"Read error: {path}: {oiio.geterror()}")
    spec = image.spec()
    pixels = np.asarray(image.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)).reshape(
        spec.height, spec.width, spec.nchannels)
    image.close()
    integer = spec.format.basetype in (oiio.UINT8, oiio.UINT16)
    out = {}
    for i, name in enumerate(spec.channelnames):
        layer, _, channel = name.rpartition(".")
        channel = _CHANNEL_SUFFIX.get(channel, channel)
        values = pixels[..., i].copy()
        if integer and not layer and channel in ("red", "green", "blue"):  # Nuke's Read: sRGB files -> linear
            values = np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)
        out[f"{layer or 'rgba'}.{channel}"] = values.astype(np.float32)
    return out


def _evaluate(node: Node, frame: int) -> dict:
    """The channels of ``node`` at ``frame``: {"layer.channel": float32 (H, W)} (rows top first)."""
    import numpy as np

    kind = node._class
    if node.deleted:
        raise RuntimeError(f"{node._name} was deleted")
    if kind == "Read":
        first, last = _frame_range(node)
        path = _frame_path(node._knobs["file"]._value, frame)
        if not (first <= frame <= last) or not os.path.exists(path):
            if node._knobs["on_error"]._value == "black" and node._inputs.get(0) is not None:
                return {k: np.zeros_like(v) for k, v in _evaluate(node._inputs[0], frame).items()}
            raise RuntimeError(f"Read error: {path} missing")
        return _read_file(path)
    if kind == "Input":
        source = node._parent.input(node._knobs["number"]._value)
        if source is None:
            raise RuntimeError(f"{node._parent._name}: input {node._name} is not connected")
        return _evaluate(source, frame)
    if isinstance(node, Group) and kind != "Root":
        out = next((n for n in node.nodes() if n._class == "Output"), None)
        if out is None or out.input(0) is None:
            raise RuntimeError(f"{node._name} has no output")
        return _evaluate(out.input(0), frame)
    if kind in ("Roto", "RotoPaint"):
        layer = node._knobs["output"]._value
        base = _evaluate(node._inputs[0], frame) if node._inputs.get(0) is not None else {}
        shape = next(iter(base.values())).shape if base else next(iter(node.mattes.values())).shape
        matte = node.mattes.get(frame, np.zeros(shape, np.float32))
        return base | {("rgba.alpha" if layer == "alpha" else f"{layer}.alpha"): np.asarray(matte, np.float32)}
    if kind == "Copy":
        b = dict(_evaluate(node._inputs[0], frame))
        a = _evaluate(node._inputs[1], frame)
        i = 0
        while f"from{i}" in node._knobs:
            src, dst = node._knobs[f"from{i}"]._value, node._knobs[f"to{i}"]._value
            if src != "none" and dst != "none":
                if src not in a:
                    raise RuntimeError(f"{node._name}: channel {src} is not in input A")
                b[dst] = a[src]
            i += 1
        return b
    if kind == "Grade":  # a colour correction the test can put after a Read: no longer "unmodified"
        return {k: (v * 1.0 if k.startswith("rgba.") else v) for k, v in _evaluate(node._inputs[0], frame).items()}
    if node._inputs.get(0) is not None:  # Output, Write, Dot...: pass-through
        return _evaluate(node._inputs[0], frame)
    raise RuntimeError(f"{node._name} ({kind}) has no input")


def _write_channels(node: Node, image: dict) -> list[str]:
    which = node._knobs["channels"]._value
    if which == "all":
        return sorted(image, key=lambda c: (not c.startswith("rgba."), c))
    wanted = {"rgb": ["red", "green", "blue"], "rgba": ["red", "green", "blue", "alpha"]}.get(which)
    if wanted is None:
        return [c for c in image if c.split(".")[0] == which]
    return [f"rgba.{c}" for c in wanted if f"rgba.{c}" in image]


def _file_channel(name: str) -> str:
    layer, channel = name.split(".")
    suffix = _FILE_SUFFIX.get(channel, channel)
    return suffix if layer == "rgba" else f"{layer}.{suffix}"


def _render(node: Node, frame: int) -> str:
    import numpy as np
    import OpenImageIO as oiio

    image = _evaluate(node._inputs[0], frame)
    names = _write_channels(node, image)
    if not names:
        raise RuntimeError(f"{node._name}: no channels to write")
    path = _frame_path(node._knobs["file"]._value, frame)
    if not os.path.isdir(os.path.dirname(path) or "."):
        raise RuntimeError(f"{node._name}: can't write {path}: the folder does not exist")
    pixels = np.ascontiguousarray(np.stack([image[n] for n in names], axis=-1), np.float32)
    half = "half" in node._knobs["datatype"]._value
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], len(names), oiio.HALF if half else oiio.FLOAT)
    spec.channelnames = tuple(_file_channel(n) for n in names)
    spec.attribute("compression", "zip")
    out = oiio.ImageOutput.create(path)
    if out is None or not out.open(path, spec):
        raise RuntimeError(f"{node._name}: can't write {path}: {oiio.geterror()}")
    out.write_image(pixels)
    out.close()
    return path


def execute(nameOrNode, start: int, end: int, incr: int = 1, views=None, continueOnError: bool = False) -> None:  # noqa: N803
    """Render a Write node over frames start..end (main thread only; blocks like Nuke's render)."""
    _api("execute")
    _main("nuke.execute")
    node = toNode(nameOrNode) if isinstance(nameOrNode, str) else nameOrNode
    if node is None or node._class != "Write":
        raise ValueError(f"{nameOrNode} is not a Write node")
    if node._knobs["disable"]._value:
        raise RuntimeError(f"{node._name} is disabled")
    for frame in range(int(start), int(end) + 1, int(incr)):
        _render(node, frame)
        node.rendered = getattr(node, "rendered", 0) + 1





def script_loaded(node: Node) -> None:
    """Run the onCreate callbacks for ``node`` as Nuke does when a saved script is opened."""
    _main("script load")
    _created(node)

reset()
