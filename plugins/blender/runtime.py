"""The main-thread side of jobs: one worker (``jobs.Runner``), a timer that drains its queue into
``scene.smite`` and the compositor, and a load handler that finds a running job again in a reopened file.

Headless Blender never fires timers: scripts and tests call ``drain()`` themselves.
"""

import bpy
from bpy.app.handlers import persistent

from . import client, prefs
from .framemap import parse_sequence
from .jobs import JobStatus, Runner, describe_hello, one_line, watch_task
from .tree import load_mattes

RUNNER = Runner()
INTERVAL_S = 0.25
_job_scene = {"name": ""}


def make_client() -> client.Client:
    """A daemon client from the add-on preferences (CURVE when both key files are set)."""
    p = prefs.get()
    address = (p.address if p else "") or None
    server_key = bpy.path.abspath(p.server_key) if p and p.server_key else None
    client_keys = bpy.path.abspath(p.client_secret) if p and p.client_secret else None
    return client.Client(address, timeout=p.timeout if p else 30.0, server_key=server_key, client_keys=client_keys)


def start(scene, task) -> None:
    """Run a worker task for ``scene`` and make sure the timer drains it."""
    RUNNER.start(task, make_client)
    _job_scene["name"] = scene.name
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=INTERVAL_S)


def busy() -> bool:
    """Whether a worker runs or messages wait to be applied."""
    return RUNNER.busy or not RUNNER.queue.empty()


def drain() -> int:
    """Apply the worker's messages to Blender data (main thread only); returns how many."""
    return RUNNER.drain(apply)


def _timer():
    drain()
    return INTERVAL_S if busy() else None


def _status(s) -> JobStatus:
    return JobStatus(op=s.job_op, job=s.job_id, state=s.job_state or "idle", fraction=s.progress, eta_s=s.eta_s,
                     error=s.last_error, model=s.model_name)


def _store(s, status: JobStatus) -> None:
    s.job_op, s.job_id, s.job_state = status.op, status.job, status.state
    s.progress, s.eta_s, s.last_error, s.model_name = status.fraction, status.eta_s, status.error, status.model


def apply(message: dict) -> None:
    """One worker message -> ``scene.smite`` (and the tree when a segment job finished)."""
    scene = bpy.data.scenes.get(_job_scene["name"])
    if scene is None:
        return
    s, kind = scene.smite, message.get("kind")
    if kind == "hello":
        s.status = describe_hello(message["body"])
    elif kind == "info":
        s.status = message["text"]
    elif kind != "idle":
        if kind == "submitted" and message.get("output"):
            s.job_output, s.job_inline = message["output"], bool(message.get("inline"))
        status = _status(s).apply(message)
        _store(s, status)
        if kind == "finished" and status.state == "done" and status.op == "segment" and s.job_output:
            try:
                load_results(scene, s.job_output)
            except Exception as exc:  # shown in the panel; the mattes are on disk
                s.last_error = one_line(exc)
    _redraw()


def load_results(scene, pattern: str):
    """Load a finished segmentation into the tree, lined up with the plate as the scene shows it."""
    from . import sources

    s = scene.smite
    frames = parse_sequence(pattern).frames()
    try:
        _, files = sources.plate(s)
        fmap = sources.plate_map(scene, s, files).sub(frames[0], frames[-1])
    except Exception:  # the plate moved: map the mattes on their own
        fmap = None
    return load_mattes(scene, pattern, "AUTO", s.cryptomatte, fmap)


def _redraw() -> None:
    for window in getattr(bpy.context.window_manager, "windows", ()):
        for area in window.screen.areas:
            if area.type == "NODE_EDITOR":
                area.tag_redraw()


@persistent
def _before_load(_dummy=None) -> None:
    """Another file is opening: stop following this file's job (it keeps running on the daemon)."""
    RUNNER.detach()


@persistent
def _on_load(_dummy=None) -> None:
    """A reopened file with a job that was running: follow it again (it kept running on the daemon)."""
    if RUNNER.busy:
        return
    for scene in bpy.data.scenes:
        s = scene.smite
        if s.job_id and s.job_state in ("queued", "running", "submitting"):
            start(scene, watch_task(s.job_id, s.job_output if s.job_inline else None))
            return


def register() -> None:
    bpy.app.handlers.load_pre.append(_before_load)
    bpy.app.handlers.load_post.append(_on_load)


def unregister() -> None:
    for handlers, handler in ((bpy.app.handlers.load_pre, _before_load), (bpy.app.handlers.load_post, _on_load)):
        if handler in handlers:
            handlers.remove(handler)
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
