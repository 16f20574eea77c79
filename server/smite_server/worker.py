"""The single GPU worker thread: takes jobs from the queue one at a time and runs them on the Engine.

It never touches the ROUTER socket nor the job records: every change (started, progress, output, finished)
goes to the daemon loop as an event through the :class:`Outbox`, which wakes the loop over an inproc
socket. The engine lock is held while a job runs, so ``unload`` can tell that the engine is busy. After
``idle_unload_s`` without jobs the backbone is unloaded to free VRAM.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field

import zmq

from smite.errors import SmiteError
from smite_server.jobs import Job, JobQueue
from smite_server.tasks import LearnJob, SegmentJob, run_learn, run_segment

log = logging.getLogger("smite.daemon")
WAKE_ADDRESS = "inproc://smite-worker-events"


@dataclass
class WorkerEvent:
    """A job event for the daemon loop: ``kind`` is started, progress, output or finished."""

    job: Job
    kind: str
    body: dict
    blobs: list = field(default_factory=list)


class Outbox:
    """Worker -> daemon events: a thread-safe queue plus a one-byte wake-up on an inproc PUSH socket."""

    def __init__(self, context: zmq.Context) -> None:
        self.context = context
        self.events: queue.SimpleQueue[WorkerEvent] = queue.SimpleQueue()
        self._local = threading.local()

    def post(self, event: WorkerEvent) -> None:
        self.events.put(event)
        sock = getattr(self._local, "socket", None)
        if sock is None:  # one PUSH socket per posting thread: zmq sockets are not thread-safe
            sock = self._local.socket = self.context.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(WAKE_ADDRESS)
        try:
            sock.send(b"", zmq.NOBLOCK)
        except zmq.Again:
            pass  # the loop is behind on wake-ups already; it drains the whole queue each time

    def close_thread_socket(self) -> None:
        """Close the calling thread's PUSH socket (before the thread ends)."""
        sock = getattr(self._local, "socket", None)
        if sock is not None:
            sock.close(linger=0)
            self._local.socket = None

    def drain(self) -> list[WorkerEvent]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out


class Worker(threading.Thread):
    """Runs queued jobs on ``engine`` one at a time."""

    def __init__(self, engine, jobs: JobQueue, outbox: Outbox, idle_unload_s: float | None = None) -> None:
        super().__init__(name="smite-worker", daemon=True)
        self.engine, self.jobs, self.outbox = engine, jobs, outbox
        self.idle_unload_s = idle_unload_s
        self.engine_lock = threading.Lock()
        self.stopping = threading.Event()
        self.current: Job | None = None

    def run(self) -> None:
        try:
            self._loop()
        finally:
            self.outbox.close_thread_socket()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            timeout = self.idle_unload_s if self.engine.loaded and self.idle_unload_s else None
            job = self.jobs.take(timeout)
            if job is None:
                self._idle_unload()
                continue
            with self.engine_lock:
                self.current = job
                was_loaded = self.engine.loaded
                try:
                    self._run(job)
                finally:
                    self.current = None
                if self.engine.loaded and not was_loaded:
                    _freeze_heap()

    def stop(self) -> None:
        """End the thread after the current job (cancelled: a stop must not wait for a long job)."""
        self.stopping.set()
        self.jobs.close()
        current = self.current
        if current is not None:
            current.cancel.set()

    def _idle_unload(self) -> None:
        if self.stopping.is_set() or not self.engine.loaded:
            return
        with self.engine_lock:
            log.info("no job for %.0f s: unloading the backbone to free memory", self.idle_unload_s)
            self.engine.unload()

    def _device(self) -> str:
        """The engine's device name ("cpu", "cuda:0"...), for error messages."""
        try:
            return str(self.engine.info().get("device") or "cpu")
        except Exception:  # reporting an error must not fail on the report
            return "cpu"

    def _emit(self, job: Job, kind: str, body: dict, blobs=()) -> None:
        self.outbox.post(WorkerEvent(job, kind, body, list(blobs)))

    def _run(self, job: Job) -> None:
        started = time.time()
        self._emit(job, "started", {"started": started})
        log.info("job %s %s: running", job.id, job.op)
        result, error, state = None, None, "done"
        try:
            result = self._execute(job)
        except SmiteError as exc:
            state = "cancelled" if exc.code == "cancelled" else "failed"
            error = {"code": exc.code, "message": str(exc)}
        except Exception as exc:  # a bug or no memory: log it in full, answer one line, keep serving
            log.error("job %s %s: %s\n%s", job.id, job.op, type(exc).__name__, traceback.format_exc())
            state, error = "failed", _unexpected(exc, self._device())
        finally:
            job.payload = None  # drop inline bytes as soon as possible
        took = time.time() - started
        log.info("job %s %s: %s in %.1f s%s", job.id, job.op, state, took,
                 f" ({error['code']}: {error['message']})" if error else "")
        self._emit(job, "finished", {"state": state, "result": result, "error": error})

    def _execute(self, job: Job) -> dict:
        def emit(kind: str, body: dict, blobs=()) -> None:
            self._emit(job, kind, body, blobs)

        def cancelled() -> bool:
            return job.cancel.is_set()

        if cancelled():
            raise SmiteError(f"job {job.id} cancelled", code="cancelled")
        payload = job.payload
        if isinstance(payload, LearnJob):
            return run_learn(self.engine, payload, emit, cancelled)
        if isinstance(payload, SegmentJob):
            return run_segment(self.engine, payload, emit, cancelled)
        raise TypeError(f"unknown job payload {type(payload).__name__}")


def _freeze_heap() -> None:
    """After a backbone load: collect once, then keep the (now long-lived) objects out of later full garbage
    collections, which would otherwise walk them all while holding the GIL and stall the request loop."""
    gc.collect()
    gc.freeze()


def _unexpected(exc: Exception, device: str = "cpu") -> dict:
    """The job error for an exception that is not a SmiteError: out of memory, or a bug. Advice about GPU
    memory only where the device is a GPU: a CPU daemon ran out of the machine's RAM."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
        if device.startswith("cuda") and not isinstance(exc, MemoryError):
            message = (f"the GPU ({device}) ran out of memory; close other GPU tools, send smaller frames, "
                       "or run fewer parts")
        else:
            message = "the daemon ran out of memory (RAM); send smaller frames, fewer frames per job, or fewer parts"
        return {"code": "out_of_memory", "message": message}
    return {"code": "internal", "message": f"internal error ({type(exc).__name__}); see the daemon log"}
