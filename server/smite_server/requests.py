"""The arguments of every operation (docs/protocol.md, "Operations"), checked into typed requests.

Nothing here touches the disk or the engine: paths are checked against the roots by the daemon, images
are decoded by the worker. Blob references are checked against the number of blobs that came with the
message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from smite_server.fields import Fields
from smite_server.protocol import ProtocolError

MAX_FRAMES_PER_JOB = 100_000
MAX_REFERENCES = 256
MAX_PARTS = 1023
IMAGE_SUFFIXES = (".exr", ".png", ".jpg", ".jpeg", ".tif", ".tiff")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
MODEL_ACTIONS = ("list", "describe", "delete")
# Learning options a client may set: name -> (type, low, high). Mirrors smite.learn.learner.LearnSettings.
LEARN_OPTIONS = {
    "steps": (int, 1, 100_000), "token_steps": (int, 0, 100_000), "eval_every": (int, 1, 100_000),
    "seed": (int, 0, 2**31 - 1), "lr_tokens": (float, 0.0, 10.0), "lr_kv": (float, 0.0, 1.0),
    "token_clip": (float, 0.0, 1000.0), "sd_weight": (float, 0.0, 1000.0),
    "fourier_weight": (float, 0.0, 1000.0), "map_mode": (str, ("was", "cross"), None),
    "flip": (bool, None, None),
}
SEGMENT_OPTIONS = {
    "seed": (int, 0, 2**31 - 1), "matte_temperature": (float, 1e-3, 1000.0), "map_mode": (str, ("was", "cross"), None),
    "preset": (str, ("fast", "quality"), None), "window": (int, 1, 1024), "overlap": (int, 0, 1023),
    "tracker": (str, ("flow", "cotracker"), None), "coarse_to_fine": (bool, None, None),
    "edges": (str, ("refined", "bilinear"), None), "shot_offset": (int, 0, 10**9),
}


@dataclass(frozen=True)
class ImageRef:
    """An image by ``path`` (on the daemon's file system) or inline as blob ``blob`` named ``name``."""

    path: str | None = None
    blob: int | None = None
    name: str | None = None
    frame: int | None = None

    def describe(self) -> dict:
        """The reference as shown in job records (no bytes)."""
        out = {"path": self.path} if self.path is not None else {"blob": self.blob, "name": self.name}
        return out | ({"frame": self.frame} if self.frame is not None else {})


@dataclass(frozen=True)
class MaskRef:
    """A reference mask: a label-map/matte-EXR image, or one matte image per part (``mattes``)."""

    image: ImageRef | None = None
    mattes: dict[str, ImageRef] | None = None

    def describe(self) -> dict:
        if self.image is not None:
            return self.image.describe()
        return {"mattes": {k: v.describe() for k, v in (self.mattes or {}).items()}}


@dataclass(frozen=True)
class Submit:
    """Options shared by the job-submitting operations."""

    priority: int = 0
    watch: bool = True


@dataclass(frozen=True)
class LearnRequest:
    frames: list[ImageRef]
    masks: list[MaskRef]
    parts: list[str]
    name: str
    reference_ids: list[str] | None = None
    settings: dict = field(default_factory=dict)
    colorspace: str | None = None
    overwrite: bool = False
    save_to: str | None = None
    submit: Submit = Submit()
    from_model: str | None = None  # warm re-learning from this stored part model


@dataclass(frozen=True)
class SegmentRequest:
    frames: list[ImageRef]
    model: str | None = None
    model_path: str | None = None
    sequence: tuple[str, str | None] | None = None
    output: str | None = None
    cryptomatte: bool = False
    ranks: int = 6
    settings: dict = field(default_factory=dict)
    colorspace: str | None = None
    stream_outputs: bool = True
    submit: Submit = Submit()


def _image_ref(value: object, where: str, blobs: int, with_frame: bool = False) -> ImageRef:
    f = Fields(value, where)
    frame = f.int("frame", default=None, lo=0, hi=10**9) if with_frame else None
    if f.has("path") == f.has("blob"):
        raise ProtocolError("bad_request", f"{where} needs exactly one of path or blob")
    if f.has("path"):
        ref = ImageRef(path=f.str("path"), frame=frame)
    else:
        blob = f.int("blob", lo=0, hi=1_000_000)
        if blob >= blobs:
            raise ProtocolError("bad_request", f"{where}.blob is {blob} but the message has {blobs} blobs "
                                              "(blob numbers count the frames after the header from 0)")
        name = f.str("name", max_len=255)
        if not name.lower().endswith(IMAGE_SUFFIXES):
            raise ProtocolError("bad_request", f"{where}.name must end in one of {', '.join(IMAGE_SUFFIXES)}")
        ref = ImageRef(blob=blob, name=name, frame=frame)
    f.done()
    return ref


def _mask_ref(value: object, where: str, blobs: int) -> MaskRef:
    f = Fields(value, where)
    if not f.has("mattes"):
        return MaskRef(image=_image_ref(value, where, blobs))
    mattes = f.map("mattes")
    f.done()
    parsed = {str(k): _image_ref(mattes.data[k], f"{where}.mattes.{k}", blobs) for k in list(mattes.keys())}
    if not parsed or len(parsed) > MAX_PARTS:
        raise ProtocolError("bad_request", f"{where}.mattes must map 1 to {MAX_PARTS} part names to images")
    return MaskRef(mattes=parsed)


def _options(f: Fields | None, schema: dict, where: str) -> dict:
    """Checked engine options ({} when absent)."""
    if f is None:
        return {}
    out = {}
    for key, (kind, lo, hi) in schema.items():
        if not f.has(key):
            continue
        if kind is int:
            out[key] = f.int(key, lo=lo, hi=hi)
        elif kind is float:
            out[key] = f.float(key, lo=lo, hi=hi)
        elif kind is bool:
            out[key] = f.bool(key)
        else:
            out[key] = f.str(key, choices=lo)
    f.done()
    return out


def _submit(f: Fields) -> Submit:
    return Submit(priority=f.int("priority", default=0, lo=-100, hi=100), watch=f.bool("watch", default=True))


def model_name(value: str, where: str) -> str:
    """A store name: letters, digits, ``_ . -``, 1 to 64 characters, starting with a letter or digit."""
    if not MODEL_NAME.match(value):
        raise ProtocolError(
            "bad_request", f"{where} {value[:70]!r} must be 1-64 letters, digits, '_', '.' or '-' (no folders)"
        )
    return value


def parse_learn(args: dict, blobs: int) -> LearnRequest:
    f = Fields(args, "args")
    frames = [_image_ref(v, w, blobs) for v, w in f.items("frames", MAX_REFERENCES)]
    masks = [_mask_ref(v, w, blobs) for v, w in f.items("masks", MAX_REFERENCES)]
    if len(frames) != len(masks):
        raise ProtocolError("bad_request", f"{len(frames)} frames but {len(masks)} masks; give one mask per frame")
    ids = f.strings("reference_ids", MAX_REFERENCES, default=None)
    if ids is not None and len(ids) != len(frames):
        raise ProtocolError("bad_request", "args.reference_ids needs one id per frame")
    req = LearnRequest(
        frames=frames, masks=masks, parts=f.strings("parts", MAX_PARTS),
        name=model_name(f.str("name", max_len=64), "args.name"), reference_ids=ids,
        settings=_options(f.map("settings", default=None), LEARN_OPTIONS, "args.settings"),
        colorspace=f.str("colorspace", default=None, max_len=128), overwrite=f.bool("overwrite", default=False),
        save_to=f.str("save_to", default=None), submit=_submit(f), from_model=_from_model(f),
    )
    f.done()
    return req


def _from_model(f: Fields) -> str | None:
    name = f.str("from_model", default=None, max_len=64)
    return None if name is None else model_name(name, "args.from_model")


def _sequence(f: Fields | None) -> tuple[str, str | None] | None:
    if f is None:
        return None
    value = (f.str("pattern"), f.str("frames", default=None, max_len=1024))
    f.done()
    return value


def parse_segment(args: dict, blobs: int) -> SegmentRequest:
    f = Fields(args, "args")
    frames = [_image_ref(v, w, blobs, with_frame=True) for v, w in f.items("frames", MAX_FRAMES_PER_JOB, default=[],
                                                                              min_items=0)]
    sequence = _sequence(f.map("sequence", default=None))
    if bool(frames) == (sequence is not None):
        raise ProtocolError("bad_request", "segment needs exactly one of args.frames or args.sequence")
    model, model_path = f.str("model", default=None, max_len=64), f.str("model_path", default=None)
    if (model is None) == (model_path is None):
        raise ProtocolError("bad_request", "segment needs exactly one of args.model or args.model_path")
    ranks = f.int("ranks", default=6, lo=2, hi=16)
    if ranks % 2:
        raise ProtocolError("bad_request", f"args.ranks must be even (two ranks per RGBA layer), got {ranks}")
    req = SegmentRequest(
        frames=frames, model=model_name(model, "args.model") if model else None, model_path=model_path,
        sequence=sequence, output=f.str("output", default=None), cryptomatte=f.bool("cryptomatte", default=False),
        ranks=ranks,
        settings=_options(f.map("settings", default=None), SEGMENT_OPTIONS, "args.settings"),
        colorspace=f.str("colorspace", default=None, max_len=128),
        stream_outputs=f.bool("stream_outputs", default=True), submit=_submit(f),
    )
    f.done()
    return req


def parse_job_id(args: dict) -> str:
    """``args.job`` of cancel / watch / unwatch."""
    f = Fields(args, "args")
    job = f.str("job", max_len=64)
    f.done()
    return job


@dataclass(frozen=True)
class JobsRequest:
    job: str | None = None
    states: tuple[str, ...] = ()
    limit: int = 100


def parse_jobs(args: dict) -> JobsRequest:
    f = Fields(args, "args")
    states = f.strings("states", len(JOB_STATES), default=None) or []
    bad = [s for s in states if s not in JOB_STATES]
    if bad:
        raise ProtocolError("bad_request", f"args.states has unknown state {bad[0]!r}; use {', '.join(JOB_STATES)}")
    req = JobsRequest(job=f.str("job", default=None, max_len=64), states=tuple(states),
                      limit=f.int("limit", default=100, lo=1, hi=10_000))
    f.done()
    return req


@dataclass(frozen=True)
class ResultRequest:
    job: str
    start: int = 0
    count: int = 1_000_000


def parse_result(args: dict) -> ResultRequest:
    f = Fields(args, "args")
    req = ResultRequest(job=f.str("job", max_len=64), start=f.int("start", default=0, lo=0, hi=10**9),
                        count=f.int("count", default=1_000_000, lo=1, hi=10**9))
    f.done()
    return req


def parse_models(args: dict) -> tuple[str, str | None]:
    """(action, model name or None)."""
    f = Fields(args, "args")
    action = f.str("action", default="list", choices=MODEL_ACTIONS)
    name = f.str("name", default=None, max_len=64)
    f.done()
    if action != "list" and name is None:
        raise ProtocolError("bad_request", f"models {action} needs args.name")
    return action, model_name(name, "args.name") if name else None


def parse_empty(args: dict) -> None:
    """Operations without arguments refuse any."""
    Fields(args, "args").done()


def parse_shutdown(args: dict) -> bool:
    """``args.cancel_running`` (default true): cancel the running job instead of waiting for it."""
    f = Fields(args, "args")
    value = f.bool("cancel_running", default=True)
    f.done()
    return value
