"""SMITE for Nuke: a node that learns parts from the artist's roto and writes per-part mattes into the stream.

``menu.py`` calls ``create_node``; the node's buttons call ``press``; ``on_create`` (an onCreate callback)
picks up a job that was running when the script was closed. Each node has one ``Controller``.
"""

from __future__ import annotations

__version__ = "0.1.0"

_controllers: dict = {}


def controller_for(node=None):
    """The controller of ``node`` (default: ``nuke.thisNode()``), made on first use."""
    import nuke

    from smite_nuke.controller import Controller
    from smite_nuke.nuke_host import NukeHost

    node = node if node is not None else nuke.thisNode()
    key = node.fullName()
    current = _controllers.get(key)
    if current is None:
        current = _controllers[key] = Controller(NukeHost(node))
    elif not current.busy:
        current.host.node = node  # Nuke hands out a new wrapper object per call
    return current


def create_node():
    """Nodes > SMITE > SMITE: a new SMITE node (connected to the selected node, as Nuke does)."""
    from smite_nuke.nuke_host import build_node

    return build_node()


def press(action: str) -> None:
    """A button of the node under ``nuke.thisNode()``."""
    import nuke

    ctl = controller_for()
    if action == "add_part":
        part = nuke.getInput("Name of the new part (lower case, e.g. face)", "")
        if part:
            ctl.add_part(part)
        return
    {"connect": ctl.connect, "learn": ctl.learn, "segment": ctl.segment, "cancel": ctl.cancel,
     "free_vram": ctl.free_vram, "read_roto": ctl.refresh_roto}[action]()


def on_create() -> None:
    """onCreate callback for Groups: a SMITE node loaded with a job id resumes following that job."""
    import nuke

    from smite_nuke.nuke_host import MARKER

    node = nuke.thisNode()
    if node.knob(MARKER) is not None and node.knob("smite_job") is not None and node["smite_job"].value():
        controller_for(node).resume()
