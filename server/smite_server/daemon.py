"""The daemon: a ZeroMQ ROUTER loop that answers requests, queues jobs for the worker thread and fans job
events out to the clients watching them.

The loop never blocks on a job nor on the file system: submissions are checked on a preparation thread
(arguments, paths, folder listings, model headers) and answered when it is done; the worker reports
through the outbox and the loop forwards each event with ``NOBLOCK`` (a client that went away or stopped
reading loses events, never stalls the daemon; its job keeps running and its result waits in the job record).
"""

from __future__ import annotations

import gc
import logging
import shutil
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import zmq

from smite.errors import SmiteError
from smite.io.images import set_pixel_limits
from smite_server.config import DaemonConfig
from smite_server.handlers import HANDLERS, check_capacity
from smite_server.jobs import Job, JobBook, JobQueue, new_job_id
from smite_server.protocol import (
    ProtocolError,
    Request,
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
from smite_server.store import ModelStore, clean_temp_files
from smite_server.worker import WAKE_ADDRESS, Outbox, Worker, WorkerEvent

log = logging.getLogger("smite.daemon")
OPERATIONS = tuple(HANDLERS)
HOUSEKEEPING_S = 60.0
RECENT_SUBMITS = 4096
MAX_BATCH = 256  # messages handled before looking at worker events again
STOP_GRACE_S = 0.5
RECORD_SAVE_S = 5.0  # a running job's record (with the outputs written so far) is saved at least this often
GIL_SWITCH_S = 0.0005  # Python's default is 0.005
LEFTOVER_PASSES = 3  # housekeeping rounds that look again for temp files left by a killed daemon


@dataclass
class Prepared:
    """A submission checked on the preparation thread: the built job parts, or the error to answer."""

    key: tuple
    op: str
    job_id: str
    inline_bytes: int
    built: tuple | None = None  # (payload, description, priority, watch)
    error: tuple[str, str] | None = None  # (code, message)


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
        state = Path(config.state_dir).expanduser()
        own = [config.model_store, state] + ([config.keys_dir] if config.keys_dir else [])
        self.roots = Roots(config.roots, excluded=own)  # requests never reach the store, state or keys
        self.store = ModelStore(config.model_store)
        self.book = JobBook(state / "jobs")
        self.results_root = state / "results"
        self.queue = JobQueue()
        self.context = zmq.Context()
        self.outbox = Outbox(self.context)
        self.worker = Worker(engine, self.queue, self.outbox, config.idle_unload_s)
        self.watchers: dict[str, dict[bytes, str]] = {}
        self.recent_submits: OrderedDict[tuple, str] = OrderedDict()
        self.preparing: dict[tuple, list[tuple[bytes, str]]] = {}  # submission key -> [(client, request id)]
        self.prep = ThreadPoolExecutor(1, thread_name_prefix="smite-prep")  # one: submission order is kept
        self.leftover_folders: set[Path] = set()
        self._leftover_passes = 0
        self.peer_user: str | None = None
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
        set_pixel_limits(self.config.pixel_limits)
        # The preparation and worker threads run long stretches of Python; a short GIL switch interval lets the
        # request loop (which gives the GIL up at every socket call) get it back quickly.
        sys.setswitchinterval(GIL_SWITCH_S)
        gc.freeze()  # the imported libraries' millions of objects: full collections no longer walk them (seconds)
        self.book.load()
        self.leftover_folders = self._written_folders()
        self._clean_leftovers()
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
        self.prep.submit(self.outbox.close_thread_socket)  # its wake-up socket must close before term()
        self.prep.shutdown(wait=True, cancel_futures=False)
        self._apply_worker_events()
        self.router.close(linger=500)
        self.wake.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        self.context.term()
        log.info("stopped")

    def _housekeeping(self) -> None:
        """Forget finished jobs past the retention time (their inline results are removed on the preparation
        thread: no file-system work on the loop); look again for temp files left by a killed daemon."""
        expired = self.book.expired(self.config.retention_s)
        for job in expired:
            self.book.forget(job)
            log.info("job %s: record and results removed after the retention time", job.id)
        folders = [self.results_root / job.id for job in expired]
        if folders:
            self.prep.submit(lambda: [shutil.rmtree(f, ignore_errors=True) for f in folders])
        if self._leftover_passes < LEFTOVER_PASSES and self.leftover_folders:
            self._leftover_passes += 1
            self.prep.submit(self._clean_leftovers)

    def _written_folders(self) -> set[Path]:
        """Folders the daemon wrote to, from its job records: outputs, ``save_to``, inline results, the store."""
        folders = {self.store.folder, self.book.folder}
        for job in self.book.jobs.values():
            request, outputs = job.request or {}, list((job.result or {}).get("outputs") or []) + job.written
            named = [request.get("output_folder")] + [str(Path(request["save_to"]).parent)
                                                      if request.get("save_to") else None]
            named += [str(Path(o["path"]).parent) for o in outputs if isinstance(o, dict) and o.get("path")]
            folders |= {Path(f) for f in named if isinstance(f, str) and f}
            folders.add(self.results_root / job.id)
        return folders

    def _clean_leftovers(self) -> None:
        """Delete stale temp files of the daemon's own naming in the folders it wrote to (a kill during a write
        leaves them); folders under the roots are checked against the roots first."""
        for folder in sorted(self.leftover_folders):
            own = folder == self.store.folder or folder.is_relative_to(self.book.folder.parent)
            try:
                real = folder if own else self.roots.confine(folder, "output folder")
            except SmiteError:
                continue
            for path in clean_temp_files(real):
                log.info("removed %s, a temp file left by an interrupted write", path)

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
            self.peer_address = _peer_address(parts[0]) if self.endpoint.startswith("tcp://") else None
            self.peer_user = _peer_user(parts[0])
            reply = HANDLERS[request.op](self, request, identity)
            if reply is not None:  # None: a submission, answered once prepared
                self._send(identity, reply_header(request.id, request.op, reply[0]), reply[1])
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
        """The loaded backbone's weights fingerprint (None when not loaded, or when the daemon was started without
        a backbone: it then switches to the one each part model names)."""
        pinned = getattr(self.engine, "pinned", True)
        return self.engine_info().get("fingerprint") if self.engine.loaded and pinned else None

    def pending_inline_bytes(self) -> int:
        """Inline input bytes held by jobs that have not finished (they live in memory until then)."""
        return sum(job.inline_bytes for job in self.book.jobs.values() if not job.terminal)

    def client_key(self, identity: bytes) -> bytes:
        """Who sent the current request: its routing id, plus its CURVE public key on a secure daemon."""
        return identity + (b"|" + self.peer_user.encode() if self.peer_user else b"")

    def prepare(self, key: tuple, req: Request, identity: bytes, build: Callable[[str], tuple]) -> None:
        """Run ``build(job id)`` on the preparation thread; the loop queues the job (or answers the error) when
        it is done. A resend of a submission still being prepared is answered with the same job."""
        waiters = self.preparing.get(key)
        if waiters is not None:
            waiters.append((identity, req.id))
            return
        self.preparing[key] = [(identity, req.id)]
        prepared = Prepared(key, req.op, new_job_id(), sum(len(b) for b in req.blobs))

        def work() -> None:
            try:
                prepared.built = build(prepared.job_id)
            except ProtocolError as exc:
                prepared.error = (exc.code, exc.message)
            except SmiteError as exc:
                prepared.error = (exc.code, str(exc))
            except OSError as exc:  # a 300-character name, a permission problem: name the file
                name = str(exc.filename or "a file")[:200]
                prepared.error = ("bad_input", f"cannot use {name}: {exc.strerror or exc}")
            except Exception as exc:  # a bug: keep serving, tell the client, log the traceback
                log.error("request %s (%s): internal error\n%s", req.id, req.op, traceback.format_exc())
                prepared.error = ("internal", f"internal error ({type(exc).__name__}); see the daemon log")
            self.outbox.post(prepared)

        self.prep.submit(work)

    def _apply_prepared(self, prepared: Prepared) -> None:
        """Queue a prepared job and answer every client waiting for it (or send them its error)."""
        waiters = self.preparing.pop(prepared.key, [])
        error = prepared.error
        if error is None:
            try:
                check_capacity(self, prepared.inline_bytes)
            except ProtocolError as exc:
                error = (exc.code, exc.message)
        if error is not None:
            for identity, request_id in waiters:
                self._send(identity, error_header(request_id, prepared.op, *error))
            return
        payload, description, priority, watch = prepared.built
        job = Job(id=prepared.job_id, op=prepared.op, priority=priority, request=description, payload=payload,
                  inline_bytes=prepared.inline_bytes)
        self.enqueue(job, prepared.key)
        for identity, request_id in waiters:
            if watch:
                self.watch(job, identity, request_id)
            self._send(identity, reply_header(request_id, prepared.op, {"job": job.record(), "seq": job.seq}))

    def enqueue(self, job: Job, key: tuple) -> None:
        self.book.add(job)
        self.recent_submits[key] = job.id
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
                if isinstance(event, Prepared):
                    self._apply_prepared(event)
                else:
                    self._apply(event)
            except Exception:  # a bug in one event must not stop the loop (the job's record stays as it was)
                log.error("could not apply event %r\n%s", event, traceback.format_exc())

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
            job.written.append({k: v for k, v in body.items() if k != "blob"})
            now = time.monotonic()
            if len(job.written) == 1 or now - job.saved_at > RECORD_SAVE_S:  # an interrupted job lists them
                job.saved_at = now
                self.book.save(job)
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


def _peer_user(frame: zmq.Frame) -> str | None:
    """The CURVE public key (Z85) of the peer on a secure daemon, else None."""
    try:
        return frame.get("User-Id") or None
    except (zmq.ZMQError, KeyError):
        return None


def _peer_address(frame: zmq.Frame) -> str | None:
    """The remote IP of a tcp peer. Only asked on tcp endpoints: on ipc ZeroMQ reports the peer's credentials
    ("localhost:uid:gid:pid"), no address, and an ipc peer is on this machine anyway."""
    try:
        return frame.get("Peer-Address")
    except (zmq.ZMQError, KeyError):
        return None
