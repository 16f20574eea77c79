"""Client of the SMITE daemon (docs/protocol.md): connect, call, submit jobs, watch progress, cancel, fetch
results; with timeouts, retries and reconnection.

Host-safe: imports only pyzmq, msgpack and the standard library (never torch, OpenImageIO or engine
modules), so Nuke and Blender plugins (Python 3.10/3.11) can use this file as it is. One ``Client`` is
meant for one thread (ZeroMQ sockets are not thread-safe): plugins run it in their worker thread.

    with Client() as client:
        job = client.learn(["/show/plate.1001.exr"], ["/show/roto.1001.png"], ["head", "body"], name="hero")
        client.wait(job, progress=lambda e: print(e.body.get("fraction")))
        job = client.segment("hero", sequence="/show/plate.####.exr", frame_range="1001-1100",
                             output="/show/mattes/hero.####.exr")
        record = client.wait(job)
"""

from __future__ import annotations

import collections
import itertools
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import zmq

PROTOCOL_MAJOR = 1
DEFAULT_ADDRESS = "tcp://127.0.0.1:7461"
MAX_HEADER_BYTES = 64 * 1024 * 1024  # replies (job listings) can be larger than requests
RETRIED_OPS = frozenset({"hello", "jobs", "watch", "unwatch", "result", "models", "cancel", "learn", "segment"})
TERMINAL = ("done", "failed", "cancelled")
WATCH_POLL_S = 5.0  # without events for this long, ``events`` asks the daemon for the job's state
CHECK_S = 0.25  # how often ``events`` calls its ``cancel_if`` hook


class DaemonError(Exception):
    """An error reply (``code``, one-line ``message``, the ``request_id`` it answers) or a client failure."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.request_id = code, message, request_id

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


class DaemonTimeout(DaemonError):
    """No reply within the timeout (daemon down, busy network, or a wrong address)."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__("timeout", message, request_id)


@dataclass(frozen=True)
class Inline:
    """An image sent inline: ``data`` the encoded file (EXR, PNG...), ``name`` a file name with its extension."""

    name: str
    data: bytes | memoryview


@dataclass
class Reply:
    """A successful reply: ``body`` map and raw ``blobs`` (bytes)."""

    body: dict
    blobs: list = field(default_factory=list)


@dataclass
class Event:
    """A job event: ``event`` is state, progress, output or finished; ``seq`` counts from 1 per job."""

    job: str
    seq: int
    event: str
    body: dict
    blobs: list = field(default_factory=list)


def default_address() -> str:
    return os.environ.get("SMITE_ADDRESS") or DEFAULT_ADDRESS


def _load_key(value: str | bytes | os.PathLike, secret: bool) -> tuple[bytes, bytes | None]:
    """(public, secret) from a Z85 key or a key file written by ``smite keys``."""
    if isinstance(value, bytes) and len(value) == 40:
        return value, None
    if isinstance(value, str) and len(value) == 40 and not os.path.exists(value):
        return value.encode("ascii"), None
    import zmq.auth

    public, secret_key = zmq.auth.load_certificate(str(value))
    if secret and not secret_key:
        raise DaemonError("bad_key", f"{value} holds no secret key; pass the .key_secret file")
    return public, secret_key


class Client:
    """A DEALER connection to one daemon. ``timeout`` (s) bounds each call; ``retries`` resends a call
    that timed out (same request id: the daemon answers a repeated submission with the same job)."""

    def __init__(self, address: str | None = None, timeout: float = 30.0, retries: int = 1,
                 server_key: str | bytes | os.PathLike | None = None,
                 client_keys: str | os.PathLike | None = None, context: zmq.Context | None = None) -> None:
        self.address = address or default_address()
        self.timeout, self.retries = timeout, retries
        self._curve = None
        if server_key is not None:
            if client_keys is None:
                raise DaemonError("bad_key", "CURVE needs the client's key pair too (client_keys=...key_secret)")
            self._curve = (_load_key(server_key, False)[0], *_load_key(client_keys, True))
        self._context = context or zmq.Context.instance()
        self._identity = b"smite-" + uuid.uuid4().hex.encode()
        self._prefix = uuid.uuid4().hex[:8]
        self._counter = itertools.count(1)
        self._events: dict[str, collections.deque] = collections.defaultdict(lambda: collections.deque(maxlen=10000))
        self._last_seq: dict[str, int] = {}
        self._watching: set[str] = set()
        self.watch_poll_s = WATCH_POLL_S
        self._socket: zmq.Socket | None = None
        self._connect()

    # ---------------------------------------------------------------------------------------------------
    # Connection

    def _connect(self) -> None:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, self._identity)  # kept across reconnects: watches survive
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)  # never queue requests for a daemon that is not there
        if self._curve is not None:
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = self._curve
        sock.connect(self.address)
        self._socket = sock

    def reconnect(self) -> None:
        """Drop the socket (and anything queued in it) and connect again."""
        if self._socket is not None:
            self._socket.close(linger=0)
        self._connect()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------------
    # Messages

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"

    def _send(self, header: dict, blobs: Sequence, deadline: float) -> None:
        frames = [msgpack.packb(header, use_bin_type=True), *blobs]
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._socket.poll(max(1, int(left * 1000)), zmq.POLLOUT):
                raise DaemonTimeout(f"cannot reach the SMITE daemon at {self.address}; is `smite serve` running?",
                                    header.get("id"))
            try:
                self._socket.send_multipart(frames, zmq.NOBLOCK, copy=False)
                return
            except zmq.Again:
                continue

    def _receive(self, deadline: float) -> tuple[dict, list] | None:
        """One message (header, blobs), or None at the deadline."""
        left = deadline - time.monotonic()
        if left <= 0 or not self._socket.poll(max(1, int(left * 1000)), zmq.POLLIN):
            return None
        frames = self._socket.recv_multipart(copy=False)
        try:
            header = msgpack.unpackb(frames[0].buffer, raw=False, strict_map_key=True, max_bin_len=0,
                                     max_ext_len=0, max_str_len=MAX_HEADER_BYTES)
        except Exception:  # not from a SMITE daemon: skip it
            return ({}, [])
        return (header if isinstance(header, dict) else {}), [f.bytes for f in frames[1:]]

    def _dispatch(self, header: dict, blobs: list) -> None:
        """Keep an event for whoever waits on its job (duplicates after a re-watch are dropped)."""
        if header.get("type") != "event" or not isinstance(header.get("job"), str):
            return
        job, seq = header["job"], header.get("seq", 0)
        if seq <= self._last_seq.get(job, 0):
            return
        self._last_seq[job] = seq
        self._events[job].append(Event(job, seq, str(header.get("event")), header.get("body") or {}, blobs))

    def call(self, op: str, args: dict | None = None, blobs: Sequence = (), timeout: float | None = None,
             retries: int | None = None) -> Reply:
        """Send one request and wait for its reply; raise ``DaemonError`` for an error reply and
        ``DaemonTimeout`` after ``retries`` resends without an answer (the socket is reset between tries)."""
        header = {"v": PROTOCOL_MAJOR, "id": self.new_id(), "op": op, "args": args or {}}
        tries = 1 + (self.retries if retries is None else retries) * (op in RETRIED_OPS)
        timeout = self.timeout if timeout is None else timeout
        for attempt in range(tries):
            if attempt:
                self.reconnect()
            deadline = time.monotonic() + timeout
            self._send(header, blobs, deadline)
            while (message := self._receive(deadline)) is not None:
                reply, reply_blobs = message
                if reply.get("id") == header["id"] and reply.get("type") in ("reply", "error"):
                    return self._reply(reply, reply_blobs)
                self._dispatch(reply, reply_blobs)
        raise DaemonTimeout(f"no reply from the SMITE daemon at {self.address} to {op} within {timeout:g} s",
                            header["id"])

    @staticmethod
    def _reply(header: dict, blobs: list) -> Reply:
        if header.get("type") == "error":
            error = header.get("error") or {}
            raise DaemonError(str(error.get("code", "unknown")), str(error.get("message", "")), header.get("id"))
        return Reply(header.get("body") or {}, blobs)

    # ---------------------------------------------------------------------------------------------------
    # Operations

    def hello(self, timeout: float | None = None) -> dict:
        """Versions, backbone, device, VRAM, limits, roots (see docs/protocol.md)."""
        return self.call("hello", timeout=timeout).body

    def jobs(self, job: str | None = None, states: Sequence[str] = (), limit: int = 100) -> list[dict]:
        args = {"limit": limit} | ({"job": job} if job else {}) | ({"states": list(states)} if states else {})
        return self.call("jobs", args).body["jobs"]

    def job(self, job: str) -> dict:
        return self.jobs(job)[0]

    def cancel(self, job: str) -> dict:
        return self.call("cancel", {"job": job}).body

    def watch(self, job: str) -> dict:
        """Subscribe to a job's events (also one submitted elsewhere); returns its record."""
        record = self.call("watch", {"job": job}).body["job"]
        self._watching.add(job)
        return record

    def unwatch(self, job: str) -> None:
        """Stop receiving a job's events (the job goes on)."""
        self.call("unwatch", {"job": job})
        self._forget(job)

    def models(self, action: str = "list", name: str | None = None) -> dict:
        return self.call("models", {"action": action} | ({"name": name} if name else {})).body

    def unload(self) -> bool:
        return bool(self.call("unload").body.get("unloaded"))

    def shutdown(self, cancel_running: bool = True) -> None:
        self.call("shutdown", {"cancel_running": cancel_running})

    def submit(self, op: str, args: dict, blobs: Sequence = ()) -> str:
        """Submit a learn or segment job; returns its id at once (events follow unless ``watch`` is false)."""
        job = self.call(op, args, blobs).body["job"]["id"]
        if args.get("watch", True):
            self._watching.add(job)
        return job

    def learn(self, frames: Sequence, masks: Sequence, parts: Sequence[str], name: str, **options) -> str:
        """Submit learning. ``frames``: paths or ``Inline``; ``masks``: a path/``Inline`` per frame (label map
        or matte EXR) or a {part: path/Inline} dict; ``options``: settings, overwrite, priority, save_to..."""
        blobs: list = []
        args = {"frames": [_ref(f, blobs) for f in frames], "masks": [_mask_ref(m, blobs) for m in masks],
                "parts": list(parts), "name": name} | options
        return self.submit("learn", args, blobs)

    def segment(self, model: str, frames: Sequence = (), sequence: str | None = None, frame_range: str | None = None,
                output: str | None = None, **options) -> str:
        """Submit segmentation with stored model ``model``. Frames: a list of paths / ``Inline`` /
        (frame number, path or Inline), or a ``sequence`` pattern (``/x/plate.####.exr``) with
        ``frame_range``. ``output``: a path pattern, else mattes come back inline."""
        blobs: list = []
        args: dict = {"model": model} | options
        if sequence is not None:
            args["sequence"] = {"pattern": sequence} | ({"frames": frame_range} if frame_range else {})
        else:
            args["frames"] = [_frame_ref(f, blobs) for f in frames]
        if output is not None:
            args["output"] = output
        return self.submit("segment", args, blobs)

    def events(self, job: str, timeout: float | None = None,
               cancel_if: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Yield the job's events in order until (and including) ``finished``.

        Every ``watch_poll_s`` seconds without events the daemon is asked for the job again (this also
        recovers from lost events and from a daemon restart; while the daemon is unreachable it keeps
        trying). ``timeout`` bounds the whole wait (None: no limit). ``cancel_if`` (e.g. a progress bar's
        "cancelled?") is checked every ``CHECK_S``; once it returns true the job is cancelled and the events
        go on until ``finished``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if job not in self._watching:  # a job submitted elsewhere (or with watch false): subscribe first
            record = self.watch(job)
            if record["state"] in TERMINAL and not self._events[job]:
                yield self._finished(job, record)
                return
        last_heard, cancel_sent = time.monotonic(), False
        while True:
            while self._events[job]:
                event = self._events[job].popleft()
                last_heard = time.monotonic()
                yield event
                if event.event == "finished":
                    self._forget(job)
                    return
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise DaemonTimeout(f"job {job} did not finish within {timeout:g} s")
            if cancel_if is not None and not cancel_sent and cancel_if():
                self.cancel(job)
                cancel_sent = True
            if now - last_heard < self.watch_poll_s:
                message = self._receive(min(now + CHECK_S, deadline or math.inf))
                if message is not None:
                    self._dispatch(*message)
                continue
            last_heard = now
            try:
                record = self.watch(job)
            except DaemonTimeout:
                continue  # the daemon is restarting or the network is down: try again later
            if record["state"] in TERMINAL and not self._events[job]:
                yield self._finished(job, record)
                return

    def _finished(self, job: str, record: dict) -> Event:
        """A ``finished`` event made from a finished job's record (its own event was missed)."""
        event = Event(job, self._last_seq.get(job, 0) + 1, "finished", {"job": record})
        self._forget(job)
        return event

    def _forget(self, job: str) -> None:
        self._watching.discard(job)
        self._events.pop(job, None)
        self._last_seq.pop(job, None)

    def wait(self, job: str, progress: Callable[[Event], None] | None = None, timeout: float | None = None,
             raise_on_error: bool = True, cancel_if: Callable[[], bool] | None = None) -> dict:
        """Wait for a job; ``progress`` gets every event before ``finished``; ``cancel_if`` as in ``events``.
        Returns the final job record; raises ``DaemonError`` with the job's error code when it failed or was
        cancelled."""
        for event in self.events(job, timeout, cancel_if):
            if event.event == "finished":
                record = event.body["job"]
                if raise_on_error and record["state"] != "done":
                    error = record.get("error") or {"code": record["state"], "message": f"job {job} {record['state']}"}
                    raise DaemonError(error["code"], error["message"])
                return record
            if progress is not None:
                progress(event)
        raise DaemonError("protocol", f"events of job {job} ended without a finished event")

    def result(self, job: str) -> list[tuple[dict, bytes | None]]:
        """All outputs of a finished job: (entry, EXR bytes) for inline outputs, (entry, None) for paths.
        Entries have ``frame`` and ``index`` (and ``path`` in path mode). Pages through large results."""
        out, start = [], 0
        while start is not None:
            reply = self.call("result", {"job": job, "start": start})
            for entry in reply.body["outputs"]:
                blob = entry.get("blob")
                out.append((entry, reply.blobs[blob] if blob is not None else None))
            start = reply.body.get("next")
        return out


def _ref(source, blobs: list) -> dict:
    """A protocol image reference: ``{"path"}`` or ``{"blob", "name"}`` (appending the bytes to ``blobs``)."""
    if isinstance(source, Inline):
        blobs.append(source.data)
        return {"blob": len(blobs) - 1, "name": source.name}
    if isinstance(source, (str, Path)):
        return {"path": str(source)}
    raise TypeError(f"an image must be a path or smite.client.Inline, got {type(source).__name__}")


def _mask_ref(source, blobs: list) -> dict:
    if isinstance(source, dict):
        return {"mattes": {str(k): _ref(v, blobs) for k, v in source.items()}}
    return _ref(source, blobs)


def _frame_ref(item, blobs: list) -> dict:
    if isinstance(item, tuple):
        number, source = item
        return _ref(source, blobs) | {"frame": int(number)}
    return _ref(item, blobs)
