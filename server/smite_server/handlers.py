"""One function per operation: ``handle(daemon, request, peer) -> (reply body, reply blobs)``.

Handlers run on the daemon loop and must stay quick: ``result`` reads result files, nothing waits for the
worker, and submissions hand their checking (argument parsing, path resolution, folder listing, model
headers) to the daemon's preparation thread and reply later (they return ``None``). A refusal is a
``ProtocolError`` (code + one-line message).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import msgpack

from smite import __version__
from smite_server import requests as rq
from smite_server.config import DaemonConfig
from smite_server.jobs import Job, JobBook, JobQueue
from smite_server.protocol import PROTOCOL_MAJOR, PROTOCOL_VERSION, ProtocolError, Request
from smite_server.security import Roots, is_local_peer
from smite_server.store import ModelStore
from smite_server.submit import describe_learn, describe_segment, learn_job, segment_job
from smite_server.worker import Worker


class Daemon(Protocol):
    """What handlers read and call on the daemon; ``daemon.Daemon`` provides it (so no import back up)."""

    operations: tuple[str, ...]
    config: DaemonConfig
    engine: Any
    worker: Worker
    roots: Roots
    store: ModelStore
    book: JobBook
    queue: JobQueue
    results_root: Path
    keys: Any
    stopping: bool
    peer_address: str | None
    watchers: dict[str, dict[bytes, str]]
    recent_submits: OrderedDict[tuple, str]

    def engine_info(self) -> dict: ...
    def fingerprint(self) -> str | None: ...
    def pending_inline_bytes(self) -> int: ...
    def enqueue(self, job: Job, key: tuple) -> None: ...
    def watch(self, job: Job, identity: bytes, request_id: str) -> None: ...
    def cancel(self, job: Job) -> bool: ...
    def request_stop(self, cancel_running: bool = True) -> None: ...
    def client_key(self, identity: bytes) -> bytes: ...
    def prepare(self, key: tuple, req: Request, identity: bytes, build: Callable[[str], tuple]) -> None: ...


Reply = tuple[dict, list] | None  # None: the reply is sent later (submissions, once prepared)
FEATURES = ("path_io", "inline_io", "cryptomatte", "watch", "priority", "idempotent_submit")


def hello(d: Daemon, req: Request, peer: bytes) -> Reply:
    rq.parse_empty(req.args)
    info = d.engine_info()
    used = info["vram_total"] - info["vram_free"] if "vram_total" in info else None
    running = d.worker.current
    body = {
        "protocol": PROTOCOL_VERSION, "protocol_major": PROTOCOL_MAJOR, "daemon": __version__,
        "operations": list(d.operations), "features": list(FEATURES), "pid": os.getpid(),
        "backbone": info.get("backbone"), "backbone_id": info.get("backbone_id"), "loaded": info.get("loaded"),
        "fingerprint": info.get("fingerprint"), "device": info.get("device"), "precision": info.get("precision"),
        "vram_free": info.get("vram_free"), "vram_total": info.get("vram_total"), "vram_used": used,
        "versions": {k: info.get(k) for k in ("smite", "python", "torch", "diffusers")},
        "limits": d.config.limits.as_dict() | {"max_queued_jobs": d.config.max_queued_jobs,
                                               "max_frames_per_job": rq.MAX_FRAMES_PER_JOB,
                                               "max_queued_bytes": d.config.max_queued_bytes,
                                               "retention_s": d.config.retention_s}
                  | d.config.pixel_limits.as_dict(),
        "roots": d.roots.as_list(), "queued": len(d.queue), "running": running.id if running else None,
        "secure": d.keys is not None, "time": time.time(),
    }
    return body, []


def check_capacity(d: Daemon, inline_bytes: int) -> None:
    if d.stopping:
        raise ProtocolError("shutting_down", "the daemon is shutting down; submit again after it restarts")
    if len(d.queue) >= d.config.max_queued_jobs:
        raise ProtocolError("queue_full", f"{len(d.queue)} jobs are queued (the limit); wait or cancel some")
    held = d.pending_inline_bytes()
    if held and held + inline_bytes > d.config.max_queued_bytes:
        raise ProtocolError("queue_full", f"queued jobs hold {held / 2**20:.0f} MiB of inline images (limit "
                                          f"{d.config.max_queued_bytes / 2**20:.0f} MiB); wait or send paths")


def submit_key(d: Daemon, req: Request, identity: bytes) -> tuple:
    """What makes a submission a resend of an earlier one: the same client, request id, operation and
    arguments (a digest of ``args`` and of the blob sizes). Anything else is a fresh request."""
    digest = hashlib.sha256(msgpack.packb(req.args, use_bin_type=True))
    for blob in req.blobs:
        digest.update(len(blob).to_bytes(8, "little"))
    return d.client_key(identity), req.id, req.op, digest.hexdigest()


def _submit(d: Daemon, req: Request, peer_id: bytes, build: Callable[[str], tuple]) -> Reply:
    """Queue a job built by ``build(job id) -> (payload, description, priority, watch)`` on the preparation
    thread, once per submission key: a resend gets the same job (or waits for the same preparation)."""
    key = submit_key(d, req, peer_id)
    known = d.recent_submits.get(key)
    if known is not None and known in d.book.jobs:  # a client retrying after a timeout: same job
        job = d.book.jobs[known]
        if req.args.get("watch") is not False and not job.terminal:
            d.watch(job, peer_id, req.id)
        return {"job": job.record(), "seq": job.seq}, []
    check_capacity(d, sum(len(b) for b in req.blobs))
    d.prepare(key, req, peer_id, build)
    return None


def learn(d: Daemon, req: Request, peer: bytes) -> Reply:
    def build(job_id: str):
        parsed = rq.parse_learn(req.args, len(req.blobs))
        payload = learn_job(parsed, req.blobs, d.roots, d.store)
        return payload, describe_learn(parsed, payload), parsed.submit.priority, parsed.submit.watch

    return _submit(d, req, peer, build)


def segment(d: Daemon, req: Request, peer: bytes) -> Reply:
    fingerprint, preset = d.fingerprint(), d.config.segment_preset  # read on the loop, used on the prep thread

    def build(job_id: str):
        parsed = rq.parse_segment(req.args, len(req.blobs))
        payload = segment_job(parsed, req.blobs, d.roots, d.store, d.results_root / job_id, fingerprint, preset)
        if not payload.frames:
            raise ProtocolError("bad_request", "segment has no frames")
        description = describe_segment(parsed, payload)
        return payload, description, parsed.submit.priority, parsed.submit.watch

    return _submit(d, req, peer, build)


def _job(d: Daemon, job_id: str) -> Job:
    job = d.book.jobs.get(job_id)
    if job is None:
        kept = d.config.retention_s / 3600
        raise ProtocolError("not_found", f"no job {job_id[:64]!r} (finished jobs are kept {kept:g} hours)")
    return job


def jobs(d: Daemon, req: Request, peer: bytes) -> Reply:
    parsed = rq.parse_jobs(req.args)
    if parsed.job is not None:
        return {"jobs": [_job(d, parsed.job).record()]}, []
    return {"jobs": [j.record() for j in d.book.listing(parsed.states, parsed.limit)]}, []


def watch(d: Daemon, req: Request, peer: bytes) -> Reply:
    job = _job(d, rq.parse_job_id(req.args))
    if not job.terminal:
        d.watch(job, peer, req.id)
    return {"job": job.record(), "seq": job.seq}, []


def unwatch(d: Daemon, req: Request, peer: bytes) -> Reply:
    job = _job(d, rq.parse_job_id(req.args))
    d.watchers.get(job.id, {}).pop(peer, None)
    return {"job": job.record()}, []


def cancel(d: Daemon, req: Request, peer: bytes) -> Reply:
    job = _job(d, rq.parse_job_id(req.args))
    cancelling = d.cancel(job)
    return {"job": job.record(), "cancelling": cancelling}, []


def result(d: Daemon, req: Request, peer: bytes) -> Reply:
    parsed = rq.parse_result(req.args)
    job = _job(d, parsed.job)
    if not job.terminal:
        raise ProtocolError("not_ready", f"job {job.id} is {job.state}; wait for its finished event")
    if job.state != "done":
        error = job.error or {"code": job.state, "message": f"job {job.id} {job.state}"}
        raise ProtocolError(error["code"], error["message"])
    outputs = (job.result or {}).get("outputs", [])
    if not (job.result or {}).get("inline"):
        return {"job": job.record(), "outputs": outputs[parsed.start: parsed.start + parsed.count], "next": None}, []
    return _inline_outputs(d, job, outputs, parsed)


def _inline_outputs(d: Daemon, job: Job, outputs: list, parsed: rq.ResultRequest) -> Reply:
    """Matte EXRs of an inline job as blobs, as many as fit one message; ``next`` is where to go on."""
    folder, budget = d.results_root / job.id, d.config.limits.max_message_bytes - 65536
    entries, blobs, index = [], [], parsed.start
    end = min(len(outputs), parsed.start + parsed.count)
    while index < end:
        path = folder / f"{outputs[index]['index']:06d}.exr"
        try:
            size = path.stat().st_size
            if blobs and size > budget:
                break
            blobs.append(path.read_bytes())
        except OSError as exc:
            raise ProtocolError("not_found", f"result files of job {job.id} are gone ({exc.strerror})") from None
        budget -= size
        entries.append(outputs[index] | {"blob": len(blobs) - 1})
        index += 1
    body = {"job": job.record(), "outputs": entries, "next": index if index < end else None}
    return body, blobs


def models(d: Daemon, req: Request, peer: bytes) -> Reply:
    action, name = rq.parse_models(req.args)
    if action == "list":
        return {"models": d.store.listing()}, []
    if action == "describe":
        return {"model": d.store.describe(name)}, []
    d.store.delete(name)
    return {"deleted": name}, []


def unload(d: Daemon, req: Request, peer: bytes) -> Reply:
    rq.parse_empty(req.args)
    lock = d.worker.engine_lock
    if not lock.acquire(blocking=False):
        raise ProtocolError("busy", "a job is running on the backbone; cancel it or unload when it is done")
    try:
        was_loaded = d.engine.loaded
        d.engine.unload()
    finally:
        lock.release()
    return {"unloaded": was_loaded}, []


def shutdown(d: Daemon, req: Request, peer: bytes) -> Reply:
    cancel_running = rq.parse_shutdown(req.args)
    if not is_local_peer(d.peer_address):
        raise ProtocolError("forbidden", "shutdown is only accepted from this machine")
    d.request_stop(cancel_running)
    return {"stopping": True}, []


HANDLERS: dict[str, Callable[..., Reply]] = {
    "hello": hello, "learn": learn, "segment": segment, "jobs": jobs, "watch": watch, "unwatch": unwatch,
    "cancel": cancel, "result": result, "models": models, "unload": unload, "shutdown": shutdown,
}
