"""Long jobs off Blender's main thread: a worker thread with its own daemon client fills a queue; the main
thread drains it (``bpy.app.timers`` in the UI, a direct call headless) and is the only code that touches
Blender data. Plain Python: no bpy here.

Messages are plain dicts with a ``kind``: ``submitted`` (op, job), ``state`` (state), ``progress``
(fraction, eta_s), ``output`` (frame, path), ``finished`` (record), ``hello`` (body), ``info`` (text),
``error`` (text), ``idle`` (the worker ended).
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from .framemap import parse_sequence
from .plan import LearnPlan, SegmentPlan, inside_roots

TERMINAL = ("done", "failed", "cancelled")
Post = Callable[[dict], None]


@dataclass(frozen=True)
class JobStatus:
    """What the panel shows: the job, its state, progress, ETA and the last error in one sentence."""

    op: str = ""
    job: str = ""
    state: str = "idle"  # idle, submitting, queued, running, done, failed, cancelled
    fraction: float = 0.0
    eta_s: float = -1.0
    error: str = ""
    model: str = ""

    @property
    def active(self) -> bool:
        return self.state in ("submitting", "queued", "running")

    def apply(self, message: dict) -> JobStatus:
        """The status after one worker message (pure: the main thread stores the result)."""
        kind = message.get("kind")
        if kind == "submitting":
            return JobStatus(op=message["op"], state="submitting", model=self.model)
        if kind == "submitted":
            return replace(self, op=message["op"], job=message["job"], state="queued", error="")
        if kind == "state" and self.state not in TERMINAL:
            return replace(self, state=message["state"])
        if kind == "progress":
            return replace(self, state="running", fraction=float(message.get("fraction") or 0.0),
                           eta_s=float(message["eta_s"]) if message.get("eta_s") is not None else -1.0)
        if kind == "finished":
            return self._finished(message["record"])
        if kind == "error":
            state = "failed" if self.active else self.state
            return replace(self, state=state, error=message["text"])
        return self

    def _finished(self, record: dict) -> JobStatus:
        state = record.get("state", "failed")
        error = record.get("error") or {}
        text = error.get("message", "") if state != "done" else ""
        result = record.get("result") or {}
        model = result.get("model", self.model) if record.get("op") == "learn" and state == "done" else self.model
        return replace(self, op=record.get("op", self.op), job=record.get("id", self.job), state=state,
                       fraction=1.0 if state == "done" else self.fraction, eta_s=-1.0, error=text, model=model)


class Detached(Exception):
    """The worker stopped following its job (the file was closed); the job goes on on the daemon."""


class Runner:
    """One worker thread at a time and the queue it fills."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._detach = threading.Event()

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, task: Callable, make_client: Callable) -> None:
        """Run ``task(client, post, cancelled)`` in a thread with its own client (ZeroMQ sockets are per thread)."""
        if self.busy:
            raise RuntimeError("a SMITE job is already being followed; cancel it or wait")
        self._cancel.clear()
        self._detach.clear()
        self._thread = threading.Thread(target=self._run, args=(task, make_client), daemon=True, name="smite")
        self._thread.start()

    def _run(self, task: Callable, make_client: Callable) -> None:
        post = self.queue.put
        try:
            with make_client() as client:
                task(client, post, self._cancelled)
        except Detached:
            return
        except Exception as exc:  # the panel shows it; the job (if any) goes on on the daemon
            post({"kind": "error", "text": one_line(exc)})
        finally:
            post({"kind": "idle"})

    def _cancelled(self) -> bool:
        """The worker's "cancel?" hook (polled while it waits on the daemon); raises ``Detached`` to stop."""
        if self._detach.is_set():
            raise Detached()
        return self._cancel.is_set()

    def detach(self, timeout: float = 5.0) -> None:
        """Stop following the job without cancelling it and drop unapplied messages (the file is closing)."""
        self._detach.set()
        self.join(timeout)
        while not self.queue.empty():
            self.queue.get_nowait()

    def cancel(self) -> None:
        """Ask the followed job to cancel (the worker sends the cancel and waits for ``finished``)."""
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self, apply: Callable[[dict], None]) -> int:
        """Apply every queued message in order on the calling (main) thread; returns how many."""
        count = 0
        while True:
            try:
                message = self.queue.get_nowait()
            except queue.Empty:
                return count
            apply(message)
            count += 1


def one_line(exc: BaseException) -> str:
    """An exception as one sentence for the panel."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _inline(inline: type, path: str):
    """A file sent inline (``client.Inline``): works with any daemon, local or remote."""
    with open(path, "rb") as f:
        return inline(os.path.basename(path), f.read())


def atomic_write(path: str, data: bytes) -> None:
    """Write a file through a temporary name in the same folder, so readers never see half a file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".smite-", suffix=os.path.splitext(path)[1], dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def learn_task(plan: LearnPlan, inline: type) -> Callable:
    """The worker side of Learn: send the references inline (any daemon, local or remote) and follow the job."""

    def task(client, post: Post, cancelled: Callable[[], bool]) -> None:
        post({"kind": "submitting", "op": "learn"})
        frames = [_inline(inline, p) for p in plan.plates]
        masks = [{part: _inline(inline, p) for part, p in m.items()} if isinstance(m, dict) else _inline(inline, m)
                 for m in plan.masks]
        job = client.learn(frames, masks, plan.parts, plan.name, overwrite=True, settings=plan.settings,
                           reference_ids=plan.reference_ids)
        post({"kind": "submitted", "op": "learn", "job": job})
        follow(client, job, post, cancelled)

    return task


def segment_task(plan: SegmentPlan, inline: type) -> Callable:
    """The worker side of Segment: by path when the daemon sees our files, else inline (mattes come back)."""

    def task(client, post: Post, cancelled: Callable[[], bool]) -> None:
        post({"kind": "submitting", "op": "segment"})
        options = {"cryptomatte": plan.cryptomatte, "settings": {"preset": plan.preset, "edges": plan.edges}}
        frames = sorted(plan.plates)
        roots = client.hello().get("roots") or []
        use_paths = inside_roots([*plan.plates.values(), os.path.dirname(plan.output)], roots)
        if use_paths:
            job = client.segment(plan.model, [(f, plan.plates[f]) for f in frames], output=plan.output, **options)
        else:
            job = client.segment(plan.model, [(f, _inline(inline, plan.plates[f])) for f in frames], **options)
        post({"kind": "submitted", "op": "segment", "job": job, "output": plan.output, "inline": not use_paths})
        follow(client, job, post, cancelled, None if use_paths else plan.output)

    return task


def follow(client, job: str, post: Post, cancelled: Callable[[], bool], save_pattern: str | None = None) -> None:
    """Post a job's events until it finishes; with ``save_pattern``, write inline mattes there."""
    written: set[int] = set()
    for event in client.events(job, cancel_if=cancelled):
        body = event.body
        if event.event == "output" and save_pattern and event.blobs:
            frame = int(body["frame"])
            atomic_write(frame_path(save_pattern, frame), event.blobs[0])
            written.add(frame)
        elif event.event == "state":
            post({"kind": "state", "state": body.get("state", "running")})
        elif event.event == "progress":
            post({"kind": "progress", "fraction": body.get("fraction"), "eta_s": body.get("eta_s")})
        elif event.event == "finished":
            record = body["job"]
            if save_pattern and record.get("state") == "done" and record.get("op") == "segment":
                for entry, data in client.result(job):  # outputs whose events were missed
                    if data is not None and int(entry["frame"]) not in written:
                        atomic_write(frame_path(save_pattern, int(entry["frame"])), data)
            post({"kind": "finished", "record": record})


def frame_path(pattern: str, frame: int) -> str:
    """``x.####.exr`` at one frame."""
    return parse_sequence(pattern).path(frame)


def watch_task(job: str, save_pattern: str | None) -> Callable:
    """Follow a job submitted earlier (a reopened file, a restarted Blender)."""

    def task(client, post: Post, cancelled: Callable[[], bool]) -> None:
        follow(client, job, post, cancelled, save_pattern)

    return task


def describe_hello(body: dict) -> str:
    """One line of daemon status: backbone, device, free VRAM."""
    vram = body.get("vram_free")
    free = f", {vram / 2**30:.1f} GiB free" if isinstance(vram, (int, float)) else ""
    loaded = "loaded" if body.get("loaded") else "not loaded"
    return f"{body.get('backbone')} ({loaded}) on {body.get('device')}{free}"


def hello_task(client, post: Post, cancelled: Callable[[], bool]) -> None:
    post({"kind": "hello", "body": client.hello(timeout=5.0)})


def free_vram_task(client, post: Post, cancelled: Callable[[], bool]) -> None:
    post({"kind": "info", "text": "backbone unloaded" if client.unload() else "backbone was not loaded"})


def cancel_task(job: str) -> Callable:
    def task(client, post: Post, cancelled: Callable[[], bool]) -> None:
        client.cancel(job)
        post({"kind": "info", "text": f"cancel sent for {job}"})
        follow(client, job, post, lambda: False)

    return task
