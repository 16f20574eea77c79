"""Job records, the priority FIFO queue the worker takes from, and their persistence as JSON files.

One JSON file per job in ``<state>/jobs/`` is rewritten atomically on every state change, so a restarted
(or killed) daemon lists finished jobs and their outputs. Jobs that were queued or running when the
daemon stopped come back ``failed`` with error code ``interrupted``: their inline inputs were in memory.
Only the daemon's ROUTER thread changes records; the worker thread takes jobs from the queue and reports
back through events.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("smite.daemon")

TERMINAL = ("done", "failed", "cancelled")


def new_job_id() -> str:
    """``j`` + date + random hex: sortable by day, unguessable enough not to collide."""
    return "j" + time.strftime("%Y%m%d") + "-" + secrets.token_hex(5)


@dataclass
class Job:
    """One learn or segment job. ``payload`` (typed request, resolved paths, blob bytes) is never persisted."""

    id: str
    op: str
    priority: int = 0
    state: str = "queued"
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    progress: dict = field(default_factory=dict)
    eta_s: float | None = None
    error: dict | None = None
    result: dict | None = None
    request: dict = field(default_factory=dict)
    payload: object = field(default=None, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    seq: int = 0
    inline_bytes: int = 0  # size of the blobs in ``payload`` (bounded by the daemon's max_queued_bytes)
    written: list = field(default_factory=list)  # outputs written so far: kept in the record if interrupted
    saved_at: float = 0.0  # monotonic time of the last record save while running

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def record(self, stored: bool = False) -> dict:
        """The job as clients see it and as it is stored (JSON-safe). The outputs ``written`` so far are in the
        stored record of an unfinished job and in the record of a failed or cancelled one."""
        return {
            "id": self.id, "op": self.op, "state": self.state, "priority": self.priority,
            "submitted": self.submitted, "started": self.started, "finished": self.finished,
            "progress": self.progress, "eta_s": self.eta_s, "error": self.error, "result": self.result,
            "request": self.request,
        } | ({"written": self.written} if self.written and (self.state in ("failed", "cancelled") or stored
                                                            and not self.terminal) else {})

    @classmethod
    def from_record(cls, data: dict) -> Job:
        keys = ("id", "op", "priority", "state", "submitted", "started", "finished", "progress", "eta_s", "error",
                "result", "request", "written")
        return cls(**{k: data[k] for k in keys if k in data})


class JobQueue:
    """Priority FIFO (higher ``priority`` first, then submission order) shared by daemon and worker."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Job]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, job: Job) -> None:
        with self._cond:
            heapq.heappush(self._heap, (-job.priority, next(self._counter), job))
            self._cond.notify()

    def take(self, timeout: float | None) -> Job | None:
        """The next job not cancelled while queued, or None after ``timeout`` seconds or when closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                while self._heap:
                    job = heapq.heappop(self._heap)[2]
                    if not job.cancel.is_set():
                        return job
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return None

    def remove(self, job: Job) -> bool:
        """Take a queued job out; False if the worker already has it."""
        with self._cond:
            for i, item in enumerate(self._heap):
                if item[2] is job:
                    self._heap.pop(i)
                    heapq.heapify(self._heap)
                    return True
            return False

    def __len__(self) -> int:
        with self._cond:
            return len(self._heap)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _write_json(path: Path, data: dict) -> None:
    """Atomic JSON write: temp file in the same folder, fsync, rename."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class JobBook:
    """All known jobs by id, persisted in ``folder`` (one ``<id>.json`` each)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, Job] = {}

    def load(self) -> int:
        """Read the stored jobs; unfinished ones become failed/interrupted. Returns how many were read."""
        for path in sorted(self.folder.glob("*.json")):
            try:
                job = Job.from_record(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log.warning("ignoring unreadable job file %s: %s", path, exc)
                continue
            if not job.terminal:
                job.state, job.finished = "failed", time.time()
                job.error = {"code": "interrupted",
                             "message": "the daemon stopped before this job finished; submit it again"}
                self.save(job)
            self.jobs[job.id] = job
        return len(self.jobs)

    def add(self, job: Job) -> None:
        self.jobs[job.id] = job
        self.save(job)

    def save(self, job: Job) -> None:
        try:
            _write_json(self.folder / f"{job.id}.json", job.record(stored=True))
        except (OSError, ValueError) as exc:  # a full disk must not kill the daemon; the job lives on in memory
            log.error("job %s: could not persist its record: %s", job.id, exc)

    def forget(self, job: Job) -> None:
        self.jobs.pop(job.id, None)
        (self.folder / f"{job.id}.json").unlink(missing_ok=True)

    def expired(self, retention_s: float, now: float | None = None) -> list[Job]:
        """Finished jobs older than ``retention_s``."""
        now = time.time() if now is None else now
        return [j for j in self.jobs.values() if j.terminal and j.finished and now - j.finished > retention_s]

    def listing(self, states: tuple[str, ...] = (), limit: int = 100) -> list[Job]:
        """Newest first, optionally only some states."""
        jobs = [j for j in self.jobs.values() if not states or j.state in states]
        jobs.sort(key=lambda j: j.submitted, reverse=True)
        return jobs[:limit]
