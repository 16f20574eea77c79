"""``smite render``: one farm chunk of a shot's mattes, resumable, with exit codes a farm manager acts on.

The chunk's owned frames are segmented in the shot's own windows, with their noise (``smite.farm.chunks``:
what keeps seams invisible); only owned frames are written, each atomically, and owned frames whose matte is
already complete are skipped. The work runs in this process (the backbone is loaded here) or, with ``--daemon``, in a
running daemon (``smite serve``): plates and the part model go by path, mattes come back inline and are written
here, so context frames never reach the output folder. Daemon mode imports no torch.

Exit codes: 0 done, 2 bad input (do not retry), 75 temporary failure (retry: daemon unreachable, out of
memory, daemon restarting), 130 cancelled (Ctrl-C or SIGTERM, as farms send on cancel). The last line says
which in words. One ``Progress:`` line (and one ``openjd_progress:`` line for OpenJD/Deadline Cloud) per frame.
"""

from __future__ import annotations

import errno
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from smite.errors import SmiteError
from smite.farm.chunks import ChunkPlan, frames_spec, matte_complete, owned_frames, plan_chunk, sweep_temps
from smite.io.images import atomic_path
from smite.io.sequences import expand_frames, parse_frame_range
from smite.video.windows import preset_windows

EXIT_DONE, EXIT_BAD_INPUT, EXIT_RETRY, EXIT_CANCELLED = 0, 2, 75, 130
# Daemon error codes that a retry (maybe on another node) can fix; the rest are the request's fault.
BAD_INPUT_CODES = frozenset({"bad_message", "bad_request", "unsupported_version", "unknown_op", "too_large",
                             "forbidden", "not_found", "exists", "bad_input", "backbone_mismatch", "bad_key"})
EXIT_WORDS = {EXIT_DONE: "done", EXIT_BAD_INPUT: "bad input, do not retry",
              EXIT_RETRY: "temporary failure, retry", EXIT_CANCELLED: "cancelled"}


@dataclass
class RenderJob:
    """Everything ``smite render`` was asked: the chunk, where things are, segmentation options."""

    part_model: Path
    frames: str
    shot: str
    out: str
    chunk: str | None = None
    context: int = 8
    force: bool = False
    daemon: str | None = None
    timeout: float = 30.0
    preset: str = "quality"
    window: int | None = None
    overlap: int | None = None
    tracker: str = "flow"
    seed: int = 0
    temperature: float = 1.0
    coarse_to_fine: bool = True
    guidance_iterations: int | None = None
    backbone: str | None = None
    device: str | None = None
    precision: str | None = None
    colorspace: str | None = None

    def settings(self, shot_offset: int = 0) -> dict:
        """Segmentation options in the daemon protocol's ``settings`` form (the local path uses the same) for a
        span that starts at index ``shot_offset`` of the shot."""
        options = {"preset": self.preset, "tracker": self.tracker, "seed": self.seed,
                   "matte_temperature": self.temperature, "coarse_to_fine": self.coarse_to_fine,
                   "shot_offset": shot_offset}
        return options | {k: v for k, v in (("window", self.window), ("overlap", self.overlap)) if v is not None}

    def windows(self) -> tuple[int, int]:
        """(window, overlap) the segmentation runs with (the preset's, unless set)."""
        return preset_windows(self.preset, self.window, self.overlap)


class Failure(Exception):
    """A failure with the exit code it maps to."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Progress:
    """Per-frame progress lines for farm log parsers: ``Progress: 38% frame 1063 (3/8)`` and OpenJD's
    ``openjd_progress: 37.5`` (Deadline Cloud shows it as the task's progress)."""

    total: int
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    written: list[int] = field(default_factory=list)

    def say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def frame(self, number: int) -> None:
        self.written.append(number)
        percent = 100.0 * len(self.written) / max(self.total, 1)
        self.say(f"Progress: {percent:.0f}% frame {number} ({len(self.written)}/{self.total})")
        self.say(f"openjd_progress: {percent:.1f}")


# ---------------------------------------------------------------------------------------------------------
# Planning


def part_names_of(path: Path) -> list[str]:
    """The part names in a ``.smite`` header, read without torch (safetensors' numpy reader)."""
    import json

    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise SmiteError(f"part model {path} does not exist")
    try:
        with safe_open(str(path), "np") as f:
            header = json.loads((f.metadata() or {}).get("smite", "null"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise SmiteError(f"{path} is not a readable .smite part model ({exc})") from exc
    names = header.get("part_names") if isinstance(header, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SmiteError(f"{path} is a safetensors file but not a SMITE part model")
    return names


def outputs_of(job: RenderJob, frames: tuple[int, ...]) -> dict[int, Path]:
    """Matte path of each owned frame; the pattern needs a frame placeholder."""
    paths = dict(expand_frames(job.out, frames_spec(frames)))
    if len(set(paths.values())) != len(paths):
        raise SmiteError(f"-o {job.out} needs a frame placeholder (#### or %04d)")
    return paths


def plan(job: RenderJob, part_names: list[str], say: Callable[[str], None]) -> tuple[ChunkPlan, dict[int, Path]]:
    """The chunk's plan after looking at what is already written (``--force``: nothing counts as written)."""
    shot = parse_frame_range(job.shot)
    owned = owned_frames(shot, job.chunk)
    outputs = outputs_of(job, owned)
    if sweep_temps(list(outputs.values())):
        say("removed temp files of an earlier, interrupted attempt")
    done = set() if job.force else {f for f in owned if matte_complete(outputs[f], part_names, f)}
    chunk = plan_chunk(shot, owned, job.context, done, *job.windows())
    if chunk.done:
        say(f"skipping {len(chunk.done)} complete frame(s) {frames_spec(chunk.done)} (--force redoes them)")
    if chunk.todo:
        for folder in {outputs[f].parent for f in chunk.todo}:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SmiteError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from exc
        say(f"chunk {frames_spec(owned)}: writing {frames_spec(chunk.todo)}, segmenting {frames_spec(chunk.span)} "
            f"({len(chunk.span) - len(chunk.todo)} context frame(s))")
    return chunk, outputs


def plates_of(job: RenderJob, span: tuple[int, ...]) -> list[tuple[int, Path]]:
    """The span's plate files, all present (a missing plate is bad input, named)."""
    plates = expand_frames(job.frames, frames_spec(span))
    missing = [str(p) for _, p in plates if not p.is_file()]
    if missing:
        raise SmiteError(f"{len(missing)} plate(s) missing, e.g. {missing[0]}")
    return plates


# ---------------------------------------------------------------------------------------------------------
# Running


def render(job: RenderJob, progress: Progress | None = None, cancel: threading.Event | None = None) -> int:
    """Run one chunk; print progress and a last line that says how it ended; return the exit code."""
    progress = progress or Progress(0)
    cancel = cancel or threading.Event()
    started = time.time()
    try:
        part_names = part_names_of(job.part_model)
        chunk, outputs = plan(job, part_names, progress.say)
        progress.total = len(chunk.todo)
        if chunk.todo:
            run = _render_daemon if job.daemon else _render_local
            run(job, chunk, outputs, progress, cancel)
        code, detail = EXIT_DONE, (f"wrote {len(progress.written)} frame(s), skipped {len(chunk.done)} complete, "
                                   f"{time.time() - started:.1f} s")
    except Failure as exc:
        code, detail = exc.code, str(exc)
    except KeyboardInterrupt:
        code, detail = EXIT_CANCELLED, "interrupted"
    except SmiteError as exc:
        code = EXIT_CANCELLED if exc.code == "cancelled" else EXIT_BAD_INPUT
        code = EXIT_RETRY if exc.code in ("disk_full", "io_error", "out_of_memory") else code
        detail = str(exc)
    except (MemoryError, OSError, RuntimeError) as exc:
        if not _temporary(exc):
            raise
        code, detail = EXIT_RETRY, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if code != EXIT_DONE and progress.written:
        detail += f" (wrote {len(progress.written)} frame(s) first: a re-run resumes)"
    progress.say(f"smite render: {EXIT_WORDS[code]} (exit {code}): {detail}")
    return code


def _temporary(exc: BaseException) -> bool:
    """Out of memory (host or device) or a full disk: worth retrying, maybe on another node."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return "out of memory" in str(exc).lower()


def _render_local(job: RenderJob, chunk: ChunkPlan, outputs: dict[int, Path], progress: Progress,
                  cancel: threading.Event) -> None:
    """Segment the span with the engine in this process and write the owned frames still to do."""
    from smite.engine import Engine
    from smite.io.images import read_image, write_mattes_exr
    from smite.io.plate_header import plate_attributes
    from smite.model.partmodel import PartModel
    from smite.provenance import matte_metadata
    from smite.video.guidance import GuidanceSettings
    from smite.video.settings import SegmentSettings

    plates = plates_of(job, chunk.span)
    model = PartModel.load(job.part_model)
    engine = Engine(_backbone_spec(job.backbone, model.base_model), job.device, job.precision)
    guidance = None
    if job.guidance_iterations is not None:
        guidance = GuidanceSettings.for_backbone(engine.backbone, iterations=job.guidance_iterations)
    settings = SegmentSettings(**job.settings(chunk.offset), tracker_checkpoint=None, guidance=guidance)
    todo = set(chunk.todo)
    meta = matte_metadata(model, settings, job.colorspace, Path(job.part_model).stem)  # smite: provenance
    images = (read_image(p, job.colorspace) for _, p in plates)
    for (number, plate), mattes in zip(plates, engine.segment(model, images, settings, cancel.is_set, len(plates))):
        if number in todo:
            write_mattes_exr(outputs[number], mattes.alphas, mattes.labels, model.part_names,
                             meta | {"frame": number}, plate=plate_attributes(plate))
            progress.frame(number)
        if cancel.is_set():
            raise SmiteError("render cancelled", code="cancelled")


def _backbone_spec(backbone: str | None, base_model: str) -> str | None:
    """``--backbone``, else ``tiny`` for the tiny backbone's part models, else the engine's default."""
    from smite.model import backbone as bb

    if backbone:
        return backbone
    return bb.TINY_MODEL if base_model == getattr(bb, "TINY_MODEL_ID", None) else None


def _render_daemon(job: RenderJob, chunk: ChunkPlan, outputs: dict[int, Path], progress: Progress,
                   cancel: threading.Event) -> None:
    """Send the span to the daemon at ``job.daemon`` (inline results) and write the owned frames still to do."""
    from smite.client import Client, DaemonError

    if job.guidance_iterations is not None:
        raise SmiteError("--guidance-iterations works in-process only: the daemon uses its backbone's defaults")
    plates_of(job, chunk.span)  # a missing plate is bad input here, before the daemon is asked
    todo = set(chunk.todo)
    args = {"model_path": str(job.part_model.resolve()),
            "sequence": {"pattern": str(Path(job.frames).resolve()), "frames": frames_spec(chunk.span)},
            "settings": job.settings(chunk.offset), "stream_outputs": True}
    if job.colorspace:
        args["colorspace"] = job.colorspace
    try:
        with Client(job.daemon, timeout=job.timeout, retries=1) as client:
            client.hello()
            job_id = client.submit("segment", args)
            progress.say(f"daemon {job.daemon}: job {job_id}")
            try:
                for event in client.events(job_id, cancel_if=cancel.is_set):
                    if event.event == "output" and event.blobs:
                        _write_owned(event.body.get("frame"), event.blobs[0], todo, outputs, progress)
                    elif event.event == "finished":
                        _finish(client, event.body["job"], todo, outputs, progress)
            except KeyboardInterrupt:
                client.cancel(job_id)  # the daemon stops the job; this chunk is not waiting for it any more
                raise
    except DaemonError as exc:
        raise Failure(_exit_of(exc.code), f"daemon: {exc}") from None


def _write_owned(frame, data: bytes, todo: set[int], outputs: dict[int, Path], progress: Progress) -> None:
    """Write one matte EXR the daemon sent, if the frame is owned and not written yet."""
    if frame in todo and frame not in progress.written:
        with atomic_path(outputs[frame]) as tmp:
            tmp.write_bytes(data)
        progress.frame(frame)


def _finish(client, record: dict, todo: set[int], outputs: dict[int, Path], progress: Progress) -> None:
    """A finished job: fail with its error, or fetch the owned frames whose output events were missed."""
    from smite.client import DaemonError

    if record["state"] != "done":
        error = record.get("error") or {"code": record["state"], "message": f"job {record['state']}"}
        raise DaemonError(error["code"], error["message"])
    if todo - set(progress.written):
        for entry, data in client.result(record["id"]):
            if data is not None:
                _write_owned(entry.get("frame"), data, todo, outputs, progress)
    missing = todo - set(progress.written)
    if missing:
        raise Failure(EXIT_RETRY, f"the daemon returned no matte for frame(s) {frames_spec(sorted(missing))}")


def _exit_of(code: str) -> int:
    if code == "cancelled":
        return EXIT_CANCELLED
    return EXIT_BAD_INPUT if code in BAD_INPUT_CODES else EXIT_RETRY


@contextmanager
def cancel_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM (farms cancel tasks with it, then SIGKILL) for the duration; SIGINT stays
    Ctrl-C (KeyboardInterrupt)."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: event.set())
    try:
        yield event
    finally:
        signal.signal(signal.SIGTERM, previous)
