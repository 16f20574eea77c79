"""Turning checked learn/segment requests into worker jobs: paths resolved inside the roots, blobs attached.

Runs on the daemon's preparation thread, never on the request loop: it resolves paths (``realpath``),
lists a sequence's folder and reads a model's JSON header; images are read later by the worker, which
checks every path against the roots again when it opens it (``Roots.confine``).
"""

from __future__ import annotations

from pathlib import Path

from smite.errors import SmiteError
from smite.io import sequences
from smite_server.protocol import ProtocolError
from smite_server.requests import MAX_FRAMES_PER_JOB, ImageRef, LearnRequest, MaskRef, SegmentRequest
from smite_server.security import Roots
from smite_server.store import ModelStore, read_header
from smite_server.tasks import LearnJob, PatternFrames, SegmentJob, Source, frame_path, pattern_paths

# The frame count is checked before expanding; the one frame-list parser counts it (all forms, negative frames).
count_frames = sequences.count_frames


def _source(ref: ImageRef, blobs: list, roots: Roots, what: str) -> Source:
    if ref.path is not None:
        return roots.resolve(ref.path, what)
    return (blobs[ref.blob], ref.name)


def _mask(ref: MaskRef, blobs: list, roots: Roots, what: str) -> Source | dict[str, Source]:
    if ref.image is not None:
        return _source(ref.image, blobs, roots, what)
    return {part: _source(r, blobs, roots, f"{what} matte {part!r}") for part, r in (ref.mattes or {}).items()}


def learn_job(req: LearnRequest, blobs: list, roots: Roots, store: ModelStore) -> LearnJob:
    """The worker job of a learn request (model name free unless ``overwrite``)."""
    from_model = _warm_model(req.from_model, store)
    if store.exists(req.name) and not req.overwrite:
        raise ProtocolError("exists", f"a part model named {req.name!r} exists; pick another name or set overwrite")
    save_to = None
    if req.save_to is not None:
        save_to = roots.resolve_pattern(req.save_to, "args.save_to")
        if save_to.suffix != ".smite":
            raise ProtocolError("bad_request", "args.save_to must end in .smite")
    return LearnJob(
        frames=[_source(f, blobs, roots, f"args.frames[{i}]") for i, f in enumerate(req.frames)],
        masks=[_mask(m, blobs, roots, f"args.masks[{i}]") for i, m in enumerate(req.masks)],
        parts=req.parts, name=req.name, store_path=store.path(req.name), reference_ids=req.reference_ids,
        settings=req.settings, colorspace=req.colorspace, save_to=save_to, overwrite=req.overwrite,
        confine=roots.confine, from_model=from_model,
    )


def _warm_model(name: str | None, store: ModelStore) -> Path | None:
    """The stored part model a warm re-learn starts from."""
    if name is not None and not store.exists(name):
        raise ProtocolError("not_found", f"args.from_model: no part model named {name!r}")
    return None if name is None else store.path(name)


def _frames(req: SegmentRequest, blobs: list, roots: Roots) -> list[tuple[int, Source]]:
    """Numbered frames: from ``args.frames`` (numbered by ``frame`` or position) or a sequence pattern."""
    if req.sequence is None:
        return [(ref.frame if ref.frame is not None else i, _source(ref, blobs, roots, f"args.frames[{i}]"))
                for i, ref in enumerate(req.frames)]
    from smite.io.sequences import expand_frames

    pattern, frame_range = req.sequence
    try:
        count = count_frames(frame_range) if frame_range is not None else 0
    except SmiteError as exc:
        raise ProtocolError("bad_request", f"args.sequence.frames: {exc}") from exc
    if count > MAX_FRAMES_PER_JOB:  # counted before expanding it
        raise ProtocolError("bad_request", f"args.sequence.frames {frame_range[:60]!r} names {count} frames; "
                                           f"at most {MAX_FRAMES_PER_JOB} per job")
    folder_pattern = roots.resolve_pattern(pattern, "args.sequence.pattern")
    try:
        if frame_range is not None:  # frame numbers only; each path is formatted (and confined) when read
            numbers = sequences.parse_frame_range(frame_range)
            frame_path(str(folder_pattern), numbers[0])  # a pattern without a frame token fails here
            return PatternFrames(str(folder_pattern), numbers)
        frames = expand_frames(str(folder_pattern), frame_range)
    except SmiteError as exc:
        raise ProtocolError(exc.code, str(exc)) from exc
    if len(frames) > MAX_FRAMES_PER_JOB:
        raise ProtocolError("bad_request", f"{len(frames)} frames; at most {MAX_FRAMES_PER_JOB} per job")
    # The folder is resolved inside a root; each file is checked again (symlinks followed) when it is read.
    return frames


def _check_outputs(output: str, frames: list[tuple[int, Source]]) -> None:
    """Refuse an output pattern that would write a file twice or overwrite an input plate."""
    if isinstance(frames, PatternFrames):  # unique numbers; a clash shows at the smallest or the largest one
        if len(frames) > 1 and not sequences.has_frame_token(output):
            raise ProtocolError("bad_request", f"args.output {output[:200]!r} would write a file twice: it has no "
                                               "frame placeholder (#### or %04d)")
        for number in {frames.numbers[0], frames.numbers[-1]}:
            written = frame_path(output, number) if sequences.has_frame_token(output) else Path(output)
            if written == frame_path(frames.pattern, number):
                raise ProtocolError("bad_request", f"args.output would overwrite the input plate {written}")
        return
    try:
        paths = pattern_paths(output, [n for n, _ in frames])
    except SmiteError as exc:
        raise ProtocolError("bad_request", f"args.output: {exc}") from exc
    inputs = {src for _, src in frames if isinstance(src, Path)}
    clash = next((p for p in paths if p in inputs), None)
    if clash is not None:
        raise ProtocolError("bad_request", f"args.output would overwrite the input plate {clash}")


def _model(req: SegmentRequest, roots: Roots, store: ModelStore) -> tuple[Path, str]:
    if req.model is not None:
        return store.require(req.model), req.model
    path = roots.resolve(req.model_path, "args.model_path")
    if not path.is_file():
        raise ProtocolError("not_found", f"args.model_path {req.model_path[:200]!r} does not exist")
    return path, path.stem


def check_model(path: Path, fingerprint: str | None) -> None:
    """Refuse a file that is no part model, or (when the backbone is loaded) one of another backbone."""
    try:
        meta = read_header(path)
    except SmiteError as exc:
        raise ProtocolError("bad_input", str(exc)) from exc
    if fingerprint is not None and meta.get("base_fingerprint") != fingerprint:
        raise ProtocolError(
            "backbone_mismatch",
            f"part model {path.name} was learned on {meta.get('base_model')} (weights "
            f"{meta.get('base_fingerprint')}) but the daemon's backbone has weights {fingerprint}",
        )


def segment_job(req: SegmentRequest, blobs: list, roots: Roots, store: ModelStore, results_dir: Path,
                fingerprint: str | None, default_preset: str = "quality") -> SegmentJob:
    """The worker job of a segment request; outputs inline unless ``args.output`` names a pattern.

    A request without a ``preset`` gets the daemon's default, recorded in the job's settings."""
    frames = _frames(req, blobs, roots)
    output = str(roots.resolve_pattern(req.output, "args.output")) if req.output is not None else None
    if output is not None:
        _check_outputs(output, frames)
    model_path, model_name = _model(req, roots, store)
    check_model(model_path, fingerprint)
    return SegmentJob(
        frames=frames, model_path=model_path, model_name=model_name, output=output,
        results_dir=results_dir, cryptomatte=req.cryptomatte, ranks=req.ranks,
        settings={"preset": default_preset} | req.settings,
        colorspace=req.colorspace, stream_outputs=req.stream_outputs, model_in_roots=req.model_path is not None,
        confine=roots.confine,
    )


def describe_learn(req: LearnRequest, job: LearnJob) -> dict:
    """The request as kept in the job record (references, not bytes; ``save_to`` resolved, so that a restarted
    daemon knows which folder it wrote to)."""
    return {"name": req.name, "parts": req.parts, "frames": [f.describe() for f in req.frames],
            "masks": [m.describe() for m in req.masks], "settings": req.settings, "overwrite": req.overwrite,
            "save_to": str(job.save_to) if job.save_to else None}


def describe_segment(req: SegmentRequest, job: SegmentJob) -> dict:
    """The request as kept in the job record; ``output_folder`` is the resolved folder the mattes go to."""
    folder = str(Path(job.output).parent) if job.output is not None else None
    return {"model": req.model, "model_path": req.model_path, "frames": len(job.frames), "output": req.output,
            "output_folder": folder, "cryptomatte": req.cryptomatte, "settings": req.settings}
