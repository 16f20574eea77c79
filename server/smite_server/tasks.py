"""What a learn or segment job does on the worker thread: read inputs (paths or inline bytes), call the
Engine, write outputs (files under the roots, or EXR bytes kept in the job's result folder) and report
progress and outputs through ``emit(event, body, blobs)``.

The daemon has already checked the request and resolved every path inside the roots (``LearnJob`` /
``SegmentJob``); each path is checked again (``confine``) right before it is opened or written, so a folder
swapped for a symlink after submission is refused. What can still fail here (corrupt image, NaN pixels,
another backbone's model, a full disk) fails as a ``SmiteError`` with its code and becomes the job's error.
"""

from __future__ import annotations

import contextlib
import errno
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smite.errors import SmiteError
from smite.io.images import read_image, read_image_bytes, read_reference_mask

Emit = Callable[..., None]  # emit(event: str, body: dict, blobs: list[bytes] = ())
Inline = tuple[bytes | memoryview, str]  # (encoded file bytes, file name with extension)
Source = Path | Inline
Confine = Callable[[Path, str], Path]  # security.Roots.confine: re-check a path inside the roots at use


def unconfined(path: Path, what: str) -> Path:
    """No re-check (paths that did not come from a request)."""
    return path


@dataclass
class LearnJob:
    """A learn job's resolved inputs: sources are paths (inside the roots) or inline (bytes, name)."""

    frames: list[Source]
    masks: list[Source | dict[str, Source]]
    parts: list[str]
    name: str
    store_path: Path
    reference_ids: list[str] | None = None
    settings: dict = field(default_factory=dict)
    colorspace: str | None = None
    save_to: Path | None = None
    overwrite: bool = False
    confine: Confine = unconfined
    from_model: Path | None = None  # warm re-learning (smite.learn.warm)


@dataclass
class SegmentJob:
    """A segment job: numbered frames, the model file, and a path pattern or a result folder for outputs."""

    frames: list[tuple[int, Source]]
    model_path: Path
    model_name: str
    output: str | None
    results_dir: Path
    cryptomatte: bool = False
    ranks: int = 6
    settings: dict = field(default_factory=dict)
    colorspace: str | None = None
    stream_outputs: bool = True
    model_in_roots: bool = False  # model_path came from the request (re-checked at use), not the store
    confine: Confine = unconfined


def source_name(source: Source) -> str:
    return source.name if isinstance(source, Path) else source[1]


def read_plate(source: Source, colorspace: str | None, confine: Confine = unconfined) -> np.ndarray:
    """A plate as float32 (H, W, 3) in [0, 1] from a path (checked inside the roots now) or inline bytes."""
    if isinstance(source, Path):
        return read_image(confine(source, "frame"), colorspace)
    return read_image_bytes(source[0], source[1], colorspace)


@contextlib.contextmanager
def _as_paths(mask: Source | Mapping[str, Source], confine: Confine) -> Iterator[Path | dict[str, Path]]:
    """Inline mask bytes written to a private temp folder (the mask readers take files)."""
    with tempfile.TemporaryDirectory(prefix="smite-mask-") as folder:
        def place(source: Source, index: int) -> Path:
            if isinstance(source, Path):
                return confine(source, "mask")
            path = Path(folder) / f"{index}{Path(source[1]).suffix.lower()}"
            path.write_bytes(source[0])
            return path

        if isinstance(mask, Mapping):
            yield {part: place(src, i) for i, (part, src) in enumerate(mask.items())}
        else:
            yield place(mask, 0)


def read_mask(mask: Source | Mapping[str, Source], parts: list[str], confine: Confine = unconfined) -> np.ndarray:
    """A label map int64 (H, W) from a label image, a matte EXR, or {part: matte} sources."""
    with _as_paths(mask, confine) as source:
        return read_reference_mask(source, list(parts))


def _eta(elapsed: float, done: int, total: int) -> float | None:
    return elapsed / done * (total - done) if done else None


def run_learn(engine, job: LearnJob, emit: Emit, cancel: Callable[[], bool]) -> dict:
    """Learn a part model and store it; returns the job result."""
    from smite.learn.learner import LearnSettings
    from smite.learn.warm import kept_start, warm_settings
    from smite.model.partmodel import PartModel

    if job.save_to is not None:  # fail before learning, not after
        job.confine(job.save_to.parent, "args.save_to folder")
    frames = [read_plate(f, job.colorspace, job.confine) for f in job.frames]
    masks = [read_mask(m, job.parts, job.confine) for m in job.masks]
    ids = job.reference_ids or [source_name(f) for f in job.frames]
    start = PartModel.load(job.from_model) if job.from_model is not None else None
    settings = (LearnSettings.for_backbone(engine.backbone_for(None), **job.settings) if start is None
                else warm_settings(start, engine.backbone_for(start), job.parts, **job.settings))

    def progress(p) -> None:
        miou = None if p.miou is None else float(p.miou)
        emit("progress", {"step": p.step, "total": p.total, "loss": _finite(p.loss), "miou": miou,
                          "phase": p.phase, "elapsed": p.elapsed, "fraction": p.step / max(p.total, 1),
                          "eta_s": _eta(p.elapsed, p.step, p.total)})

    model = engine.learn(frames, masks, job.parts, reference_ids=ids, settings=settings, progress=progress,
                         cancel=cancel, start_from=start)
    from smite_server.store import store_model

    folder = job.confine(job.save_to.parent, "args.save_to folder") if job.save_to is not None else None
    stored = writing(lambda: store_model(model, job.store_path, job.overwrite))
    saved = None
    if job.save_to is not None:
        folder = job.confine(job.save_to.parent, "args.save_to folder")  # again: storing took a moment
        saved = writing(lambda: model.save(folder / job.save_to.name))
    return {"model": job.name, "path": str(stored), "saved_to": str(saved) if saved else None,
            "part_names": model.part_names, "validation_miou": model.validation_miou,
            "base_model": model.base_model, "base_fingerprint": model.base_fingerprint,
            "kept_start": start is not None and kept_start(model)}


def writing(write: Callable[[], object]) -> object:
    """Run ``write``; a failed write is ``disk_full`` (no space or quota left) or ``io_error``, not bad input."""
    try:
        return write()
    except (SmiteError, OSError) as exc:
        cause = exc if isinstance(exc, OSError) else exc.__cause__
        if isinstance(exc, SmiteError) and not isinstance(cause, OSError):
            raise
        code = "io_error"
        if cause.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(cause):
            code = "disk_full"
        message = str(exc) if isinstance(exc, SmiteError) else f"could not write: {cause.strerror or cause}"
        raise SmiteError(message, code=code) from cause


def _finite(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _writer(job: SegmentJob):
    """The matte writer (with or without Cryptomatte layers), the one `smite segment` uses."""
    from smite.io.cryptomatte import matte_writer

    return matte_writer(job.ranks if job.cryptomatte else None)


def frame_path(pattern: str, number: int) -> Path:
    """The file of one frame of a sequence pattern (``####``, ``%04d``...)."""
    from smite.io.sequences import expand_frames

    return expand_frames(pattern, str(number))[0][1]


class PatternFrames(Sequence):
    """The numbered frames ``(number, path)`` of a sequence pattern over a frame range, each path formatted
    when it is used: a 100,000-frame range costs a list of ints when it is submitted, not 100,000 paths."""

    def __init__(self, pattern: str, numbers: list[int]) -> None:
        self.pattern, self.numbers = pattern, numbers

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return PatternFrames(self.pattern, self.numbers[index])
        return self.numbers[index], frame_path(self.pattern, self.numbers[index])


def pattern_paths(pattern: str, numbers: list[int]) -> list[Path]:
    """The file of each frame number: ``pattern`` with ``####``/``%04d``, or one plain path for one frame."""
    from smite.io.sequences import expand_frames, has_frame_token

    if not has_frame_token(pattern):
        if len(numbers) == 1:
            return [Path(pattern)]
        raise SmiteError(f"output {pattern!r} would write a file twice: it has no frame placeholder (#### or %04d) "
                         f"but {len(numbers)} frames")
    paths = [p for _, p in expand_frames(pattern, ",".join(str(n) for n in numbers))]
    if len(paths) != len(numbers) or len(set(paths)) != len(paths):  # repeated frame numbers
        raise SmiteError(f"output {pattern!r} would write a file twice: frame numbers repeat or it has no "
                         "frame placeholder (#### or %04d)")
    return paths


def output_paths(job: SegmentJob) -> list[Path]:
    """Where each frame's matte EXR goes: the output pattern, or ``<results>/<index>.exr`` for inline."""
    if job.output is None:
        return [job.results_dir / f"{i:06d}.exr" for i in range(len(job.frames))]
    if isinstance(job.frames, PatternFrames) and len(job.frames) > 1:  # unique numbers: formatted as used
        return [p for _, p in PatternFrames(job.output, job.frames.numbers)]
    return pattern_paths(job.output, [n for n, _ in job.frames])


def _load_model(job: SegmentJob, engine):
    """The job's part model, checked against the engine's backbone (an unpinned daemon loads the backbone the
    part model names); errors name the file."""
    from smite.model.partmodel import PartModel

    path = job.confine(job.model_path, "args.model_path") if job.model_in_roots else job.model_path
    model = PartModel.load(path)
    try:
        model.check_backbone(engine.backbone_for(model))
    except SmiteError as exc:
        raise SmiteError(f"{path.name}: {exc}", code=exc.code) from None
    return model


def _write_matte(job: SegmentJob, path: Path, write: Callable[[Path], None]) -> None:
    """Write one matte EXR: an output folder under the roots is checked again before it is made and before
    the file is written into its real path (``atomic_path`` writes a temp file and renames it over the name,
    so a symlink planted at the name is replaced, never followed)."""
    if job.output is not None:
        job.confine(path.parent, "args.output folder")
    writing(lambda: path.parent.mkdir(parents=True, exist_ok=True))
    if job.output is not None:
        path = job.confine(path.parent, "args.output folder") / path.name
    writing(lambda: write(path))


def run_segment(engine, job: SegmentJob, emit: Emit, cancel: Callable[[], bool]) -> dict:
    """Segment the frames and write one matte EXR per frame; returns the job result."""
    from smite.provenance import matte_metadata
    from smite.video.settings import SegmentSettings

    model = _load_model(job, engine)
    outputs, write = output_paths(job), _writer(job)
    if job.output is None:
        job.results_dir.mkdir(parents=True, exist_ok=True)
    plates = (read_plate(src, job.colorspace, job.confine) for _, src in job.frames)
    started, written = time.time(), []
    settings = SegmentSettings(**job.settings) if job.settings else None
    meta = matte_metadata(model, settings, job.colorspace, job.model_name)  # smite: provenance (issue 14)
    for (number, _), path, mattes in zip(job.frames, outputs, engine.segment(model, plates, settings, cancel,
                                                                             len(job.frames))):
        _write_matte(job, path, lambda p, m=mattes, n=number: write(
            p, m.alphas, m.labels, model.part_names, meta | {"frame": n}))
        index = len(written)
        written.append({"frame": number, "index": index} | ({} if job.output is None else {"path": str(path)}))
        blobs = [path.read_bytes()] if job.output is None and job.stream_outputs else []
        emit("output", written[-1] | ({"blob": 0} if blobs else {}), blobs)
        elapsed = time.time() - started
        emit("progress", {"done": index + 1, "total": len(job.frames), "elapsed": elapsed,
                          "fraction": (index + 1) / len(job.frames), "eta_s": _eta(elapsed, index + 1,
                                                                                    len(job.frames))})
    return {"model": job.model_name, "part_names": model.part_names, "inline": job.output is None,
            "cryptomatte": job.cryptomatte, "outputs": written}
