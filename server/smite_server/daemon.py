"""The daemon: a ZeroMQ ROUTER loop that answers requests, queues jobs for the worker thread and fans job
events out to the clients watching them.

The loop never blocks on a job: handlers only check and queue; the worker reports through the outbox and
the loop forwards each event with ``NOBLOCK`` (a client that went away or stopped reading loses events,
never stalls the daemon; its job keeps running and its result waits in the job record).
"""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections import OrderedDict
from pathlib import Path

import zmq

from smite.errors import SmiteError
from smite_server.config import DaemonConfig
from smite_server.handlers import HANDLERS
from smite_server.jobs import Job, JobBook, JobQueue
from smite_server.protocol import (
    ProtocolError,
    check_sizes,
    error_header,
    event_header,
    pack,
    parse_request,
    peek_id,
    reply_header,
    unpack_header,
)
from smite_server.security import Roots, apply_curve, check_bind, load_server_keys
from smite_server.store import ModelStore
from smite_server.worker import WAKE_ADDRESS, Outbox, Worker, WorkerEvent

log = logging.getLogger("smite.daemon")
OPERATIONS = tuple(HANDLERS)
HOUSEKEEPING_S = 60.0
RECENT_SUBMITS = 4096
MAX_BATCH = 256  # messages handled before looking at worker events again
STOP_GRACE_S = 0.5


class Daemon:
    """One daemon: ``start()`` binds and starts the worker, ``serve()`` runs the loop until shutdown."""

    operations = OPERATIONS

    def __init__(self, config: DaemonConfig, engine=None) -> None:
        self.config = config
        if engine is None:
            from smite.engine import Engine

            engine = Engine(config.backbone, config.device, config.precision)
        self.engine = engine
        self.keys = load_server_keys(config.keys_dir) if config.keys_dir else None
        check_bind(config.address, self.keys)
        self.roots = Roots(config.roots)
        self.store = ModelStore(config.model_store)
        state = Path(config.state_dir).expanduser()
        self.book = JobBook(state / "jobs")
        self.results_root = state / "results"
        self.queue = JobQueue()
        self.context = zmq.Context()
        self.outbox = Outbox(self.context)
        self.worker = Worker(engine, self.queue, self.outbox, config.idle_unload_s)
        self.watchers: dict[str, dict[bytes, str]] = {}
        self.recent_submits: OrderedDict[str, str] = OrderedDict()
        self.stopping = False
        self._stop_begun: float | None = None
        self._cancel_running = True
        self.peer_address: str | None = None
        self.endpoint: str | None = None
        self._static_info: dict = {}
        self._auth = None

    # ---------------------------------------------------------------------------------------------------
    # Life cycle

    def start(self) -> str:
        """Bind, restore the job records, start the worker. Returns the bound endpoint."""
        self._static_info = self.engine.info()  # imports the heavy libraries now, not on the first hello
        self.book.load()
        self._housekeeping()
        self.wake = self.context.socket(zmq.PULL)
        self.wake.bind(WAKE_ADDRESS)
        self.router = self._router()
        self.worker.start()
        log.info("listening on %s (backbone %s, device %s, roots: %s)", self.endpoint,
                 self._static_info.get("backbone"), self._static_info.get("device"),
                 ", ".join(self.roots.as_list()) or "none")
        return self.endpoint

    def _router(self) -> zmq.Socket:
        sock = self.context.socket(zmq.ROUTER)
        limits = self.config.limits
        sock.setsockopt(zmq.MAXMSGSIZE, limits.max_message_bytes)  # per frame: a bigger one drops the peer
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # unknown peer -> EHOSTUNREACH instead of silent loss
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting client keeps its routing id
        sock.setsockopt(zmq.SNDHWM, self.config.send_hwm)
        sock.setsockopt(zmq.LINGER, 1000)
        if self.keys is not None:
            from zmq.auth.thread import ThreadAuthenticator

            self._auth = ThreadAuthenticator(self.context)
            self._auth.start()
            self._auth.configure_curve(domain="*", location=str(self.keys.authorized))
            apply_curve(sock, self.keys)
        sock.bind(self.config.address)
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        return sock

    def serve(self) -> None:
        """Run the loop until ``request_stop`` (a shutdown request or a signal) has taken effect, then close."""
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.wake, zmq.POLLIN)
        next_housekeeping = time.monotonic() + HOUSEKEEPING_S
        try:
            while not self._stopped():
                ready = dict(poller.poll(100 if self.stopping else 500))
                if self.wake in ready:
                    self._drain_wake()
                self._apply_worker_events()
                if self.router in ready:
                    for _ in range(MAX_BATCH):
                        if not self._handle_one():
                            break
                if time.monotonic() > next_housekeeping:
                    self._housekeeping()
                    next_housekeeping = time.monotonic() + HOUSEKEEPING_S
        finally:
            self._close()

    def request_stop(self, cancel_running: bool = True) -> None:
        """Ask the loop to stop (safe from a signal handler: it only sets flags). Queued jobs are cancelled;
        the running one too when ``cancel_running``, else the daemon serves until it has finished."""
        self._cancel_running = cancel_running
        self.stopping = True

    def _stopped(self) -> bool:
        """On the loop: carry out a stop request; True once no job is left running."""
        if not self.stopping:
            return False
        if not self._stop_begun:
            self._stop_begun = time.monotonic()
            log.info("stopping: cancelling queued jobs%s", " and the running one" if self._cancel_running else "")
            for job in list(self.book.jobs.values()):
                if job.state == "queued" and self.queue.remove(job):
                    job.cancel.set()
                    self._finish(job, "cancelled", None, {"code": "shutting_down", "message": "the daemon shut down"})
                elif not job.terminal and self._cancel_running:  # running, or just taken by the worker
                    job.cancel.set()
        # A job the worker holds stays unfinished in the records until its finished event is applied. The grace
        # time lets clients read their last replies before the process exits (an exit right after the shutdown
        # reply sometimes lost it).
        settled = time.monotonic() - self._stop_begun > STOP_GRACE_S
        return settled and all(job.terminal for job in self.book.jobs.values())

    def _close(self) -> None:
        self.worker.stop()
        self.worker.join(timeout=60)
        self._apply_worker_events()
        self.router.close(linger=500)
        self.wake.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        self.context.term()
        log.info("stopped")

    def _housekeeping(self) -> None:
        """Forget finished jobs past the retention time, with their inline results."""
        for job in self.book.expired(self.config.retention_s):
            self.book.forget(job)
            shutil.rmtree(self.results_root / job.id, ignore_errors=True)
            log.info("job %s: record and results removed after the retention time", job.id)

    # ---------------------------------------------------------------------------------------------------
    # Requests

    def _handle_one(self) -> bool:
        """Receive and answer one message; False when none is waiting."""
        try:
            frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        identity, parts = frames[0].bytes, frames[1:]
        request_id, op = None, None
        try:
            check_sizes(parts, self.config.limits)
            header = unpack_header(parts[0].buffer, self.config.limits)
            request_id = peek_id(header)
            op = header.get("op") if isinstance(header, dict) and isinstance(header.get("op"), str) else None
            request = parse_request(header, [p.buffer for p in parts[1:]], OPERATIONS)
            self.peer_address = _peer_address(parts[0])
            body, blobs = HANDLERS[request.op](self, request, identity)
            self._send(identity, reply_header(request.id, request.op, body), blobs)
        except (ProtocolError, SmiteError) as exc:
            code, message = (exc.code, exc.message) if isinstance(exc, ProtocolError) else (exc.code, str(exc))
            self._send(identity, error_header(request_id, op if op in OPERATIONS else None, code, message))
        except Exception as exc:  # a bug: keep serving, tell the client, log the traceback
            log.error("request %s (%s): internal error\n%s", request_id, op, traceback.format_exc())
            self._send(identity, error_header(request_id, op if op in OPERATIONS else None, "internal",
                                              f"internal error ({type(exc).__name__}); see the daemon log"))
        return True

    def _send(self, identity: bytes, header: dict, blobs=()) -> str:
        """Send without blocking: 'sent', 'full' (the peer's queue is full: dropped) or 'gone'."""
        try:
            self.router.send_multipart([identity, pack(header), *blobs], zmq.NOBLOCK, copy=False)
            return "sent"
        except zmq.Again:
            log.warning("client %s is not reading; dropped a %s message", identity.hex()[:12], header.get("type"))
            return "full"
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                return "gone"
            raise

    # ---------------------------------------------------------------------------------------------------
    # Jobs

    def engine_info(self) -> dict:
        try:
            return self.engine.info()
        except Exception:  # the backbone unloading under our feet: report what we knew at start
            return self._static_info

    def fingerprint(self) -> str | None:
        """The loaded backbone's weights fingerprint (None when not loaded)."""
        return self.engine_info().get("fingerprint") if self.engine.loaded else None

    def pending_inline_bytes(self) -> int:
        """Inline input bytes held by jobs that have not finished (they live in memory until then)."""
        return sum(job.inline_bytes for job in self.book.jobs.values() if not job.terminal)

    def enqueue(self, job: Job, request_id: str) -> None:
        self.book.add(job)
        self.recent_submits[request_id] = job.id
        while len(self.recent_submits) > RECENT_SUBMITS:
            self.recent_submits.popitem(last=False)
        self.queue.put(job)
        log.info("job %s %s: queued (priority %d, %d waiting)", job.id, job.op, job.priority, len(self.queue))

    def watch(self, job: Job, identity: bytes, request_id: str) -> None:
        self.watchers.setdefault(job.id, {})[identity] = request_id

    def cancel(self, job: Job) -> bool:
        """Cancel a queued job now or ask the running one to stop; False if it had finished already."""
        if job.terminal:
            return False
        job.cancel.set()
        if job.state == "queued" and self.queue.remove(job):
            self._finish(job, "cancelled", None, {"code": "cancelled", "message": f"job {job.id} cancelled"})
        log.info("job %s: cancel requested", job.id)
        return True

    def _drain_wake(self) -> None:
        while True:
            try:
                self.wake.recv(zmq.NOBLOCK)
            except zmq.Again:
                return

    def _apply_worker_events(self) -> None:
        for event in self.outbox.drain():
            try:
                self._apply(event)
            except Exception:  # a bug in one event must not stop the loop (the job's record stays as it was)
                log.error("job %s: could not apply its %s event\n%s", event.job.id, event.kind,
                          traceback.format_exc())

    def _apply(self, event: WorkerEvent) -> None:
        job, body = event.job, event.body
        if job.terminal:  # cancelled while queued; the worker raced us
            return
        if event.kind == "started":
            job.state, job.started = "running", body["started"]
            self.book.save(job)
            self._publish(job, "state", {"state": "running", "started": job.started})
        elif event.kind == "progress":
            job.progress, job.eta_s = body, body.get("eta_s")
            self._publish(job, "progress", body)
        elif event.kind == "output":
            self._publish(job, "output", body, event.blobs)
        elif event.kind == "finished":
            self._finish(job, body["state"], body["result"], body["error"])

    def _finish(self, job: Job, state: str, result: dict | None, error: dict | None) -> None:
        job.state, job.result, job.error, job.finished, job.eta_s = state, result, error, time.time(), None
        job.payload = None
        self.book.save(job)
        self._publish(job, "finished", {"job": job.record()})
        self.watchers.pop(job.id, None)

    def _publish(self, job: Job, event: str, body: dict, blobs=()) -> None:
        """Send event number ``job.seq`` to every watcher; forget watchers that disconnected."""
        job.seq += 1
        watchers = self.watchers.get(job.id, {})
        for identity, request_id in list(watchers.items()):
            header = event_header(request_id, job.op, job.id, job.seq, event, body)
            if self._send(identity, header, blobs) == "gone":
                watchers.pop(identity, None)


def _peer_address(frame: zmq.Frame) -> str | None:
    """The remote IP of a tcp peer (None for ipc/inproc)."""
    try:
        return frame.get("Peer-Address")
    except (zmq.ZMQError, KeyError):
        return None
